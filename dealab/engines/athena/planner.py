"""Turns a parsed Athena query into DuckDB SQL: views from the catalog are inlined, tables resolved in Glue,
partitions pruned the way Athena prunes them (predicates on partition columns evaluated against the partition
values, before any file is opened), files listed, and each table reference replaced by its relation's SELECT.

The relations go into the query's text as subqueries rather than as temporary views: DuckDB binds a view when it
is made and again in every query that reads it, and each bind opens every file of the table (a callback into
Python per file), so a view cost a second round of those; the query is bound once."""

from __future__ import annotations

import itertools
import secrets

import duckdb
import sqlglot
from sqlglot import exp

from dealab.engines.athena import governance, projection, sandbox, translate
from dealab.engines.athena.catalog import INFORMATION_SCHEMA, PATH_COLUMN, GlueCatalog, PartitionFiles, Table, relation_sql
from dealab.engines.athena.datatypes import hive_to_duckdb
from dealab.engines.athena.errors import QueryError, position_of

MAX_VIEW_DEPTH = 16
S3_PREFIX = "s3://"
RELATION_PREFIX = "__athena_relation_"
FEW_PARTITIONS_DIVISOR = 4


class SchemaDrift(Exception):
    """Parquet files of one table have different columns: plan again, matching columns by name."""


def _cte_names(query: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}


def _table_refs(query: exp.Expression) -> list[exp.Table]:
    ctes = _cte_names(query)
    refs = []
    for table in query.find_all(exp.Table):
        if not table.name or isinstance(table.this, exp.Func):
            continue
        if not table.db and table.name.lower() in ctes:
            continue
        refs.append(table)
    return refs


def _missing_table(sql: str, database: str, table: exp.Table) -> QueryError:
    return QueryError(
        f"Table 'awsdatacatalog.{database}.{table.name}' does not exist",
        "TABLE_NOT_FOUND",
        position_of(sql, table.db or table.name),
    )


def _scan_estimate(table: Table, partitions: list[PartitionFiles], query: exp.Expression, ref: exp.Table) -> int:
    """The bytes the query may read of `table`'s listed files: all of them for a row format (a row is read whole);
    for Parquet, the share of its columns the query names (each column weighing the same; `*` names all, a query
    naming none, as count(*), reads footers only). Partition columns are in the path, not in the files."""
    listed = sum(size for partition in partitions for _, size in partition.files)
    data_columns = {name.lower() for name, _ in table.columns}
    if table.storage_format != "parquet" or not data_columns:
        return listed
    if any(not isinstance(star.parent, exp.Count) for star in query.find_all(exp.Star)):
        return listed
    qualifiers = {"", ref.alias_or_name.lower()}
    named = {column.name.lower() for column in query.find_all(exp.Column) if column.table.lower() in qualifiers}
    return listed * len(named & data_columns) // len(data_columns)


class Planner:
    def __init__(self, catalog: GlueCatalog, connection: duckdb.DuckDBPyConnection, sql: str, database: str,
                 union_by_name: bool = False, s3_prefix: str = S3_PREFIX):
        self.catalog = catalog
        self.connection = connection
        self.sql = sql
        self.database = database
        self.union_by_name = union_by_name  # match Parquet columns across files whose schemas differ (slower)
        # what the connection reads s3://bucket/key by: on the shared database, the query's own s3://<token>/
        # (s3reads.QueryReads), so its reads are authorized and counted for it alone
        self.s3_prefix = s3_prefix
        # placeholder name in the planned query → the relation's SELECT put in its place (a name no query can write)
        self.relations: dict[str, str] = {}
        self._placeholder = f"{RELATION_PREFIX}{secrets.token_hex(8)}_"
        self.reads_parquet = False  # a Parquet table is read: a bind error may be files whose columns differ
        self.scan_estimate = 0  # the bytes the query may read of its tables (how many threads it runs on)
        self._tables: dict[tuple[str, str], Table | None] = {}
        self._counter = itertools.count()

    def lookup(self, database: str, name: str) -> Table | None:
        key = (database.lower(), name.lower())
        if key not in self._tables:
            self._tables[key] = self.catalog.table(*key)
        return self._tables[key]

    def resolve(self, table: exp.Table) -> Table:
        database = table.db or self.database
        found = self.lookup(database, table.name)
        if found is None:
            if not self.catalog.database_exists(database.lower()):
                raise QueryError(f"Schema '{database}' does not exist", "SCHEMA_NOT_FOUND", position_of(self.sql, table.db or table.name))
            raise _missing_table(self.sql, database, table)
        return found

    def inline_views(self, query: exp.Expression) -> exp.Expression:
        for _ in range(MAX_VIEW_DEPTH):
            replaced = False
            for ref in _table_refs(query):
                if self.is_information_schema(ref):
                    continue
                table = self.resolve(ref)
                if not table.is_view:
                    continue
                body = sqlglot.parse_one(table.view_sql, read=translate.DIALECT)
                for inner in _table_refs(body):
                    if not inner.db:
                        inner.set("db", exp.to_identifier(table.database))
                ref.replace(exp.Subquery(this=body, alias=exp.TableAlias(this=exp.to_identifier(ref.alias_or_name))))
                replaced = True
            if not replaced:
                return query
        raise QueryError("View definitions are nested too deeply (or refer to themselves)", "VIEW_IS_RECURSIVE")

    def plan(self, query: exp.Expression, name_columns: bool = True) -> str:
        """The DuckDB SQL of the query, over temporary views this planner registers for its tables."""
        query = self.inline_views(query.copy())
        sandbox.check(query, self.sql)  # after inlining: a view stored in Glue may call what a query may not
        asks_for_path = any(column.name == PATH_COLUMN for column in query.find_all(exp.Column))
        for ref in _table_refs(query):
            if self.is_information_schema(ref):
                self.register(ref, self.information_schema(ref))
                continue
            table = self.resolve(ref)
            candidates = self.partitions_for(table, ref)
            partitions = self.prune(table, ref, candidates) if table.partition_keys else candidates
            # Listing S3 costs per object listed: a few partitions out of many are listed one by one.
            list_each = len(partitions) <= len(candidates) // FEW_PARTITIONS_DIVISOR
            self.fill_files(table, partitions, list_each)
            self.scan_estimate += _scan_estimate(table, partitions, query, ref)
            try:
                relation = relation_sql(table, partitions, self.union_by_name, with_path=asks_for_path)
            except ValueError as error:
                code, _, message = str(error).partition(": ")
                raise QueryError(message, code) from None
            relation = governance.restricted(relation, table, asks_for_path)  # Lake Formation: granted columns and rows
            if asks_for_path and self.s3_prefix != S3_PREFIX:  # "$path" is the object's s3:// URL, not the query's path
                relation = (f"""SELECT * REPLACE (replace("{PATH_COLUMN}", '{self.s3_prefix}', '{S3_PREFIX}') """
                            f"""AS "{PATH_COLUMN}") FROM ({relation})""")
            self.reads_parquet |= table.storage_format == "parquet"
            self.register(ref, relation)
        if name_columns:
            translate.name_output_columns(query)
        duckdb_sql = translate.to_duckdb(query)
        for name, relation in self.relations.items():
            duckdb_sql = duckdb_sql.replace(f'"{name}"', f"({relation})")
        return duckdb_sql

    def fill_files(self, table: Table, partitions: list[PartitionFiles], list_each: bool = False) -> None:
        """The partitions' files from the S3 listing, named as this planner's connection reads them."""
        self.catalog.fill_files(table, partitions, list_each)
        if self.s3_prefix != S3_PREFIX:
            for partition in partitions:
                partition.files = [(self.s3_prefix + url.removeprefix(S3_PREFIX), size) for url, size in partition.files]

    def register(self, ref: exp.Table, relation: str) -> None:
        """Points the query's reference at a placeholder that plan() replaces with `relation` as a subquery."""
        name = f"{self._placeholder}{next(self._counter)}"
        self.relations[name] = relation
        ref.replace(exp.Table(this=exp.to_identifier(name, quoted=True), alias=exp.TableAlias(this=exp.to_identifier(ref.alias_or_name))))

    def is_information_schema(self, ref: exp.Table) -> bool:
        return (ref.db or self.database).lower() == INFORMATION_SCHEMA

    def information_schema(self, ref: exp.Table) -> str:
        relation = self.catalog.information_schema(ref.name.lower())
        if relation is None:
            raise _missing_table(self.sql, INFORMATION_SCHEMA, ref)
        return relation

    def partitions_for(self, table: Table, ref: exp.Table | None = None) -> list[PartitionFiles]:
        """The table's partitions; `ref`, the query's reference to it, supplies injected projection values."""
        if not table.partition_keys:
            return [PartitionFiles({}, table.location)]
        if table.projection:
            injected = {column: self.injected_values(column, ref) for column in projection.injected_columns(table)}
            candidates = projection.projected_partitions(table, injected)
        else:
            names = [name for name, _ in table.partition_keys]
            candidates = [
                PartitionFiles(dict(zip(names, p["Values"])), p.get("StorageDescriptor", {}).get("Location", ""))
                for p in self.catalog.partitions(table)
            ]
        return candidates

    def injected_values(self, column: str, ref: exp.Table | None) -> list[str]:
        """The values the WHERE clause reading `ref` gives an injected column: each conjunct naming the column must
        be a static equality (`=`, `IN`, equalities joined by OR), and the values of several are intersected."""
        conjuncts = [conjunct for conjunct in (_where_conjuncts(ref) if ref is not None else [])
                     if any(c.name.lower() == column.lower() and c.table.lower() in ("", ref.alias_or_name.lower())
                            for c in conjunct.find_all(exp.Column))]
        if not conjuncts:
            raise projection.injection_violation(column)
        values: list[str] | None = None
        for conjunct in conjuncts:
            named = self._static_equality_values(conjunct, column)
            if named is None:
                raise projection.injection_violation(column)
            values = named if values is None else [value for value in values if value in named]
        return list(dict.fromkeys(values))

    def _static_equality_values(self, condition: exp.Expression, column: str) -> list[str] | None:
        """What `condition` sets `column` equal to, or None when it is not a static equality on it."""
        condition = condition.unnest()
        if isinstance(condition, exp.Or):
            left, right = (self._static_equality_values(side, column) for side in (condition.left, condition.right))
            return None if left is None or right is None else left + right
        if isinstance(condition, exp.EQ):
            sides = [condition.left.unnest(), condition.right.unnest()]
            named = [side for side in sides if isinstance(side, exp.Column) and side.name.lower() == column.lower()]
            constants = [side for side in sides if not side.find(exp.Column, exp.Select)]
            return self._evaluated(constants) if len(named) == 1 and len(constants) == 1 else None
        if isinstance(condition, exp.In) and isinstance(condition.this, exp.Column) and condition.this.name.lower() == column.lower():
            items = condition.expressions
            return self._evaluated(items) if items and not any(item.find(exp.Column, exp.Select) for item in items) else None
        return None

    def _evaluated(self, expressions: list[exp.Expression]) -> list[str] | None:
        """Constant expressions' values as partition values (text), evaluated without reading data."""
        select = ", ".join(f"CAST(({translate.to_duckdb(expression)}) AS VARCHAR)" for expression in expressions)
        try:
            return [value for value in self.connection.execute(f"SELECT {select}").fetchone() if value is not None]
        except duckdb.Error:
            return None

    def prune(self, table: Table, ref: exp.Table, candidates: list[PartitionFiles]) -> list[PartitionFiles]:
        conditions = _partition_conditions(ref, {name.lower() for name, _ in table.partition_keys})
        if not conditions or not candidates:
            return candidates
        keys = table.partition_keys
        columns = ", ".join(f'"{name}"' for name, _ in keys)
        rows = ", ".join(
            "(" + ", ".join([str(index)] + [_typed_literal(p.values.get(name), kind) for name, kind in keys]) + ")"
            for index, p in enumerate(candidates)
        )
        where = " AND ".join(translate.to_duckdb(condition) for condition in conditions)
        try:
            selected = self.connection.execute(
                f"SELECT __index FROM (VALUES {rows}) AS __partitions(__index, {columns}) WHERE {where}"
            ).fetchall()
        except duckdb.Error:
            return candidates  # a condition DuckDB cannot judge on partition values alone: read them all
        return [candidates[index] for (index,) in selected]


def _typed_literal(value: str | None, hive_type: str) -> str:
    if value is None:
        return f"CAST(NULL AS {hive_to_duckdb(hive_type)})"
    return f"TRY_CAST('{value.replace(chr(39), chr(39) * 2)}' AS {hive_to_duckdb(hive_type)})"


def _where_conjuncts(ref: exp.Table) -> list[exp.Expression]:
    """The AND-ed conditions of the WHERE clause of the SELECT reading `ref` directly."""
    select = ref.parent
    while select is not None and not isinstance(select, exp.Select):
        if isinstance(select, (exp.Subquery, exp.Union)):
            return []
        select = select.parent
    if select is None or select.args.get("where") is None:
        return []
    where = select.args["where"].this
    return list(where.flatten()) if isinstance(where, exp.And) else [where]


def _partition_conditions(ref: exp.Table, partition_names: set[str]) -> list[exp.Expression]:
    """WHERE conjuncts of the SELECT reading `ref` directly that involve only its partition columns."""
    alias = ref.alias_or_name.lower()
    conditions = []
    for conjunct in _where_conjuncts(ref):
        columns = list(conjunct.find_all(exp.Column))
        if not columns or conjunct.find(exp.Select):
            continue
        if all(c.name.lower() in partition_names and c.table.lower() in ("", alias) for c in columns):
            condition = conjunct.copy()
            for column in condition.find_all(exp.Column):
                column.set("table", None)
            conditions.append(condition)
    return conditions
