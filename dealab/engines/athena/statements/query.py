"""Statements that read: queries and EXPLAIN."""

from __future__ import annotations

import re

from sqlglot import exp

from dealab.engines.athena.results import Outcome
from dealab.engines.athena.statements.common import StatementContext, parse, planned


def run_query(ctx: StatementContext, query: exp.Expression) -> Outcome:
    with planned(ctx, query) as duckdb_sql:
        # executed at once: a relation (connection.sql) binds the query to know its columns and again to run it
        cursor = ctx.connection_for_query().execute(duckdb_sql)
        names, types = [column[0] for column in cursor.description], [str(column[1]) for column in cursor.description]
        rows = cursor.fetchall()
    return Outcome.from_rows("DML", "SELECT", names, types, rows)


def explain(ctx: StatementContext, match: re.Match) -> Outcome:
    with planned(ctx, parse(ctx, match.group("query"))) as duckdb_sql:
        lines = [row[1] for row in ctx.connection.execute("EXPLAIN " + duckdb_sql).fetchall()]
    text = "\n".join(lines).splitlines()
    return Outcome("DML", "EXPLAIN", [("Query Plan", "VARCHAR")], [[line] for line in text])
