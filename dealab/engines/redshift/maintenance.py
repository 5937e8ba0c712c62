"""VACUUM and ANALYZE, and what they change in SVV_TABLE_INFO: `unsorted` (the percent of a sorted table's rows
added since its last sorting VACUUM) and `stats_off` (how far the row count has moved since its last ANALYZE, as a
percent; 0 is current, 100 out of date). DuckDB keeps its own order and statistics, so the statements change no
data here: they move the bookkeeping Redshift's system view shows, which is what a learner reads to decide to run
them. Each table's rows as of its last sort and last analyze are kept in `dealab_system.table_maintenance`."""

from __future__ import annotations

import re

from dealab.engines.redshift.errors import RedshiftError, position_of

SYSTEM = "dealab_system"
METADATA = [
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.table_maintenance (schema_name VARCHAR, table_name VARCHAR, sorted_rows BIGINT,
        analyzed_rows BIGINT, PRIMARY KEY (schema_name, table_name))""",
]
_TABLE = r'(?P<table>(?:"?\w+"?\.)?"?\w+"?)'
VACUUM = re.compile(rf"^\s*VACUUM(?:\s+(?P<mode>FULL|SORT\s+ONLY|DELETE\s+ONLY|REINDEX|RECLUSTER))?(?:\s+{_TABLE})?"
                    r"(?:\s+TO\s+\d+\s+PERCENT)?(?:\s+BOOST)?\s*;?\s*$", re.I)
ANALYZE = re.compile(rf"^\s*ANALYZE(?:\s+VERBOSE)?(?:\s+{_TABLE}(?:\s*\([^)]*\))?)?(?:\s+(?:PREDICATE|ALL)\s+COLUMNS)?\s*;?\s*$", re.I)
ANALYZE_COMPRESSION = re.compile(r"^\s*ANALYZE\s+COMPRESSION\b", re.I)


def _tables(cursor, name: str | None, sql: str) -> list[tuple[str, str]]:
    """The table the statement names, or every table with a recorded layout (VACUUM and ANALYZE of the database)."""
    if name is None:
        return cursor.execute(f"SELECT schema_name, table_name FROM {SYSTEM}.tables").fetchall()
    schema, _, table = name.replace('"', "").lower().rpartition(".")
    schema = schema or "public"
    if not cursor.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]).fetchone():
        raise RedshiftError(f'relation "{table}" does not exist' if schema == "public" else f'relation "{schema}.{table}" does not exist',
                            position_of(sql, table))
    return [(schema, table)]


def _remember(cursor, schema: str, table: str, column: str) -> None:
    rows = cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
    cursor.execute(f"INSERT INTO {SYSTEM}.table_maintenance VALUES (?, ?, 0, 0) ON CONFLICT DO NOTHING", [schema, table])
    cursor.execute(f"UPDATE {SYSTEM}.table_maintenance SET {column} = ? WHERE schema_name = ? AND table_name = ?", [rows, schema, table])


def run(cursor, sql: str) -> None:
    if ANALYZE_COMPRESSION.match(sql):
        return  # accepted: DuckDB chooses its own compression, so there is no encoding to suggest
    vacuum, analyze = VACUUM.match(sql), ANALYZE.match(sql)
    match = vacuum or analyze
    if not match:
        word = sql.split()[0]
        raise RedshiftError(f'syntax error at or near "{word}"', position_of(sql, word))
    mode = re.sub(r"\s+", " ", (vacuum.group("mode") or "FULL").upper()) if vacuum else None
    for schema, table in _tables(cursor, match.group("table"), sql):
        if analyze:
            _remember(cursor, schema, table, "analyzed_rows")
        elif mode != "DELETE ONLY":  # every VACUUM but DELETE ONLY sorts; a full one also reclaims space
            _remember(cursor, schema, table, "sorted_rows")


def table_state(cursor, schema: str, table: str, rows: int, sorted_table: bool) -> tuple[float | None, float]:
    """(unsorted, stats_off) for SVV_TABLE_INFO; unsorted is NULL for a table without a sort key, as Redshift shows it."""
    found = cursor.execute(f"SELECT sorted_rows, analyzed_rows FROM {SYSTEM}.table_maintenance WHERE schema_name = ? AND table_name = ?",
                           [schema, table]).fetchone()
    sorted_rows, analyzed_rows = found or (0, 0)
    if not rows:
        return (0.0 if sorted_table else None), 0.0
    unsorted = round(max(rows - sorted_rows, 0) * 100 / rows, 2) if sorted_table else None
    return unsorted, round(min(abs(rows - analyzed_rows) * 100 / rows, 100.0), 2)
