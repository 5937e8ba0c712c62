"""Streaming ingestion: `CREATE EXTERNAL SCHEMA … FROM KINESIS` and materialized views over a Kinesis stream,
refreshed from the stream.

An external schema FROM KINESIS is a row of `dealab_system.kinesis_schemas`; `schema."stream-name"` names a
stream with Redshift's streaming columns (approximate_arrival_timestamp, partition_key, shard_id,
sequence_number, refresh_time, kinesis_data VARBYTE — BLOB in DuckDB). A streaming materialized view is a table
in `public` that starts empty; each REFRESH reads every shard through the stack's Kinesis API (the engine's own
client: ListShards, GetShardIterator, GetRecords) from just after the last sequence number it took from that
shard (TRIM_HORIZON the first time), runs the view's query over those records and appends its rows. The
per-shard positions (`dealab_system.stream_positions`) move in the same transaction as the rows, so a refresh
that fails or a kill -9 neither loses nor repeats a record. AUTO REFRESH YES refreshes on a lab timer every
AUTO_REFRESH_SECONDS of lab time; the warehouses that have such views are listed in `streaming.json` so the
engine opens them, and their timers run again, after a restart.

Redshift's functions over VARBYTE map onto DuckDB's: FROM_VARBYTE(kinesis_data, 'utf-8') decodes the bytes,
JSON_PARSE gives DuckDB JSON (the engine's SUPER), CAN_JSON_PARSE is true for bytes or text that are valid JSON."""

from __future__ import annotations

import datetime
import itertools
import logging
import re
import threading

import pyarrow
from sqlglot import exp

from dealab.engines.redshift import dialect
from dealab.engines.redshift.errors import RedshiftError, position_of
from dealab.wire import labtime
from dealab.wire.timers import timers

log = logging.getLogger("dealab.redshift.streaming")

SYSTEM = "dealab_system"
TIMER_OWNER = "redshift-streaming"
# Redshift refreshes an auto-refresh streaming view continuously, as soon as the last refresh ends; dealab looks
# this often in lab time (a clock move refreshes at each step of it)
AUTO_REFRESH_SECONDS = 10.0
# One GetRecords call returns at most 10,000 records (Kinesis's limit); a refresh reads a shard until it is caught up
RECORDS_PER_CALL = 10_000
METADATA = [
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.kinesis_schemas (schema_name VARCHAR PRIMARY KEY, iam_role VARCHAR,
        created TIMESTAMP DEFAULT current_timestamp)""",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.streaming_views (name VARCHAR PRIMARY KEY, schema_name VARCHAR,
        stream_name VARCHAR, query_text VARCHAR, auto_refresh BOOLEAN, refreshed_at TIMESTAMP)""",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.stream_positions (view_name VARCHAR, shard_id VARCHAR,
        sequence_number VARCHAR, PRIMARY KEY (view_name, shard_id))""",
]
CREATE_SCHEMA = re.compile(r"^\s*CREATE\s+EXTERNAL\s+SCHEMA\s+(?P<if_not_exists>IF\s+NOT\s+EXISTS\s+)?\"?(?P<schema>\w+)\"?\s+"
                           r"FROM\s+KINESIS\b(?P<options>.*?);?\s*$", re.I | re.S)
IS_CREATE_SCHEMA = r"CREATE\s+EXTERNAL\s+SCHEMA\s+(IF\s+NOT\s+EXISTS\s+)?\"?\w+\"?\s+FROM\s+KINESIS\b"
DROP_SCHEMA = re.compile(r"^\s*DROP\s+SCHEMA\s+(?:IF\s+EXISTS\s+)?\"?(?P<schema>\w+)\"?\s*(?P<cascade>CASCADE|RESTRICT)?\s*;?\s*$", re.I)
IAM_ROLE = re.compile(r"\bIAM_ROLE\s+(?:'([^']+)'|(default))", re.I)
# The columns Redshift gives a Kinesis stream, as the Arrow schema the records are registered under
STREAM_COLUMNS = pyarrow.schema([
    ("approximate_arrival_timestamp", pyarrow.timestamp("us")), ("partition_key", pyarrow.string()),
    ("shard_id", pyarrow.string()), ("sequence_number", pyarrow.string()), ("refresh_time", pyarrow.timestamp("us")),
    ("kinesis_data", pyarrow.binary()),
])
# FROM_VARBYTE's encodings → the DuckDB function that turns BLOB into that text
VARBYTE_ENCODINGS = {"utf-8": "decode", "utf8": "decode", "hex": "hex", "binary": "bin", "base64": "to_base64"}


def _call(name: str, *arguments: exp.Expression) -> exp.Expression:
    """A DuckDB function call as written (sqlglot's own nodes for these names would be rewritten on the way out)."""
    return exp.Anonymous(this=name, expressions=list(arguments))


def _as_text(argument: exp.Expression) -> exp.Expression:
    """Redshift's JSON functions take VARBYTE or text: bytes are decoded (NULL when they are not UTF-8)."""
    if isinstance(argument, exp.Column) and argument.name.lower() == "kinesis_data":
        return _call("try", _call("decode", argument))
    return argument


def _rewrite_functions(tree: exp.Expression, sql: str) -> None:
    for node in list(tree.find_all(exp.Func)):
        name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
        arguments = node.expressions
        if name == "from_varbyte":
            if len(arguments) != 2 or not isinstance(arguments[1], exp.Literal):
                raise RedshiftError("function from_varbyte takes a VARBYTE value and an encoding literal", position_of(sql, "FROM_VARBYTE"))
            encoding = arguments[1].name.lower()
            if encoding not in VARBYTE_ENCODINGS:
                raise RedshiftError(f'invalid encoding "{arguments[1].name}" for FROM_VARBYTE', position_of(sql, arguments[1].name))
            node.replace(_call(VARBYTE_ENCODINGS[encoding], arguments[0]))
        elif name == "can_json_parse":
            node.replace(_call("coalesce", _call("json_valid", _as_text(arguments[0])), exp.false()))
        elif isinstance(node, exp.ParseJSON):
            node.set("this", _as_text(node.this))
        elif isinstance(node, exp.Length) and isinstance(node.this, exp.Column) and node.this.name.lower() == "kinesis_data":
            node.replace(_call("octet_length", node.this))  # LENGTH of VARBYTE counts bytes (the docs' 65355 filter)


def _no_kinesis():
    raise RedshiftError("this database reaches no Kinesis Data Streams")


class Streams:
    """A warehouse's streaming schemas and views. `kinesis` makes the engine's own Kinesis client; `auto_refreshing`
    tells the engine whether this warehouse has auto-refresh views (it lists them to open after a restart)."""

    def __init__(self, warehouse):
        self.warehouse = warehouse
        self.kinesis = _no_kinesis
        self.auto_refreshing = lambda has_views: None
        self._counter = itertools.count()
        self._refreshing = threading.Lock()  # one refresh of this warehouse's streams at a time: positions move in order
        self._closed = False

    def schemas(self, cursor) -> set[str]:
        return {name for (name,) in cursor.execute(f"SELECT schema_name FROM {SYSTEM}.kinesis_schemas").fetchall()}

    def views(self, cursor) -> set[str]:
        return {name for (name,) in cursor.execute(f"SELECT name FROM {SYSTEM}.streaming_views").fetchall()}

    # ------------------------------------------------------------ statements

    def create_schema(self, cursor, sql: str) -> None:
        match = CREATE_SCHEMA.match(sql)
        if not match:
            raise RedshiftError('syntax error at or near "KINESIS"', position_of(sql, "KINESIS"))
        name, role = match.group("schema").lower(), IAM_ROLE.search(match.group("options"))
        if not role:
            raise RedshiftError("IAM_ROLE is required for an external schema FROM KINESIS", position_of(sql, "KINESIS"))
        exists = cursor.execute("SELECT 1 FROM information_schema.schemata WHERE catalog_name = current_database() AND "
                                "schema_name = ?", [name]).fetchone() or name in self.schemas(cursor) \
            or name in self.warehouse.spectrum.external_schemas(cursor)
        if exists:
            if match.group("if_not_exists"):
                return
            raise RedshiftError(f'Schema "{name}" already exists')
        cursor.execute(f"INSERT INTO {SYSTEM}.kinesis_schemas (schema_name, iam_role) VALUES (?, ?)", [name, role.group(1) or "default"])

    def drop_schema(self, cursor, sql: str, superuser) -> bool:
        """DROP SCHEMA of a schema FROM KINESIS (True: it was one and is dropped); its views go with CASCADE only."""
        match = DROP_SCHEMA.match(sql)
        if not match or match.group("schema").lower() not in self.schemas(cursor):
            return False
        if not superuser():  # asked only of a DROP SCHEMA of a Kinesis schema
            raise RedshiftError("permission denied: dealab lets only a superuser create, alter or drop external schemas and tables")
        name = match.group("schema").lower()
        views = [view for (view,) in cursor.execute(f"SELECT name FROM {SYSTEM}.streaming_views WHERE schema_name = ?", [name]).fetchall()]
        if views and not (match.group("cascade") or "").upper() == "CASCADE":
            raise RedshiftError(f"cannot drop schema {name} because other objects depend on it (materialized view {views[0]}); "
                                "use DROP ... CASCADE")
        for view in views:
            self.drop_view(cursor, view)
        cursor.execute(f"DELETE FROM {SYSTEM}.kinesis_schemas WHERE schema_name = ?", [name])
        return True

    def reads_stream(self, cursor, sql: str) -> bool:
        """Whether a CREATE MATERIALIZED VIEW reads a stream of a schema FROM KINESIS."""
        schemas = self.schemas(cursor)
        return bool(schemas) and any(match.group("schema").lower() in schemas for match in re.finditer(
            r'\bFROM\s+"?(?P<schema>\w+)"?\s*\.', sql, re.I))

    def create_view(self, cursor, sql: str) -> None:
        from dealab.engines.redshift import materialized

        match = materialized.CREATE.match(sql)
        if not match:
            raise RedshiftError('syntax error at or near "MATERIALIZED"', position_of(sql, "MATERIALIZED"))
        name = materialized._name(match.group("name"))
        options, found = dialect.take_clauses(match.group("options"), dialect.TABLE_ATTRIBUTES + [(materialized.AUTO_REFRESH, "auto_refresh")])
        if options.strip():
            word = options.split()[0]
            raise RedshiftError(f'syntax error at or near "{word}"', position_of(sql, word))
        layout = dialect.TableLayout()
        dialect.apply_table_clauses(layout, [item for item in found if item[0] != "auto_refresh"])
        auto_refresh = any(attribute == "auto_refresh" and clause.group(1).upper() == "YES" for attribute, clause in found)
        query = match.group("query")
        schema, stream = self._stream_of(cursor, query)
        if name in self.views(cursor) or cursor.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = 'public' "
                                                        "AND table_name = ?", [name]).fetchone():
            raise RedshiftError(f'relation "{name}" already exists')
        self._shards(stream, sql)  # the stream must exist
        relation, duckdb_sql = self._translate(query, pyarrow.Table.from_pylist([], schema=STREAM_COLUMNS), cursor)
        try:
            self.warehouse.run_duckdb(cursor, f'CREATE TABLE public."{name}" AS {duckdb_sql}', sql)
        finally:
            cursor.unregister(relation)
        cursor.execute(f"INSERT INTO {SYSTEM}.streaming_views VALUES (?, ?, ?, ?, ?, NULL)", [name, schema, stream, query, auto_refresh])
        self.warehouse.record_layout(cursor, name, layout)
        if auto_refresh:
            self._schedule(name)
            self.auto_refreshing(True)

    def refresh(self, cursor, name: str, sql: str) -> int:
        """Appends the view's rows over the records that reached the stream since the last refresh; returns how many."""
        schema, stream, query = cursor.execute(f"SELECT schema_name, stream_name, query_text FROM {SYSTEM}.streaming_views "
                                               "WHERE name = ?", [name]).fetchone()
        with self._refreshing:
            positions = dict(cursor.execute(f"SELECT shard_id, sequence_number FROM {SYSTEM}.stream_positions WHERE view_name = ?",
                                            [name]).fetchall())
            records, last = self._read(stream, positions, sql)
            relation, duckdb_sql = self._translate(query, records, cursor)
            cursor.execute("BEGIN TRANSACTION")
            try:
                added = self.warehouse.run_duckdb(cursor, f'INSERT INTO public."{name}" {duckdb_sql}', sql)[0][0]
                for shard, sequence in last.items():
                    cursor.execute(f"INSERT OR REPLACE INTO {SYSTEM}.stream_positions VALUES (?, ?, ?)", [name, shard, sequence])
                cursor.execute(f"UPDATE {SYSTEM}.streaming_views SET refreshed_at = ? WHERE name = ?", [labtime.live_now(), name])
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            finally:
                cursor.unregister(relation)
        return int(added)

    def drop_view(self, cursor, name: str) -> None:
        timers.cancel(TIMER_OWNER, self._timer_key(name))
        cursor.execute(f'DROP TABLE IF EXISTS public."{name}"')
        for table, column in (("streaming_views", "name"), ("stream_positions", "view_name")):
            cursor.execute(f"DELETE FROM {SYSTEM}.{table} WHERE {column} = ?", [name])
        self.warehouse.forget_layout(cursor, name)
        self.auto_refreshing(self._has_auto_views(cursor))

    # ------------------------------------------------------------ the stream

    def _stream_of(self, cursor, query: str) -> tuple[str, str]:
        """(schema, stream) the view's query reads: exactly one stream, as Redshift requires of a streaming view."""
        schemas = self.schemas(cursor)
        tree = dialect.translate(query, self.warehouse.database, self.warehouse.system_views).tree
        streams = [(table.db.lower(), table.name) for table in tree.find_all(exp.Table) if table.db and table.db.lower() in schemas]
        if len(streams) != 1:
            raise RedshiftError("a streaming materialized view reads exactly one stream of an external schema FROM KINESIS")
        return streams[0]

    def _translate(self, query: str, records: pyarrow.Table, cursor) -> tuple[str, str]:
        """The view's query in DuckDB's SQL over `records`, registered on the cursor: (relation, SQL)."""
        translation = dialect.translate(query, self.warehouse.database, self.warehouse.system_views)
        schemas = self.schemas(cursor)
        relation = f"kinesis_records_{next(self._counter)}"
        for table in list(translation.tree.find_all(exp.Table)):
            if table.db and table.db.lower() in schemas:
                table.replace(exp.Table(this=exp.to_identifier(relation), alias=table.args.get("alias")))
        _rewrite_functions(translation.tree, query)
        cursor.register(relation, records)
        return relation, translation.tree.sql("duckdb")

    def _shards(self, stream: str, sql: str) -> list[str]:
        client = self.kinesis()
        try:
            return [shard["ShardId"] for shard in client.list_shards(StreamName=stream)["Shards"]]
        except client.exceptions.ResourceNotFoundException:
            raise RedshiftError(f'Kinesis stream "{stream}" does not exist', position_of(sql, stream)) from None

    def _read(self, stream: str, positions: dict[str, str], sql: str) -> tuple[pyarrow.Table, dict[str, str]]:
        """Every record of every shard after the positions given (from TRIM_HORIZON for a shard not read yet), and
        the last sequence number read from each shard."""
        client = self.kinesis()
        refreshed = labtime.live_now()
        columns: dict[str, list] = {name: [] for name in STREAM_COLUMNS.names}
        last: dict[str, str] = {}
        for shard in self._shards(stream, sql):
            start = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": positions[shard]}
                     if shard in positions else {"ShardIteratorType": "TRIM_HORIZON"})
            iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard, **start)["ShardIterator"]
            while iterator:
                answer = client.get_records(ShardIterator=iterator, Limit=RECORDS_PER_CALL)
                for record in answer["Records"]:
                    arrival = record["ApproximateArrivalTimestamp"]
                    columns["approximate_arrival_timestamp"].append(arrival.astimezone(datetime.timezone.utc).replace(tzinfo=None)
                                                                    if arrival.tzinfo else arrival)
                    columns["partition_key"].append(record["PartitionKey"])
                    columns["shard_id"].append(shard)
                    columns["sequence_number"].append(record["SequenceNumber"])
                    columns["refresh_time"].append(refreshed)
                    columns["kinesis_data"].append(record["Data"])
                    last[shard] = record["SequenceNumber"]
                if not answer["Records"] or not answer.get("MillisBehindLatest", 0) and len(answer["Records"]) < RECORDS_PER_CALL:
                    break  # caught up with the shard (an open shard always hands back a next iterator)
                iterator = answer.get("NextShardIterator")
        return pyarrow.Table.from_pydict(columns, schema=STREAM_COLUMNS), last

    # ------------------------------------------------------------ AUTO REFRESH

    def _timer_key(self, name: str) -> str:
        return f"{self.warehouse.path.stem}/{name}"

    def _has_auto_views(self, cursor) -> bool:
        return bool(cursor.execute(f"SELECT 1 FROM {SYSTEM}.streaming_views WHERE auto_refresh").fetchone())

    def resume(self) -> None:
        """Schedules every auto-refresh view again (the warehouse was opened: the timers live in memory)."""
        with self.warehouse.connection.cursor() as cursor:
            names = [name for (name,) in cursor.execute(f"SELECT name FROM {SYSTEM}.streaming_views WHERE auto_refresh").fetchall()]
        for name in names:
            self._schedule(name)

    def _schedule(self, name: str, after: datetime.datetime | None = None) -> None:
        if not self._closed:
            due = (after or labtime.live_now()) + datetime.timedelta(seconds=AUTO_REFRESH_SECONDS)
            timers.schedule(TIMER_OWNER, self._timer_key(name), due, lambda at: self._auto_refresh(name, at))

    def _auto_refresh(self, name: str, at: datetime.datetime) -> None:
        if self._closed:
            return
        try:
            with self.warehouse.connection.cursor() as cursor:
                if name not in self.views(cursor):
                    return
                self.refresh(cursor, name, f"REFRESH MATERIALIZED VIEW {name}")
        except Exception:  # the stream was deleted, a write conflicted: the next round tries again
            log.warning("auto refresh of streaming view %s failed", name, exc_info=True)
        self._schedule(name, max(at, labtime.live_now()))  # after a long stop, once, not once per missed round

    def close(self) -> None:
        self._closed = True
        with self.warehouse.connection.cursor() as cursor:
            names = self.views(cursor)
        for name in names:
            timers.cancel(TIMER_OWNER, self._timer_key(name))
