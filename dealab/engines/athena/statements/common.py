"""What every kind of statement shares: the statement's context, planning a query into DuckDB SQL, names of
tables as written, WITH (...) properties, LIKE patterns and registering partitions in the catalog."""

from __future__ import annotations

import fnmatch
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from dealab.engines.athena import translate
from dealab.engines.athena.catalog import GlueCatalog, Table, folder, split_s3
from dealab.engines.athena.errors import QueryError, from_duckdb, position_of, syntax_error
from dealab.engines.athena.planner import Planner, SchemaDrift

# Table property names Athena accepts for the same thing.
PROPERTY_ALIASES = {"format": "format", "storage_format": "format", "write_compression": "write_compression",
                    "compression": "write_compression", "external_location": "external_location",
                    "location": "external_location", "partitioned_by": "partitioned_by",
                    "field_delimiter": "field_delimiter", "bucketed_by": "bucketed_by", "bucket_count": "bucket_count"}
BATCH_PARTITIONS = 100  # Glue's BatchCreatePartition limit
# A query that may read at most this many bytes of its tables (Planner.scan_estimate) runs on one DuckDB thread:
# its time goes to DuckDB's calls into the Python file system (~14 a file), which two threads make in turn, each
# waiting for Python's lock (a warm count(*) over 20 Parquet files: 29.3 ms end to end on two threads, 25.9 on
# one). Above it, decoding is the work and a second thread pays (a one-partition sum over 2 files, ~2 MB
# estimated: 8.2 ms of DuckDB on one thread, 6.9 on two; docs/athena.md).
ONE_THREAD_MAX_BYTES = 1024 * 1024
# DuckDB's words, while reading, for a Parquet file whose columns differ from the first file's.
SCHEMA_DRIFT = re.compile(r"schema mismatch in glob")


def unquote_name(name: str) -> str:
    """A database or table name as written, without the backticks or double quotes around it."""
    name = name.strip()
    if len(name) > 1 and name[0] == name[-1] and name[0] in '`"':
        return name[1:-1]
    return name


@dataclass
class StatementContext:
    execution_id: str
    sql: str
    database: str
    catalog: GlueCatalog
    connection: duckdb.DuckDBPyConnection
    scratch: Path
    output_folder: str
    union_by_name: bool = False  # set when Parquet files of a table turned out to differ in schema
    s3_prefix: str = "s3://"  # what the connection reads s3:// objects by (planner.Planner.s3_prefix)
    # the same query's connection to a database of one thread (execution.QueryDatabase): queries reading little
    # run there, so DuckDB's threads do not take turns at Python's lock in the file system's callbacks
    one_thread: duckdb.DuckDBPyConnection | None = None
    scan_estimate: int = 0  # what the last planned query may read of its tables (planned sets it)

    def connection_for_query(self) -> duckdb.DuckDBPyConnection:
        """The connection to run the planned query on: the one-thread one when it reads little."""
        if self.one_thread is not None and self.scan_estimate <= ONE_THREAD_MAX_BYTES:
            return self.one_thread
        return self.connection

    def __post_init__(self):
        # QueryExecutionContext.Database may come quoted: awswrangler sends `db` for repair_table/describe_table.
        self.database = unquote_name(self.database).lower()


@contextmanager
def planned(ctx: StatementContext, query: exp.Expression, name_columns: bool = True, database: str | None = None):
    """DuckDB SQL for the query with its tables' relations in place; DuckDB failures become Athena's."""
    planner = Planner(ctx.catalog, ctx.connection, ctx.sql, database or ctx.database, ctx.union_by_name, ctx.s3_prefix)
    try:
        duckdb_sql = planner.plan(query, name_columns)
        ctx.scan_estimate = planner.scan_estimate
        yield duckdb_sql
    except duckdb.InterruptException:
        raise
    except duckdb.Error as error:
        if not ctx.union_by_name and (SCHEMA_DRIFT.search(str(error)) or
                                      (isinstance(error, duckdb.BinderException) and planner.reads_parquet)):
            # a column missing from a table's first Parquet file: planned again, columns matched by name (a
            # mistake in the query fails the same way again, and is answered then)
            raise SchemaDrift() from None
        raise from_duckdb(ctx.sql, error) from None


def parse(ctx: StatementContext, sql: str) -> exp.Expression:
    try:
        return sqlglot.parse_one(sql, read=translate.DIALECT)
    except sqlglot.errors.ParseError as error:
        raise syntax_error(ctx.sql, error) from None


def name_parts(text: str) -> list[str]:
    return [part.strip('`"') for part in re.findall(r'`[^`]+`|"[^"]+"|[^.\s;]+', text)]


def table_name(ctx: StatementContext, text: str) -> tuple[str, str]:
    parts = name_parts(text)
    return (parts[-2] if len(parts) > 1 else ctx.database).lower(), parts[-1].lower()


def database_named(ctx: StatementContext, text: str | None) -> str:
    """The database an `IN db` clause names, or the query's own."""
    return name_parts(text)[-1].lower() if text else ctx.database


def existing(ctx: StatementContext, text: str) -> Table:
    database, name = table_name(ctx, text)
    table = ctx.catalog.table(database, name)
    if table is None:
        raise QueryError(f"Table '{database}.{name}' not found", "TABLE_NOT_FOUND", position_of(ctx.sql, name))
    return table


def literal(node: exp.Expression | None):
    if node is None:
        return None
    if isinstance(node, (exp.Array, exp.Tuple)):
        return [literal(e) for e in node.expressions]
    if isinstance(node, exp.Schema):
        return [e.name for e in node.expressions]
    return node.name if isinstance(node, (exp.Literal, exp.Var, exp.Identifier, exp.Column)) else node.sql()


def with_properties(properties: exp.Properties | None) -> dict:
    """The WITH (...) properties of a CTAS or UNLOAD, under Athena's canonical names."""
    found = {}
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.FileFormatProperty):
            found["format"] = literal(prop.this)
        elif isinstance(prop, exp.PartitionedByProperty):
            found["partitioned_by"] = literal(prop.this)
        elif isinstance(prop, exp.LocationProperty):
            found["external_location"] = literal(prop.this)
        elif type(prop) is exp.Property:
            found[PROPERTY_ALIASES.get(prop.name.lower(), prop.name.lower())] = literal(prop.args.get("value"))
    return found


def location_is_empty(ctx: StatementContext, location: str) -> bool:
    bucket, prefix = split_s3(folder(location))
    listing = ctx.catalog.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    return listing.get("KeyCount", 0) == 0


def like(pattern: str | None, name: str) -> bool:
    """Athena's SHOW ... LIKE: `*` matches anything, `|` separates alternatives."""
    if not pattern:
        return True
    return any(fnmatch.fnmatch(name, alternative.strip().replace("%", "*")) for alternative in pattern.split("|"))


def register_partitions(ctx: StatementContext, table_raw: dict, database: str, partition_values: list[dict[str, str]]) -> None:
    keys = [k["Name"] for k in table_raw.get("PartitionKeys", [])]
    base = folder(table_raw["StorageDescriptor"]["Location"])
    inputs = []
    for values in partition_values:
        descriptor = dict(table_raw["StorageDescriptor"])
        descriptor["Location"] = base + "/".join(f"{k}={values[k]}" for k in keys) + "/"
        inputs.append({"Values": [values[k] for k in keys], "StorageDescriptor": descriptor})
    glue = ctx.catalog.glue
    for start in range(0, len(inputs), BATCH_PARTITIONS):
        glue.batch_create_partition(DatabaseName=database, TableName=table_raw["Name"], PartitionInputList=inputs[start : start + BATCH_PARTITIONS])


def as_input(raw: dict, glue, shape: str) -> dict:
    """The TableInput / PartitionInput that recreates a GetTable / GetPartition answer (which also carries
    read-only members)."""
    members = glue.meta.service_model.shape_for(shape).members
    return {key: value for key, value in raw.items() if key in members}
