"""Learner SQL never reaches the host: what a query may call, and how each DuckDB connection is locked down.

Two layers. First the parsed query (after views are inlined) is checked: table functions are refused
unless ALLOWED_TABLE_FUNCTIONS names them, and DENIED_FUNCTIONS are refused anywhere; the query ends FAILED
with Athena's FUNCTION_NOT_FOUND before DuckDB sees it. Statements other than Athena's (SET, PRAGMA, COPY,
ATTACH, INSTALL, LOAD, CALL) never get that far: statements.py refuses them by their first word.
Second, in case the first layer misses something, every connection that runs learner SQL is locked down
(LOCKDOWN): no file system but s3:// and the query's own scratch folder, no extensions loaded or installed
after the engine's own, no persistent secrets, and a configuration that can no longer be changed.
Measured on duckdb 1.5.5: read_text, read_csv, glob, COPY TO, ATTACH, INSTALL and `FROM '/path'` outside the
allowed folders fail with a PermissionException; SET enable_external_access=true fails; s3:// reads work."""

from __future__ import annotations

import functools
from pathlib import Path

import duckdb
from sqlglot import exp

from dealab.engines.athena.errors import QueryError, position_of

# Table functions a query may call: they make rows from their arguments and touch nothing else.
# (`range` is DuckDB's, kept because learners and labs use it to make rows; Trino spells it
# UNNEST(sequence(...)), which is allowed too.)
ALLOWED_TABLE_FUNCTIONS = frozenset({"unnest", "range", "generate_series"})

# Functions refused wherever they appear, with why: they read DuckDB's configuration or write its logs,
# which is dealab's, not the learner's (the allowed folders name the state folder's path, for one).
DENIED_FUNCTIONS = {
    "current_setting": "reads the engine's configuration",
    "getvariable": "reads the engine's variables",
    "getenv": "reads the host's environment",
    "write_log": "writes the engine's log",
    "parse_duckdb_log_message": "reads the engine's log",
}

# Spilling is bounded: a runaway query (a recursive CTE that never ends) fails with DuckDB's out-of-memory
# error once this much has spilled, instead of filling the learner's disk before its timeout.
MAX_SPILL = "2GiB"
SPILL_FOLDER = "spill"


def lockdown_statements(scratch: Path) -> list[str]:
    """Run last when a connection is made: after them nothing can widen what the connection reaches."""
    folder = str(scratch).replace("'", "''")
    return [
        f"SET temp_directory = '{folder}/{SPILL_FOLDER}'",
        f"SET max_temp_directory_size = '{MAX_SPILL}'",
        # CTAS / INSERT / UNLOAD write their files here (COPY TO) before uploading them to S3.
        f"SET allowed_directories = ['s3://', '{folder}/']",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ]


# Config given to duckdb.connect: settings that cannot change once the database runs.
CONNECT_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,  # else the secret manager reads ~/.duckdb/stored_secrets
}


@functools.cache
def _duckdb_functions() -> tuple[frozenset[str], frozenset[str]]:
    """(names of DuckDB's table functions, names of those that are only table functions), from DuckDB itself,
    so a reader added by a later DuckDB (read_xlsx, iceberg_scan, ...) is refused without a code change."""
    with duckdb.connect(config=CONNECT_CONFIG) as connection:
        rows = connection.execute("SELECT DISTINCT function_name, function_type FROM duckdb_functions()").fetchall()
    tables = {name.lower() for name, kind in rows if kind in ("table", "table_macro")}
    others = {name.lower() for name, kind in rows if kind not in ("table", "table_macro")}
    return frozenset(tables), frozenset(tables - others)


def _function_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _in_relation_position(node: exp.Func) -> bool:
    """FROM f(...), JOIN f(...), LATERAL f(...) and Trino's TABLE(f(...))."""
    parent = node.parent
    if isinstance(parent, (exp.Table, exp.Lateral)) and parent.this is node:
        return True
    return isinstance(parent, exp.Anonymous) and parent.name.upper() == "TABLE"


def check(query: exp.Expression, sql: str) -> None:
    """Raises QueryError (FUNCTION_NOT_FOUND, as Athena says of a function it does not have) for the first
    function in the query that could reach the host or the engine's configuration."""
    table_functions, table_only = _duckdb_functions()
    for node in query.find_all(exp.Func):
        if isinstance(node, exp.Anonymous) and node.name.upper() == "TABLE":
            continue
        name = _function_name(node)
        if name in DENIED_FUNCTIONS:
            raise QueryError(f"Function '{name}' not registered (dealab refuses it: it {DENIED_FUNCTIONS[name]})",
                             "FUNCTION_NOT_FOUND", position_of(sql, name))
        if name in ALLOWED_TABLE_FUNCTIONS:
            continue
        if name in table_only or (name in table_functions and _in_relation_position(node)):
            raise QueryError(f"Table function '{name}' not registered (dealab reads tables only from S3 "
                             "through the Glue catalog)", "FUNCTION_NOT_FOUND", position_of(sql, name))


# DuckDB statements a learner might try, refused by their first word with what they would reach.
# (Any other word that does not start an Athena statement is a syntax error, as in Athena.)
REFUSED_STATEMENTS = {
    "SET": "the engine's configuration",
    "RESET": "the engine's configuration",
    "PRAGMA": "the engine's configuration",
    "COPY": "the host's files",
    "EXPORT": "the host's files",
    "IMPORT": "the host's files",
    "ATTACH": "the host's files",
    "DETACH": "the engine's databases",
    "INSTALL": "the engine's extensions",
    "LOAD": "the engine's extensions",
    "FORCE": "the engine's extensions",
    "CALL": "the engine's procedures",
    "CHECKPOINT": "the engine's databases",
    "USE": "the engine's databases",
}


def refuse_statement(sql: str, word: str) -> None:
    """Raises QueryError (NOT_SUPPORTED) when the statement's first word starts one of REFUSED_STATEMENTS."""
    reaches = REFUSED_STATEMENTS.get(word.upper())
    if reaches:
        raise QueryError(f"{word.upper()} statements are not supported: dealab runs no statement that reaches {reaches}",
                         "NOT_SUPPORTED", position_of(sql, word))
