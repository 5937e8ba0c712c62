"""Data sharing between namespaces: CREATE / ALTER / DROP DATASHARE, GRANT and REVOKE USAGE ON DATASHARE TO
NAMESPACE, CREATE DATABASE … FROM DATASHARE on the consumer, SVV_DATASHARES, SVV_DATASHARE_OBJECTS and
SVV_DATASHARE_CONSUMERS, and the redshift API's DescribeDataShares.

Shares cross databases, so they live in one document of the engine (`datashares.json`, through the store), not in
any one database: each share (its producer, objects, consumers) and each consumer database made from one.
A provisioned cluster gets a namespace id of its own here (a Serverless namespace has one already). A consumer's
query naming `database.schema.table` of a database made from a share reads the producer's table as it is at that
moment (its rows registered on the statement's cursor, as Spectrum's are), so the consumer sees the producer's
live data; a statement that would write there is refused, as Redshift refuses writes to a shared database."""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from contextlib import contextmanager

from sqlglot import exp

from dealab.engines.redshift.errors import RedshiftError, position_of
from dealab.wire import labtime
from dealab.wire.store import JsonFile

_NAME = r'"?(?P<share>\w+)"?'
_NAMESPACE = r"'(?P<namespace>[^']*)'"
# (pattern, handler): the statements this module runs, first match wins
STATEMENTS = [
    (re.compile(rf"^\s*CREATE\s+DATASHARE\s+{_NAME}(?:\s+SET\s+PUBLICACCESSIBLE\s*=?\s*(?P<public>TRUE|FALSE))?\s*;?\s*$", re.I), "create"),
    (re.compile(rf"^\s*ALTER\s+DATASHARE\s+{_NAME}\s+(?P<verb>ADD|REMOVE)\s+(?P<kind>ALL\s+TABLES\s+IN\s+SCHEMA|SCHEMA|TABLE)\s+"
                r"(?P<objects>.+?)\s*;?\s*$", re.I | re.S), "alter"),
    (re.compile(rf"^\s*ALTER\s+DATASHARE\s+{_NAME}\s+SET\s+PUBLICACCESSIBLE\s*=?\s*(?P<public>TRUE|FALSE)\s*;?\s*$", re.I), "set_public"),
    (re.compile(rf"^\s*DROP\s+DATASHARE\s+{_NAME}\s*;?\s*$", re.I), "drop"),
    (re.compile(rf"^\s*GRANT\s+USAGE\s+ON\s+DATASHARE\s+{_NAME}\s+TO\s+NAMESPACE\s+{_NAMESPACE}\s*;?\s*$", re.I), "grant"),
    (re.compile(rf"^\s*REVOKE\s+USAGE\s+ON\s+DATASHARE\s+{_NAME}\s+FROM\s+NAMESPACE\s+{_NAMESPACE}\s*;?\s*$", re.I), "revoke"),
    (re.compile(rf"^\s*CREATE\s+DATABASE\s+\"?(?P<database>\w+)\"?\s+FROM\s+DATASHARE\s+{_NAME}\s+OF\s+(?:ACCOUNT\s+'\d+'\s+)?"
                rf"NAMESPACE\s+{_NAMESPACE}\s*;?\s*$", re.I), "create_database"),
    (re.compile(r"^\s*DROP\s+DATABASE\s+\"?(?P<database>\w+)\"?\s*;?\s*$", re.I), "drop_database"),
]
WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.TruncateTable)
RELATION_PREFIX = "datashare_relation_"
# System views computed for the statement that reads them (temp tables: they live with its session)
VIEW_COLUMNS = {
    "svv_datashares": ("share_name VARCHAR, share_id INTEGER, share_owner INTEGER, source_database VARCHAR, "
                       "consumer_database VARCHAR, share_type VARCHAR, createdate TIMESTAMP, is_publicaccessible BOOLEAN, "
                       "share_acl VARCHAR, producer_account VARCHAR, producer_namespace VARCHAR, managed_by VARCHAR"),
    "svv_datashare_objects": ("share_type VARCHAR, share_name VARCHAR, object_type VARCHAR, object_name VARCHAR, "
                              "producer_account VARCHAR, producer_namespace VARCHAR, include_new BOOLEAN"),
    "svv_datashare_consumers": "share_name VARCHAR, consumer_account VARCHAR, consumer_namespace VARCHAR, share_date TIMESTAMP",
}
SYSTEM_VIEWS = {name: ("temp", "main", name) for name in VIEW_COLUMNS}


def _objects(text: str) -> list[str]:
    return [name.strip().replace('"', "").lower() for name in text.split(",") if name.strip()]


class Registry:
    """Every share and every database made from one, for the whole engine. `warehouse_of(key)` opens a database;
    `serverless_ids()` gives each Serverless namespace's name → its namespace id; a provisioned cluster gets a
    namespace id of its own here (`cluster-<name>` → id)."""

    def __init__(self, document: JsonFile, warehouse_of, serverless_ids, account: str, region: str):
        self.document, self.warehouse_of, self.serverless_ids = document, warehouse_of, serverless_ids
        self.account, self.region = account, region
        self.lock = threading.RLock()

    def load(self) -> dict:
        return self.document.load({"shares": {}, "databases": {}, "cluster_namespaces": {}})

    def namespace_of(self, key: str) -> str:
        kind, _, name = key.partition("-")
        if kind == "namespace":
            return self.serverless_ids().get(name, "")
        with self.lock:
            state = self.load()
            if key not in state["cluster_namespaces"]:
                state["cluster_namespaces"][key] = str(uuid.uuid4())
                self.document.save(state)
            return state["cluster_namespaces"][key]

    def key_of(self, namespace_id: str) -> str | None:
        found = {value: f"namespace-{name}" for name, value in self.serverless_ids().items()}
        found.update({value: key for key, value in self.load()["cluster_namespaces"].items()})
        return found.get(namespace_id)

    def share_arn(self, share: dict) -> str:
        return f"arn:aws:redshift:{self.region}:{self.account}:datashare:{self.namespace_of(share['producer'])}/{share['name']}"

    def namespace_arn(self, namespace_id: str) -> str:
        return f"arn:aws:redshift:{self.region}:{self.account}:namespace:{namespace_id}"

    def describe(self, arn: str | None = None, producer_arn: str | None = None, consumer_arn: str | None = None) -> list[dict]:
        """DescribeDataShares and its ForProducer / ForConsumer forms: each share (the one `arn` names, those of
        `producer_arn`, those granted to `consumer_arn`) with its consumers."""
        shares = []
        for share in self.load()["shares"].values():
            share_arn = self.share_arn(share)
            producer = self.namespace_arn(self.namespace_of(share["producer"]))
            consumers = {namespace: date for namespace, date in share["consumers"].items()
                         if not consumer_arn or self.namespace_arn(namespace) == consumer_arn}
            if (arn and arn != share_arn) or (producer_arn and producer_arn != producer) or (consumer_arn and not consumers):
                continue
            associations = [{"ConsumerIdentifier": namespace, "Status": "ACTIVE", "CreatedDate": date, "StatusChangeDate": date}
                            for namespace, date in consumers.items()]
            shares.append({"DataShareArn": share_arn, "ProducerArn": producer, "AllowPubliclyAccessibleConsumers": share["public"],
                           "DataShareAssociations": associations})
        return shares

    def forget(self, key: str) -> None:
        """A dropped cluster or namespace: its shares and the databases it made from others' shares go."""
        with self.lock:
            state = self.load()
            state["shares"] = {name: share for name, share in state["shares"].items() if share["producer"] != key}
            state["databases"] = {name: found for name, found in state["databases"].items()
                                  if found["consumer"] != key and found["producer"] != key}
            state["cluster_namespaces"].pop(key, None)
            self.document.save(state)


class Sharing:
    """One database's side of data sharing: as producer, its shares; as consumer, the databases made from others'."""

    def __init__(self, warehouse):
        self.warehouse = warehouse
        self.registry: Registry | None = None  # the engine connects it
        self.key = ""
        self._counter = itertools.count()

    def _registry(self) -> Registry:
        if self.registry is None:
            raise RedshiftError("this database takes no part in data sharing")
        return self.registry

    # ------------------------------------------------------------ statements

    def run(self, cursor, sql: str) -> None:
        for pattern, handler in STATEMENTS:
            match = pattern.match(sql)
            if match:
                registry = self._registry()
                with registry.lock:
                    state = registry.load()
                    getattr(self, f"_{handler}")(cursor, sql, match, state)
                    registry.document.save(state)
                return
        word = (re.findall(r"DATASHARE|DATABASE", sql, re.I) or [sql.split()[0]])[0]
        raise RedshiftError(f'syntax error at or near "{word}"', position_of(sql, word))

    def _share(self, state: dict, name: str, sql: str) -> dict:
        share = state["shares"].get(f"{self.key}/{name}")
        if share is None:
            raise RedshiftError(f'datashare "{name}" does not exist', position_of(sql, name))
        return share

    def _create(self, cursor, sql: str, match, state: dict) -> None:
        name = match.group("share").lower()
        if f"{self.key}/{name}" in state["shares"]:
            raise RedshiftError(f'datashare "{name}" already exists')
        state["shares"][f"{self.key}/{name}"] = {
            "producer": self.key, "name": name, "schemas": [], "tables": [], "all_tables_in": [], "consumers": {},
            "public": (match.group("public") or "FALSE").upper() == "TRUE", "created": labtime.live_now().isoformat(),
            "id": 100000 + len(state["shares"])}

    def _set_public(self, cursor, sql: str, match, state: dict) -> None:
        self._share(state, match.group("share").lower(), sql)["public"] = match.group("public").upper() == "TRUE"

    def _alter(self, cursor, sql: str, match, state: dict) -> None:
        share = self._share(state, match.group("share").lower(), sql)
        kind = re.sub(r"\s+", " ", match.group("kind").upper())
        member = {"SCHEMA": "schemas", "TABLE": "tables", "ALL TABLES IN SCHEMA": "all_tables_in"}[kind]
        names = _objects(match.group("objects"))
        adding = match.group("verb").upper() == "ADD"
        for name in names:
            schema, _, table = name.rpartition(".") if kind == "TABLE" else (name, "", "")
            schema = schema or "public"
            if kind == "TABLE":
                name = f"{schema}.{table}"
                if adding and not self._exists(cursor, schema, table):
                    raise RedshiftError(f'relation "{name}" does not exist', position_of(sql, table))
                if adding and schema not in share["schemas"]:
                    raise RedshiftError(f'schema "{schema}" of relation "{name}" is not added to datashare "{share["name"]}"; '
                                        "add the schema first (ALTER DATASHARE … ADD SCHEMA)")
            elif adding and not cursor.execute("SELECT 1 FROM information_schema.schemata WHERE catalog_name = current_database() "
                                               "AND schema_name = ?", [schema]).fetchone():
                raise RedshiftError(f'schema "{schema}" does not exist', position_of(sql, schema))
            elif kind == "ALL TABLES IN SCHEMA" and adding and schema not in share["schemas"]:
                raise RedshiftError(f'schema "{schema}" is not added to datashare "{share["name"]}"; add the schema first')
            listed = share[member]
            if adding and name not in listed:
                listed.append(name)
            elif not adding and name in listed:
                listed.remove(name)
            if kind == "SCHEMA" and not adding:  # a schema leaves with its tables
                share["tables"] = [table for table in share["tables"] if not table.startswith(f"{name}.")]
                share["all_tables_in"] = [known for known in share["all_tables_in"] if known != name]

    def _drop(self, cursor, sql: str, match, state: dict) -> None:
        name = match.group("share").lower()
        self._share(state, name, sql)
        del state["shares"][f"{self.key}/{name}"]
        state["databases"] = {database: found for database, found in state["databases"].items()
                              if (found["producer"], found["share"]) != (self.key, name)}

    def _grant(self, cursor, sql: str, match, state: dict) -> None:
        share = self._share(state, match.group("share").lower(), sql)
        namespace = match.group("namespace").lower()
        if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", namespace):
            raise RedshiftError(f"invalid namespace id '{match.group('namespace')}': a namespace id is a GUID",
                                position_of(sql, match.group("namespace")))
        if namespace == self.registry.namespace_of(self.key):
            raise RedshiftError("a datashare cannot be granted to its producer's own namespace")
        share["consumers"].setdefault(namespace, labtime.live_now().isoformat())

    def _revoke(self, cursor, sql: str, match, state: dict) -> None:
        share = self._share(state, match.group("share").lower(), sql)
        namespace = match.group("namespace").lower()
        share["consumers"].pop(namespace, None)
        consumer = self.registry.key_of(namespace)
        state["databases"] = {database: found for database, found in state["databases"].items()
                              if (found["producer"], found["share"], found["consumer"]) != (self.key, share["name"], consumer)}

    def _create_database(self, cursor, sql: str, match, state: dict) -> None:
        database, name, namespace = match.group("database").lower(), match.group("share").lower(), match.group("namespace").lower()
        if database == self.warehouse.database.lower() or f"{self.key}/{database}" in state["databases"]:
            raise RedshiftError(f'database "{database}" already exists')
        producer = self.registry.key_of(namespace)
        share = state["shares"].get(f"{producer}/{name}") if producer else None
        mine = self.registry.namespace_of(self.key)
        if share is None or mine not in share["consumers"]:
            raise RedshiftError(f'datashare "{name}" of namespace \'{namespace}\' does not exist or is not shared with this namespace')
        state["databases"][f"{self.key}/{database}"] = {"consumer": self.key, "database": database, "producer": producer,
                                                        "share": name, "created": labtime.live_now().isoformat()}

    def _drop_database(self, cursor, sql: str, match, state: dict) -> None:
        database = match.group("database").lower()
        if f"{self.key}/{database}" not in state["databases"]:
            raise RedshiftError(f'database "{database}" does not exist', position_of(sql, match.group("database")))
        del state["databases"][f"{self.key}/{database}"]

    @staticmethod
    def _exists(cursor, schema: str, table: str) -> bool:
        return bool(cursor.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                                   [schema, table]).fetchone())

    # ------------------------------------------------------------ consumer queries

    def _databases(self) -> dict[str, dict]:
        if self.registry is None:
            return {}
        return {found["database"]: found for found in self.registry.load()["databases"].values() if found["consumer"] == self.key}

    @contextmanager
    def relations(self, cursor, translation, sql: str):
        """Each table of a shared database the statement reads, registered on the cursor with the producer's rows
        of now (translation.sql rewritten); a write to one is refused."""
        named = [table for table in translation.tree.find_all(exp.Table) if table.catalog]  # database.schema.table
        databases = self._databases() if named else {}
        references = [table for table in named if table.catalog.lower() in databases]
        registered: list[str] = []
        try:
            if references:
                tree = translation.tree
                target = tree.this if isinstance(tree, WRITES) and isinstance(tree.this, exp.Expression) else None
                target = target if isinstance(target, exp.Table) or target is None else target.find(exp.Table)
                if target is not None and target.catalog and target.catalog.lower() in databases:
                    raise RedshiftError(f'cannot write to database "{target.catalog}": a database created from a '
                                        "datashare is read-only", position_of(sql, target.catalog))
                state = self.registry.load()
                for reference in references:
                    registered.append(self._register(cursor, reference, databases[reference.catalog.lower()], state, sql))
                translation.sql = translation.tree.sql("duckdb")
            yield
        finally:
            for name in registered:
                cursor.unregister(name)

    def _register(self, cursor, reference: exp.Table, found: dict, state: dict, sql: str) -> str:
        schema, table = (reference.db or "public").lower(), reference.name.lower()
        share = state["shares"].get(f"{found['producer']}/{found['share']}")
        shared = share is not None and schema in share["schemas"] and (
            f"{schema}.{table}" in share["tables"] or schema in share["all_tables_in"])
        qualified = f"{reference.catalog}.{schema}.{table}"
        if not shared:
            raise RedshiftError(f'relation "{qualified}" does not exist', position_of(sql, table))
        producer = self.registry.warehouse_of(found["producer"])
        with producer.connection.cursor() as source:
            if not self._exists(source, schema, table):
                raise RedshiftError(f'relation "{qualified}" does not exist', position_of(sql, table))
            rows = source.execute(f'SELECT * FROM "{schema}"."{table}"').to_arrow_table()
        relation = f"{RELATION_PREFIX}{next(self._counter)}"
        cursor.register(relation, rows)
        reference.replace(exp.Table(this=exp.to_identifier(relation),
                                    alias=reference.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table))))
        return relation

    # ------------------------------------------------------------ system views

    def compute_views(self, cursor, wanted: set[str]) -> None:
        """SVV_DATASHARES, SVV_DATASHARE_OBJECTS and SVV_DATASHARE_CONSUMERS as this database sees them: its shares
        OUTBOUND, the shares its databases come from INBOUND."""
        state = self.registry.load() if self.registry else {"shares": {}, "databases": {}}
        account = self.registry.account if self.registry else ""
        namespace_of = self.registry.namespace_of if self.registry else (lambda key: None)
        outbound = [share for share in state["shares"].values() if share["producer"] == self.key]
        inbound = [(found, state["shares"].get(f"{found['producer']}/{found['share']}")) for found in self._databases().values()]
        rows = {name: [] for name in VIEW_COLUMNS}
        for share in outbound:
            producer = namespace_of(share["producer"])
            rows["svv_datashares"].append((share["name"], share["id"], 100, self.warehouse.database, None, "OUTBOUND",
                                           share["created"], share["public"], None, account, producer, None))
            # ALL TABLES IN SCHEMA shares the schema's tables of now and later: each shows as a table, the schema
            # with include_new
            tables = set(share["tables"]) | {f"{schema}.{table}" for schema in share["all_tables_in"] for (table,) in cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]).fetchall()}
            objects = ([("schema", name, name in share["all_tables_in"]) for name in share["schemas"]]
                       + [("table", name, False) for name in sorted(tables)])
            rows["svv_datashare_objects"] += [("OUTBOUND", share["name"], kind, name, account, producer, include_new)
                                              for kind, name, include_new in objects]
            rows["svv_datashare_consumers"] += [(share["name"], account, namespace, date) for namespace, date in share["consumers"].items()]
        for found, share in inbound:
            if share is None:
                continue
            producer = namespace_of(share["producer"])
            rows["svv_datashares"].append((share["name"], share["id"], None, None, found["database"], "INBOUND",
                                           share["created"], share["public"], None, account, producer, None))
            rows["svv_datashare_objects"] += [("INBOUND", share["name"], "schema", name, account, producer, None) for name in share["schemas"]]
            rows["svv_datashare_objects"] += [("INBOUND", share["name"], "table", name, account, producer, None) for name in share["tables"]]
        for name in wanted & set(VIEW_COLUMNS):
            cursor.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({VIEW_COLUMNS[name]})")
            if rows[name]:
                marks = ", ".join("?" * len(rows[name][0]))
                cursor.executemany(f"INSERT INTO temp.main.{name} VALUES ({marks})", rows[name])
