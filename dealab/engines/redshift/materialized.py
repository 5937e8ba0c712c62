"""Materialized views: CREATE, REFRESH and DROP MATERIALIZED VIEW, and SVV_MV_INFO / STV_MV_INFO (provisioned).

A materialized view is a table in its schema (`public` when the name gives none) holding its query's rows as
of the last refresh, with its Redshift SQL, its DuckDB SQL, its base tables (schema.table) and a fingerprint
of them (rows and a sum of row hashes) in `dealab_system.materialized_views`; being a table of its schema,
GRANT and the checks of every SELECT treat it as they treat a table. It is stale when a base table's fingerprint differs from the one taken at
the refresh: that is what `is_stale` shows. AUTO REFRESH YES is recorded and shown (`autorefresh`); dealab does
not refresh these on its own yet, so a learner sees the view go stale and refreshes it. A view over a Kinesis
stream is streaming.py's (streaming ingestion), which does refresh on its own."""

from __future__ import annotations

import re

from dealab.engines.redshift import dialect
from dealab.engines.redshift.errors import RedshiftError, position_of

SYSTEM = "dealab_system"
CREATE = re.compile(r"^\s*CREATE\s+MATERIALIZED\s+VIEW\s+(?P<name>(?:\"?\w+\"?\.)?\"?\w+\"?)\s*(?P<options>.*?)"
                    r"\bAS\s*(?P<query>\(?\s*(?:SELECT|WITH)\b.*)$", re.I | re.S)
REFRESH = re.compile(r"^\s*REFRESH\s+MATERIALIZED\s+VIEW\s+(?P<name>(?:\"?\w+\"?\.)?\"?\w+\"?)\s*;?\s*$", re.I)
DROP = re.compile(r"^\s*DROP\s+MATERIALIZED\s+VIEW\s+(?P<exists>IF\s+EXISTS\s+)?(?P<name>(?:\"?\w+\"?\.)?\"?\w+\"?)\s*(CASCADE|RESTRICT)?\s*;?\s*$", re.I)
AUTO_REFRESH = r"\bAUTO\s+REFRESH\s+(YES|NO)\b"
METADATA = [
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.materialized_views (schema_name VARCHAR, name VARCHAR, query_text VARCHAR,
        duckdb_sql VARCHAR, auto_refresh BOOLEAN, base_tables VARCHAR[], fingerprint VARCHAR, refreshed_at TIMESTAMP,
        PRIMARY KEY (schema_name, name))""",
]
MV_INFO_COLUMNS = ("database_name VARCHAR, schema_name VARCHAR, user_name VARCHAR, name VARCHAR, is_stale CHAR(1), "
                   "state INTEGER, autorewrite CHAR(1), autorefresh CHAR(1)")
# STV_MV_INFO (provisioned clusters): the same facts under its own column names, over SVV_MV_INFO's rows
STV_MV_INFO = ('SELECT database_name AS db_name, schema_name AS "schema", name, 0::BIGINT AS updated_upto_xid, is_stale, '
               "100 AS owner_id, 0 AS inner_join_count, 0 AS outer_join_count, state, autorewrite, autorefresh FROM temp.main.mv_info")


def _name(text: str) -> str:
    """A streaming view's name (streaming.py's views live in `public`)."""
    return text.replace('"', "").lower().removeprefix("public.")


def _schema_and_name(text: str) -> tuple[str, str]:
    return dialect.split_name(text.replace('"', "").lower())


def _fingerprint(cursor, tables: list[str]) -> str:
    parts = []
    for table in tables:  # schema.table (a bare name, as views made before schemas counted recorded it: public's)
        schema, name = dialect.split_name(table)
        rows, total = cursor.execute(f'SELECT count(*), coalesce(sum(hash(t)), 0) FROM "{schema}"."{name}" t').fetchone()
        parts.append(f"{table}:{rows}:{total}")
    return ";".join(parts)


def _base_tables(tree, system_views: dict) -> list[str]:
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(dialect.exp.CTE)}
    names = {f"{(table.db or 'public').lower()}.{table.name.lower()}" for table in tree.find_all(dialect.exp.Table)
             if table.name and not (not table.db and table.name.lower() in ctes | set(system_views))}
    return sorted(names)


def create(warehouse, cursor, sql: str) -> None:
    if warehouse.streams.reads_stream(cursor, sql):
        return warehouse.streams.create_view(cursor, sql)
    match = CREATE.match(sql)
    if not match:
        raise RedshiftError('syntax error at or near "MATERIALIZED"', position_of(sql, "MATERIALIZED"))
    schema, name = _schema_and_name(match.group("name"))
    options, found = dialect.take_clauses(match.group("options"), dialect.TABLE_ATTRIBUTES + [(AUTO_REFRESH, "auto_refresh")])
    if options.strip():
        word = options.split()[0]
        raise RedshiftError(f'syntax error at or near "{word}"', position_of(sql, word))
    layout = dialect.TableLayout()
    dialect.apply_table_clauses(layout, [item for item in found if item[0] != "auto_refresh"])
    auto_refresh = any(attribute == "auto_refresh" and match_.group(1).upper() == "YES" for attribute, match_ in found)
    translation = dialect.translate(match.group("query"), warehouse.database, warehouse.system_views)
    tables = _base_tables(translation.tree, warehouse.system_views)
    if cursor.execute(f"SELECT 1 FROM {SYSTEM}.materialized_views WHERE schema_name = ? AND name = ?", [schema, name]).fetchone():
        raise RedshiftError(f'relation "{name}" already exists')
    warehouse.run_duckdb(cursor, f'CREATE TABLE "{schema}"."{name}" AS {translation.sql}', sql)
    cursor.execute(f"INSERT INTO {SYSTEM}.materialized_views VALUES (?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                   [schema, name, match.group("query"), translation.sql, auto_refresh, tables, _fingerprint(cursor, tables)])
    warehouse.record_layout(cursor, f"{schema}.{name}", layout)


def _view(cursor, schema: str, name: str, sql: str) -> tuple[str, list[str]]:
    found = cursor.execute(f"SELECT duckdb_sql, base_tables FROM {SYSTEM}.materialized_views WHERE schema_name = ? "
                           "AND name = ?", [schema, name]).fetchone()
    if not found:
        raise RedshiftError(f'materialized view "{name}" does not exist', position_of(sql, name))
    return found


def refresh(warehouse, cursor, sql: str) -> int:
    """Recomputes the view from its base tables as they are now; returns its rows."""
    match = REFRESH.match(sql)
    if not match:
        raise RedshiftError('syntax error at or near "REFRESH"', position_of(sql, "REFRESH"))
    if _name(match.group("name")) in warehouse.streams.views(cursor):
        return warehouse.streams.refresh(cursor, _name(match.group("name")), sql)
    schema, name = _schema_and_name(match.group("name"))
    query, tables = _view(cursor, schema, name, sql)
    cursor.execute("BEGIN TRANSACTION")
    try:
        cursor.execute(f'DELETE FROM "{schema}"."{name}"')
        rows = warehouse.run_duckdb(cursor, f'INSERT INTO "{schema}"."{name}" {query}', sql)[0][0]
        cursor.execute(f"UPDATE {SYSTEM}.materialized_views SET fingerprint = ?, refreshed_at = now()::TIMESTAMP "
                       "WHERE schema_name = ? AND name = ?", [_fingerprint(cursor, tables), schema, name])
        cursor.execute("COMMIT")
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    return int(rows)


def drop(warehouse, cursor, sql: str) -> None:
    match = DROP.match(sql)
    if not match:
        raise RedshiftError('syntax error at or near "DROP"', position_of(sql, "DROP"))
    if _name(match.group("name")) in warehouse.streams.views(cursor):
        return warehouse.streams.drop_view(cursor, _name(match.group("name")))
    schema, name = _schema_and_name(match.group("name"))
    if not cursor.execute(f"SELECT 1 FROM {SYSTEM}.materialized_views WHERE schema_name = ? AND name = ?", [schema, name]).fetchone():
        if match.group("exists"):
            return
        raise RedshiftError(f'materialized view "{name}" does not exist', position_of(sql, name))
    cursor.execute(f'DROP TABLE "{schema}"."{name}"')
    cursor.execute(f"DELETE FROM {SYSTEM}.materialized_views WHERE schema_name = ? AND name = ?", [schema, name])
    warehouse.forget_layout(cursor, f"{schema}.{name}")
    warehouse.grants.forget_table(cursor, schema, name)


def compute_info(warehouse, cursor) -> None:
    """SVV_MV_INFO / STV_MV_INFO for this session: a view is stale when a base table changed since its refresh."""
    views = cursor.execute(f"SELECT schema_name, name, base_tables, fingerprint, auto_refresh FROM {SYSTEM}.materialized_views").fetchall()
    rows = []
    for schema, name, tables, fingerprint, auto_refresh in views:
        try:
            stale = _fingerprint(cursor, tables) != fingerprint
        except Exception:  # a base table was dropped: the view cannot be refreshed, as Redshift's state 2 says
            stale = True
        rows.append((warehouse.database, schema, "admin", name, "t" if stale else "f", 1, "f", "t" if auto_refresh else "f"))
    # a streaming view is stale until its next refresh reads the stream, as Redshift shows it
    for name, auto_refresh in cursor.execute(f"SELECT name, auto_refresh FROM {SYSTEM}.streaming_views").fetchall():
        rows.append((warehouse.database, "public", "admin", name, "t", 1, "f", "t" if auto_refresh else "f"))
    cursor.execute(f"CREATE OR REPLACE TEMP TABLE mv_info ({MV_INFO_COLUMNS})")
    if rows:
        cursor.executemany("INSERT INTO temp.main.mv_info VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    cursor.execute(f"CREATE OR REPLACE TEMP TABLE stv_mv_info AS {STV_MV_INFO}")
