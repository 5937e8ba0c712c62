"""Each kind of Athena statement and what it does: queries, DDL against the Glue catalog, CTAS / INSERT /
UNLOAD writing real files to S3, SHOW / DESCRIBE / EXPLAIN. Statements sqlglot parses are dispatched by
expression class; Hive-only ones (MSCK, ALTER TABLE ... PARTITION, SHOW, UNLOAD) by STATEMENT_PATTERNS."""

from __future__ import annotations

import fnmatch
import re
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import duckdb
import sqlglot
from sqlglot import exp

from dealab.engines.athena import sandbox, translate
from dealab.engines.athena.catalog import STORAGE_FOR_FORMAT, GlueCatalog, Table, folder, split_s3, view_text
from dealab.engines.athena.datatypes import duckdb_to_hive, trino_name
from dealab.engines.athena.errors import QueryError, from_duckdb, position_of, syntax_error
from dealab.engines.athena.planner import Planner, SchemaDrift
from dealab.engines.athena.results import Outcome

# Athena's write_compression / compression values → DuckDB COPY compression and file suffix, per format.
COMPRESSION = {
    "PARQUET": {"SNAPPY": ("snappy", ""), "GZIP": ("gzip", ""), "ZSTD": ("zstd", ""), "LZ4": ("lz4_raw", ""), "NONE": ("uncompressed", "")},
    "TEXTFILE": {"GZIP": ("gzip", ".gz"), "ZSTD": ("zstd", ".zst"), "NONE": ("none", "")},
    "JSON": {"GZIP": ("gzip", ".gz"), "ZSTD": ("zstd", ".zst"), "NONE": ("none", "")},
}
DEFAULT_COMPRESSION = "GZIP"
# Table property names Athena accepts for the same thing.
PROPERTY_ALIASES = {"format": "format", "storage_format": "format", "write_compression": "write_compression",
                    "compression": "write_compression", "external_location": "external_location",
                    "location": "external_location", "partitioned_by": "partitioned_by",
                    "field_delimiter": "field_delimiter", "bucketed_by": "bucketed_by", "bucket_count": "bucket_count"}
BATCH_PARTITIONS = 100
WRITTEN_AS_BIGINT = frozenset({"HUGEINT", "UBIGINT"})  # DuckDB's sum/count results; Trino's are bigint
BUCKET_FOLDER = "__dealab_bucket"  # a temporary folder level while writing bucketed files


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


# DuckDB's words, while reading, for a Parquet file whose columns differ from the first file's.
SCHEMA_DRIFT = re.compile(r"schema mismatch in glob")


@contextmanager
def _planned(ctx: StatementContext, query: exp.Expression, name_columns: bool = True, database: str | None = None):
    """DuckDB SQL for the query over registered relations; DuckDB failures become Athena's, views are dropped."""
    planner = Planner(ctx.catalog, ctx.connection, ctx.sql, database or ctx.database, ctx.union_by_name)
    try:
        yield planner.plan(query, name_columns)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as error:
        if not ctx.union_by_name and SCHEMA_DRIFT.search(str(error)):
            raise SchemaDrift() from None
        raise from_duckdb(ctx.sql, error) from None
    finally:
        planner.drop()


def _name_parts(text: str) -> list[str]:
    return [part.strip('`"') for part in re.findall(r'`[^`]+`|"[^"]+"|[^.\s;]+', text)]


def _table_name(ctx: StatementContext, text: str) -> tuple[str, str]:
    parts = _name_parts(text)
    return (parts[-2] if len(parts) > 1 else ctx.database).lower(), parts[-1].lower()


def _existing(ctx: StatementContext, text: str) -> Table:
    database, name = _table_name(ctx, text)
    table = ctx.catalog.table(database, name)
    if table is None:
        raise QueryError(f"Table '{database}.{name}' not found", "TABLE_NOT_FOUND", position_of(ctx.sql, name))
    return table


def _literal(node: exp.Expression | None):
    if node is None:
        return None
    if isinstance(node, (exp.Array, exp.Tuple)):
        return [_literal(e) for e in node.expressions]
    if isinstance(node, exp.Schema):
        return [e.name for e in node.expressions]
    return node.name if isinstance(node, (exp.Literal, exp.Var, exp.Identifier, exp.Column)) else node.sql()


def _with_properties(properties: exp.Properties | None) -> dict:
    found = {}
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.FileFormatProperty):
            found["format"] = _literal(prop.this)
        elif isinstance(prop, exp.PartitionedByProperty):
            found["partitioned_by"] = _literal(prop.this)
        elif isinstance(prop, exp.LocationProperty):
            found["external_location"] = _literal(prop.this)
        elif type(prop) is exp.Property:
            found[PROPERTY_ALIASES.get(prop.name.lower(), prop.name.lower())] = _literal(prop.args.get("value"))
    return found


def _text_properties(text: str) -> dict:
    """key = value pairs of an UNLOAD ... WITH (...) clause."""
    try:
        parsed = sqlglot.parse_one(f"CREATE TABLE t WITH ({text}) AS SELECT 1", read=translate.DIALECT)
    except sqlglot.errors.ParseError:
        raise QueryError(f"Invalid UNLOAD properties: ({text})", "INVALID_TABLE_PROPERTY") from None
    return _with_properties(parsed.args.get("properties"))


def _s3(ctx: StatementContext):
    return ctx.catalog.s3


def _location_is_empty(ctx: StatementContext, location: str) -> bool:
    bucket, prefix = split_s3(folder(location))
    listing = _s3(ctx).list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    return listing.get("KeyCount", 0) == 0


# ---------------------------------------------------------------- queries


def run_query(ctx: StatementContext, query: exp.Expression) -> Outcome:
    with _planned(ctx, query) as duckdb_sql:
        relation = ctx.connection.sql(duckdb_sql)
        names, types = list(relation.columns), [str(t) for t in relation.types]
        rows = relation.fetchall()
    return Outcome.from_rows("DML", "SELECT", names, types, rows)


def explain(ctx: StatementContext, match: re.Match) -> Outcome:
    with _planned(ctx, _parse(ctx, match.group("query"))) as duckdb_sql:
        lines = [row[1] for row in ctx.connection.execute("EXPLAIN " + duckdb_sql).fetchall()]
    text = "\n".join(lines).splitlines()
    return Outcome("DML", "EXPLAIN", [("Query Plan", "VARCHAR")], [[line] for line in text])


def _parse(ctx: StatementContext, sql: str) -> exp.Expression:
    try:
        return sqlglot.parse_one(sql, read=translate.DIALECT)
    except sqlglot.errors.ParseError as error:
        raise syntax_error(ctx.sql, error) from None


# ---------------------------------------------------------------- writing files (CTAS, INSERT, UNLOAD)


def _write(ctx: StatementContext, select_sql: str, location: str, fmt: str, compression: str,
           partitioned_by: list[str], delimiter: str | None, bucketing: tuple[list[str], int] | None = None,
           ) -> tuple[list[str], list[dict[str, str]], list[tuple[str, str]], int]:
    """Runs the query into local files (one folder per partition, one file per bucket when bucketed), uploads
    them under `location`; returns (urls, partitions, columns, rows)."""
    fmt = fmt.upper()
    if fmt not in COMPRESSION:
        raise QueryError(f"format '{fmt}' is not supported by dealab (PARQUET, TEXTFILE and JSON are)", "NOT_SUPPORTED")
    codec, suffix = COMPRESSION[fmt].get(compression.upper(), (None, None))
    if codec is None:
        raise QueryError(f"Unsupported compression '{compression}' for format {fmt}", "INVALID_TABLE_PROPERTY")
    relation = ctx.connection.sql(select_sql)
    columns = list(zip(relation.columns, [str(t) for t in relation.types]))
    missing = [p for p in partitioned_by if p.lower() not in [c.lower() for c, _ in columns]]
    if missing:
        raise QueryError(f"Partition column(s) {missing} not present in the query", "INVALID_TABLE_PROPERTY")
    if partitioned_by and [c.lower() for c, _ in columns[-len(partitioned_by):]] != [p.lower() for p in partitioned_by]:
        raise QueryError("Partition columns must be the last columns in the SELECT list, in partitioned_by order", "INVALID_TABLE_PROPERTY")
    wide = [name for name, kind in columns if kind.upper() in WRITTEN_AS_BIGINT]
    if wide:  # files hold what Athena would write: 64-bit integers for sums and counts
        replaced = ", ".join(f'CAST("{name}" AS BIGINT) AS "{name}"' for name in wide)
        select_sql = f"SELECT * REPLACE ({replaced}) FROM ({select_sql})"
        columns = [(name, "BIGINT" if name in wide else kind) for name, kind in columns]
    bucket_columns, bucket_count = bucketing or ([], 0)
    unknown = [c for c in bucket_columns if c.lower() not in [name.lower() for name, _ in columns]]
    if unknown or (bucket_columns and bucket_count < 1):
        raise QueryError(f"bucketed_by {bucket_columns} needs columns of the query and a bucket_count of at least 1", "INVALID_TABLE_PROPERTY")
    folders_by = list(partitioned_by)
    copy_sql = select_sql
    if bucket_columns:
        hashed = ", ".join(f'"{c}"' for c in bucket_columns)
        copy_sql = f'SELECT *, (hash({hashed}) % {bucket_count})::INTEGER AS "{BUCKET_FOLDER}" FROM ({select_sql})'
        folders_by.append(BUCKET_FOLDER)
    out = Path(tempfile.mkdtemp(prefix="ctas-", dir=ctx.scratch))
    options = {
        "PARQUET": f"FORMAT parquet, COMPRESSION {codec}",
        "TEXTFILE": f"FORMAT csv, HEADER false, DELIMITER '{(delimiter or chr(1))}', QUOTE '', ESCAPE '', NULLSTR '\\N', COMPRESSION {codec}",
        "JSON": f"FORMAT json, COMPRESSION {codec}",
    }[fmt]
    if folders_by:
        options += ", PARTITION_BY (" + ", ".join(f'"{p}"' for p in folders_by) + ")"
    target = out if folders_by else out / "data"
    count_row = ctx.connection.execute(f"COPY ({copy_sql}) TO '{target}' ({options})").fetchone()
    rows = int(count_row[0]) if count_row else 0
    bucket, prefix = split_s3(folder(location))
    urls, partitions, seen = [], [], set()
    written = sorted(p for p in out.rglob("*") if p.is_file())
    for number, path in enumerate(written):
        parts = [part for part in path.parent.relative_to(out).as_posix().split("/") if part != "."]
        name = f"{ctx.execution_id}_{number:05d}{suffix}"
        if bucket_columns:
            name = f"{ctx.execution_id}_bucket-{int(parts.pop().split('=', 1)[1]):05d}_{number:05d}{suffix}"
        relative_dir = "".join(part + "/" for part in parts)
        key = f"{prefix}{relative_dir}{name}"
        _s3(ctx).upload_file(str(path), bucket, key)
        urls.append(f"s3://{bucket}/{key}")
        if partitioned_by and relative_dir not in seen:
            seen.add(relative_dir)
            values = dict(part.split("=", 1) for part in relative_dir.strip("/").split("/"))
            partitions.append({k: unquote(v) for k, v in values.items()})
    return urls, partitions, columns, rows


def _storage(fmt: str, location: str, columns: list[tuple[str, str]], compression: str, delimiter: str | None) -> dict:
    storage = {k: (dict(v) if isinstance(v, dict) else v) for k, v in STORAGE_FOR_FORMAT[fmt].items()}
    storage["SerdeInfo"] = {**storage["SerdeInfo"], "Parameters": dict(storage["SerdeInfo"]["Parameters"])}
    if fmt == "TEXTFILE":
        storage["SerdeInfo"]["Parameters"]["field.delim"] = delimiter or "\x01"
    storage.update(Columns=[{"Name": n, "Type": t} for n, t in columns], Location=location, Compressed=compression.upper() != "NONE")
    return storage


def _register_partitions(ctx: StatementContext, table_raw: dict, database: str, partition_values: list[dict[str, str]]) -> None:
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


def create_table_as(ctx: StatementContext, create: exp.Create) -> Outcome:
    table_ref = create.this if isinstance(create.this, exp.Table) else create.this.this
    database, name = (table_ref.db or ctx.database).lower(), table_ref.name.lower()
    if ctx.catalog.table(database, name) is not None:
        if create.args.get("exists"):
            return Outcome("DDL", "CREATE_TABLE_AS_SELECT", [("rows", "BIGINT")], [["0"]])
        raise QueryError(f"Destination table 'awsdatacatalog.{database}.{name}' already exists", "TABLE_ALREADY_EXISTS", (1, 1))
    if not ctx.catalog.database_exists(database):
        raise QueryError(f"Schema '{database}' does not exist", "SCHEMA_NOT_FOUND", position_of(ctx.sql, name))
    properties = _with_properties(create.args.get("properties"))
    fmt = str(properties.get("format") or "PARQUET").upper()
    compression = str(properties.get("write_compression") or DEFAULT_COMPRESSION).upper()
    location = folder(properties.get("external_location") or f"{ctx.output_folder}tables/{ctx.execution_id}/")
    partitioned_by = properties.get("partitioned_by") or []
    if not _location_is_empty(ctx, location):
        raise QueryError(f"Target directory for table '{database}.{name}' already exists: {location}", "HIVE_PATH_ALREADY_EXISTS")
    with _planned(ctx, create.expression) as duckdb_sql:
        bucketing = (properties.get("bucketed_by") or [], int(properties.get("bucket_count") or 0)) if properties.get("bucketed_by") else None
        urls, partitions, columns, rows = _write(ctx, duckdb_sql, location, fmt, compression, partitioned_by,
                                                 properties.get("field_delimiter"), bucketing)
    partition_set = {p.lower() for p in partitioned_by}
    hive_columns = [(n, duckdb_to_hive(t)) for n, t in columns]
    table_input = {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": fmt.lower(), "has_encrypted_data": "false",
                       f"{fmt.lower()}.compression" if fmt == "PARQUET" else "write.compression": compression},
        "StorageDescriptor": _storage(fmt, location, [c for c in hive_columns if c[0].lower() not in partition_set], compression, properties.get("field_delimiter")),
        "PartitionKeys": [{"Name": n, "Type": t} for n, t in hive_columns if n.lower() in partition_set],
    }
    if bucketing:
        table_input["StorageDescriptor"].update(BucketColumns=bucketing[0], NumberOfBuckets=bucketing[1])
    ctx.catalog.glue.create_table(DatabaseName=database, TableInput=table_input)
    if partitions:
        _register_partitions(ctx, table_input, database, partitions)
    return Outcome("DDL", "CREATE_TABLE_AS_SELECT", [("rows", "BIGINT")], [[str(rows)]], data_files=urls, update_count=rows)


def insert_into(ctx: StatementContext, insert: exp.Insert) -> Outcome:
    target = insert.this if isinstance(insert.this, exp.Table) else insert.this.this
    table = _existing(ctx, target.sql(translate.DIALECT))
    fmt = {"parquet": "PARQUET", "json": "JSON", "csv": "TEXTFILE"}.get(table.storage_format)
    if fmt is None or table.is_view:
        raise QueryError(f"Inserting into {table.storage_format.upper()} table {table.database}.{table.name} is not supported by dealab", "NOT_SUPPORTED")
    names = [n for n, _ in table.columns + table.partition_keys]
    compression = table.parameters.get("parquet.compression") or table.parameters.get("write.compression") or DEFAULT_COMPRESSION
    quoted = ", ".join(f'"{n}"' for n in names)
    with _planned(ctx, insert.expression, name_columns=False) as duckdb_sql:
        width = len(ctx.connection.sql(duckdb_sql).columns)
        if width != len(names):
            raise QueryError(f"Insert query has mismatched column types: Table: {len(names)} columns, Query: {width} columns", "TYPE_MISMATCH")
        select_sql = f"SELECT * FROM ({duckdb_sql}) AS __inserted({quoted})"
        urls, partitions, _, rows = _write(ctx, select_sql, table.location, fmt, compression,
                                           [n for n, _ in table.partition_keys], table.serde_parameters.get("field.delim"))
    if partitions:
        existing = {tuple(p["Values"]) for p in ctx.catalog.partitions(table)}
        keys = [n for n, _ in table.partition_keys]
        new = [p for p in partitions if tuple(p[k] for k in keys) not in existing]
        if new:
            _register_partitions(ctx, table.raw, table.database, new)
    return Outcome("DML", "INSERT", [("rows", "BIGINT")], [[str(rows)]], data_files=urls, update_count=rows)


def unload(ctx: StatementContext, match: re.Match) -> Outcome:
    properties = _text_properties(match.group("props"))
    location = folder(match.group("location"))
    if not _location_is_empty(ctx, location):
        raise QueryError(f"Target directory for UNLOAD already exists: {location}", "HIVE_PATH_ALREADY_EXISTS")
    with _planned(ctx, _parse(ctx, match.group("query"))) as duckdb_sql:
        urls, _, _, rows = _write(ctx, duckdb_sql, location, str(properties.get("format") or "PARQUET"),
                                  str(properties.get("write_compression") or DEFAULT_COMPRESSION),
                                  properties.get("partitioned_by") or [], properties.get("field_delimiter"))
    return Outcome("DML", "UNLOAD", [("rows", "BIGINT")], [[str(rows)]], data_files=urls, update_count=rows)


# ---------------------------------------------------------------- DDL on the catalog


def _hive_type(kind: exp.DataType) -> str:
    return kind.sql("hive").lower().replace(": ", ":").replace(", ", ",")


def create_external_table(ctx: StatementContext, create: exp.Create) -> Outcome:
    schema = create.this
    table_ref = schema.this
    database, name = (table_ref.db or ctx.database).lower(), table_ref.name.lower()
    if not ctx.catalog.database_exists(database):
        raise QueryError(f"Database does not exist: {database}", "SemanticException")
    if ctx.catalog.table(database, name) is not None:
        if create.args.get("exists"):
            return Outcome.lines("DDL", "CREATE_TABLE", "result", [])
        raise QueryError(f"Table {name} already exists", "AlreadyExistsException")
    columns = [{"Name": c.name.lower(), "Type": _hive_type(c.args["kind"])} for c in schema.expressions if isinstance(c, exp.ColumnDef)]
    descriptor = {"Columns": columns, "SerdeInfo": {"Parameters": {}}, "Compressed": False}
    parameters = {"EXTERNAL": "TRUE"}
    partition_keys = []
    for prop in create.args["properties"].expressions:
        if isinstance(prop, exp.PartitionedByProperty):
            partition_keys = [{"Name": c.name.lower(), "Type": _hive_type(c.args["kind"])} for c in prop.this.expressions]
        elif isinstance(prop, exp.LocationProperty):
            descriptor["Location"] = prop.this.name
        elif isinstance(prop, exp.FileFormatProperty):
            if isinstance(prop.this, exp.InputOutputFormat):
                descriptor["InputFormat"] = prop.this.args["input_format"].name
                descriptor["OutputFormat"] = prop.this.args["output_format"].name
            else:
                fmt = prop.this.name.upper().replace("JSONFILE", "JSON")
                storage = STORAGE_FOR_FORMAT.get(fmt, STORAGE_FOR_FORMAT["TEXTFILE"])
                descriptor["InputFormat"], descriptor["OutputFormat"] = storage["InputFormat"], storage["OutputFormat"]
                if not descriptor["SerdeInfo"].get("SerializationLibrary"):
                    descriptor["SerdeInfo"]["SerializationLibrary"] = storage["SerdeInfo"]["SerializationLibrary"]
        elif isinstance(prop, exp.RowFormatSerdeProperty):
            descriptor["SerdeInfo"]["SerializationLibrary"] = prop.this.name
            serde = prop.args.get("serde_properties")
            for item in serde.expressions if serde else []:
                descriptor["SerdeInfo"]["Parameters"][item.name] = item.args["value"].name
        elif isinstance(prop, exp.RowFormatDelimitedProperty):
            descriptor["SerdeInfo"]["SerializationLibrary"] = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
            for arg, key in (("fields", "field.delim"), ("escaped", "escape.delim"), ("lines", "line.delim"),
                             ("collection_items", "collection.delim"), ("map_keys", "mapkey.delim")):
                if prop.args.get(arg) is not None:
                    descriptor["SerdeInfo"]["Parameters"][key] = prop.args[arg].name
        elif type(prop) is exp.Property:
            parameters[prop.name] = prop.args["value"].name
        elif isinstance(prop, exp.SchemaCommentProperty):
            parameters["comment"] = prop.this.name
    if "Location" not in descriptor:
        raise QueryError("LOCATION is required for an external table (an s3:// folder)", "SemanticException")
    if descriptor["SerdeInfo"].get("SerializationLibrary", "").endswith("LazySimpleSerDe"):
        descriptor["SerdeInfo"]["Parameters"].setdefault("serialization.format", descriptor["SerdeInfo"]["Parameters"].get("field.delim", "1"))
    descriptor.setdefault("InputFormat", STORAGE_FOR_FORMAT["TEXTFILE"]["InputFormat"])
    descriptor.setdefault("OutputFormat", STORAGE_FOR_FORMAT["TEXTFILE"]["OutputFormat"])
    descriptor["SerdeInfo"].setdefault("SerializationLibrary", STORAGE_FOR_FORMAT["TEXTFILE"]["SerdeInfo"]["SerializationLibrary"])
    ctx.catalog.glue.create_table(
        DatabaseName=database,
        TableInput={"Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": parameters, "StorageDescriptor": descriptor, "PartitionKeys": partition_keys},
    )
    return Outcome.lines("DDL", "CREATE_TABLE", "result", [])


def create_view(ctx: StatementContext, create: exp.Create) -> Outcome:
    table_ref = create.this
    database, name = (table_ref.db or ctx.database).lower(), table_ref.name.lower()
    existing = ctx.catalog.table(database, name)
    if existing is not None and not create.args.get("replace"):
        raise QueryError(f"View 'awsdatacatalog.{database}.{name}' already exists", "ALREADY_EXISTS", (1, 1))
    body = create.expression
    with _planned(ctx, body, database=database) as duckdb_sql:
        relation = ctx.connection.sql(duckdb_sql)
        columns = list(zip(relation.columns, [str(t) for t in relation.types]))
    original = body.sql(translate.DIALECT)
    table_input = {
        "Name": name,
        "TableType": "VIRTUAL_VIEW",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "ViewOriginalText": view_text(original, database, [(n, trino_name(t)) for n, t in columns]),
        "ViewExpandedText": "/* Presto View */",
        "StorageDescriptor": {"Columns": [{"Name": n, "Type": duckdb_to_hive(t)} for n, t in columns], "SerdeInfo": {}},
    }
    if existing is not None:
        ctx.catalog.glue.update_table(DatabaseName=database, TableInput=table_input)
    else:
        ctx.catalog.glue.create_table(DatabaseName=database, TableInput=table_input)
    return Outcome.lines("DDL", "CREATE_VIEW", "result", [])


def create_database(ctx: StatementContext, create: exp.Create) -> Outcome:
    name = create.this.name.lower()
    if ctx.catalog.database_exists(name):
        if create.args.get("exists"):
            return Outcome.lines("DDL", "CREATE_DATABASE", "result", [])
        raise QueryError(f"Database {name} already exists", "AlreadyExistsException")
    database_input = {"Name": name}
    for prop in (create.args.get("properties").expressions if create.args.get("properties") else []):
        if isinstance(prop, exp.LocationProperty):
            database_input["LocationUri"] = prop.this.name
        elif isinstance(prop, exp.SchemaCommentProperty):
            database_input["Description"] = prop.this.name
    ctx.catalog.glue.create_database(DatabaseInput=database_input)
    return Outcome.lines("DDL", "CREATE_DATABASE", "result", [])


def drop(ctx: StatementContext, statement: exp.Drop) -> Outcome:
    kind = (statement.args.get("kind") or "TABLE").upper()
    target = (statement.args.get("tables") or [statement.this])[0]
    glue = ctx.catalog.glue
    if kind in ("DATABASE", "SCHEMA"):
        name = target.name.lower()
        if not ctx.catalog.database_exists(name):
            if statement.args.get("exists"):
                return Outcome.lines("DDL", "DROP_DATABASE", "result", [])
            raise QueryError(f"Database does not exist: {name}", "SemanticException")
        tables = ctx.catalog.tables(name)
        if tables and not statement.args.get("cascade"):
            raise QueryError(f"Database {name} is not empty. One or more tables exist.", "InvalidOperationException")
        glue.delete_database(Name=name)
        return Outcome.lines("DDL", "DROP_DATABASE", "result", [])
    database, name = (target.db or ctx.database).lower(), target.name.lower()
    table = ctx.catalog.table(database, name)
    if table is None or (kind == "VIEW") != table.is_view:
        if statement.args.get("exists"):
            return Outcome.lines("DDL", f"DROP_{kind}", "result", [])
        what = "View" if kind == "VIEW" else "Table"
        raise QueryError(f"{what} '{database}.{name}' not found", f"{what.upper()}_NOT_FOUND", position_of(ctx.sql, name))
    glue.delete_table(DatabaseName=database, Name=name)
    return Outcome.lines("DDL", f"DROP_{kind}", "result", [])


_PARTITION_SPEC = re.compile(r"PARTITION\s*\((?P<spec>[^)]*)\)(?:\s*LOCATION\s+'(?P<location>[^']*)')?", re.I)
_SPEC_ITEM = re.compile(r"[`\"]?(\w+)[`\"]?\s*=\s*(?:'((?:[^']|'')*)'|([^,\s]+))")


def _partition_specs(text: str) -> list[tuple[dict[str, str], str | None]]:
    specs = []
    for match in _PARTITION_SPEC.finditer(text):
        values = {m.group(1).lower(): (m.group(2).replace("''", "'") if m.group(2) is not None else m.group(3)) for m in _SPEC_ITEM.finditer(match.group("spec"))}
        specs.append((values, match.group("location")))
    return specs


def add_partitions(ctx: StatementContext, match: re.Match) -> Outcome:
    table = _existing(ctx, match.group("table"))
    keys = [k for k, _ in table.partition_keys]
    existing = {tuple(p["Values"]) for p in ctx.catalog.partitions(table)}
    inputs = []
    for values, location in _partition_specs(match.group("rest")):
        if sorted(values) != sorted(keys):
            raise QueryError(f"Partition spec {values} does not match the partition keys {keys} of {table.name}", "SemanticException")
        ordered = [values[k] for k in keys]
        if tuple(ordered) in existing:
            if re.search(r"IF\s+NOT\s+EXISTS", match.group("rest"), re.I):
                continue
            raise QueryError(f"Partition already exists: {dict(zip(keys, ordered))}", "AlreadyExistsException")
        descriptor = dict(table.descriptor)
        descriptor["Location"] = folder(location) if location else folder(table.location) + "/".join(f"{k}={values[k]}" for k in keys) + "/"
        inputs.append({"Values": ordered, "StorageDescriptor": descriptor})
    for start in range(0, len(inputs), BATCH_PARTITIONS):
        ctx.catalog.glue.batch_create_partition(DatabaseName=table.database, TableName=table.name, PartitionInputList=inputs[start : start + BATCH_PARTITIONS])
    return Outcome.lines("DDL", "ALTER_TABLE_ADD_PARTITION", "result", [])


def drop_partitions(ctx: StatementContext, match: re.Match) -> Outcome:
    table = _existing(ctx, match.group("table"))
    keys = [k for k, _ in table.partition_keys]
    existing = {tuple(p["Values"]) for p in ctx.catalog.partitions(table)}
    doomed = []
    for values, _ in _partition_specs(match.group("rest")):
        ordered = tuple(values.get(k) for k in keys)
        if ordered not in existing:
            if re.search(r"IF\s+EXISTS", match.group("rest"), re.I):
                continue
            raise QueryError(f"No partition is dropped: {values}", "SemanticException")
        doomed.append({"Values": list(ordered)})
    if doomed:
        ctx.catalog.glue.batch_delete_partition(DatabaseName=table.database, TableName=table.name, PartitionsToDelete=doomed)
    return Outcome.lines("DDL", "ALTER_TABLE_DROP_PARTITION", "result", [])


def msck_repair(ctx: StatementContext, match: re.Match) -> Outcome:
    table = _existing(ctx, match.group("table"))
    keys = [k for k, _ in table.partition_keys]
    if not keys:
        return Outcome.lines("DDL", "MSCK_REPAIR_TABLE", "result", [])
    base = folder(table.location)
    found: dict[tuple[str, ...], None] = {}
    for url, _ in ctx.catalog.list_files(base):
        segments = url[len(base):].split("/")[: len(keys)]
        pairs = [segment.split("=", 1) for segment in segments if "=" in segment]
        if len(pairs) == len(keys) and [p[0].lower() for p in pairs] == keys:
            found[tuple(unquote(p[1]) for p in pairs)] = None
    existing = {tuple(p["Values"]) for p in ctx.catalog.partitions(table)}
    missing = [values for values in found if values not in existing]
    names = [f"{table.name}:" + "/".join(f"{k}={v}" for k, v in zip(keys, values)) for values in missing]
    if missing:
        _register_partitions(ctx, table.raw, table.database, [dict(zip(keys, values)) for values in missing])
    lines = (["Partitions not in metastore:\t" + "\t".join(names)] if names else []) + [f"Repair: Added partition to metastore {n}" for n in names]
    return Outcome.lines("DDL", "MSCK_REPAIR_TABLE", "result", lines)


# ---------------------------------------------------------------- SHOW / DESCRIBE


def _like(pattern: str | None, name: str) -> bool:
    if not pattern:
        return True
    return any(fnmatch.fnmatch(name, alternative.strip().replace("%", "*")) for alternative in pattern.split("|"))


def show_databases(ctx: StatementContext, match: re.Match) -> Outcome:
    names = sorted(d["Name"] for d in ctx.catalog.databases())
    return Outcome.lines("UTILITY", "SHOW_DATABASES", "database_name", [n for n in names if _like(match.group("like"), n)])


def show_tables(ctx: StatementContext, match: re.Match) -> Outcome:
    database = _name_parts(match.group("db"))[-1].lower() if match.group("db") else ctx.database
    if not ctx.catalog.database_exists(database):
        raise QueryError(f"Database does not exist: {database}", "SemanticException")
    views_only = match.group("what").upper() == "VIEWS"
    names = sorted(t["Name"] for t in ctx.catalog.tables(database) if not views_only or t.get("TableType") == "VIRTUAL_VIEW")
    return Outcome.lines("UTILITY", "SHOW_TABLES", "tab_name", [n for n in names if _like(match.group("like"), n)])


def show_partitions(ctx: StatementContext, match: re.Match) -> Outcome:
    table = _existing(ctx, match.group("table"))
    keys = [k for k, _ in table.partition_keys]
    if not keys:
        raise QueryError(f"Table {table.name} is not a partitioned table", "SemanticException")
    lines = sorted("/".join(f"{k}={v}" for k, v in zip(keys, p["Values"])) for p in ctx.catalog.partitions(table))
    return Outcome.lines("UTILITY", "SHOW_PARTITIONS", "partition", lines)


def show_columns(ctx: StatementContext, match: re.Match) -> Outcome:
    text = match.group("table") if not match.group("db") else f"{match.group('db')}.{match.group('table')}"
    table = _existing(ctx, text)
    return Outcome.lines("UTILITY", "SHOW_COLUMNS", "field", [n for n, _ in table.columns + table.partition_keys])


def describe(ctx: StatementContext, match: re.Match) -> Outcome:
    table = _existing(ctx, match.group("table"))
    lines = [f"{name}\t{kind}\t" for name, kind in table.columns + table.partition_keys]
    if table.partition_keys:
        lines += ["\t \t ", "# Partition Information\t \t ", "# col_name\tdata_type\tcomment", "\t \t "]
        lines += [f"{name}\t{kind}\t" for name, kind in table.partition_keys]
    return Outcome.lines("UTILITY", "DESCRIBE_TABLE", "col_name", lines)


def show_create_table(ctx: StatementContext, match: re.Match) -> Outcome:
    table = _existing(ctx, match.group("table"))
    if table.is_view:
        return Outcome.lines("UTILITY", "SHOW_CREATE_VIEW", "createtab_stmt", [f"CREATE VIEW {table.database}.{table.name} AS", table.view_sql])
    serde = table.descriptor.get("SerdeInfo", {})
    lines = [f"CREATE EXTERNAL TABLE `{table.database}`.`{table.name}`("]
    lines += [f"  `{n}` {t}{',' if i < len(table.columns) - 1 else ')'}" for i, (n, t) in enumerate(table.columns)]
    if table.partition_keys:
        lines += ["PARTITIONED BY ( "] + [f"  `{n}` {t}{',' if i < len(table.partition_keys) - 1 else ')'}" for i, (n, t) in enumerate(table.partition_keys)]
    lines += ["ROW FORMAT SERDE ", f"  '{serde.get('SerializationLibrary', '')}' "]
    if serde.get("Parameters"):
        lines += ["WITH SERDEPROPERTIES ( "] + [f"  '{k}'='{v}'{',' if i < len(serde['Parameters']) - 1 else ')'}" for i, (k, v) in enumerate(serde["Parameters"].items())]
    lines += ["STORED AS INPUTFORMAT ", f"  '{table.descriptor.get('InputFormat', '')}' ", "OUTPUTFORMAT ",
              f"  '{table.descriptor.get('OutputFormat', '')}'", "LOCATION", f"  '{table.location}'"]
    params = {k: v for k, v in table.parameters.items() if k != "EXTERNAL"}
    if params:
        lines += ["TBLPROPERTIES ("] + [f"  '{k}'='{v}'{',' if i < len(params) - 1 else ')'}" for i, (k, v) in enumerate(params.items())]
    return Outcome.lines("UTILITY", "SHOW_CREATE_TABLE", "createtab_stmt", lines)


_NAME = r"(?P<table>(?:`[^`]+`|\"[^\"]+\"|[\w$-]+)(?:\.(?:`[^`]+`|\"[^\"]+\"|[\w$-]+))?)"
# Statements sqlglot does not parse, by the pattern of their text (checked before sqlglot's parse).
STATEMENT_PATTERNS: list[tuple[re.Pattern, Callable[[StatementContext, re.Match], Outcome]]] = [
    (re.compile(r"^\s*MSCK\s+REPAIR\s+TABLE\s+" + _NAME + r"\s*;?\s*$", re.I | re.S), msck_repair),
    (re.compile(r"^\s*ALTER\s+TABLE\s+" + _NAME + r"\s+ADD\s+(?P<rest>.*?)\s*;?\s*$", re.I | re.S), add_partitions),
    (re.compile(r"^\s*ALTER\s+TABLE\s+" + _NAME + r"\s+DROP\s+(?P<rest>.*?)\s*;?\s*$", re.I | re.S), drop_partitions),
    (re.compile(r"^\s*SHOW\s+(?:DATABASES|SCHEMAS)(?:\s+LIKE)?(?:\s+'(?P<like>[^']*)')?\s*;?\s*$", re.I), show_databases),
    (re.compile(r"^\s*SHOW\s+(?P<what>TABLES|VIEWS)(?:\s+(?:IN|FROM)\s+(?P<db>[\w`\"-]+))?(?:\s+(?:LIKE\s+)?'(?P<like>[^']*)')?\s*;?\s*$", re.I), show_tables),
    (re.compile(r"^\s*SHOW\s+PARTITIONS\s+" + _NAME + r"\s*;?\s*$", re.I), show_partitions),
    (re.compile(r"^\s*SHOW\s+COLUMNS\s+(?:IN|FROM)\s+" + _NAME + r"(?:\s+(?:IN|FROM)\s+(?P<db>[\w`\"-]+))?\s*;?\s*$", re.I), show_columns),
    (re.compile(r"^\s*SHOW\s+CREATE\s+(?:TABLE|VIEW)\s+" + _NAME + r"\s*;?\s*$", re.I), show_create_table),
    (re.compile(r"^\s*(?:DESCRIBE|DESC)\s+(?:FORMATTED\s+|EXTENDED\s+)?" + _NAME + r"\s*;?\s*$", re.I), describe),
    (re.compile(r"^\s*EXPLAIN\s+(?:\((?:[^)]*)\)\s*)?(?P<query>.*?)\s*;?\s*$", re.I | re.S), explain),
    (re.compile(r"^\s*UNLOAD\s*\((?P<query>.*)\)\s*TO\s+'(?P<location>[^']+)'\s*WITH\s*\((?P<props>.*)\)\s*;?\s*$", re.I | re.S), unload),
]
QUERY_CLASSES = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)
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


def _execute(ctx: StatementContext) -> Outcome:
    sql = ctx.sql.strip().rstrip(";").strip()
    if not sql:
        raise QueryError("mismatched input '<EOF>'. Expecting: " + ", ".join(f"'{k}'" for k in STATEMENT_KEYWORDS), position=(1, 1))
    first = re.match(r"[\s(]*(\w+)", sql)
    if first:
        sandbox.refuse_statement(ctx.sql, first.group(1))
    if first and first.group(1).upper() not in STATEMENT_KEYWORDS:
        raise _not_a_statement(ctx.sql, first.group(1))
    for pattern, handler in STATEMENT_PATTERNS:
        match = pattern.match(sql)
        if match:
            return handler(ctx, match)
    try:
        statements = [s for s in sqlglot.parse(sql, read=translate.DIALECT) if s is not None]
    except sqlglot.errors.ParseError as error:
        raise syntax_error(ctx.sql, error) from None
    if len(statements) != 1:
        raise QueryError(f"Only one sql statement is allowed. Got: {len(statements)}")
    statement = statements[0]
    if isinstance(statement, QUERY_CLASSES):
        return run_query(ctx, statement)
    if isinstance(statement, exp.Create):
        kind = (statement.args.get("kind") or "").upper()
        if kind in ("DATABASE", "SCHEMA"):
            return create_database(ctx, statement)
        if kind == "VIEW":
            return create_view(ctx, statement)
        if kind == "TABLE" and statement.expression is not None:
            return create_table_as(ctx, statement)
        if kind == "TABLE":
            return create_external_table(ctx, statement)
    if isinstance(statement, exp.Insert):
        return insert_into(ctx, statement)
    if isinstance(statement, exp.Drop):
        return drop(ctx, statement)
    raise _not_a_statement(ctx.sql, sql.split(None, 1)[0])
