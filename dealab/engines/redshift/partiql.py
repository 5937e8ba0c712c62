"""SUPER and PartiQL navigation on DuckDB's JSON: a SUPER column is a JSON column (dialect.TYPE_REWRITES), and a
statement's navigation into one — `c.address.city`, `c.items[0].sku`, `FROM orders o, o.items i` — becomes DuckDB's
json_extract with a JSON path, rewritten on the parsed statement (which columns are SUPER comes from the catalog).

Navigation is lax, as Redshift's default: a path that is missing, or that walks into a scalar, is NULL. A navigated
value stays SUPER (JSON text: a string shows its quotes, as Redshift shows it); compared with a string literal or
cast to VARCHAR it is its text, compared with a number it is a number when it is one (else NULL). Unnesting in FROM
iterates an array and yields nothing for anything else. Redshift's SUPER functions are rows of FUNCTIONS."""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp

ARGUMENT = "dealab_super_argument"
# Redshift's SUPER functions sqlglot does not translate: name → DuckDB template over the argument
FUNCTIONS = {
    "json_serialize": f"CAST({ARGUMENT} AS VARCHAR)",
    "json_typeof": f"CASE json_type({ARGUMENT}) WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' WHEN 'VARCHAR' THEN 'string' "
                   f"WHEN 'BOOLEAN' THEN 'boolean' WHEN 'NULL' THEN 'null' WHEN 'BIGINT' THEN 'number' WHEN 'UBIGINT' THEN 'number' "
                   f"WHEN 'DOUBLE' THEN 'number' END",
    "json_size": f"octet_length(CAST({ARGUMENT} AS VARCHAR))",
    "get_array_length": f"CASE WHEN json_type({ARGUMENT}) = 'ARRAY' THEN json_array_length({ARGUMENT}) END",
    "is_object": f"json_type({ARGUMENT}) = 'OBJECT'",
    "is_scalar": f"json_type({ARGUMENT}) NOT IN ('OBJECT', 'ARRAY')",
    "is_varchar": f"json_type({ARGUMENT}) = 'VARCHAR'",
    "is_char": f"json_type({ARGUMENT}) = 'VARCHAR'",
    "is_boolean": f"json_type({ARGUMENT}) = 'BOOLEAN'",
    "is_integer": f"json_type({ARGUMENT}) IN ('BIGINT', 'UBIGINT')",
    "is_bigint": f"json_type({ARGUMENT}) IN ('BIGINT', 'UBIGINT')",
    "is_smallint": f"json_type({ARGUMENT}) IN ('BIGINT', 'UBIGINT')",
    "is_decimal": f"json_type({ARGUMENT}) IN ('BIGINT', 'UBIGINT', 'DOUBLE')",
    "is_float": f"json_type({ARGUMENT}) = 'DOUBLE'",
}
COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike)
TEXT_TYPES = {exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR, exp.DataType.Type.NVARCHAR,
              exp.DataType.Type.NCHAR}


@functools.cache
def _template(name: str) -> exp.Expression:
    return sqlglot.parse_one(FUNCTIONS[name], read="duckdb")


def _apply(name: str, argument: exp.Expression) -> exp.Expression:
    built = _template(name).copy()
    for node in built.walk():
        node.meta["template"] = True  # JSON_SERIALIZE's cast keeps a string's quotes: not a cast to text below
    for column in list(built.find_all(exp.Column)):
        if column.name == ARGUMENT:
            column.replace(argument.copy())
    return built


class _Scope:
    """The SUPER columns a statement can reach: by table alias, unqualified, and unnested elements."""

    def __init__(self, tree: exp.Expression, super_columns: dict[tuple[str, str], set[str]], cursor):
        self.by_alias: dict[str, set[str]] = {}
        self.unqualified: set[str] = set()
        tables = {((table.db or "public").lower(), table.name.lower()): table for table in tree.find_all(exp.Table)}
        for key, table in tables.items():
            columns = super_columns.get(key, set())
            if columns:
                self.by_alias[table.alias_or_name.lower()] = columns
                self.unqualified |= columns
        if self.unqualified and len(tables) > 1:  # a bare name another table has as a plain column is not SUPER
            plain = cursor.execute("SELECT DISTINCT column_name FROM information_schema.columns WHERE data_type <> 'JSON' AND "
                                   "table_catalog = current_database() AND list_contains(?, table_schema || '.' || table_name)",
                                   [[f"{schema}.{name}" for schema, name in tables]]).fetchall()
            self.unqualified -= {name for (name,) in plain}
        for unnest in tree.find_all(exp.Unnest):
            alias = unnest.args.get("alias")
            if alias is not None and self.is_super(unnest.expressions[0]):
                self.unqualified |= {column.name.lower() for column in alias.columns}

    def is_super(self, node: exp.Expression) -> bool:
        return bool(node.meta.get("super")) or self.path(node) is not None

    def path(self, node: exp.Expression) -> tuple[exp.Expression, list] | None:
        """(the SUPER value navigated from, the steps: names and indexes) of a navigation, None for anything else."""
        if isinstance(node, exp.Column):
            parts = [(part.name if part.quoted else part.name.lower()) for part in node.parts]
            if len(parts) >= 2 and parts[1] in self.by_alias.get(parts[0], ()):
                return exp.column(parts[1], table=parts[0], quoted=True), parts[2:]
            if parts[0] in self.unqualified and parts[0] not in self.by_alias:
                return exp.column(parts[0], quoted=True), parts[1:]
            return None
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Identifier):
            inner = self.path(node.this)
            name = node.expression.name if node.expression.quoted else node.expression.name.lower()
            return (inner[0], inner[1] + [name]) if inner else None
        if isinstance(node, exp.Bracket) and len(node.expressions) == 1 and node.expressions[0].is_int:
            inner = self.path(node.this)
            return (inner[0], inner[1] + [int(node.expressions[0].name)]) if inner else None
        return None


def _json_path(steps: list) -> str:
    return "$" + "".join(f"[{step}]" if isinstance(step, int) else '."' + step.replace('"', '\\"') + '"' for step in steps)


def _extract(base: exp.Expression, steps: list, function: str = "json_extract") -> exp.Expression:
    node = exp.Anonymous(this=function, expressions=[base.copy(), exp.Literal.string(_json_path(steps))])
    node.meta.update(superbase=base, steps=steps, super=function == "json_extract")
    return node


def _as_text(node: exp.Expression, scope: _Scope) -> exp.Expression:
    """A SUPER value's text (a string without its quotes)."""
    if "superbase" in node.meta:
        return _extract(node.meta["superbase"], node.meta["steps"], "json_extract_string")
    return _extract(node, [], "json_extract_string")


def _name_result_column(old: exp.Expression, new: exp.Expression, steps: list) -> None:
    """A navigation in the select list is named as Redshift names it: after its last attribute."""
    names = [step for step in steps if isinstance(step, str)]
    if not names:
        return
    if isinstance(new.parent, exp.Select) and new.arg_key == "expressions":
        new.replace(exp.alias_(new.copy(), names[-1], quoted=True))
    elif isinstance(new.parent, exp.Alias) and new.parent.alias == "?column?":
        new.parent.set("alias", exp.to_identifier(names[-1], quoted=True))


def rewrite(cursor, tree: exp.Expression) -> bool:
    """Rewrites `tree` in place (Redshift's parse, DuckDB's generation to come); True when anything changed."""
    changed = False
    for function in list(tree.find_all(exp.Anonymous)):
        name = function.name.lower()
        if name in FUNCTIONS and len(function.expressions) == 1:
            function.replace(_apply(name, function.expressions[0]))
            changed = True
    navigations = [node for node in tree.find_all(exp.Column, exp.Dot, exp.Bracket, exp.Unnest)
                   if not isinstance(node, exp.Column) or node.table]
    if not navigations:
        return changed
    super_columns: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in cursor.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                                                "WHERE data_type = 'JSON' AND table_catalog = current_database()").fetchall():
        super_columns.setdefault((schema, table), set()).add(column)
    if not super_columns:
        return changed
    scope = _Scope(tree, super_columns, cursor)
    for node in list(tree.find_all(exp.Column, exp.Dot, exp.Bracket)):
        if isinstance(node.parent, (exp.Dot, exp.Bracket)) and node.parent.this is node:
            continue  # a part of a longer navigation: the whole is rewritten
        found = scope.path(node)
        if found and found[1]:
            _name_result_column(node, node.replace(_extract(*found)), found[1])
            changed = True
        elif found:
            node.meta["super"] = True
    for unnest in list(tree.find_all(exp.Unnest)):
        source = unnest.expressions[0] if unnest.expressions else None
        if source is not None and scope.is_super(source):
            array = exp.Case(ifs=[exp.If(this=exp.EQ(this=exp.Anonymous(this="json_type", expressions=[source.copy()]),
                                                     expression=exp.Literal.string("ARRAY")),
                                         true=exp.Cast(this=source.copy(), to=exp.DataType.build("JSON[]", dialect="duckdb")))])
            source.replace(array)
            changed = True
    for comparison in list(tree.find_all(*COMPARISONS)):
        for side, other in (("this", "expression"), ("expression", "this")):
            node, against = comparison.args.get(side), comparison.args.get(other)
            if node is None or not scope.is_super(node) or not isinstance(against, exp.Literal):
                continue
            if against.is_string:
                comparison.set(side, _as_text(node, scope))
            else:
                comparison.set(side, exp.TryCast(this=node.copy(), to=exp.DataType.build("DOUBLE")))
            changed = True
    for within in list(tree.find_all(exp.In)):
        if scope.is_super(within.this) and within.expressions and all(
                isinstance(value, exp.Literal) and value.is_string for value in within.expressions):
            within.set("this", _as_text(within.this, scope))
            changed = True
    for cast in list(tree.find_all(exp.Cast)):
        if cast.to.this in TEXT_TYPES and not cast.meta.get("template") and scope.is_super(cast.this):
            cast.replace(_as_text(cast.this, scope))
            changed = True
    return changed


def navigate(cursor, translation) -> None:
    """A dialect.Translation with its SUPER navigation rewritten (its DuckDB text made again when anything was)."""
    if rewrite(cursor, translation.tree) and ";" not in translation.sql:  # a multi-table DROP keeps its own text
        translation.sql = translation.tree.sql("duckdb")
