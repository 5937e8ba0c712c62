"""EXPLAIN: the plan Redshift's planner would show for a query's joins, derived from the tables' distribution
(DISTSTYLE, DISTKEY; AUTO as ALL or EVEN by the table's size) and their real row counts, so a learner sees why a DISTKEY matters. It is not DuckDB's
plan and need not be Redshift's exact one: scans, hash joins with their data movement, aggregation and the
sort the leader node does, with costs that grow with the rows each movement sends over the network.

Each join hashes the smaller side (inner) and probes with the larger (outer). What moves is decided by
JOIN_MOVEMENT from: is the inner/outer side DISTSTYLE ALL, and is each side distributed on its join column;
where redistributing and broadcasting both work, the one that sends fewer rows is taken."""

from __future__ import annotations

from dataclasses import dataclass

from dealab.engines.redshift import dialect
from dealab.engines.redshift.errors import RedshiftError

exp = dialect.exp
# (inner is ALL, outer is ALL, outer on its join key, inner on its join key) → the movements that make the join
# possible (None matches anything); the planner takes the one that sends the fewest rows (MOVED_ROWS)
JOIN_MOVEMENT = [
    ((True, None, None, None), ["DS_DIST_ALL_NONE"]),
    ((False, True, None, None), ["DS_DIST_ALL_INNER"]),
    ((False, False, True, True), ["DS_DIST_NONE"]),
    ((False, False, True, False), ["DS_DIST_INNER", "DS_BCAST_INNER"]),
    ((False, False, False, True), ["DS_DIST_OUTER", "DS_BCAST_INNER"]),
    ((False, False, False, False), ["DS_DIST_BOTH", "DS_BCAST_INNER"]),
]
# Rows each movement sends over the network, as a function of (outer rows, inner rows, slices)
MOVED_ROWS = {
    "DS_DIST_NONE": lambda outer, inner, slices: 0, "DS_DIST_ALL_NONE": lambda outer, inner, slices: 0,
    "DS_DIST_INNER": lambda outer, inner, slices: inner, "DS_DIST_OUTER": lambda outer, inner, slices: outer,
    "DS_DIST_ALL_INNER": lambda outer, inner, slices: inner, "DS_BCAST_INNER": lambda outer, inner, slices: inner * slices,
    "DS_DIST_BOTH": lambda outer, inner, slices: outer + inner,
}
# A movement's cost per row sent, against 0.01 per row scanned (Redshift's costs put data movement far above)
NETWORK_COST_PER_ROW = 1000.0
SCAN_COST_PER_ROW = 0.01
WIDTH = 16


@dataclass
class Relation:
    """A scan or a join's result: its rows, where its rows are (the columns it is distributed on, or ALL), its plan."""

    rows: int
    distributed_on: set[str]
    all_slices: bool
    lines: list[str]
    cost: float


def _indent(lines: list[str]) -> list[str]:
    return [f"  {line}" for line in lines]


def _child(lines: list[str]) -> list[str]:
    return ["->  " + lines[0]] + ["    " + line for line in lines[1:]]


def _scan(warehouse, cursor, table: exp.Table) -> tuple[str, Relation, set[str]]:
    """(the table's alias, its scan, its column names)."""
    name, alias, schema = table.name.lower(), table.alias_or_name.lower(), (table.db or "public").lower()
    columns = {column for column, _ in warehouse.columns(cursor, name, schema)}  # refuses a table that is not there
    rows = cursor.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0]
    layout = cursor.execute("SELECT diststyle, distkey FROM dealab_system.tables WHERE schema_name = ? AND table_name = ?",
                            [schema, name]).fetchone() or ("AUTO", None)
    distribution = dialect.applied_distribution(layout[0], rows)  # a small AUTO table is ALL
    cost = rows * SCAN_COST_PER_ROW
    shown = f"{name} {alias}" if alias != name else name
    relation = Relation(rows, {f"{alias}.{layout[1]}"} if layout[0] == "KEY" and layout[1] else set(), distribution in ("ALL", "AUTO(ALL)"),
                        [f"XN Seq Scan on {shown}  (cost=0.00..{cost:.2f} rows={rows} width={WIDTH})"], cost)
    return alias, relation, columns


def _qualified(column: exp.Column, columns_of: dict[str, set[str]]) -> str:
    if column.table:
        return f"{column.table.lower()}.{column.name.lower()}"
    owners = [alias for alias, columns in columns_of.items() if column.name.lower() in columns]
    return f"{owners[0] if owners else '?'}.{column.name.lower()}"


def plan(warehouse, cursor, query: str, slices: int) -> list[str]:
    translation = dialect.translate(query, warehouse.database, warehouse.system_views)
    select = translation.tree
    if not isinstance(select, exp.Select) or not isinstance((select.args.get("from_") or exp.From()).this, exp.Table):
        raise RedshiftError("dealab's EXPLAIN shows plans of a SELECT over tables (with joins) only")
    columns_of: dict[str, set[str]] = {}
    alias, current, columns = _scan(warehouse, cursor, select.args["from_"].this)
    columns_of[alias] = columns
    for join in select.args.get("joins") or []:
        if not isinstance(join.this, exp.Table):
            raise RedshiftError("dealab's EXPLAIN shows plans of joins between tables only")
        alias, joined, columns = _scan(warehouse, cursor, join.this)
        columns_of[alias] = columns
        current = _join(current, joined, alias, join, columns_of, slices)
    lines, cost, rows = current.lines, current.cost, current.rows
    if select.args.get("group") or any(select.find_all(exp.AggFunc)):
        groups = len(select.args["group"].expressions) if select.args.get("group") else 0
        rows = min(rows, 1000) if groups else 1
        cost += current.rows * SCAN_COST_PER_ROW
        lines = [f"XN HashAggregate  (cost={cost:.2f}..{cost:.2f} rows={rows} width={WIDTH})"] + _indent(_child(lines))
    if select.args.get("order"):
        keys = ", ".join(order.this.sql("redshift") for order in select.args["order"].expressions)
        lines = ([f"XN Merge  (cost={cost:.2f}..{cost:.2f} rows={rows} width={WIDTH})", f"  Merge Key: {keys}",
                  f"  ->  XN Network  (cost={cost:.2f}..{cost:.2f} rows={rows} width={WIDTH})", "        Send to leader",
                  f"        ->  XN Sort  (cost={cost:.2f}..{cost:.2f} rows={rows} width={WIDTH})", f"              Sort Key: {keys}"]
                 + ["              " + line for line in _child(lines)])
    return lines


def _join(outer: Relation, inner: Relation, alias: str, join: exp.Join, columns_of: dict, slices: int) -> Relation:
    condition = join.args.get("on")
    pairs = []
    for equality in (condition.find_all(exp.EQ) if condition else []):
        left, right = equality.this, equality.expression
        if isinstance(left, exp.Column) and isinstance(right, exp.Column):
            sides = (_qualified(left, columns_of), _qualified(right, columns_of))
            pairs.append(sides if sides[1].startswith(f"{alias}.") else sides[::-1])
    if not pairs:
        lines = [f"XN Nested Loop DS_BCAST_INNER  (cost=0.00..{outer.cost + inner.cost + inner.rows * slices * NETWORK_COST_PER_ROW:.2f} "
                 f"rows={outer.rows * max(inner.rows, 1)} width={WIDTH})"] + _indent(_child(outer.lines)) + _indent(_child(inner.lines))
        return Relation(outer.rows * max(inner.rows, 1), outer.distributed_on, outer.all_slices, lines, outer.cost + inner.cost)
    if not inner.all_slices and (outer.all_slices or inner.rows > outer.rows):  # the smaller side, or the ALL one, is hashed
        outer, inner, pairs = inner, outer, [pair[::-1] for pair in pairs]
    outer_keys, inner_keys = {pair[0] for pair in pairs}, {pair[1] for pair in pairs}
    facts = (inner.all_slices, outer.all_slices, bool(outer.distributed_on & outer_keys), bool(inner.distributed_on & inner_keys))
    candidates = next(names for pattern, names in JOIN_MOVEMENT if all(want is None or want == fact for want, fact in zip(pattern, facts)))
    movement = min(candidates, key=lambda name: MOVED_ROWS[name](outer.rows, inner.rows, slices))
    moved = MOVED_ROWS[movement](outer.rows, inner.rows, slices)
    cost = outer.cost + inner.cost + moved * NETWORK_COST_PER_ROW
    rows = max(outer.rows, inner.rows)
    kind = {"LEFT": "Left Join", "RIGHT": "Right Join", "FULL": "Full Join"}.get((join.side or "").upper(), "Join")
    condition_text = " AND ".join(f'("outer".{outer_column.split(".")[1]} = "inner".{inner_column.split(".")[1]})'
                                  for outer_column, inner_column in pairs)
    hashed = [f"XN Hash  (cost={inner.cost:.2f}..{inner.cost:.2f} rows={inner.rows} width={WIDTH})"] + _indent(_child(inner.lines))
    lines = ([f"XN Hash {kind} {movement}  (cost={inner.cost:.2f}..{cost:.2f} rows={rows} width={WIDTH})", f"  Hash Cond: {condition_text}"]
             + _indent(_child(outer.lines)) + _indent(_child(hashed)))
    distributed = outer.distributed_on if movement in ("DS_DIST_NONE", "DS_DIST_INNER", "DS_DIST_ALL_NONE", "DS_BCAST_INNER") else outer_keys
    return Relation(rows, distributed | (inner_keys if movement != "DS_BCAST_INNER" else set()), outer.all_slices and inner.all_slices, lines, cost)
