"""SHOW and DESCRIBE: what the catalog holds, as Athena lists it (one value per line, or tab-separated)."""

from __future__ import annotations

import re

from dealab.engines.athena.errors import QueryError
from dealab.engines.athena.results import Outcome
from dealab.engines.athena.statements.common import StatementContext, database_named, existing, like
from dealab.engines.athena.statements.partitions import registered_values


def _table_names(ctx: StatementContext, match: re.Match, keep) -> list[str]:
    """Names of the tables of the named (or current) database that `keep` keeps and LIKE matches, sorted."""
    database = database_named(ctx, match.group("db"))
    if not ctx.catalog.database_exists(database):
        raise QueryError(f"Database does not exist: {database}", "SemanticException")
    names = sorted(t["Name"] for t in ctx.catalog.tables(database) if keep(t))
    return [n for n in names if like(match.group("like"), n)]


def show_databases(ctx: StatementContext, match: re.Match) -> Outcome:
    names = sorted(d["Name"] for d in ctx.catalog.databases())
    return Outcome.lines("UTILITY", "SHOW_DATABASES", "database_name", [n for n in names if like(match.group("like"), n)])


def show_tables(ctx: StatementContext, match: re.Match) -> Outcome:
    return Outcome.lines("UTILITY", "SHOW_TABLES", "tab_name", _table_names(ctx, match, lambda table: True))


def show_views(ctx: StatementContext, match: re.Match) -> Outcome:
    views = _table_names(ctx, match, lambda table: table.get("TableType") == "VIRTUAL_VIEW")
    return Outcome.lines("UTILITY", "SHOW_VIEWS", "tab_name", views)


def show_partitions(ctx: StatementContext, match: re.Match) -> Outcome:
    table = existing(ctx, match.group("table"))
    keys = [k for k, _ in table.partition_keys]
    if not keys:
        raise QueryError(f"Table {table.name} is not a partitioned table", "SemanticException")
    lines = sorted("/".join(f"{k}={v}" for k, v in zip(keys, values)) for values in registered_values(ctx, table))
    return Outcome.lines("UTILITY", "SHOW_PARTITIONS", "partition", lines)


def show_columns(ctx: StatementContext, match: re.Match) -> Outcome:
    text = match.group("table") if not match.group("db") else f"{match.group('db')}.{match.group('table')}"
    table = existing(ctx, text)
    return Outcome.lines("UTILITY", "SHOW_COLUMNS", "field", [n for n, _ in table.columns + table.partition_keys])


def describe(ctx: StatementContext, match: re.Match) -> Outcome:
    table = existing(ctx, match.group("table"))
    lines = [f"{name}\t{kind}\t" for name, kind in table.columns + table.partition_keys]
    if table.partition_keys:
        lines += ["\t \t ", "# Partition Information\t \t ", "# col_name\tdata_type\tcomment", "\t \t "]
        lines += [f"{name}\t{kind}\t" for name, kind in table.partition_keys]
    # Athena's result metadata names three columns; each result line holds all three, tab-separated.
    columns = [("col_name", "VARCHAR"), ("data_type", "VARCHAR"), ("comment", "VARCHAR")]
    return Outcome("UTILITY", "DESCRIBE_TABLE", columns, [[line] for line in lines], tabular=False)


def _listed(items: list[str], close: str) -> list[str]:
    """Lines of a parenthesised list in SHOW CREATE TABLE: a comma after each item, `close` after the last."""
    return [f"{item}{',' if number < len(items) - 1 else close}" for number, item in enumerate(items)]


def show_create_table(ctx: StatementContext, match: re.Match) -> Outcome:
    table = existing(ctx, match.group("table"))
    if table.is_view:
        return Outcome.lines("UTILITY", "SHOW_CREATE_VIEW", "createtab_stmt", [f"CREATE VIEW {table.database}.{table.name} AS", table.view_sql])
    serde = table.descriptor.get("SerdeInfo", {})
    lines = [f"CREATE EXTERNAL TABLE `{table.database}`.`{table.name}`("]
    lines += _listed([f"  `{n}` {t}" for n, t in table.columns], ")")
    if table.partition_keys:
        lines += ["PARTITIONED BY ( "] + _listed([f"  `{n}` {t}" for n, t in table.partition_keys], ")")
    lines += ["ROW FORMAT SERDE ", f"  '{serde.get('SerializationLibrary', '')}' "]
    if serde.get("Parameters"):
        lines += ["WITH SERDEPROPERTIES ( "] + _listed([f"  '{k}'='{v}'" for k, v in serde["Parameters"].items()], ")")
    lines += ["STORED AS INPUTFORMAT ", f"  '{table.descriptor.get('InputFormat', '')}' ", "OUTPUTFORMAT ",
              f"  '{table.descriptor.get('OutputFormat', '')}'", "LOCATION", f"  '{table.location}'"]
    params = {k: v for k, v in table.parameters.items() if k != "EXTERNAL"}
    if params:
        lines += ["TBLPROPERTIES ("] + _listed([f"  '{k}'='{v}'" for k, v in params.items()], ")")
    return Outcome.lines("UTILITY", "SHOW_CREATE_TABLE", "createtab_stmt", lines)
