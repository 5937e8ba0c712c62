"""Redshift Spectrum: external schemas that map a Redshift schema onto a Glue database, and external tables read
through the Athena engine's catalog reader (athena/tableread.py: the same SerDes, partitions and S3 path).

An external schema is a row in the warehouse's own metadata (dealab_system.external_schemas), so it survives a
restart. A statement naming `schema.table` of an external schema gets the table's rows for that statement only:
the reader (a DuckDB database of its own, locked down to its own folder) reads the partitions the statement's
WHERE keeps, and the rows are registered on the statement's cursor as an Arrow relation, which joins with local
tables in one query. The warehouse's connection gains no file access: its lock-down stays as it was.

CREATE EXTERNAL TABLE and ALTER TABLE … ADD PARTITION write the Glue catalog through the engine's own Glue client
(Athena's DDL rules turn the Hive clauses into a TableInput); DROP TABLE of an external table deletes it there.
Lake Formation: the catalog is read as Athena's queries read it (governance.py, glue:GetUnfilteredTableMetadata),
for the external schema's IAM role, as AWS judges Spectrum: only the tables, columns and rows the role may SELECT
(for the statement's caller where the warehouse checks no roles)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import botocore.exceptions
import duckdb
import sqlglot
from sqlglot import exp

from dealab.engines.redshift import roles
from dealab.engines.redshift.errors import RedshiftError, position_of

SYSTEM = "dealab_system"
METADATA = [
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.external_schemas (schema_name VARCHAR PRIMARY KEY, glue_database VARCHAR,
        iam_role VARCHAR, created TIMESTAMP DEFAULT current_timestamp)""",
    # Redshift's eskind 1 is an external schema over the Glue Data Catalog; esowner 100 the admin user
    f"""CREATE OR REPLACE VIEW {SYSTEM}.svv_external_schemas AS SELECT 100000 + row_number() OVER (ORDER BY schema_name)
        AS esoid, 1 AS eskind, schema_name AS schemaname, 100 AS esowner, glue_database AS databasename,
        '{{"IAM_ROLE":"' || coalesce(iam_role, '') || '"}}' AS esoptions FROM {SYSTEM}.external_schemas""",
]
# Computed when a statement asks for it, from the Glue catalog (a temp table: it lives with the statement's session)
SVV_EXTERNAL_TABLES_COLUMNS = ("redshift_database_name VARCHAR, schemaname VARCHAR, tablename VARCHAR, tabletype VARCHAR, "
                               "location VARCHAR, input_format VARCHAR, output_format VARCHAR, serialization_lib VARCHAR, "
                               "serde_parameters VARCHAR, compressed INTEGER, parameters VARCHAR")
RELATION_PREFIX = "spectrum_relation_"
_SCHEMA = r'"?(?P<schema>\w+)"?'
_TABLE = r'"?(?P<schema>\w+)"?\s*\.\s*"?(?P<table>\w+)"?'

# Statements Spectrum takes: (pattern, handler, whether the statement is Spectrum's only when the schema it names is
# external — DROP SCHEMA, DROP TABLE and ALTER TABLE are the warehouse's own for a local schema)
CREATE_SCHEMA = re.compile(rf"^\s*CREATE\s+EXTERNAL\s+SCHEMA\s+(?P<if_not_exists>IF\s+NOT\s+EXISTS\s+)?{_SCHEMA}\s+FROM\s+(?P<source>DATA\s+CATALOG|\w+)"
                           r"(?P<options>.*)$", re.I | re.S)
SCHEMA_OPTIONS = {"database": re.compile(r"\bDATABASE\s+'([^']+)'", re.I), "iam_role": re.compile(r"\bIAM_ROLE\s+'([^']+)'", re.I),
                  "create_database": re.compile(r"\bCREATE\s+EXTERNAL\s+DATABASE\s+IF\s+NOT\s+EXISTS\b", re.I)}
STATEMENTS = [
    (re.compile(r"^\s*CREATE\s+EXTERNAL\s+SCHEMA\b", re.I), "create_schema", False),
    (re.compile(rf"^\s*CREATE\s+EXTERNAL\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_TABLE}", re.I), "create_table", False),
    (re.compile(r"^\s*CREATE\s+EXTERNAL\s+TABLE\b", re.I), "unqualified_table", False),
    (re.compile(rf"^\s*ALTER\s+TABLE\s+{_TABLE}\s+(?P<rest>ADD\s+(?:IF\s+NOT\s+EXISTS\s+)?PARTITION\b.*)$", re.I | re.S), "add_partitions", True),
    (re.compile(rf"^\s*DROP\s+TABLE\s+(?P<if_exists>IF\s+EXISTS\s+)?{_TABLE}\s*;?\s*$", re.I), "drop_table", True),
    (re.compile(rf"^\s*DROP\s+SCHEMA\s+(?:IF\s+EXISTS\s+)?{_SCHEMA}(?P<rest>.*)$", re.I | re.S), "drop_schema", True),
    (re.compile(r"^\s*(?P<what>EXPLAIN|CREATE\s+MATERIALIZED\s+VIEW)\b", re.I), "not_yet_over_external", True),
]
# A table a query reads, named with its schema (where EXPLAIN and materialized views would meet an external one)
READ_TABLE = re.compile(r'\b(?:FROM|JOIN)\s+"?(?P<schema>\w+)"?\s*\.\s*"?(?P<table>\w+)"?', re.I)


@dataclass
class CatalogAccess:
    """What Spectrum reaches the catalog with: the engine's own Glue and S3 clients, and the engine's context
    (S3 reads of the objects go as the caller, through the gateway, as Athena's do)."""

    glue: Callable[[], object]
    s3: Callable[[], object]
    context: object


def _schema_missing(name: str, sql: str) -> RedshiftError:
    return RedshiftError(f'schema "{name}" does not exist', position_of(sql, name))


def _from_athena(error: Exception) -> RedshiftError:
    """Athena's DDL rules fail with Athena's wording (QueryError.detail); Redshift's caller sees it as ERROR: text."""
    return RedshiftError(getattr(error, "detail", None) or str(error))


class Spectrum:
    def __init__(self, warehouse, access: CatalogAccess | None):
        self.warehouse, self.access = warehouse, access
        self._catalog = None
        self._counter = itertools.count()

    # ------------------------------------------------------------ the catalog

    def catalog(self, principal: str | None = None):
        """The Glue catalog as the statement's caller may read it (freshly read: a crawler may just have run)."""
        if self.access is None:
            raise RedshiftError("this database reaches no Glue Data Catalog")
        from dealab.engines.athena.catalog import GlueCatalog
        from dealab.engines.athena.governance import governed

        if self._catalog is None:
            self._catalog = GlueCatalog(self.access.glue(), self.access.s3())
        self._catalog.forget()
        return governed(self._catalog, principal)

    def external_schemas(self, cursor) -> dict[str, str]:
        """Each external schema → the Glue database it maps to."""
        return dict(cursor.execute(f"SELECT schema_name, glue_database FROM {SYSTEM}.external_schemas").fetchall())

    # ------------------------------------------------------------ statements

    def claims(self, cursor, sql: str) -> tuple[str, re.Match] | None:
        """(handler, match) when the statement is Spectrum's; None for the warehouse's own."""
        for pattern, handler, only_external in STATEMENTS:
            match = pattern.match(sql)
            if match:
                if handler == "not_yet_over_external":
                    match = next((read for read in READ_TABLE.finditer(sql) if read.group("schema").lower() in self.external_schemas(cursor)), None)
                    return (handler, match) if match else None
                if only_external and match.group("schema").lower() not in self.external_schemas(cursor):
                    return None
                return handler, match
        return None

    def execute(self, cursor, sql: str, claimed: tuple[str, re.Match]) -> None:
        handler, match = claimed
        getattr(self, f"_{handler}")(cursor, sql, match)

    def _create_schema(self, cursor, sql: str, _match) -> None:
        match = CREATE_SCHEMA.match(sql)
        if not match:
            raise RedshiftError("syntax error at end of input")
        if_not_exists, name, source, options = (match.group("if_not_exists"), match.group("schema").lower(),
                                                match.group("source").upper(), match.group("options"))
        if not source.startswith("DATA"):
            raise RedshiftError(f"dealab does not offer external schemas FROM {source} yet (a later part of issue 18)",
                                position_of(sql, source))
        database = SCHEMA_OPTIONS["database"].search(options)
        if not database:
            raise RedshiftError("DATABASE is required for an external schema FROM DATA CATALOG", position_of(sql, "FROM"))
        glue_database = database.group(1).lower()
        role = SCHEMA_OPTIONS["iam_role"].search(options)
        session = self._assume(role.group(1) if role else None)
        exists = cursor.execute("SELECT 1 FROM information_schema.schemata WHERE catalog_name = current_database() AND "
                                "schema_name = ?", [name]).fetchone() or name in self.external_schemas(cursor)
        if exists:
            if if_not_exists:
                return
            raise RedshiftError(f'Schema "{name}" already exists')
        catalog = self.catalog()
        if not catalog.database_exists(glue_database):
            if not SCHEMA_OPTIONS["create_database"].search(options):
                raise RedshiftError(f"External database \"{glue_database}\" does not exist in the data catalog "
                                    "(add CREATE EXTERNAL DATABASE IF NOT EXISTS to create it)")
            glue = session.glue if session is not None else catalog.glue  # Redshift creates it as the schema's role
            roles.catalog_call(glue.create_database, DatabaseInput={"Name": glue_database})
        elif session is not None:
            roles.catalog_call(session.glue.get_database, Name=glue_database)
        cursor.execute(f"INSERT INTO {SYSTEM}.external_schemas (schema_name, glue_database, iam_role) VALUES (?, ?, ?)",
                       [name, glue_database, role.group(1) if role else None])

    def _assume(self, role: str | None):
        """The schema's IAM role session (roles.py), None where the warehouse checks no roles."""
        return self.warehouse.roles.assume(role, None) if self.warehouse.roles is not None else None

    @staticmethod
    def _role_of(cursor, schema: str) -> str | None:
        found = cursor.execute(f"SELECT iam_role FROM {SYSTEM}.external_schemas WHERE schema_name = ?", [schema]).fetchone()
        return found[0] if found else None

    def _drop_schema(self, cursor, sql: str, match: re.Match) -> None:
        name, rest = match.group("schema").lower(), match.group("rest")
        glue_database = self.external_schemas(cursor)[name]
        cursor.execute(f"DELETE FROM {SYSTEM}.external_schemas WHERE schema_name = ?", [name])
        if re.search(r"\bDROP\s+EXTERNAL\s+DATABASE\b", rest, re.I):  # Redshift's way of dropping the Glue database too
            catalog = self.catalog()
            if catalog.tables(glue_database) and not re.search(r"\bCASCADE\b", rest, re.I):
                raise RedshiftError(f'cannot drop external database "{glue_database}" because it has tables (use CASCADE)')
            catalog.glue.delete_database(Name=glue_database)

    def _athena_context(self, glue_database: str, sql: str):
        from dealab.engines.athena.statements.common import StatementContext

        return StatementContext(execution_id="", sql=sql, database=glue_database, catalog=self.catalog(), connection=None,
                                scratch=self.warehouse.scratch, output_folder="")

    def _create_table(self, cursor, sql: str, match: re.Match) -> None:
        from dealab.engines.athena.errors import QueryError
        from dealab.engines.athena.statements.ddl import create_external_table

        schema = match.group("schema").lower()
        glue_database = self.external_schemas(cursor).get(schema)
        if glue_database is None:
            raise _schema_missing(schema, sql)
        session = self._assume(self._role_of(cursor, schema))
        if session is not None:  # the table is written to the catalog as the schema's role
            self.warehouse.roles.may_write_catalog(session, "CreateTable", {"DatabaseName": glue_database,
                                                                            "TableInput": {"Name": match.group("table").lower()}})
        # Redshift writes Hive's TBLPROPERTIES as TABLE PROPERTIES; the table's schema is the Glue database's name
        hive = re.sub(r"\bTABLE\s+PROPERTIES\b", "TBLPROPERTIES", sql, flags=re.I)
        try:
            create = sqlglot.parse_one(hive, read="athena")
        except sqlglot.errors.ParseError as error:
            near = (error.errors[0].get("highlight") if error.errors else "") or ""
            raise RedshiftError(f'syntax error at or near "{near}"', position_of(sql, near)) from None
        create.this.this.set("db", exp.to_identifier(glue_database))
        try:
            create_external_table(self._athena_context(glue_database, sql), create)
        except QueryError as error:
            raise _from_athena(error) from None

    def _unqualified_table(self, cursor, sql: str, match: re.Match) -> None:
        raise RedshiftError("an external table must be named with its external schema (CREATE EXTERNAL TABLE schema.table ...)",
                            position_of(sql, "TABLE"))

    def _not_yet_over_external(self, cursor, sql: str, match: re.Match) -> None:
        what = "EXPLAIN" if sql.lstrip().upper().startswith("EXPLAIN") else "materialized views"
        raise RedshiftError(f"dealab does not offer {what} over external tables yet (a later part of issue 18)",
                            position_of(sql, match.group("table")))

    def _add_partitions(self, cursor, sql: str, match: re.Match) -> None:
        from dealab.engines.athena.errors import QueryError
        from dealab.engines.athena.statements.partitions import add_partitions

        schema, table = match.group("schema").lower(), match.group("table").lower()
        glue_database = self.external_schemas(cursor)[schema]
        named = re.match(r"(?P<table>\S+) (?P<rest>.*)", f"{glue_database}.{table} {match.group('rest')}", re.S)
        try:
            add_partitions(self._athena_context(glue_database, sql), named)
        except QueryError as error:
            raise _from_athena(error) from None

    def _drop_table(self, cursor, sql: str, match: re.Match) -> None:
        if_exists, schema, table = match.group("if_exists"), match.group("schema").lower(), match.group("table").lower()
        glue_database = self.external_schemas(cursor)[schema]
        catalog = self.catalog()
        if catalog.table(glue_database, table) is None:
            if if_exists:
                return
            raise RedshiftError(f'relation "{schema}.{table}" does not exist', position_of(sql, table))
        catalog.glue.delete_table(DatabaseName=glue_database, Name=table)

    # ------------------------------------------------------------ queries over external tables

    @contextmanager
    def relations(self, cursor, translation, sql: str, principal: str | None = None):
        """For the statement's run: each external table it names registered on the cursor (its reference pointed
        there, translation.sql rewritten), SVV_EXTERNAL_TABLES computed when asked; all dropped afterwards."""
        registered: list[str] = []
        try:
            if "svv_external_tables" in translation.system_views:
                self._compute_external_tables(cursor)
            qualified = [table for table in translation.tree.find_all(exp.Table) if table.db]
            schemas = self.external_schemas(cursor) if qualified else {}  # an external table is always named with its schema
            references = [table for table in qualified if table.db.lower() in schemas]
            if references and isinstance(translation.tree, exp.Drop):  # one external table is dropped by DROP TABLE schema.table
                raise RedshiftError("DROP TABLE of an external table names that table alone", position_of(sql, references[0].name))
            if references:
                registered = self._register(cursor, translation, references, schemas, sql, principal)
            yield
        finally:
            for name in registered:
                cursor.unregister(name)

    def _register(self, cursor, translation, references: list[exp.Table], schemas: dict[str, str], sql: str, principal) -> list[str]:
        from dealab.engines.athena.errors import QueryError
        from dealab.engines.athena.s3reads import CallerS3
        from dealab.engines.athena.tableread import CatalogTableReader

        catalog = self.catalog(principal)
        context = self.access.context
        reader = CatalogTableReader(catalog, CallerS3(context.loopback, context.endpoint_url, context.region),
                                    self.warehouse.scratch / "spectrum")
        registered = []
        sessions: dict[str, object] = {}
        try:
            for reference in references:
                schema, name = reference.db.lower(), reference.name.lower()
                if schema not in sessions:  # Spectrum reads the catalog and S3 as the schema's IAM role
                    sessions[schema] = self._assume(self._role_of(cursor, schema))
                if sessions[schema] is not None:  # Redshift reads the table's definition as the role
                    try:
                        roles.catalog_call(sessions[schema].glue.get_table, DatabaseName=schemas[schema], Name=name)
                    except botocore.exceptions.ClientError:
                        pass  # no such table: the catalog's own read below says so in Redshift's words
                # Lake Formation judges the principal that reads: the schema's role, as on AWS (the caller where the
                # warehouse checks no roles)
                reader_principal = sessions[schema].session_arn if sessions[schema] is not None and sessions[schema].session_arn else principal
                try:
                    table = (catalog if reader_principal == principal else self.catalog(reader_principal)).table(schemas[schema], name)
                except QueryError as error:  # Lake Formation's refusal, in Athena's words
                    raise RedshiftError(error.detail.replace(f" on {name}", f" on {schema}.{name}")) from None
                if table is None:
                    raise RedshiftError(f'relation "{schema}.{name}" does not exist', position_of(sql, name))
                rows = self._read(reader, table, reference, sessions[schema])
                relation = f"{RELATION_PREFIX}{next(self._counter)}"
                cursor.register(relation, rows)
                registered.append(relation)
                reference.replace(exp.Table(this=exp.to_identifier(relation),
                                            alias=exp.TableAlias(this=exp.to_identifier(reference.alias_or_name))))
        except BaseException:
            for relation in registered:
                cursor.unregister(relation)
            raise
        finally:
            reader.close()
        translation.sql = translation.tree.sql("duckdb")
        return registered

    def _read(self, reader, table, reference: exp.Table, session=None):
        """The table's rows (an Arrow table) from the partitions the statement's WHERE can keep."""
        from dealab.engines.athena.catalog import relation_sql
        from dealab.engines.athena.errors import QueryError
        from dealab.engines.athena.governance import restricted
        from dealab.engines.athena.planner import Planner

        planner = Planner(reader.catalog, reader.connection, "", table.database, s3_prefix=reader.s3_prefix)
        try:  # the reference gives partition projection its injected values, as an Athena query's does
            partitions = _pruned(reader.connection, table, planner.partitions_for(table, reference), reference)
            planner.fill_files(table, partitions)
            if session is not None:
                self._require_reads(session, partitions, reader.s3_prefix)
            relation = restricted(relation_sql(table, partitions, union_by_name=True), table, with_path=False)
        except (QueryError, ValueError) as error:  # a location that is not s3://, a format the reader has no SerDe for
            raise RedshiftError(f"Spectrum Scan Error: {getattr(error, 'detail', None) or error}") from None
        try:
            return reader.connection.execute(relation).to_arrow_table()
        except duckdb.Error as error:
            raise RedshiftError(f"Spectrum Scan Error: the files of {table.database}.{table.name} do not read as its "
                                f"SerDe describes ({type(error).__name__.removesuffix('Exception')})") from None

    def _require_reads(self, session, partitions: list, s3_prefix: str) -> None:
        """The role's GetObject of each file the partitions hold, judged before the reader reads it as the account."""
        for partition in partitions:
            for url, _size in partition.files:
                bucket, _, key = url.removeprefix(s3_prefix).partition("/")
                self.warehouse.roles.may_read(session, bucket, key)

    def _compute_external_tables(self, cursor) -> None:
        import json

        rows = []
        catalog = self.catalog()
        for schema, glue_database in sorted(self.external_schemas(cursor).items()):
            for raw in catalog.tables(glue_database) if catalog.database_exists(glue_database) else []:
                descriptor = raw.get("StorageDescriptor", {})
                serde = descriptor.get("SerdeInfo", {})
                rows.append((self.warehouse.database, schema, raw["Name"], raw.get("TableType", "EXTERNAL_TABLE"),
                             descriptor.get("Location"), descriptor.get("InputFormat"), descriptor.get("OutputFormat"),
                             serde.get("SerializationLibrary"), json.dumps(serde.get("Parameters") or {}),
                             int(bool(descriptor.get("Compressed"))), json.dumps(raw.get("Parameters") or {})))
        cursor.execute(f"CREATE OR REPLACE TEMP TABLE svv_external_tables ({SVV_EXTERNAL_TABLES_COLUMNS})")
        if rows:
            cursor.executemany("INSERT INTO temp.main.svv_external_tables VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _where_conjuncts(reference: exp.Table) -> list[exp.Expression]:
    select = reference.find_ancestor(exp.Select)
    where = select.args.get("where") if select else None
    return list(where.this.flatten()) if where and isinstance(where.this, exp.And) else [where.this] if where else []


def _pruned(connection, table, partitions: list, reference: exp.Table) -> list:
    """The partitions whose values can satisfy the conjuncts of the WHERE that name only this table's partition
    columns (Redshift Spectrum's partition pruning); every partition when no conjunct does."""
    from dealab.engines.athena.datatypes import hive_to_duckdb

    keys = {name.lower(): kind for name, kind in table.partition_keys}
    if not keys or not partitions:
        return partitions
    alias = reference.alias_or_name.lower()
    conditions = []
    for conjunct in _where_conjuncts(reference):
        columns = list(conjunct.find_all(exp.Column))
        if columns and not conjunct.find(exp.Subquery, exp.Select) and all(
                column.name.lower() in keys and column.table.lower() in ("", alias) for column in columns):
            condition = conjunct.copy()
            for column in condition.find_all(exp.Column):
                column.set("table", None)
            conditions.append(condition.sql("duckdb"))
    if not conditions:
        return partitions
    names = list(keys)
    values = ", ".join("(" + ", ".join([str(index)] + [_literal(partition.values.get(name)) for name in names]) + ")"
                       for index, partition in enumerate(partitions))
    typed = ", ".join(f'TRY_CAST("{name}" AS {hive_to_duckdb(keys[name])}) AS "{name}"' for name in names)
    columns = ", ".join(f'"{name}"' for name in names)
    query = (f"SELECT partition_index FROM (SELECT partition_index, {typed} FROM (VALUES {values}) AS p(partition_index, {columns})) "
             f"WHERE {' AND '.join(conditions)}")
    try:
        kept = {index for (index,) in connection.execute(query).fetchall()}
    except duckdb.Error:  # a condition the values cannot answer alone: read every partition, the query filters
        return partitions
    return [partition for index, partition in enumerate(partitions) if index in kept]


def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"
