"""One Redshift database on DuckDB: a file per cluster or namespace, locked down, with the engine's own
metadata (table layouts, load errors, query history) in a schema learners do not see (`dealab_system`).

The file is the data store: DuckDB's write-ahead log keeps every committed statement through a kill -9, and
closing the database (the stack stopping) checkpoints it. Each statement runs on a cursor of its own (a
Redshift session of its own, so temporary tables live as long as the statement or the batch)."""

from __future__ import annotations

import collections
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dealab.engines.athena import sandbox
from dealab.engines.redshift import dialect, errors, explain, grants, loads, materialized, roles, spectrum, streaming, unloads
from dealab.engines.redshift import auditlog, datasharing, maintenance
from dealab.engines.redshift import partiql, procedures
from dealab.engines.redshift.dialect import TableLayout
from dealab.engines.redshift.errors import RedshiftError

MAX_SPILL = "2GiB"
QUERY_ID_BLOCK = 100  # query ids reserved from the sequence at once
HISTORY_FLUSH_ROWS = 200  # query-history rows kept before they are written
HISTORY_VIEWS = frozenset({"sys_query_history", "stl_query"})  # what reads them: kept rows are written first
# The slices a table's rows are spread over for SVV_TABLE_INFO's skew (a two-node dc2.large cluster has 4;
# Serverless hides its slices, so the same nominal count stands for it)
NOMINAL_SLICES = 4
SYSTEM = "dealab_system"

METADATA = [
    f"CREATE SCHEMA IF NOT EXISTS {SYSTEM}",
    "CREATE SCHEMA IF NOT EXISTS public",
    f"CREATE SEQUENCE IF NOT EXISTS {SYSTEM}.query_ids START 100000",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.tables (schema_name VARCHAR, table_name VARCHAR, diststyle VARCHAR,
        distkey VARCHAR, sortkey_kind VARCHAR, sortkeys VARCHAR[], PRIMARY KEY (schema_name, table_name))""",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.column_encodings (schema_name VARCHAR, table_name VARCHAR,
        column_name VARCHAR, encoding VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.identity_columns (schema_name VARCHAR, table_name VARCHAR,
        column_name VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.load_errors (query_id BIGINT, start_time TIMESTAMP, table_name VARCHAR,
        file_name VARCHAR, line_number BIGINT, column_name VARCHAR, column_type VARCHAR, position INTEGER,
        raw_line VARCHAR, raw_field_value VARCHAR, error_code INTEGER, error_message VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.query_history (query_id BIGINT, database_name VARCHAR,
        query_type VARCHAR, status VARCHAR, start_time TIMESTAMP, end_time TIMESTAMP, elapsed_time BIGINT,
        error_message VARCHAR, returned_rows BIGINT, query_text VARCHAR)""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.stl_load_errors AS SELECT 100 AS userid, 0 AS slice, table_name AS tbl,
        start_time AS starttime, query_id AS query, file_name AS filename, line_number, column_name AS colname,
        column_type AS type, position, raw_line, raw_field_value, error_code AS err_code, error_message AS err_reason
        FROM {SYSTEM}.load_errors""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.sys_load_error_detail AS SELECT 100 AS user_id, query_id, table_name,
        start_time, file_name, line_number, column_name, column_type, position AS column_position, raw_line,
        raw_field_value AS column_value, error_code, error_message FROM {SYSTEM}.load_errors""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.sys_query_history AS SELECT 100 AS user_id, query_id, database_name,
        query_type, status, start_time, end_time, elapsed_time, elapsed_time AS execution_time, 0 AS queue_time,
        error_message, returned_rows, query_text FROM {SYSTEM}.query_history""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.stl_query AS SELECT 100 AS userid, query_id AS query, database_name AS database,
        query_text AS querytxt, start_time AS starttime, end_time AS endtime, status = 'failed' AS aborted
        FROM {SYSTEM}.query_history""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.pg_table_def AS SELECT c.table_schema AS schemaname, c.table_name AS tablename,
        c.column_name AS "column", lower(c.data_type) AS type, coalesce(e.encoding, 'none') AS encoding,
        coalesce(m.distkey = c.column_name, false) AS distkey, coalesce(list_position(m.sortkeys, c.column_name), 0) AS sortkey,
        c.is_nullable = 'NO' AS notnull
        FROM information_schema.columns c
        LEFT JOIN {SYSTEM}.tables m ON m.schema_name = c.table_schema AND m.table_name = c.table_name
        LEFT JOIN {SYSTEM}.column_encodings e ON e.schema_name = c.table_schema AND e.table_name = c.table_name AND e.column_name = c.column_name
        WHERE c.table_schema = 'public' ORDER BY c.table_name, c.ordinal_position""",
    *materialized.METADATA,
    *spectrum.METADATA,
    *streaming.METADATA,
    *auditlog.METADATA,
    *maintenance.METADATA,
    *grants.METADATA,
    *procedures.METADATA,
]

# System views each deployment offers (Serverless has the SYS_* views only), and the relation that holds each.
# SVV_TABLE_INFO and SVV_MV_INFO are computed when a statement asks for them (temp schema: it lives with the statement's session).
SYSTEM_VIEWS = {
    "svv_table_info": ({"serverless", "provisioned"}, ("temp", "main", "svv_table_info")),
    "svv_mv_info": ({"serverless", "provisioned"}, ("temp", "main", "mv_info")),
    "stv_mv_info": ({"provisioned"}, ("temp", "main", "stv_mv_info")),
    "pg_table_def": ({"serverless", "provisioned"}, (None, SYSTEM, "pg_table_def")),
    "sys_load_error_detail": ({"serverless", "provisioned"}, (None, SYSTEM, "sys_load_error_detail")),
    "sys_query_history": ({"serverless", "provisioned"}, (None, SYSTEM, "sys_query_history")),
    "stl_load_errors": ({"provisioned"}, (None, SYSTEM, "stl_load_errors")),
    "stl_query": ({"provisioned"}, (None, SYSTEM, "stl_query")),
    "svv_external_schemas": ({"serverless", "provisioned"}, (None, SYSTEM, "svv_external_schemas")),
    "svv_external_tables": ({"serverless", "provisioned"}, ("temp", "main", "svv_external_tables")),
    **{name: ({"serverless", "provisioned"}, relation) for name, relation in grants.SYSTEM_VIEWS.items()},
    **procedures.SYSTEM_VIEWS,
    **{name: ({"serverless", "provisioned"}, relation) for name, relation in datasharing.SYSTEM_VIEWS.items()},
}
# How a table's rows fall over the slices, by distribution style: a function of (cursor, relation, distkey, rows)
# giving the row count of each slice, or None where Redshift reports no skew (ALL keeps a copy everywhere).


def _key_slices(cursor, relation: str, distkey: str, rows: int) -> list[int]:
    counts = dict(cursor.execute(f'SELECT hash("{distkey}") % {NOMINAL_SLICES}, count(*) FROM {relation} GROUP BY 1').fetchall())
    return [counts.get(slice_number, 0) for slice_number in range(NOMINAL_SLICES)]


def _even_slices(cursor, relation: str, distkey: str | None, rows: int) -> list[int]:
    return [rows // NOMINAL_SLICES + (1 if slice_number < rows % NOMINAL_SLICES else 0) for slice_number in range(NOMINAL_SLICES)]


SLICE_COUNTS = {"KEY": _key_slices, "EVEN": _even_slices, "AUTO(EVEN)": _even_slices, "ALL": None, "AUTO(ALL)": None}
# What SVV_TABLE_INFO shows as a table's diststyle, by the distribution its rows have (dialect.applied_distribution)
DISTSTYLE_SHOWN = {"KEY": "KEY({distkey})", "EVEN": "EVEN", "AUTO(EVEN)": "AUTO(EVEN)", "ALL": "ALL", "AUTO(ALL)": "AUTO(ALL)"}
SVV_TABLE_INFO_COLUMNS = ('"database" VARCHAR, "schema" VARCHAR, table_id INTEGER, "table" VARCHAR, encoded VARCHAR, '
                          "diststyle VARCHAR, sortkey1 VARCHAR, sortkey_num INTEGER, size BIGINT, tbl_rows BIGINT, "
                          "skew_rows DECIMAL(19,2), estimated_visible_rows BIGINT, unsorted DECIMAL(5,2), stats_off DECIMAL(5,2)")


def _query_type(sql: str, kind: str) -> str:
    """SYS_QUERY_HISTORY's query_type: SELECT, INSERT, COPY, UNLOAD, DDL, UTILITY."""
    word = (sql.split() or ["OTHER"])[0].upper()
    return kind.upper() if kind in ("copy", "unload") else word if word in ("SELECT", "INSERT", "UPDATE", "DELETE") else \
        "DDL" if word in ("CREATE", "DROP", "ALTER", "TRUNCATE") else "SELECT" if word == "WITH" else "UTILITY"


@dataclass
class Result:
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, DuckDB type)
    rows: list[tuple] = field(default_factory=list)
    affected: int = -1  # rows a DML statement changed (-1: not a DML statement)
    query_id: int = 0


class Warehouse:
    slices = NOMINAL_SLICES

    def __init__(self, path: Path, scratch: Path, database: str, deployment: str, catalog: spectrum.CatalogAccess | None = None):
        self.path, self.scratch, self.database, self.deployment = path, scratch, database, deployment
        self.spectrum = spectrum.Spectrum(self, catalog)  # external schemas over the Glue catalog
        self.streams = streaming.Streams(self)  # external schemas FROM KINESIS; the engine gives it its Kinesis client
        self.sharing = datasharing.Sharing(self)  # datashares; the engine connects it to the other namespaces
        self.audit = auditlog.Audit(self)  # audit logging; the engine says where it goes while it is on
        self.system_views = {name: relation for name, (deployments, relation) in SYSTEM_VIEWS.items() if deployment in deployments}
        self.grants = grants.Grants(database)
        self.roles: roles.RoleAccess | None = None  # the engine's: IAM_ROLE checked as Redshift does (None: not checked)
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._running = 0  # statements running now
        self._changed_at: float | None = None  # monotonic time of the last statement that may have written
        self._query_ids: collections.deque[int] = collections.deque()  # reserved from the sequence, not handed out yet
        self._history: list[list] = []  # query-history rows not written yet (flush_history)
        self.connection = duckdb.connect(str(path), config=sandbox.CONNECT_CONFIG)  # Athena's lock-down, one copy
        for statement in METADATA:
            self.connection.execute(statement)
        folder = str(scratch).replace("'", "''")
        for statement in (f"SET temp_directory = '{folder}/spill'", f"SET max_temp_directory_size = '{MAX_SPILL}'",
                          # COPY reads the objects it fetched from S3 here; nothing else local is reachable
                          f"SET allowed_directories = ['{folder}/']", "SET enable_external_access = false",
                          "SET lock_configuration = true"):
            self.connection.execute(statement)

    def session(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own: one Redshift session, in the database's public schema."""
        cursor = self.connection.cursor()
        cursor.execute("SET search_path = 'public'")
        return cursor

    def next_query_id(self, cursor=None) -> int:
        """A statement's query id, from ids the sequence handed out QUERY_ID_BLOCK at a time (one commit, not one a
        statement; ids left unused at a stop leave a gap, as Redshift's have)."""
        with self._lock:
            if not self._query_ids:
                with self.connection.cursor() as own:
                    reserved = own.execute(f"SELECT nextval('{SYSTEM}.query_ids') FROM range({QUERY_ID_BLOCK})").fetchall()
                self._query_ids.extend(sorted(number for (number,) in reserved))
            return self._query_ids.popleft()

    # ------------------------------------------------------------ statements

    def execute(self, cursor, sql: str, parameters: dict[str, str] | None, s3, in_batch: bool = False,
                user: str | None = None, principal: str | None = None) -> Result:
        """One statement of any kind, recorded in the query history (SYS_QUERY_HISTORY) whatever its end.
        `in_batch`: the statement is part of a transaction the caller commits (BatchExecuteStatement).
        `user`: the database user the session signed in as, whose grants it runs under (None: the admin).
        `principal`: the IAM principal that sent it (Lake Formation filters external tables for it)."""
        sql = dialect.without_leading_comments(sql)
        kind, refusal = dialect.classify(sql)
        query_id, started = self.next_query_id(cursor), time.time()
        self.audit.statement(user, sql, query_id, id(cursor))  # the user activity log has each statement before it runs
        with self._lock:
            self._running += 1
        try:
            if refusal:
                raise RedshiftError(refusal, 1)
            self._check_grants(cursor, kind, sql, user)
            claimed = self.spectrum.claims(cursor, sql) if kind in ("spectrum", "sql", "explain", "create_mv") else None
            if claimed:
                self.spectrum.execute(cursor, sql, claimed)
                result = Result()
            elif kind == "streaming_schema":
                self.streams.create_schema(cursor, sql)
                result = Result()
            elif kind == "datashare":
                self.sharing.run(cursor, sql)
                result = Result()
            elif kind == "maintenance":
                maintenance.run(cursor, sql)
                result = Result()
            elif kind == "sql" and self.streams.drop_schema(cursor, sql, lambda: self.grants.is_superuser(cursor, user)):
                result = Result()
            elif kind == "grants":
                self.grants.run(cursor, sql, user)
                result = Result()
            elif kind == "procedure":
                result = procedures.run(self, cursor, sql, parameters, s3, user, principal, query_id)
            elif kind == "copy":
                result = Result(affected=loads.Loader(self, s3).copy(cursor, sql, query_id, own_transaction=not in_batch, user=user))
                self.settle_distribution(cursor, loads.parse(sql).table)  # a load may grow an AUTO table past ALL
            elif kind == "unload":
                result = Result(affected=unloads.Unloader(self, s3).unload(cursor, sql, query_id, user))
            elif kind == "create_mv":
                materialized.create(self, cursor, sql)
                result = Result()
            elif kind == "refresh_mv":
                result = Result(affected=materialized.refresh(self, cursor, sql))
            elif kind == "drop_mv":
                materialized.drop(self, cursor, sql)
                result = Result()
            elif kind == "explain":
                query = re.sub(r"^\s*EXPLAIN\s+(VERBOSE\s+)?", "", sql, flags=re.I)
                result = Result(columns=[("QUERY PLAN", "VARCHAR")], rows=[(line,) for line in explain.plan(self, cursor, query, self.slices)])
            elif kind == "accepted":
                result = Result()
            else:
                result = self.run_sql(cursor, sql, parameters, user, principal)
        except RedshiftError as error:
            self.record_query(query_id, sql, kind.upper(), started, error.message, 0)
            raise
        finally:
            with self._lock:
                self._running -= 1
                self._changed_at = time.monotonic()
        self.record_query(query_id, sql, _query_type(sql, kind), started, None, max(len(result.rows), result.affected))
        self.audit.statement_done(user, sql, query_id, id(cursor))
        result.query_id = query_id
        return result

    def describe(self, cursor, sql: str, user: str | None = None) -> list[tuple[str, str]] | None:
        """(name, DuckDB type) of the columns a statement would return, without running it; None when it returns
        no rows (the wire protocol's Describe of a prepared statement, before its parameters are known). `user`'s
        grants apply: a table it may not read is not described either."""
        sql = dialect.without_leading_comments(sql)
        kind, refusal = dialect.classify(sql)
        if kind == "explain":
            return [("QUERY PLAN", "VARCHAR")]
        if kind == "procedure":
            return procedures.describe(self, cursor, sql)
        if kind != "sql" or refusal:
            return None
        translation = dialect.translate(sql, self.database, self.system_views)
        if not isinstance(translation.tree, dialect.exp.Query):
            return None
        partiql.navigate(cursor, translation)
        self.grants.check(cursor, user, translation.tree)
        if self.grants.bind_session(cursor, user, translation.tree):
            translation.sql = translation.tree.sql("duckdb")
        if "svv_table_info" in translation.system_views:
            self._compute_table_info(cursor)
        try:
            with self.spectrum.relations(cursor, translation, sql):
                return [(name, kind) for name, kind, *_ in cursor.execute(f"DESCRIBE {translation.sql}").fetchall()]
        except duckdb.Error as error:
            raise errors.from_duckdb(error, sql) from None

    def query_arrow(self, cursor, sql: str):
        """A query's rows as an Arrow table (UNLOAD's input), through the same translation and lock-down."""
        translation = dialect.translate(sql, self.database, self.system_views)
        partiql.navigate(cursor, translation)
        try:
            with self.spectrum.relations(cursor, translation, sql):
                return cursor.execute(translation.sql).to_arrow_table()
        except duckdb.Error as error:
            raise errors.from_duckdb(error, sql) from None

    def assume_role(self, options: dict[str, str | None], user: str | None) -> roles.RoleSession | None:
        """The IAM role session a COPY or UNLOAD acts as (its IAM_ROLE, or CREDENTIALS 'aws_iam_role=...'), assumed
        as Redshift assumes it; None where this warehouse checks no roles (one built without its engine)."""
        if self.roles is None:
            return None
        return self.roles.assume(roles.named_role(options), user)

    def _check_grants(self, cursor, kind: str, sql: str, user: str | None) -> None:
        """What a statement other than plain SQL needs of a user that is not a superuser (plain SQL is checked
        on its translation in run_sql)."""
        if self.grants.is_superuser(cursor, user):
            return
        if kind == "copy":
            self.grants.check_write(cursor, user, loads.COPY_STATEMENT.match(sql).group("table"), "INSERT")
        elif kind in ("unload", "explain"):
            unload = unloads.UNLOAD_STATEMENT.match(sql)
            query = unload.group("query").replace("''", "'") if unload else re.sub(r"^\s*EXPLAIN\s+(VERBOSE\s+)?", "", sql, flags=re.I)
            self.grants.check(cursor, user, dialect.translate(query, self.database, self.system_views).tree)
        elif kind in ("create_mv", "refresh_mv", "drop_mv"):
            raise RedshiftError("permission denied: dealab lets only a superuser create, refresh or drop materialized views")
        elif kind == "datashare":
            raise RedshiftError("permission denied: dealab lets only a superuser manage datashares and databases made from them")
        elif kind in ("spectrum", "streaming_schema") or (kind == "sql" and self.spectrum.claims(cursor, sql)):
            raise RedshiftError("permission denied: dealab lets only a superuser create, alter or drop external schemas and tables")

    def run_sql(self, cursor, sql: str, parameters: dict[str, str] | None = None, user: str | None = None,
                principal: str | None = None) -> Result:
        """One statement that is SQL for DuckDB (not COPY or UNLOAD): translated, its layout recorded."""
        created = dialect.split_create_table(sql)
        if created:
            sql, table, layout = created
            schema, bare = dialect.split_name(table)
            exists = cursor.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                                    [schema, bare]).fetchone()
            for column, (seed, step) in layout.identities.items() if not exists else ():  # a new table counts from its seed
                cursor.execute(f"CREATE OR REPLACE SEQUENCE {dialect.identity_sequence(table, column)} START {seed} INCREMENT {step}")
        translation = dialect.translate(sql, self.database, self.system_views, parameters)
        partiql.navigate(cursor, translation)  # SUPER's PartiQL paths, before the grants read its columns
        self.grants.check(cursor, user, translation.tree)
        if self.grants.bind_session(cursor, user, translation.tree):  # CURRENT_USER, HAS_TABLE_PRIVILEGE
            translation.sql = translation.tree.sql("duckdb")
        if "svv_table_info" in translation.system_views:
            self._compute_table_info(cursor)
        if HISTORY_VIEWS & translation.system_views:
            self.flush_history()
        if {"svv_mv_info", "stv_mv_info"} & translation.system_views:
            materialized.compute_info(self, cursor)
        if translation.system_views & set(datasharing.VIEW_COLUMNS):
            self.sharing.compute_views(cursor, translation.system_views)
        with self.spectrum.relations(cursor, translation, sql, principal), self.sharing.relations(cursor, translation, sql):
            rows = self.run_duckdb(cursor, translation.sql, sql)
            described = cursor.description
        if created and not layout.temporary:
            self.record_layout(cursor, table, layout)
        if isinstance(translation.tree, (dialect.exp.Insert, dialect.exp.Create)) and translation.tree.find(dialect.exp.Table):
            written = translation.tree.find(dialect.exp.Table)  # the first table of an INSERT or CREATE is its target
            self.settle_distribution(cursor, f"{written.db or 'public'}.{written.name}".lower())
        self.grants.record_owner(cursor, user, translation.tree)
        if isinstance(translation.tree, dialect.exp.Drop) and translation.tree.args.get("kind", "").upper() == "TABLE":
            for dropped in translation.tree.args.get("tables") or []:
                self.forget_layout(cursor, f"{dropped.db or 'public'}.{dropped.name}".lower())
                self.grants.forget_table(cursor, (dropped.db or "public").lower(), dropped.name.lower())
        tree = translation.tree
        if isinstance(tree, dialect.exp.Query) or not described:
            return Result(columns=[(name, str(kind)) for name, kind, *_ in described or []], rows=rows)
        # DuckDB answers DML and CTAS with a count of rows; Redshift with no result set
        changes = isinstance(tree, (dialect.exp.Insert, dialect.exp.Update, dialect.exp.Delete)) or (
            isinstance(tree, dialect.exp.Create) and tree.expression is not None)
        return Result(affected=int(rows[0][0]) if changes and rows else -1)

    @staticmethod
    def run_duckdb(cursor, duckdb_sql: str, sql: str) -> list[tuple]:
        """Runs translated SQL; its rows ([] for a statement without any). DuckDB's failures in Redshift's words."""
        try:
            cursor.execute(duckdb_sql)
            return cursor.fetchall() if cursor.description else []
        except duckdb.Error as error:
            raise errors.from_duckdb(error, sql) from None

    def columns(self, cursor, table: str, schema: str = "public") -> list[tuple[str, str]]:
        """(name, DuckDB type) of a table's columns, in order; RedshiftError when there is no such table."""
        found = cursor.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
                               "AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
        if not found:
            raise RedshiftError(f'relation "{schema}.{table}" does not exist' if schema != "public" else f'relation "{table}" does not exist')
        return found

    def identity_columns(self, cursor, table: str, schema: str = "public") -> set[str]:
        return {name for (name,) in cursor.execute(f"SELECT column_name FROM {SYSTEM}.identity_columns WHERE "
                                                   "schema_name = ? AND table_name = ?", [schema, table]).fetchall()}

    def record_query(self, query_id: int, sql: str, query_type: str, started: float, error: str | None, rows: int) -> None:
        """Keeps the statement's query-history row; rows are written HISTORY_FLUSH_ROWS at a time, when a statement
        reads the history, and by the engine's idle poll (flush_history): one commit for many statements."""
        ended = time.time()
        with self._lock:
            self._history.append([query_id, self.database, query_type, "failed" if error else "success", started, ended,
                                  int((ended - started) * 1_000_000), error, rows, sql[:4000]])
            if len(self._history) >= HISTORY_FLUSH_ROWS:
                self._write_history()

    def flush_history(self) -> None:
        with self._lock:
            self._write_history()

    def _write_history(self) -> None:
        """Writes the kept query-history rows (the caller holds the lock)."""
        if not self._history:
            return
        row = "(?, ?, ?, ?, to_timestamp(?)::TIMESTAMP, to_timestamp(?)::TIMESTAMP, ?, ?, ?, ?)"
        with self.connection.cursor() as cursor:  # one INSERT of every row (executemany costs a statement a row)
            cursor.execute(f"INSERT INTO {SYSTEM}.query_history VALUES " + ", ".join([row] * len(self._history)),
                           [value for kept in self._history for value in kept])
        self._history = []
        self._changed_at = time.monotonic()

    def record_load_errors(self, rows: list[tuple]) -> None:
        """Load errors survive the COPY's rollback: they are written on a session of their own."""
        if rows:
            with self._lock, self.connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {SYSTEM}.load_errors VALUES (?, to_timestamp(?)::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # ------------------------------------------------------------ catalog

    def schemas(self) -> list[str]:
        with self.connection.cursor() as cursor:
            rows = cursor.execute(
                "SELECT DISTINCT schema_name FROM information_schema.schemata WHERE catalog_name = current_database() "
                f"AND schema_name NOT IN ('main', '{SYSTEM}') ORDER BY 1").fetchall()
        return [name for (name,) in rows] + ["pg_catalog"]

    def tables(self, schema_pattern: str, table_pattern: str) -> list[dict]:
        with self.connection.cursor() as cursor:
            rows = cursor.execute(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables WHERE table_catalog = current_database() "
                f"AND table_schema NOT IN ('main', '{SYSTEM}') AND table_schema LIKE ? AND table_name LIKE ? ORDER BY 1, 2",
                [schema_pattern, table_pattern]).fetchall()
        return [{"schema": schema, "name": name, "type": "VIEW" if kind == "VIEW" else "TABLE"} for schema, name, kind in rows]

    def checkpoint_if_idle(self, idle_seconds: float) -> bool:
        """Folds the write-ahead log into the file once no statement has run for `idle_seconds` since the last
        one (the stack snapshots its backend on the same rule), so the next open has little log to replay."""
        with self._lock:
            self._write_history()  # the engine polls every few seconds: history rows reach the file at that pace
            if self._changed_at is None or self._running or time.monotonic() - self._changed_at < idle_seconds:
                return False
            self.connection.execute("CHECKPOINT")
            self._changed_at = None
            return True

    def close(self) -> None:
        self.streams.close()
        self.audit.close()
        with self._lock:  # never while a checkpoint runs
            self._write_history()
            self._changed_at = None
            self.connection.close()  # closing checkpoints: the write-ahead log is folded into the file

    # ------------------------------------------------------------ layouts and SVV_TABLE_INFO

    def record_layout(self, cursor, name: str, layout: TableLayout) -> None:
        """Keeps a table's distribution, sort keys, encodings and IDENTITY columns; `name` may carry its schema."""
        self.forget_layout(cursor, name)
        schema, table = dialect.split_name(name)
        cursor.execute(f"INSERT INTO {SYSTEM}.tables VALUES (?, ?, ?, ?, ?, ?)",
                       [schema, table, layout.diststyle, layout.distkey, layout.sortkey_kind, layout.sortkeys])
        for column, encoding in layout.encodings.items():
            cursor.execute(f"INSERT INTO {SYSTEM}.column_encodings VALUES (?, ?, ?, ?)", [schema, table, column, encoding])
        for column in layout.identities:
            cursor.execute(f"INSERT INTO {SYSTEM}.identity_columns VALUES (?, ?, ?)", [schema, table, column])

    def settle_distribution(self, cursor, name: str) -> None:
        """A DISTSTYLE AUTO table grown past dialect.AUTO_ALL_MAX_ROWS is AUTO(EVEN) from then on, however it
        shrinks later: Redshift changes a small table's ALL to EVEN as it grows, never EVEN back to ALL."""
        schema, table = dialect.split_name(name)
        if cursor.execute(f"SELECT 1 FROM {SYSTEM}.tables WHERE schema_name = ? AND table_name = ? AND diststyle = 'AUTO'",
                          [schema, table]).fetchone() and \
                cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0] > dialect.AUTO_ALL_MAX_ROWS:
            cursor.execute(f"UPDATE {SYSTEM}.tables SET diststyle = 'AUTO(EVEN)' WHERE schema_name = ? AND table_name = ?", [schema, table])

    def forget_layout(self, cursor, name: str) -> None:
        for metadata in ("tables", "column_encodings", "identity_columns"):
            cursor.execute(f"DELETE FROM {SYSTEM}.{metadata} WHERE schema_name = ? AND table_name = ?", list(dialect.split_name(name)))

    def _compute_table_info(self, cursor) -> None:
        """SVV_TABLE_INFO for this session: skew from the real rows, hashed on the DISTKEY over the slices."""
        layouts = cursor.execute(
            f"SELECT m.schema_name, m.table_name, m.diststyle, m.distkey, m.sortkeys, m.sortkey_kind, "
            f"EXISTS (SELECT 1 FROM {SYSTEM}.column_encodings e WHERE e.schema_name = m.schema_name AND e.table_name = m.table_name), "
            "t.table_oid "
            f"FROM {SYSTEM}.tables m JOIN duckdb_tables() t ON t.schema_name = m.schema_name AND t.table_name = m.table_name "
            "AND t.database_name = current_database()").fetchall()
        rows = []
        for schema, table, diststyle, distkey, sortkeys, sortkey_kind, encoded, oid in layouts:
            relation = f'"{schema}"."{table}"'
            count = cursor.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
            diststyle = dialect.applied_distribution(diststyle, count)
            slicer = SLICE_COUNTS[diststyle]
            slices = slicer(cursor, relation, distkey, count) if slicer and count else None
            skew = round(max(slices) / max(min(slices), 1), 2) if slices else None
            sortkey1 = (sortkeys[0] if sortkey_kind == "COMPOUND" else f"INTERLEAVED") if sortkeys else None
            unsorted, stats_off = maintenance.table_state(cursor, schema, table, count, bool(sortkeys))  # VACUUM, ANALYZE
            rows.append((self.database, schema, oid, table, "Y" if encoded else "N",
                         DISTSTYLE_SHOWN[diststyle].format(distkey=distkey), sortkey1, len(sortkeys), max(1, count // 100_000),
                         count, skew, count, unsorted, stats_off))
        cursor.execute(f"CREATE OR REPLACE TEMP TABLE svv_table_info ({SVV_TABLE_INFO_COLUMNS})")
        if rows:
            cursor.executemany("INSERT INTO temp.main.svv_table_info VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
