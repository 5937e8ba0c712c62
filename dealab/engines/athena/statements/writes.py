"""Statements that write files to S3: CTAS, INSERT INTO and UNLOAD. Each decides where and how its files go
(a FileLayout); `write` runs the query into local files (one folder per partition, one file per bucket when
bucketed) with DuckDB's COPY and uploads them under the layout's location."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import sqlglot
from sqlglot import exp

from dealab.engines.athena import translate
from dealab.engines.athena.catalog import STORAGE_FOR_FORMAT, folder, split_s3
from dealab.engines.athena.datatypes import duckdb_to_hive
from dealab.engines.athena.errors import QueryError, position_of
from dealab.engines.athena.results import Outcome
from dealab.engines.athena.statements.common import (StatementContext, existing, location_is_empty, parse, planned,
                                                     register_partitions, with_properties)

# Athena's write_compression / compression values → DuckDB COPY compression and file suffix, per format.
COMPRESSION = {
    "PARQUET": {"SNAPPY": ("snappy", ""), "GZIP": ("gzip", ""), "ZSTD": ("zstd", ""), "LZ4": ("lz4_raw", ""), "NONE": ("uncompressed", "")},
    "TEXTFILE": {"GZIP": ("gzip", ".gz"), "ZSTD": ("zstd", ".zst"), "NONE": ("none", "")},
    "JSON": {"GZIP": ("gzip", ".gz"), "ZSTD": ("zstd", ".zst"), "NONE": ("none", "")},
}
# DuckDB COPY options per format, from the codec and the field delimiter. Text files are what Hive's
# LazySimpleSerDe reads: \x01 between fields unless told, no quoting, \N for NULL.
COPY_OPTIONS = {
    "PARQUET": lambda codec, delimiter: f"FORMAT parquet, COMPRESSION {codec}",
    "TEXTFILE": lambda codec, delimiter: (f"FORMAT csv, HEADER false, DELIMITER '{delimiter or chr(1)}', QUOTE '', "
                                          f"ESCAPE '', NULLSTR '\\N', COMPRESSION {codec}"),
    "JSON": lambda codec, delimiter: f"FORMAT json, COMPRESSION {codec}",
}
DEFAULT_COMPRESSION = "GZIP"
# The table format INSERT INTO writes, by the storage format read from the table's SerDe.
INSERT_FORMAT = {"parquet": "PARQUET", "json": "JSON", "csv": "TEXTFILE"}
WRITTEN_AS_BIGINT = frozenset({"HUGEINT", "UBIGINT"})  # DuckDB's sum/count results; Trino's are bigint
BUCKET_FOLDER = "__dealab_bucket"  # a temporary folder level while writing bucketed files


@dataclass(frozen=True)
class FileLayout:
    """Where and how a statement's files are written."""
    location: str
    fmt: str
    compression: str
    partitioned_by: list[str] = field(default_factory=list)
    delimiter: str | None = None
    bucketed_by: list[str] = field(default_factory=list)
    bucket_count: int = 0


@dataclass
class Written:
    urls: list[str]
    partitions: list[dict[str, str]]  # the partition values of the files written, in the order first written
    columns: list[tuple[str, str]]  # (name, DuckDB type) of what was written
    rows: int


def _lowered(names) -> list[str]:
    return [name.lower() for name in names]


def _codec(layout: FileLayout) -> tuple[str, str]:
    """DuckDB's compression and the file suffix for the layout's format and compression."""
    if layout.fmt not in COMPRESSION:
        raise QueryError(f"format '{layout.fmt}' is not supported by dealab (PARQUET, TEXTFILE and JSON are)", "NOT_SUPPORTED")
    codec = COMPRESSION[layout.fmt].get(layout.compression)
    if codec is None:
        raise QueryError(f"Unsupported compression '{layout.compression}' for format {layout.fmt}", "INVALID_TABLE_PROPERTY")
    return codec


def _check_columns(columns: list[tuple[str, str]], layout: FileLayout) -> None:
    names = _lowered(name for name, _ in columns)
    missing = [p for p in layout.partitioned_by if p.lower() not in names]
    if missing:
        raise QueryError(f"Partition column(s) {missing} not present in the query", "INVALID_TABLE_PROPERTY")
    if layout.partitioned_by and names[-len(layout.partitioned_by):] != _lowered(layout.partitioned_by):
        raise QueryError("Partition columns must be the last columns in the SELECT list, in partitioned_by order", "INVALID_TABLE_PROPERTY")
    unknown = [c for c in layout.bucketed_by if c.lower() not in names]
    if unknown or (layout.bucketed_by and layout.bucket_count < 1):
        raise QueryError(f"bucketed_by {layout.bucketed_by} needs columns of the query and a bucket_count of at least 1", "INVALID_TABLE_PROPERTY")


def _as_bigint(select_sql: str, columns: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
    """Files hold what Athena would write: 64-bit integers for sums and counts."""
    wide = [name for name, kind in columns if kind.upper() in WRITTEN_AS_BIGINT]
    if not wide:
        return select_sql, columns
    replaced = ", ".join(f'CAST("{name}" AS BIGINT) AS "{name}"' for name in wide)
    return f"SELECT * REPLACE ({replaced}) FROM ({select_sql})", [(name, "BIGINT" if name in wide else kind) for name, kind in columns]


def _folders(select_sql: str, layout: FileLayout) -> tuple[str, list[str]]:
    """The SQL COPY writes and the columns its files are foldered by: the partitions, then the bucket."""
    if not layout.bucketed_by:
        return select_sql, list(layout.partitioned_by)
    hashed = ", ".join(f'"{c}"' for c in layout.bucketed_by)
    bucketed = f'SELECT *, (hash({hashed}) % {layout.bucket_count})::INTEGER AS "{BUCKET_FOLDER}" FROM ({select_sql})'
    return bucketed, [*layout.partitioned_by, BUCKET_FOLDER]


def _copy(ctx: StatementContext, copy_sql: str, codec: str, layout: FileLayout, folders_by: list[str]) -> tuple[Path, int]:
    """Runs the query into a fresh local folder; returns it and the number of rows written."""
    ctx.scratch.mkdir(exist_ok=True)  # a query's scratch folder is made by the first statement that writes there
    out = Path(tempfile.mkdtemp(prefix="ctas-", dir=ctx.scratch))
    options = COPY_OPTIONS[layout.fmt](codec, layout.delimiter)
    if folders_by:
        options += ", PARTITION_BY (" + ", ".join(f'"{p}"' for p in folders_by) + ")"
    target = out if folders_by else out / "data"
    count_row = ctx.connection.execute(f"COPY ({copy_sql}) TO '{target}' ({options})").fetchone()
    return out, int(count_row[0]) if count_row else 0


def _object_name(execution_id: str, number: int, suffix: str, folders: list[str], bucketed: bool) -> str:
    """Athena's file names: <query id>_<n>, with the bucket's number when bucketed (its folder is dropped)."""
    if bucketed:
        bucket = int(folders.pop().split("=", 1)[1])
        return f"{execution_id}_bucket-{bucket:05d}_{number:05d}{suffix}"
    return f"{execution_id}_{number:05d}{suffix}"


def _upload(ctx: StatementContext, out: Path, layout: FileLayout, suffix: str) -> tuple[list[str], list[dict[str, str]]]:
    bucket, prefix = split_s3(folder(layout.location))
    urls, partitions = [], {}
    for number, path in enumerate(sorted(p for p in out.rglob("*") if p.is_file())):
        folders = [part for part in path.parent.relative_to(out).as_posix().split("/") if part != "."]
        name = _object_name(ctx.execution_id, number, suffix, folders, bool(layout.bucketed_by))
        relative_dir = "".join(part + "/" for part in folders)
        key = f"{prefix}{relative_dir}{name}"
        ctx.catalog.s3.upload_file(str(path), bucket, key)
        urls.append(f"s3://{bucket}/{key}")
        if layout.partitioned_by:
            partitions.setdefault(relative_dir, {k: unquote(v) for k, v in (f.split("=", 1) for f in folders)})
    return urls, list(partitions.values())


def write(ctx: StatementContext, select_sql: str, layout: FileLayout) -> Written:
    """Runs the query into files laid out as asked and uploads them."""
    codec, suffix = _codec(layout)
    relation = ctx.connection.sql(select_sql)
    columns = list(zip(relation.columns, [str(t) for t in relation.types]))
    _check_columns(columns, layout)
    select_sql, columns = _as_bigint(select_sql, columns)
    copy_sql, folders_by = _folders(select_sql, layout)
    out, rows = _copy(ctx, copy_sql, codec, layout, folders_by)
    urls, partitions = _upload(ctx, out, layout, suffix)
    return Written(urls, partitions, columns, rows)


def _rows_outcome(statement_type: str, substatement: str, written: Written) -> Outcome:
    return Outcome(statement_type, substatement, [("rows", "BIGINT")], [[str(written.rows)]],
                   data_files=written.urls, update_count=written.rows)


def _refuse_nonempty(ctx: StatementContext, location: str, what: str) -> None:
    if not location_is_empty(ctx, location):
        raise QueryError(f"Target directory for {what} already exists: {location}", "HIVE_PATH_ALREADY_EXISTS")


# ---------------------------------------------------------------- CTAS


def _ctas_layout(ctx: StatementContext, properties: dict) -> FileLayout:
    bucketed_by = properties.get("bucketed_by") or []
    return FileLayout(
        location=folder(properties.get("external_location") or f"{ctx.output_folder}tables/{ctx.execution_id}/"),
        fmt=str(properties.get("format") or "PARQUET").upper(),
        compression=str(properties.get("write_compression") or DEFAULT_COMPRESSION).upper(),
        partitioned_by=properties.get("partitioned_by") or [],
        delimiter=properties.get("field_delimiter"),
        bucketed_by=bucketed_by,
        bucket_count=int(properties.get("bucket_count") or 0) if bucketed_by else 0,
    )


def _storage(layout: FileLayout, columns: list[tuple[str, str]]) -> dict:
    storage = {k: (dict(v) if isinstance(v, dict) else v) for k, v in STORAGE_FOR_FORMAT[layout.fmt].items()}
    storage["SerdeInfo"] = {**storage["SerdeInfo"], "Parameters": dict(storage["SerdeInfo"]["Parameters"])}
    if layout.fmt == "TEXTFILE":
        storage["SerdeInfo"]["Parameters"]["field.delim"] = layout.delimiter or "\x01"
    storage.update(Columns=[{"Name": n, "Type": t} for n, t in columns], Location=layout.location, Compressed=layout.compression != "NONE")
    if layout.bucketed_by:
        storage.update(BucketColumns=layout.bucketed_by, NumberOfBuckets=layout.bucket_count)
    return storage


def _ctas_table_input(name: str, layout: FileLayout, columns: list[tuple[str, str]]) -> dict:
    partition_set = set(_lowered(layout.partitioned_by))
    hive_columns = [(n, duckdb_to_hive(t)) for n, t in columns]
    compression_key = f"{layout.fmt.lower()}.compression" if layout.fmt == "PARQUET" else "write.compression"
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": layout.fmt.lower(), "has_encrypted_data": "false",
                       compression_key: layout.compression},
        "StorageDescriptor": _storage(layout, [c for c in hive_columns if c[0].lower() not in partition_set]),
        "PartitionKeys": [{"Name": n, "Type": t} for n, t in hive_columns if n.lower() in partition_set],
    }


def create_table_as(ctx: StatementContext, create: exp.Create) -> Outcome:
    table_ref = create.this if isinstance(create.this, exp.Table) else create.this.this
    database, name = (table_ref.db or ctx.database).lower(), table_ref.name.lower()
    if ctx.catalog.table(database, name) is not None:
        if create.args.get("exists"):
            return Outcome("DDL", "CREATE_TABLE_AS_SELECT", [("rows", "BIGINT")], [["0"]])
        raise QueryError(f"Destination table 'awsdatacatalog.{database}.{name}' already exists", "TABLE_ALREADY_EXISTS", (1, 1))
    if not ctx.catalog.database_exists(database):
        raise QueryError(f"Schema '{database}' does not exist", "SCHEMA_NOT_FOUND", position_of(ctx.sql, name))
    layout = _ctas_layout(ctx, with_properties(create.args.get("properties")))
    _refuse_nonempty(ctx, layout.location, f"table '{database}.{name}'")
    with planned(ctx, create.expression) as duckdb_sql:
        written = write(ctx, duckdb_sql, layout)
    table_input = _ctas_table_input(name, layout, written.columns)
    ctx.catalog.glue.create_table(DatabaseName=database, TableInput=table_input)
    if written.partitions:
        register_partitions(ctx, table_input, database, written.partitions)
    return _rows_outcome("DDL", "CREATE_TABLE_AS_SELECT", written)


# ---------------------------------------------------------------- INSERT INTO


def _insert_layout(table) -> FileLayout:
    """New files go where the table's are, in its format, compression and delimiter."""
    fmt = INSERT_FORMAT.get(table.storage_format)
    if fmt is None or table.is_view:
        raise QueryError(f"Inserting into {table.storage_format.upper()} table {table.database}.{table.name} is not supported by dealab", "NOT_SUPPORTED")
    compression = table.parameters.get("parquet.compression") or table.parameters.get("write.compression") or DEFAULT_COMPRESSION
    return FileLayout(table.location, fmt, compression.upper(), [n for n, _ in table.partition_keys], table.serde_parameters.get("field.delim"))


def _register_new_partitions(ctx: StatementContext, table, written: Written) -> None:
    if not written.partitions:
        return
    keys = [n for n, _ in table.partition_keys]
    registered = {tuple(p["Values"]) for p in ctx.catalog.partitions(table)}
    new = [p for p in written.partitions if tuple(p[k] for k in keys) not in registered]
    if new:
        register_partitions(ctx, table.raw, table.database, new)


def insert_into(ctx: StatementContext, insert: exp.Insert) -> Outcome:
    target = insert.this if isinstance(insert.this, exp.Table) else insert.this.this
    table = existing(ctx, target.sql(translate.DIALECT))
    layout = _insert_layout(table)
    names = [n for n, _ in table.columns + table.partition_keys]
    quoted = ", ".join(f'"{n}"' for n in names)
    with planned(ctx, insert.expression, name_columns=False) as duckdb_sql:
        width = len(ctx.connection.sql(duckdb_sql).columns)
        if width != len(names):
            raise QueryError(f"Insert query has mismatched column types: Table: {len(names)} columns, Query: {width} columns", "TYPE_MISMATCH")
        written = write(ctx, f"SELECT * FROM ({duckdb_sql}) AS __inserted({quoted})", layout)
    _register_new_partitions(ctx, table, written)
    return _rows_outcome("DML", "INSERT", written)


# ---------------------------------------------------------------- UNLOAD


def _text_properties(text: str) -> dict:
    """key = value pairs of an UNLOAD ... WITH (...) clause."""
    try:
        parsed = sqlglot.parse_one(f"CREATE TABLE t WITH ({text}) AS SELECT 1", read=translate.DIALECT)
    except sqlglot.errors.ParseError:
        raise QueryError(f"Invalid UNLOAD properties: ({text})", "INVALID_TABLE_PROPERTY") from None
    return with_properties(parsed.args.get("properties"))


def unload(ctx: StatementContext, match: re.Match) -> Outcome:
    properties = _text_properties(match.group("props"))
    layout = FileLayout(
        location=folder(match.group("location")),
        fmt=str(properties.get("format") or "PARQUET").upper(),
        compression=str(properties.get("write_compression") or DEFAULT_COMPRESSION).upper(),
        partitioned_by=properties.get("partitioned_by") or [],
        delimiter=properties.get("field_delimiter"),
    )
    _refuse_nonempty(ctx, layout.location, "UNLOAD")
    with planned(ctx, parse(ctx, match.group("query"))) as duckdb_sql:
        written = write(ctx, duckdb_sql, layout)
    return _rows_outcome("DML", "UNLOAD", written)
