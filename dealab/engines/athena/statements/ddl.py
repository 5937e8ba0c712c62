"""DDL on the Glue catalog: CREATE EXTERNAL TABLE / VIEW / DATABASE, DROP, ALTER TABLE ... SET LOCATION."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import exp

from dealab.engines.athena import translate
from dealab.engines.athena.catalog import STORAGE_FOR_FORMAT, split_s3, view_text
from dealab.engines.athena.datatypes import duckdb_to_hive, trino_name
from dealab.engines.athena.errors import QueryError, position_of
from dealab.engines.athena.results import Outcome
from dealab.engines.athena.statements.common import StatementContext, as_input, existing, planned
from dealab.engines.athena.statements.partitions import partition_specs

LAZY_SIMPLE_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
# ROW FORMAT DELIMITED clause → the LazySimpleSerDe parameter Glue stores it as.
DELIMITED_PARAMETERS = (("fields", "field.delim"), ("escaped", "escape.delim"), ("lines", "line.delim"),
                        ("collection_items", "collection.delim"), ("map_keys", "mapkey.delim"))


def _hive_type(kind: exp.DataType) -> str:
    return kind.sql("hive").lower().replace(": ", ":").replace(", ", ",")


def _column_defs(columns: list[exp.Expression]) -> list[dict]:
    return [{"Name": c.name.lower(), "Type": _hive_type(c.args["kind"])} for c in columns if isinstance(c, exp.ColumnDef)]


# ---------------------------------------------------------------- CREATE EXTERNAL TABLE: one rule per clause


def _partitioned_by(prop: exp.Expression, table: dict) -> None:
    table["PartitionKeys"] = _column_defs(prop.this.expressions)


def _location(prop: exp.Expression, table: dict) -> None:
    table["StorageDescriptor"]["Location"] = prop.this.name


def _stored_as(prop: exp.Expression, table: dict) -> None:
    descriptor = table["StorageDescriptor"]
    if isinstance(prop.this, exp.InputOutputFormat):
        descriptor["InputFormat"] = prop.this.args["input_format"].name
        descriptor["OutputFormat"] = prop.this.args["output_format"].name
        return
    storage = STORAGE_FOR_FORMAT.get(prop.this.name.upper().replace("JSONFILE", "JSON"), STORAGE_FOR_FORMAT["TEXTFILE"])
    descriptor["InputFormat"], descriptor["OutputFormat"] = storage["InputFormat"], storage["OutputFormat"]
    descriptor["SerdeInfo"].setdefault("SerializationLibrary", storage["SerdeInfo"]["SerializationLibrary"])


def _row_format_serde(prop: exp.Expression, table: dict) -> None:
    serde = table["StorageDescriptor"]["SerdeInfo"]
    serde["SerializationLibrary"] = prop.this.name
    properties = prop.args.get("serde_properties")
    for item in properties.expressions if properties else []:
        serde["Parameters"][item.name] = item.args["value"].name


def _row_format_delimited(prop: exp.Expression, table: dict) -> None:
    serde = table["StorageDescriptor"]["SerdeInfo"]
    serde["SerializationLibrary"] = LAZY_SIMPLE_SERDE
    for arg, key in DELIMITED_PARAMETERS:
        if prop.args.get(arg) is not None:
            serde["Parameters"][key] = prop.args[arg].name


def _table_property(prop: exp.Expression, table: dict) -> None:
    table["Parameters"][prop.name] = prop.args["value"].name


def _comment(prop: exp.Expression, table: dict) -> None:
    table["Parameters"]["comment"] = prop.this.name


# Clause of CREATE EXTERNAL TABLE (sqlglot's property class) → how it fills the Glue TableInput.
EXTERNAL_TABLE_CLAUSES: dict[type[exp.Expression], Callable[[exp.Expression, dict], None]] = {
    exp.PartitionedByProperty: _partitioned_by,
    exp.LocationProperty: _location,
    exp.FileFormatProperty: _stored_as,
    exp.RowFormatSerdeProperty: _row_format_serde,
    exp.RowFormatDelimitedProperty: _row_format_delimited,
    exp.Property: _table_property,  # TBLPROPERTIES ('k' = 'v')
    exp.SchemaCommentProperty: _comment,
}


def _text_defaults(descriptor: dict) -> None:
    """What Hive assumes when a clause is left out: text files read by LazySimpleSerDe."""
    serde = descriptor["SerdeInfo"]
    if serde.get("SerializationLibrary", "").endswith("LazySimpleSerDe"):
        serde["Parameters"].setdefault("serialization.format", serde["Parameters"].get("field.delim", "1"))
    serde.setdefault("SerializationLibrary", STORAGE_FOR_FORMAT["TEXTFILE"]["SerdeInfo"]["SerializationLibrary"])
    descriptor.setdefault("InputFormat", STORAGE_FOR_FORMAT["TEXTFILE"]["InputFormat"])
    descriptor.setdefault("OutputFormat", STORAGE_FOR_FORMAT["TEXTFILE"]["OutputFormat"])


def create_external_table(ctx: StatementContext, create: exp.Create) -> Outcome:
    schema = create.this
    database, name = (schema.this.db or ctx.database).lower(), schema.this.name.lower()
    if not ctx.catalog.database_exists(database):
        raise QueryError(f"Database does not exist: {database}", "SemanticException")
    if ctx.catalog.table(database, name) is not None:
        if create.args.get("exists"):
            return Outcome.lines("DDL", "CREATE_TABLE", "result", [])
        raise QueryError(f"Table {name} already exists", "AlreadyExistsException")
    table = {"Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": {"EXTERNAL": "TRUE"}, "PartitionKeys": [],
             "StorageDescriptor": {"Columns": _column_defs(schema.expressions), "SerdeInfo": {"Parameters": {}}, "Compressed": False}}
    for prop in create.args["properties"].expressions:
        clause = EXTERNAL_TABLE_CLAUSES.get(type(prop))
        if clause:
            clause(prop, table)
    if "Location" not in table["StorageDescriptor"]:
        raise QueryError("LOCATION is required for an external table (an s3:// folder)", "SemanticException")
    _text_defaults(table["StorageDescriptor"])
    ctx.catalog.glue.create_table(DatabaseName=database, TableInput=table)
    return Outcome.lines("DDL", "CREATE_TABLE", "result", [])


# ---------------------------------------------------------------- views and databases


def create_view(ctx: StatementContext, create: exp.Create) -> Outcome:
    table_ref = create.this
    database, name = (table_ref.db or ctx.database).lower(), table_ref.name.lower()
    current = ctx.catalog.table(database, name)
    if current is not None and not create.args.get("replace"):
        raise QueryError(f"View 'awsdatacatalog.{database}.{name}' already exists", "ALREADY_EXISTS", (1, 1))
    body = create.expression
    with planned(ctx, body, database=database) as duckdb_sql:
        relation = ctx.connection.sql(duckdb_sql)
        columns = list(zip(relation.columns, [str(t) for t in relation.types]))
    table_input = {
        "Name": name,
        "TableType": "VIRTUAL_VIEW",
        "Parameters": {"presto_view": "true", "comment": "Presto View"},
        "ViewOriginalText": view_text(body.sql(translate.DIALECT), database, [(n, trino_name(t)) for n, t in columns]),
        "ViewExpandedText": "/* Presto View */",
        "StorageDescriptor": {"Columns": [{"Name": n, "Type": duckdb_to_hive(t)} for n, t in columns], "SerdeInfo": {}},
    }
    if current is not None:
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


def _drop_database(ctx: StatementContext, statement: exp.Drop, name: str) -> Outcome:
    if not ctx.catalog.database_exists(name):
        if statement.args.get("exists"):
            return Outcome.lines("DDL", "DROP_DATABASE", "result", [])
        raise QueryError(f"Database does not exist: {name}", "SemanticException")
    if ctx.catalog.tables(name) and not statement.args.get("cascade"):
        raise QueryError(f"Database {name} is not empty. One or more tables exist.", "InvalidOperationException")
    ctx.catalog.glue.delete_database(Name=name)
    return Outcome.lines("DDL", "DROP_DATABASE", "result", [])


def drop(ctx: StatementContext, statement: exp.Drop) -> Outcome:
    kind = (statement.args.get("kind") or "TABLE").upper()
    target = (statement.args.get("tables") or [statement.this])[0]
    if kind in ("DATABASE", "SCHEMA"):
        return _drop_database(ctx, statement, target.name.lower())
    database, name = (target.db or ctx.database).lower(), target.name.lower()
    table = ctx.catalog.table(database, name)
    if table is None or (kind == "VIEW") != table.is_view:
        if statement.args.get("exists"):
            return Outcome.lines("DDL", f"DROP_{kind}", "result", [])
        what = "View" if kind == "VIEW" else "Table"
        raise QueryError(f"{what} '{database}.{name}' not found", f"{what.upper()}_NOT_FOUND", position_of(ctx.sql, name))
    ctx.catalog.glue.delete_table(DatabaseName=database, Name=name)
    return Outcome.lines("DDL", f"DROP_{kind}", "result", [])


# ---------------------------------------------------------------- ALTER TABLE ... SET LOCATION


def _set_partition_location(ctx: StatementContext, table, spec: str, location: str) -> None:
    glue = ctx.catalog.glue
    values = partition_specs(spec)[0][0]
    keys = [k for k, _ in table.partition_keys]
    if sorted(values) != sorted(keys):
        raise QueryError(f"Partition spec {values} does not match the partition keys {keys} of {table.name}", "SemanticException")
    ordered = [values[k] for k in keys]
    try:
        partition = glue.get_partition(DatabaseName=table.database, TableName=table.name, PartitionValues=ordered)["Partition"]
    except glue.exceptions.EntityNotFoundException:
        raise QueryError(f"Partition not found {dict(zip(keys, ordered))}", "InvalidOperationException") from None
    moved = {**partition, "StorageDescriptor": {**partition.get("StorageDescriptor", {}), "Location": location}}
    glue.update_partition(DatabaseName=table.database, TableName=table.name, PartitionValueList=ordered,
                          PartitionInput=as_input(moved, glue, "PartitionInput"))


def set_location(ctx: StatementContext, match: re.Match) -> Outcome:
    """ALTER TABLE t [PARTITION (...)] SET LOCATION 's3://...': Glue's StorageDescriptor.Location changes,
    no file moves (Athena reads the new folder from then on)."""
    table = existing(ctx, match.group("table"))
    location = match.group("location")
    try:
        split_s3(location)
    except ValueError:
        raise QueryError(f"Invalid location '{location}': an s3://bucket/folder/ is expected", "SemanticException") from None
    if table.is_view:
        raise QueryError(f"Cannot alter a view with ALTER TABLE: {table.database}.{table.name}", "SemanticException")
    if match.group("partition"):
        _set_partition_location(ctx, table, match.group("partition"), location)
    else:
        moved = {**table.raw, "StorageDescriptor": {**table.descriptor, "Location": location}}
        ctx.catalog.glue.update_table(DatabaseName=table.database, TableInput=as_input(moved, ctx.catalog.glue, "TableInput"))
    return Outcome.lines("DDL", "ALTER_TABLE_SET_LOCATION", "result", [])
