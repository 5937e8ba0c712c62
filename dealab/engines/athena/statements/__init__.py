"""Each kind of Athena statement and what it does, as one table (STATEMENTS): queries, DDL against the Glue
catalog (ddl, partitions), CTAS / INSERT / UNLOAD writing real files to S3 (writes), SHOW / DESCRIBE (show).

A statement is recognised by its text when sqlglot does not parse it (Hive DDL, SHOW, UNLOAD: these rules
are tried first, in order) or by the class of sqlglot's parsed expression. Adding a statement is one entry
here and one handler."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from dealab.engines.athena import sandbox, translate
from dealab.engines.athena.errors import QueryError, position_of, syntax_error
from dealab.engines.athena.planner import SchemaDrift
from dealab.engines.athena.results import Outcome
from dealab.engines.athena.statements import ddl, partitions, query, show, writes
from dealab.engines.athena.statements.common import StatementContext

# Statement texts whose parse is kept (_parsed).
PARSED_KEPT = 256

__all__ = ["STATEMENTS", "StatementContext", "execute"]


@dataclass(frozen=True)
class Statement:
    kind: str
    handler: Callable[[StatementContext, object], Outcome]  # gets the regex match, or the parsed expression
    text: re.Pattern | None = None  # recognised by its text (sqlglot does not parse it)
    parsed: Callable[[exp.Expression], bool] | None = None  # recognised in sqlglot's parse


def _by_text(pattern: str, flags: int = re.I | re.S) -> re.Pattern:
    return re.compile(r"^\s*" + pattern + r"\s*;?\s*$", flags)


def _created(*kinds: str, as_select: bool | None = None) -> Callable[[exp.Expression], bool]:
    """CREATE <kind> ...; as_select tells CREATE TABLE ... AS SELECT from CREATE (EXTERNAL) TABLE."""
    def test(statement: exp.Expression) -> bool:
        if not isinstance(statement, exp.Create) or (statement.args.get("kind") or "").upper() not in kinds:
            return False
        return as_select is None or (statement.expression is not None) == as_select
    return test


def _is(*classes: type[exp.Expression]) -> Callable[[exp.Expression], bool]:
    return lambda statement: isinstance(statement, classes)


_NAME = r"(?P<table>(?:`[^`]+`|\"[^\"]+\"|[\w$-]+)(?:\.(?:`[^`]+`|\"[^\"]+\"|[\w$-]+))?)"
_DB = r"(?P<db>[\w`\"-]+)"
_LIKE = r"(?:\s+(?:LIKE\s+)?'(?P<like>[^']*)')?"

STATEMENTS: tuple[Statement, ...] = (
    # by text, tried in this order before sqlglot parses
    Statement("MSCK_REPAIR_TABLE", partitions.msck_repair, _by_text(r"MSCK\s+REPAIR\s+TABLE\s+" + _NAME)),
    Statement("ALTER_TABLE_SET_LOCATION", ddl.set_location,
              _by_text(r"ALTER\s+TABLE\s+" + _NAME + r"(?:\s+(?P<partition>PARTITION\s*\([^)]*\)))?\s+SET\s+LOCATION\s+'(?P<location>[^']*)'")),
    Statement("ALTER_TABLE_ADD_PARTITION", partitions.add_partitions, _by_text(r"ALTER\s+TABLE\s+" + _NAME + r"\s+ADD\s+(?P<rest>.*?)")),
    Statement("ALTER_TABLE_DROP_PARTITION", partitions.drop_partitions, _by_text(r"ALTER\s+TABLE\s+" + _NAME + r"\s+DROP\s+(?P<rest>.*?)")),
    Statement("SHOW_DATABASES", show.show_databases, _by_text(r"SHOW\s+(?:DATABASES|SCHEMAS)(?:\s+LIKE)?(?:\s+'(?P<like>[^']*)')?")),
    Statement("SHOW_TABLES", show.show_tables, _by_text(r"SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+" + _DB + ")?" + _LIKE)),
    Statement("SHOW_VIEWS", show.show_views, _by_text(r"SHOW\s+VIEWS(?:\s+(?:IN|FROM)\s+" + _DB + ")?" + _LIKE)),
    Statement("SHOW_PARTITIONS", show.show_partitions, _by_text(r"SHOW\s+PARTITIONS\s+" + _NAME)),
    Statement("SHOW_COLUMNS", show.show_columns, _by_text(r"SHOW\s+COLUMNS\s+(?:IN|FROM)\s+" + _NAME + r"(?:\s+(?:IN|FROM)\s+" + _DB + ")?")),
    Statement("SHOW_CREATE_TABLE", show.show_create_table, _by_text(r"SHOW\s+CREATE\s+(?:TABLE|VIEW)\s+" + _NAME)),
    Statement("DESCRIBE_TABLE", show.describe, _by_text(r"(?:DESCRIBE|DESC)\s+(?:FORMATTED\s+|EXTENDED\s+)?" + _NAME)),
    Statement("EXPLAIN", query.explain, _by_text(r"EXPLAIN\s+(?:\((?:[^)]*)\)\s*)?(?P<query>.*?)")),
    Statement("UNLOAD", writes.unload, _by_text(r"UNLOAD\s*\((?P<query>.*)\)\s*TO\s+'(?P<location>[^']+)'\s*WITH\s*\((?P<props>.*)\)")),
    # by sqlglot's parse
    Statement("SELECT", query.run_query, parsed=_is(exp.Select, exp.SetOperation, exp.Subquery, exp.Values)),
    Statement("CREATE_DATABASE", ddl.create_database, parsed=_created("DATABASE", "SCHEMA")),
    Statement("CREATE_VIEW", ddl.create_view, parsed=_created("VIEW")),
    Statement("CREATE_TABLE_AS_SELECT", writes.create_table_as, parsed=_created("TABLE", as_select=True)),
    Statement("CREATE_TABLE", ddl.create_external_table, parsed=_created("TABLE", as_select=False)),
    Statement("INSERT", writes.insert_into, parsed=_is(exp.Insert)),
    Statement("DROP", ddl.drop, parsed=_is(exp.Drop)),
)
BY_TEXT = tuple(s for s in STATEMENTS if s.text is not None)
BY_PARSE = tuple(s for s in STATEMENTS if s.parsed is not None)
# First words of the statements Athena knows, named when a statement begins with anything else.
STATEMENT_KEYWORDS = ("SELECT", "WITH", "VALUES", "TABLE", "CREATE", "DROP", "ALTER", "INSERT", "SHOW", "DESCRIBE", "DESC", "MSCK", "EXPLAIN", "UNLOAD")


def _not_a_statement(sql: str, word: str) -> QueryError:
    position = position_of(sql, word) or (1, 1)
    return QueryError(f"mismatched input '{word}'. Expecting: " + ", ".join(f"'{k}'" for k in STATEMENT_KEYWORDS), position=position)


def execute(ctx: StatementContext) -> Outcome:
    """Runs the statement; when a table's Parquet files turn out to differ in columns, runs it again
    matching their columns by name (Athena reads such files by column name, filling the missing with NULL)."""
    try:
        return _execute(ctx)
    except SchemaDrift:
        ctx.union_by_name = True
        return _execute(ctx)


def _check_first_word(ctx: StatementContext, sql: str) -> None:
    if not sql:
        raise QueryError("mismatched input '<EOF>'. Expecting: " + ", ".join(f"'{k}'" for k in STATEMENT_KEYWORDS), position=(1, 1))
    first = re.match(r"[\s(]*(\w+)", sql)
    if first:
        sandbox.refuse_statement(ctx.sql, first.group(1))
        if first.group(1).upper() not in STATEMENT_KEYWORDS:
            raise _not_a_statement(ctx.sql, first.group(1))


@functools.lru_cache(maxsize=PARSED_KEPT)
def _parsed(sql: str) -> tuple[exp.Expression, ...]:
    """sqlglot's parse of a statement's text, kept: the same text comes again and again (a dashboard, a job's
    query, a learner's retries), and a parse costs up to ~1 ms. Handlers get a copy (they may change what they get)."""
    return tuple(statement for statement in sqlglot.parse(sql, read=translate.DIALECT) if statement is not None)


def _parse_one(ctx: StatementContext, sql: str) -> exp.Expression:
    try:
        parsed = _parsed(sql)
    except sqlglot.errors.ParseError as error:
        raise syntax_error(ctx.sql, error) from None
    if len(parsed) != 1:
        raise QueryError(f"Only one sql statement is allowed. Got: {len(parsed)}")
    return parsed[0].copy()


def _execute(ctx: StatementContext) -> Outcome:
    sql = ctx.sql.strip().rstrip(";").strip()
    _check_first_word(ctx, sql)
    for statement in BY_TEXT:
        match = statement.text.match(sql)
        if match:
            return statement.handler(ctx, match)
    parsed = _parse_one(ctx, sql)
    for statement in BY_PARSE:
        if statement.parsed(parsed):
            return statement.handler(ctx, parsed)
    raise _not_a_statement(ctx.sql, sql.split(None, 1)[0])
