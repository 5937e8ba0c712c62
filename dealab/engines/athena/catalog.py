"""Tables as Athena sees them: read from the Glue Data Catalog, their files listed in S3, turned into DuckDB
relations (one read per registered or projected partition, partition values as constant columns)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

import sqlglot
from botocore.exceptions import ClientError

from dealab.engines.athena.datatypes import hive_to_duckdb, trino_name
from dealab.engines.athena.s3reads import ListedObjects
from dealab.wire import s3changes
from dealab.wire.loopback import ENGINE_HEADER_NAME, Loopback, sign
from dealab.wire.readcache import ReadCache

HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
PATH_COLUMN = "$path"  # Athena's hidden column naming each row's file; only present when a query asks for it
FILE_NAME_COLUMN = "__dealab_file"
# Listings kept between queries (GlueCatalog.list_files), and the most objects one may show to be kept: a folder
# holding more is listed at each query, whose reading costs more than its listing anyway.
KEPT_LISTINGS = 16
MAX_KEPT_LISTING_OBJECTS = 10_000
VIEW_PREFIX = "/* Presto View: "
VIEW_SUFFIX = " */"
CATALOG_NAME = "awsdatacatalog"
INFORMATION_SCHEMA = "information_schema"
# information_schema's tables as Athena (Trino) defines them: name → columns (name, DuckDB type). Athena adds
# comment and extra_info ('partition key' for partition columns) to Trino's columns table.
INFORMATION_SCHEMA_TABLES = {
    "schemata": [("catalog_name", "VARCHAR"), ("schema_name", "VARCHAR")],
    "tables": [("table_catalog", "VARCHAR"), ("table_schema", "VARCHAR"), ("table_name", "VARCHAR"), ("table_type", "VARCHAR")],
    "columns": [("table_catalog", "VARCHAR"), ("table_schema", "VARCHAR"), ("table_name", "VARCHAR"),
                ("column_name", "VARCHAR"), ("ordinal_position", "BIGINT"), ("column_default", "VARCHAR"),
                ("is_nullable", "VARCHAR"), ("data_type", "VARCHAR"), ("comment", "VARCHAR"), ("extra_info", "VARCHAR")],
    "views": [("table_catalog", "VARCHAR"), ("table_schema", "VARCHAR"), ("table_name", "VARCHAR"), ("view_definition", "VARCHAR")],
}

# How each storage format is recognised from Glue's SerDe / input format / classification (first match wins).
FORMAT_MARKERS = (
    ("cloudtrail", ("cloudtrailinputformat",)),  # before json: its SerDe is hcatalog's JsonSerDe
    ("parquet", ("parquet",)),
    ("orc", ("orc",)),
    ("avro", ("avro",)),
    ("json", ("json",)),
    ("opencsv", ("opencsvserde",)),
    ("csv", ("lazysimpleserde", "textinputformat", "csv", "tsv", "text")),
)
# What Glue stores for a table of each format Athena writes (CTAS / CREATE EXTERNAL TABLE ... STORED AS).
STORAGE_FOR_FORMAT = {
    "PARQUET": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe", "Parameters": {"serialization.format": "1"}},
    },
    "TEXTFILE": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", "Parameters": {"field.delim": ","}},
    },
    "JSON": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe", "Parameters": {}},
    },
    "ORC": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.orc.OrcSerde", "Parameters": {}},
    },
}


def split_s3(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("s3", "s3a", "s3n") or not parts.netloc:
        raise ValueError(f"not an s3:// location: {url}")
    return parts.netloc, parts.path.lstrip("/")


def folder(url: str) -> str:
    return url if url.endswith("/") else url + "/"


@dataclass
class Table:
    database: str
    name: str
    raw: dict
    # the columns the query's principal may read, when Lake Formation restricts them (governance.py); None: all
    authorized_columns: tuple[str, ...] | None = None
    row_filter: str | None = None  # and the rows, as a DuckDB condition over the table's columns (a data cells filter)

    @property
    def descriptor(self) -> dict:
        return self.raw.get("StorageDescriptor", {})

    @property
    def columns(self) -> list[tuple[str, str]]:
        return [(c["Name"], c.get("Type", "string")) for c in self.descriptor.get("Columns", [])]

    @property
    def partition_keys(self) -> list[tuple[str, str]]:
        return [(c["Name"], c.get("Type", "string")) for c in self.raw.get("PartitionKeys", [])]

    @property
    def location(self) -> str:
        return self.descriptor.get("Location", "")

    @property
    def parameters(self) -> dict:
        return self.raw.get("Parameters", {}) or {}

    @property
    def serde_parameters(self) -> dict:
        return self.descriptor.get("SerdeInfo", {}).get("Parameters", {}) or {}

    @property
    def is_view(self) -> bool:
        return self.raw.get("TableType") == "VIRTUAL_VIEW"

    @property
    def view_sql(self) -> str:
        text = self.raw.get("ViewOriginalText", "")
        if text.startswith(VIEW_PREFIX):
            return json.loads(base64.b64decode(text[len(VIEW_PREFIX) : -len(VIEW_SUFFIX)]))["originalSql"]
        return text

    @property
    def storage_format(self) -> str:
        descriptor = self.descriptor
        haystack = " ".join(
            [
                descriptor.get("SerdeInfo", {}).get("SerializationLibrary", "") or "",
                descriptor.get("InputFormat", "") or "",
                self.parameters.get("classification", ""),
            ]
        ).lower()
        for name, markers in FORMAT_MARKERS:
            if any(marker in haystack for marker in markers):
                return name
        return "csv"

    @property
    def projection(self) -> dict[str, str] | None:
        if self.parameters.get("projection.enabled", "").lower() != "true":
            return None
        return self.parameters


@dataclass
class PartitionFiles:
    values: dict[str, str | None]
    location: str
    files: list[tuple[str, int]] = field(default_factory=list)  # (s3 url, size)


def view_text(sql: str, database: str, columns: list[tuple[str, str]]) -> str:
    """What Athena stores in ViewOriginalText for a view: base64 of a JSON document behind a marker."""
    document = {
        "originalSql": sql,
        "catalog": "awsdatacatalog",
        "schema": database,
        "columns": [{"name": name, "type": trino} for name, trino in columns],
    }
    return VIEW_PREFIX + base64.b64encode(json.dumps(document).encode()).decode() + VIEW_SUFFIX


def is_hidden(key: str) -> bool:
    """Hive skips files whose name starts with _ or . (e.g. _SUCCESS) and folder markers."""
    name = key.rsplit("/", 1)[-1]
    return not name or name.startswith(("_", ".")) or key.endswith("_$folder$")


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _file_list(files: list[tuple[str, int]]) -> str:
    return "[" + ", ".join(_sql_string(url) for url, _ in files) + "]"


def _read_call(table: Table, files: list[tuple[str, int]], hive: bool, union_by_name: bool, with_path: bool) -> tuple[str, bool]:
    """DuckDB's table function for these files (partition values from their k=v folders when `hive`,
    each row's file name when `with_path`), and whether its columns need TRY_CAST from text."""
    listing = _file_list(files)
    if with_path:
        listing += f", filename = '{FILE_NAME_COLUMN}'"
    if hive:
        types = ", ".join(f"{_sql_string(name)}: 'VARCHAR'" for name, _ in table.partition_keys)
        listing += f", hive_partitioning = true, hive_types = {{{types}}}"
    else:
        listing += ", hive_partitioning = false"
    fmt = table.storage_format
    if fmt == "parquet":
        return f"read_parquet({listing}, union_by_name = {str(union_by_name).lower()})", False
    if fmt == "json":
        columns = "{" + ", ".join(f"{_sql_string(name)}: {_sql_string(hive_to_duckdb(kind))}" for name, kind in table.columns) + "}"
        ignore = table.serde_parameters.get("ignore.malformed.json", "false").lower() == "true"
        return f"read_json({listing}, format = 'newline_delimited', columns = {columns}, ignore_errors = {str(ignore).lower()})", False
    if fmt in ("csv", "opencsv"):
        return _csv_call(table, listing, fmt), True
    if fmt == "cloudtrail":
        return _cloudtrail_call(table, listing), False
    raise ValueError(f"HIVE_UNSUPPORTED_FORMAT: dealab cannot read {fmt.upper()} data (table {table.database}.{table.name})")


def _csv_call(table: Table, listing: str, fmt: str) -> str:
    serde = table.serde_parameters
    skip = int(table.parameters.get("skip.header.line.count", serde.get("skip.header.line.count", "0")) or 0)
    columns = "{" + ", ".join(f"{_sql_string(name)}: 'VARCHAR'" for name, _ in table.columns) + "}"
    if fmt == "opencsv":
        delimiter = serde.get("separatorChar", ",")
        quote = serde.get("quoteChar", '"')
        escape = serde.get("escapeChar", "\\")
        null = ""
    else:
        delimiter = serde.get("field.delim") or serde.get("serialization.format") or "\x01"
        delimiter = "\x01" if delimiter == "1" else delimiter
        # LazySimpleSerDe reads escape.delim + any character as that character (awswrangler writes a\,b)
        quote, escape, null = "", serde.get("escape.delim", ""), "\\N"
    options = [
        f"delim = {_sql_string(delimiter)}",
        f"quote = {_sql_string(quote)}",
        f"escape = {_sql_string(escape)}",
        "header = false",
        f"skip = {skip}",
        f"columns = {columns}",
        "auto_detect = false",
        "null_padding = true",
        "strict_mode = false",
        f"nullstr = {_sql_string(null)}" if null else "allow_quoted_nulls = false",
    ]
    return f"read_csv({listing}, {', '.join(options)})"


def _lowered_keys(json_value: str) -> str:
    """A JSON object as a map from its keys in lower case: Hive's JsonSerDe matches field names ignoring case."""
    return (f"map_from_entries(list_transform(map_entries(TRY_CAST({json_value} AS MAP(VARCHAR, JSON))), "
            "__entry -> {'key': lower(__entry.key), 'value': __entry.value}))")


def _json_as(json_value: str, kind: sqlglot.exp.DataType, depth: int = 0) -> str:
    """A JSON value as the Hive type the table declares: a string column takes an object's JSON text (as
    requestparameters does), a struct its fields by lower-cased name, an array each element."""
    Type = sqlglot.exp.DataType.Type
    if kind.this == Type.STRUCT:
        fields = _lowered_keys(json_value)
        members = ", ".join(f"{_ident(field.name)} := {_json_as(f'{fields}[{_sql_string(field.name.lower())}]', field.args['kind'], depth + 1)}"
                            for field in kind.expressions)
        return f"CASE WHEN json_type({json_value}) = 'OBJECT' THEN struct_pack({members}) END"
    if kind.this == Type.ARRAY:
        element = f"__element{depth}"
        return f"list_transform(TRY_CAST({json_value} AS JSON[]), {element} -> {_json_as(element, kind.expressions[0], depth + 1)})"
    if kind.this == Type.MAP:
        return f"TRY_CAST({json_value} AS {kind.sql('duckdb')})"
    text = f"json_extract_string({json_value}, '$')"
    return text if kind.this in (Type.TEXT, Type.VARCHAR) else f"TRY_CAST({text} AS {kind.sql('duckdb')})"


def _cloudtrail_call(table: Table, listing: str) -> str:
    """CloudTrailInputFormat: each file (gzipped) is one {"Records": [...]} document, each record a row whose
    fields the columns name in lower case."""
    fields = "__fields"
    items = ", ".join(f"{_json_as(f'{fields}[{_sql_string(name.lower())}]', sqlglot.exp.DataType.build(kind, dialect='hive'))} AS {_ident(name)}"
                      for name, kind in table.columns)
    records = f"SELECT unnest(Records) AS __record, * FROM read_json({listing}, columns = {{'Records': 'JSON[]'}}, format = 'auto')"
    return (f"(SELECT {items}, * EXCLUDE ({fields}) FROM "
            f"(SELECT {_lowered_keys('__record')} AS {fields}, * EXCLUDE (__record, Records) FROM ({records})))")


def _hive_style(table: Table, partitions: list[PartitionFiles]) -> bool:
    """Whether every file sits under folders naming its partition's values (k=v/...), as MSCK and CTAS lay out."""
    if not table.partition_keys:
        return False
    for partition in partitions:
        values = partition.values
        if any(values.get(name) in (None, HIVE_DEFAULT_PARTITION) for name, _ in table.partition_keys):
            return False
        path = "/" + "/".join(f"{name}={values[name]}" for name, _ in table.partition_keys) + "/"
        if not all(path in url for url, _ in partition.files):
            return False
    return True


def relation_sql(table: Table, partitions: list[PartitionFiles], union_by_name: bool = False, with_path: bool = False) -> str:
    """A DuckDB SELECT giving the table's rows from these partitions, with Glue's column names and types
    (and "$path" when asked): one read of all files when the folders name the partition values, else one
    read per partition."""
    partition_types = dict(table.partition_keys)
    path_item = [f"{FILE_NAME_COLUMN} AS {_ident(PATH_COLUMN)}"] if with_path else []
    with_files = [p for p in partitions if p.files]
    if with_files and _hive_style(table, with_files):
        read, textual = _read_call(table, [f for p in with_files for f in p.files], True, union_by_name, with_path)
        cast = "TRY_CAST" if textual else "CAST"
        items = [f"{cast}({_ident(name)} AS {hive_to_duckdb(kind)}) AS {_ident(name)}" for name, kind in table.columns]
        items += [f"TRY_CAST({_ident(name)} AS {hive_to_duckdb(kind)}) AS {_ident(name)}" for name, kind in table.partition_keys]
        return f"SELECT {', '.join(items + path_item)} FROM {read}"
    branches = []
    for partition in with_files:
        read, textual = _read_call(table, partition.files, False, union_by_name, with_path)
        cast = "TRY_CAST" if textual else "CAST"
        items = [f"{cast}({_ident(name)} AS {hive_to_duckdb(kind)}) AS {_ident(name)}" for name, kind in table.columns]
        for name, kind in table.partition_keys:
            value = partition.values.get(name)
            literal = "NULL" if value is None or value == HIVE_DEFAULT_PARTITION else _sql_string(value)
            items.append(f"TRY_CAST({literal} AS {hive_to_duckdb(partition_types[name])}) AS {_ident(name)}")
        branches.append(f"SELECT {', '.join(items + path_item)} FROM {read}")
    if not branches:
        items = [f"CAST(NULL AS {hive_to_duckdb(kind)}) AS {_ident(name)}" for name, kind in table.columns + table.partition_keys]
        items += ["CAST(NULL AS VARCHAR) AS " + _ident(PATH_COLUMN)] if with_path else []
        return f"SELECT {', '.join(items)} WHERE false"
    return " UNION ALL ".join(branches)


GLUE_READ_PREFIXES = ("Get", "List", "Search", "BatchGet")
S3_NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"
# A listing's pages: each a list of objects shaped as boto3's ListObjectsV2 Contents (Key, Size, ETag, StorageClass).
Lister = Callable[[str, str], Iterator[list[dict]]]


def engine_lister(loopback: Loopback, endpoint_url: str, region: str, engine: str) -> Lister:
    """ListObjectsV2 as the engine's own call, handed to the gateway in this process by the loopback's raw seam:
    what a botocore client does for a listing (request model, signing hooks, XML parser, one dict per object)
    cost more than the listing itself on a query's path."""
    endpoint = endpoint_url.rstrip("/")

    def pages(bucket: str, prefix: str) -> Iterator[list[dict]]:
        token = None
        while True:
            query = f"list-type=2&prefix={quote(prefix, safe='')}" + (f"&continuation-token={quote(token, safe='')}" if token else "")
            url = f"{endpoint}/{bucket}?{query}"
            answer = loopback.dispatch("GET", url, sign("GET", url, {ENGINE_HEADER_NAME: engine}, b"", "s3", region))
            document = ElementTree.fromstring(answer.body) if answer.body else None
            if answer.status >= 400:
                code = document.findtext("Code") if document is not None else None
                message = document.findtext("Message") if document is not None else None
                raise ClientError({"Error": {"Code": code or str(answer.status), "Message": message or ""}}, "ListObjectsV2")
            yield [{"Key": item.findtext(f"{S3_NAMESPACE}Key"), "Size": int(item.findtext(f"{S3_NAMESPACE}Size")),
                    "ETag": item.findtext(f"{S3_NAMESPACE}ETag") or "",
                    "StorageClass": item.findtext(f"{S3_NAMESPACE}StorageClass") or "STANDARD"}
                   for item in document.iter(f"{S3_NAMESPACE}Contents")]
            token = document.findtext(f"{S3_NAMESPACE}NextContinuationToken")
            if document.findtext(f"{S3_NAMESPACE}IsTruncated") != "true" or not token:
                return

    return pages


def writes(glue_operation: str) -> bool:
    """Whether a Glue operation may change the catalog (anything but a read)."""
    return not glue_operation.startswith(GLUE_READ_PREFIXES)


class GlueCatalog:
    """The Glue Data Catalog and S3 listing, reached through AWS APIs as any client would.

    Tables, partitions and whether a database exists are kept between queries until `forget()`, which the
    Athena engine calls around every Glue write that passes the gateway (its own DDL, crawlers, Glue jobs,
    learners' calls). What it returns is shared: callers copy before they change anything."""

    def __init__(self, glue, s3, lister: Lister | None = None, keep_listings: bool = False):
        self.glue = glue
        self.s3 = s3
        self._lister = lister or self._boto_pages  # how list_files lists: the s3 client's, unless given a faster way
        self.listed = ListedObjects()  # every object each listing showed: how queries know what they read is current
        # a folder's listing, kept under the bucket's s3changes mark (no request that may change the bucket has passed
        # the gateway since it was taken); only for a lister listing as the engine itself, whose listing no caller's
        # authorization is asked for
        self._listings: ReadCache[list[list[dict]]] | None = ReadCache(KEPT_LISTINGS) if keep_listings else None
        self._known: dict[tuple, object] = {}
        self._generation = 0  # moved by forget(): an answer fetched across a write is not kept
        self._lock = threading.Lock()
        # the engine's own DDL passes the gateway's engines unexamined, as an engine's own calls do, so its
        # client drops the cache around each of its writes itself
        for event in ("before-call.glue", "after-call.glue"):
            glue.meta.events.register(event, self._around_own_write)

    def _around_own_write(self, model, **_) -> None:
        if writes(model.name):
            self.forget()

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._known.clear()

    def _remembered(self, key: tuple, fetch: Callable[[], object]):
        with self._lock:
            if key in self._known:
                return self._known[key]
            generation = self._generation
        value = fetch()
        with self._lock:
            if generation == self._generation:
                self._known[key] = value
        return value

    def table(self, database: str, name: str) -> Table | None:
        def fetch() -> Table | None:
            try:
                raw = self.glue.get_table(DatabaseName=database, Name=name)["Table"]
            except self.glue.exceptions.EntityNotFoundException:
                return None
            return Table(database, raw["Name"], raw)

        return self._remembered(("table", database, name), fetch)

    def database_exists(self, database: str) -> bool:
        def fetch() -> bool:
            try:
                self.glue.get_database(Name=database)
            except self.glue.exceptions.EntityNotFoundException:
                return False
            return True

        return self._remembered(("database", database), fetch)

    def databases(self) -> list[dict]:
        return [d for page in self.glue.get_paginator("get_databases").paginate() for d in page["DatabaseList"]]

    def tables(self, database: str) -> list[dict]:
        paginator = self.glue.get_paginator("get_tables")
        return [t for page in paginator.paginate(DatabaseName=database) for t in page["TableList"]]

    def information_schema(self, name: str) -> str | None:
        """DuckDB SQL for information_schema.<name> (None for a table it does not have), read from Glue."""
        if name not in INFORMATION_SCHEMA_TABLES:
            return None
        own = [{"Name": table, "TableType": "BASE TABLE", "StorageDescriptor": {"Columns": [
            {"Name": column, "Type": "bigint" if kind == "BIGINT" else "string"} for column, kind in columns]}}
            for table, columns in INFORMATION_SCHEMA_TABLES.items()]
        schemas = {d["Name"]: self.tables(d["Name"]) for d in self.databases()}
        return information_schema_sql(name, {**dict(sorted(schemas.items())), INFORMATION_SCHEMA: own})

    def partitions(self, table: Table) -> list[dict]:
        def fetch() -> list[dict]:
            paginator = self.glue.get_paginator("get_partitions")
            return [p for page in paginator.paginate(DatabaseName=table.database, TableName=table.name) for p in page["Partitions"]]

        return self._remembered(("partitions", table.database, table.name), fetch)

    def list_files(self, location: str) -> list[tuple[str, int]]:
        """Every data file under an s3:// folder (recursively), as (url, size), hidden files left out."""
        bucket, prefix = split_s3(folder(location))
        files = []
        for items in self._pages(bucket, prefix):
            # a kept listing is recorded again: nothing that could change what it shows has passed since it was made
            self.listed.record(bucket, items)
            for item in items:
                if not is_hidden(item["Key"]) and item["Size"] > 0:
                    files.append((f"s3://{bucket}/{item['Key']}", item["Size"]))
        return files

    def _pages(self, bucket: str, prefix: str) -> Iterable[list[dict]]:
        if self._listings is None:
            return self._lister(bucket, prefix)
        mark = s3changes.mark(bucket)

        def keep(pages: list[list[dict]]) -> bool:  # not one made across a change
            return s3changes.mark(bucket) == mark and sum(map(len, pages)) <= MAX_KEPT_LISTING_OBJECTS

        return self._listings.get((bucket, prefix, mark), lambda: list(self._lister(bucket, prefix)), keep)

    def _boto_pages(self, bucket: str, prefix: str) -> Iterator[list[dict]]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield page.get("Contents", [])

    def fill_files(self, table: Table, partitions: list[PartitionFiles], list_each: bool = False) -> None:
        """Puts each partition's files in place: one listing of the table's folder for all partitions inside
        it, or (list_each, when only a few of many partitions are read) one listing per partition."""
        table_folder = folder(table.location) if table.location and not list_each else None
        listed: dict[str, list[tuple[str, int]]] = {}
        for partition in partitions:
            location = folder(partition.location)
            source = table_folder if table_folder and location.startswith(table_folder) else location
            if source not in listed:
                listed[source] = self.list_files(source)
            partition.files = [f for f in listed[source] if f[0].startswith(location)]


def athena_type(hive_type: str) -> str:
    """A Glue column type as Athena spells it in information_schema: string → varchar, array<int> → array(integer)."""
    try:
        return trino_name(hive_to_duckdb(hive_type))
    except (sqlglot.errors.ParseError, ValueError):  # a type sqlglot cannot read: Glue's own spelling is the best there is
        return hive_type


def _schemata(schema: str, tables: list[dict]) -> list[tuple]:
    return [(CATALOG_NAME, schema)]


def _tables(schema: str, tables: list[dict]) -> list[tuple]:
    return [(CATALOG_NAME, schema, t["Name"], "VIEW" if t.get("TableType") == "VIRTUAL_VIEW" else "BASE TABLE") for t in tables]


def _views(schema: str, tables: list[dict]) -> list[tuple]:
    return [(CATALOG_NAME, schema, t["Name"], Table(schema, t["Name"], t).view_sql) for t in tables if t.get("TableType") == "VIRTUAL_VIEW"]


def _columns(schema: str, tables: list[dict]) -> list[tuple]:
    rows = []
    for table in tables:
        columns = [(c, None) for c in table.get("StorageDescriptor", {}).get("Columns", [])]
        columns += [(c, "partition key") for c in table.get("PartitionKeys", [])]
        rows += [(CATALOG_NAME, schema, table["Name"], column["Name"], position, None, "YES",
                  athena_type(column.get("Type", "string")), column.get("Comment"), extra)
                 for position, (column, extra) in enumerate(columns, start=1)]
    return rows


# information_schema table → its rows for one database's Glue tables (in INFORMATION_SCHEMA_TABLES' columns).
INFORMATION_ROWS = {"schemata": _schemata, "tables": _tables, "views": _views, "columns": _columns}


def _value(value) -> str:
    if value is None:
        return "NULL"
    return str(value) if isinstance(value, int) else _sql_string(value)


def information_schema_sql(name: str, schemas: dict[str, list[dict]]) -> str:
    """A DuckDB SELECT giving information_schema.<name> over the databases and their Glue tables
    (information_schema's own included)."""
    columns = INFORMATION_SCHEMA_TABLES[name]
    items = ", ".join(f"CAST({_ident(column)} AS {kind}) AS {_ident(column)}" for column, kind in columns)
    rows = [row for schema, tables in schemas.items() for row in INFORMATION_ROWS[name](schema, tables)]
    if not rows:
        return f"SELECT {', '.join(f'CAST(NULL AS {kind}) AS {_ident(column)}' for column, kind in columns)} WHERE false"
    values = ", ".join("(" + ", ".join(_value(v) for v in row) + ")" for row in rows)
    return f"SELECT {items} FROM (VALUES {values}) AS __information({', '.join(_ident(c) for c, _ in columns)})"
