"""Redshift SQL → DuckDB: what each statement is, the table attributes DuckDB has no place for, and the
translation itself (sqlglot's Redshift dialect read, DuckDB's written, plus the rules below).

Every rule is a row of a table: STATEMENT_RULES says what each kind of statement becomes (run, load, unload,
accepted with no effect, or refused with why), TABLE_ATTRIBUTES and COLUMN_ATTRIBUTES are the distribution,
sort and encoding clauses taken out of CREATE TABLE and recorded, TYPE_REWRITES are Redshift's type spellings
DuckDB reads differently. The lock-down (no table function that reads files, no function that reads the
engine's settings) is checked on the parsed statement before DuckDB sees it."""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from dealab.engines.redshift.errors import RedshiftError, position_of

LATER = "dealab does not offer {what} yet (a later part of issue 18)"
REFUSED = "dealab refuses {what}: learner SQL cannot reach {reaches}"

# (pattern over the statement's start, what it is, the refusal's wording when refused). First match wins.
STATEMENT_RULES = [
    (r"COPY\b", "copy", None),
    (r"UNLOAD\b", "unload", None),
    (r"(VACUUM|ANALYZE)\b", "maintenance", None),
    (r"CREATE\s+EXTERNAL\s+SCHEMA\s+(IF\s+NOT\s+EXISTS\s+)?\"?\w+\"?\s+FROM\s+KINESIS\b", "streaming_schema", None),
    (r"CREATE\s+EXTERNAL\s+(SCHEMA|TABLE)\b", "spectrum", None),
    (r"((CREATE|ALTER|DROP)\s+DATASHARE|(GRANT|REVOKE)\s+USAGE\s+ON\s+DATASHARE|CREATE\s+DATABASE\s+\"?\w+\"?\s+FROM\s+DATASHARE|"
     r"DROP\s+DATABASE)\b", "datashare", None),
    (r"DESC\s+DATASHARE\b|SHOW\s+DATASHARES\b", "refused", LATER.format(what="DESC DATASHARE and SHOW DATASHARES (query SVV_DATASHARES)")),
    (r"CREATE\s+MATERIALIZED\s+VIEW\b", "create_mv", None),
    (r"REFRESH\s+MATERIALIZED\s+VIEW\b", "refresh_mv", None),
    (r"DROP\s+MATERIALIZED\s+VIEW\b", "drop_mv", None),
    (r"ALTER\s+MATERIALIZED\s+VIEW\b", "refused", LATER.format(what="ALTER MATERIALIZED VIEW")),
    (r"EXPLAIN\b", "explain", None),
    (r"(CREATE(\s+OR\s+REPLACE)?\s+PROCEDURE|CALL|DROP\s+PROCEDURE|SHOW\s+PROCEDURE)\b", "procedure", None),
    (r"(GRANT|REVOKE|(CREATE|ALTER|DROP)\s+(USER|GROUP|ROLE)|ALTER\s+DEFAULT\s+PRIVILEGES)\b", "grants", None),
    # Redshift's session settings labs and tools set; accepted with no effect (DuckDB has no result cache or queues)
    (r"(SET|RESET)\s+(enable_result_cache_for_session|query_group|statement_timeout|wlm_query_slot_count|"
     r"analyze_threshold_percent|datestyle|timezone|application_name|extra_float_digits)\b", "accepted", None),
    (r"(SET|RESET|PRAGMA)\b", "refused", REFUSED.format(what="this setting", reaches="the engine's configuration")),
    (r"(ATTACH|DETACH|INSTALL|LOAD|FORCE|EXPORT|IMPORT|CHECKPOINT|USE)\b", "refused",
     REFUSED.format(what="this statement", reaches="the host's files or the engine's databases")),
    (r"", "sql", None),
]


LEADING_COMMENTS = re.compile(r"^(?:\s*(?:--[^\n]*(?:\n|$)|/\*.*?\*/))*\s*", re.S)


def without_leading_comments(sql: str) -> str:
    """The statement from its first word: comments before it (`-- lab 14, step 2`) tell nothing about its kind."""
    return LEADING_COMMENTS.sub("", sql, count=1)


def classify(sql: str) -> tuple[str, str | None]:
    head = sql.lstrip(" \t\r\n(")
    for pattern, kind, refusal in STATEMENT_RULES:
        if re.match(pattern, head, re.I):
            return kind, refusal
    raise AssertionError("the last rule matches every statement")


# Table-level clauses of CREATE TABLE (between the column list, or the name for CTAS, and the end or AS):
# (pattern, attribute it sets)
TABLE_ATTRIBUTES = [
    (r"\bDISTSTYLE\s+(AUTO|EVEN|KEY|ALL)\b", "diststyle"),
    (r"\bDISTKEY\s*\(\s*\"?(\w+)\"?\s*\)", "distkey"),
    (r"\b(?:(COMPOUND|INTERLEAVED)\s+)?SORTKEY\s*(?:\(([^)]*)\)|(AUTO))", "sortkey"),
    (r"\bENCODE\s+AUTO\b", None),
    (r"\bBACKUP\s+(YES|NO)\b", None),
]
# Column-level clauses: (pattern, attribute)
COLUMN_ATTRIBUTES = [
    (r"\bENCODE\s+(\w+)", "encode"),
    (r"\bDISTKEY\b", "distkey"),
    (r"\bSORTKEY\b", "sortkey"),
    (r"\b(?:GENERATED\s+BY\s+DEFAULT\s+AS\s+)?IDENTITY\s*\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)", "identity"),
]
# Redshift type spellings DuckDB does not read as Redshift means them
TYPE_REWRITES = [
    (r"\b(N?VARCHAR|CHARACTER\s+VARYING|N?CHAR|TEXT)\s*\(\s*MAX\s*\)", r"VARCHAR"),
    (r"\bSUPER\b", "JSON"),
]


# DISTSTYLE AUTO as Redshift applies it: ALL while a table is small, EVEN once it grows larger (and never back).
# Redshift's own threshold is not published (and counts bytes against the cluster's size); dealab's lab data is
# scaled down, so a table of more than this many rows counts as grown: a dimension of a few hundred rows stays
# ALL, a fact table of thousands goes EVEN. Redshift may also pick KEY: dealab does not.
AUTO_ALL_MAX_ROWS = 1_000


def applied_distribution(diststyle: str, rows: int) -> str:
    """How a table's rows are distributed: its DISTSTYLE, AUTO resolved as AUTO(ALL) or AUTO(EVEN) (SVV_TABLE_INFO's
    words). A table recorded AUTO(EVEN) has grown past the threshold before (Warehouse.settle_distribution)."""
    if diststyle == "AUTO":
        return "AUTO(EVEN)" if rows > AUTO_ALL_MAX_ROWS else "AUTO(ALL)"
    return diststyle


@dataclass
class TableLayout:
    """What Redshift records about a table beyond its columns."""

    diststyle: str = "AUTO"
    distkey: str | None = None
    sortkey_kind: str = "COMPOUND"
    sortkeys: list[str] = field(default_factory=list)
    encodings: dict[str, str] = field(default_factory=dict)
    identities: dict[str, list[int]] = field(default_factory=dict)
    temporary: bool = False



CREATE_TABLE = re.compile(r"^\s*CREATE\s+(?:(TEMP|TEMPORARY|LOCAL\s+TEMP)\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                          r"((?:\"?\w+\"?\.)*\"?#?\w+\"?)\s*", re.I)


def _closing_paren(sql: str, opening: int) -> int:
    depth, quote = 0, None
    for index in range(opening, len(sql)):
        char = sql[index]
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    raise RedshiftError("syntax error at end of input")


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return parts + [text[start:]]


def take_clauses(text: str, rules) -> tuple[str, list[tuple[str, re.Match]]]:
    """Removes every clause `rules` match from `text`; returns the rest and what was found."""
    found = []
    for pattern, attribute in rules:
        match = re.search(pattern, text, re.I)
        if match:
            if attribute:
                found.append((attribute, match))
            text = text[:match.start()] + " " + text[match.end():]
    return text, found


def apply_table_clauses(layout: TableLayout, found) -> None:
    for attribute, match in found:
        if attribute == "diststyle":
            layout.diststyle = match.group(1).upper()
        elif attribute == "distkey":
            layout.distkey = match.group(1).lower()
        elif attribute == "sortkey" and not match.group(3):
            layout.sortkey_kind = (match.group(1) or "COMPOUND").upper()
            layout.sortkeys = [name.strip().strip('"').lower() for name in match.group(2).split(",") if name.strip()]
    if layout.distkey and layout.diststyle == "AUTO":  # a DISTKEY alone means DISTSTYLE KEY
        layout.diststyle = "KEY"


def split_create_table(sql: str) -> tuple[str, str, TableLayout] | None:
    """For a CREATE TABLE: (the statement without Redshift's layout clauses, the table's name, its layout);
    None for any other statement. IDENTITY columns become DEFAULT nextval of a sequence named after them."""
    match = CREATE_TABLE.match(sql)
    if not match:
        return None
    layout = TableLayout(temporary=bool(match.group(1)) or match.group(2).lstrip('"').startswith("#"))
    name = match.group(2).replace('"', "").replace("#", "").lower()
    rest = sql[match.end():]
    head = sql[:match.start(2)] + name + " "
    if rest.startswith("("):
        closing = _closing_paren(rest, 0)
        columns = []
        for definition in _split_top_level(rest[1:closing]):
            cleaned, found = take_clauses(definition, COLUMN_ATTRIBUTES)
            column = (cleaned.split() or [""])[0].strip('"').lower()
            for attribute, found_match in found:
                if attribute == "encode":
                    layout.encodings[column] = found_match.group(1).lower()
                elif attribute == "distkey":
                    layout.distkey = column
                elif attribute == "sortkey":
                    layout.sortkeys.append(column)
                elif attribute == "identity":
                    layout.identities[column] = [int(found_match.group(1)), int(found_match.group(2))]
                    cleaned += f" DEFAULT nextval('{identity_sequence(name, column)}')"
            columns.append(cleaned)
        tail, found = take_clauses(rest[closing + 1:], TABLE_ATTRIBUTES)
        apply_table_clauses(layout, found)  # after the columns: a column's DISTKEY counts too
        statement = head + "(" + ",".join(columns) + ")" + tail
    else:
        as_clause = re.search(r"\bAS\s*\(?\s*(SELECT|WITH)\b", rest, re.I)
        if not as_clause:
            raise RedshiftError("syntax error at end of input")
        attributes, found = take_clauses(rest[:as_clause.start()], TABLE_ATTRIBUTES)
        apply_table_clauses(layout, found)
        statement = head + attributes + rest[as_clause.start():]
    for pattern, replacement in TYPE_REWRITES:
        statement = re.sub(pattern, replacement, statement, flags=re.I)
    return statement, name, layout


def split_name(name: str) -> tuple[str, str]:
    """(schema, table) of a lower-case table name, `public` when it names none."""
    schema, _, table = name.rpartition(".")
    return schema or "public", table


def identity_sequence(name: str, column: str) -> str:
    schema, table = split_name(name)
    return f"dealab_system.identity_{schema}_{table}_{column}"


# Table functions learner SQL may call: they make rows from their arguments and touch nothing else.
ALLOWED_TABLE_FUNCTIONS = frozenset({"unnest", "explode", "range", "generate_series", "exploding_generate_series"})
DENIED_FUNCTIONS = frozenset({"current_setting", "getvariable", "getenv", "write_log", "parse_duckdb_log_message"})


@functools.cache
def _table_only_functions() -> frozenset[str]:
    """DuckDB's functions that are table functions only, from DuckDB itself: a reader a later DuckDB adds
    (read_xlsx, iceberg_scan, ...) is refused without a change here."""
    with duckdb.connect() as connection:
        rows = connection.execute("SELECT DISTINCT function_name, function_type FROM duckdb_functions()").fetchall()
    tables = {name.lower() for name, kind in rows if kind in ("table", "table_macro")}
    return frozenset(tables - {name.lower() for name, kind in rows if kind not in ("table", "table_macro")})


def _check_functions(tree: exp.Expression, sql: str) -> None:
    for node in tree.find_all(exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        in_from = isinstance(node.parent, (exp.Table, exp.Lateral)) and node.parent.this is node
        table_function = name not in ALLOWED_TABLE_FUNCTIONS and (in_from or name in _table_only_functions())
        if name in DENIED_FUNCTIONS or table_function:
            raise RedshiftError(f"function {name} does not exist (dealab refuses it: learner SQL reads only the "
                                "database's own tables)", position_of(sql, name))


# Words a statement that reaches the translation may start with (COPY, UNLOAD and the rest of STATEMENT_RULES
# are taken before); any other first word is a syntax error there, as Redshift reports it
FIRST_WORDS = frozenset({"SELECT", "WITH", "VALUES", "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER",
                         "TRUNCATE", "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "TABLE", "COMMENT"})


@dataclass
class Translation:
    sql: str
    tree: exp.Expression
    system_views: set[str]


# Translations of recent statements. Applications send the same text again and again (a dashboard's query, a
# pipeline's step), and sqlglot's parse and generation are most of a small statement's fixed cost (about 10 ms for a
# join, against 0.7 ms to copy its tree). Each caller gets a tree of its own: callers rewrite it (external tables,
# CURRENT_USER). A statement that fails to translate is not kept: it fails again, in the same words.
TRANSLATIONS_KEPT = 512
_translations: OrderedDict[tuple, Translation] = OrderedDict()
_translations_lock = threading.Lock()


def translate(sql: str, database: str, system_views: dict[str, tuple[str | None, str, str]], parameters: dict[str, str] | None = None) -> Translation:
    """Redshift SQL → DuckDB SQL. `system_views` maps each system view this deployment offers to the relation
    that holds it (catalog, schema, name); `parameters` are the Data API's named parameters (`:name`), bound as literals as Redshift
    binds them (a value of unknown type that takes the type its use needs)."""
    key = (sql, database, tuple(system_views.items()), None if parameters is None else tuple(sorted(parameters.items())))
    with _translations_lock:
        kept = _translations.get(key)
        if kept is not None:
            _translations.move_to_end(key)
    if kept is not None:
        return Translation(kept.sql, kept.tree.copy(), set(kept.system_views))
    translation = _translate(sql, database, system_views, parameters)
    with _translations_lock:
        _translations[key] = Translation(translation.sql, translation.tree.copy(), set(translation.system_views))
        while len(_translations) > TRANSLATIONS_KEPT:
            _translations.popitem(last=False)
    return translation


def _translate(sql: str, database: str, system_views: dict[str, tuple[str | None, str, str]], parameters: dict[str, str] | None) -> Translation:
    first = (re.findall(r"[A-Za-z_]+", sql) or [""])[0]
    if first.upper() not in FIRST_WORDS:
        raise RedshiftError(f'syntax error at or near "{first}"', position_of(sql, first))
    try:
        trees = [tree for tree in sqlglot.parse(sql, read="redshift") if tree is not None]
    except ParseError as error:
        near = (error.errors[0].get("highlight") if error.errors else "") or ""
        raise RedshiftError(f'syntax error at or near "{near}"' if near else "syntax error at end of input",
                            position_of(sql, near)) from None
    if len(trees) != 1:
        raise RedshiftError("cannot insert multiple commands into a prepared statement" if trees else "syntax error at end of input")
    tree = trees[0]
    if isinstance(tree, exp.Command):
        word = tree.name or sql.split()[0]
        raise RedshiftError(f'syntax error at or near "{word}"', position_of(sql, word))
    _check_functions(tree, sql)
    used = set()
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if table.args.get("catalog") and table.catalog.lower() == database.lower():
            table.set("catalog", None)
        if not table.args.get("db") and name in system_views:
            used.add(name)
            catalog, schema, relation = system_views[name]
            table.set("this", exp.to_identifier(relation))
            table.set("db", exp.to_identifier(schema))
            table.set("catalog", exp.to_identifier(catalog) if catalog else None)
    for placeholder in list(tree.find_all(exp.Placeholder)):
        name = placeholder.name
        if parameters is None or name not in (parameters or {}):
            raise RedshiftError(f"the statement uses parameter :{name}, which the request does not give", position_of(sql, f":{name}"))
        placeholder.replace(exp.Literal.string(parameters[name]))
    _name_output_columns(tree.expression if isinstance(tree, exp.Create) else tree)
    tables = tree.args.get("tables") or [] if isinstance(tree, exp.Drop) else []
    if len(tables) > 1:  # Redshift drops several tables in one statement, DuckDB one a statement
        return Translation("; ".join(_single_drop(tree, table) for table in tables), tree, used)
    return Translation(tree.sql("duckdb"), tree, used)


def _output_name(expression: exp.Expression) -> str | None:
    """The name Redshift gives an unnamed result column: a column's (through casts), a function's, else ?column?;
    None where the expression names itself (a column, an alias, *)."""
    if isinstance(expression, (exp.Alias, exp.Column, exp.Star)):
        return None
    if isinstance(expression, exp.Cast) and isinstance(expression.this, exp.Column):
        return expression.this.name
    if isinstance(expression, exp.Anonymous):
        return expression.name.lower()
    if isinstance(expression, exp.Func):
        return expression.sql_name().lower()
    return "?column?"


def _name_output_columns(query: exp.Expression | None) -> None:
    """Unnamed result columns get Redshift's names (count, sum, ?column?), not DuckDB's (count_star(), ...)."""
    if not isinstance(query, exp.Select):
        return
    for expression in list(query.expressions):
        name = _output_name(expression)
        if name:
            expression.replace(exp.alias_(expression.copy(), name, quoted=True))


def _single_drop(drop: exp.Drop, table: exp.Table) -> str:
    single = drop.copy()
    single.set("tables", [table.copy()])
    return single.sql("duckdb")
