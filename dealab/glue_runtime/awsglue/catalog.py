"""The Data Catalog as job scripts use it: table formats, column types, and registering what a job wrote."""

from __future__ import annotations

from functools import cache

import boto3

# format → (InputFormat, OutputFormat, SerializationLibrary) as AWS Glue registers them.
STORAGE_FORMATS = {
    "parquet": (
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    ),
    "csv": (
        "org.apache.hadoop.mapred.TextInputFormat",
        "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
    ),
    "json": (
        "org.apache.hadoop.mapred.TextInputFormat",
        "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "org.openx.data.jsonserde.JsonSerDe",
    ),
    "orc": (
        "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
        "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat",
        "org.apache.hadoop.hive.ql.io.orc.OrcSerde",
    ),
}


@cache
def glue():
    return boto3.client("glue")


@cache
def catalog_id() -> str:
    """The account's id, which names its Data Catalog (the same whichever role a run acts as)."""
    return boto3.client("sts").get_caller_identity()["Account"]


def get_table(database: str, table_name: str) -> dict:
    return glue().get_table(DatabaseName=database, Name=table_name)["Table"]


def table_format(table: dict) -> str:
    """parquet, csv, json or orc, from the classification parameter or else the SerDe / input format."""
    descriptor = table.get("StorageDescriptor", {})
    classification = (table.get("Parameters", {}).get("classification") or descriptor.get("Parameters", {}).get("classification") or "").lower()
    if classification in STORAGE_FORMATS:
        return classification
    serde = descriptor.get("SerdeInfo", {}).get("SerializationLibrary", "").lower()
    input_format = descriptor.get("InputFormat", "").lower()
    for name in ("parquet", "orc", "json"):
        if name in serde or name in input_format:
            return name
    return "csv"


def csv_options(table: dict) -> dict:
    """How a CSV table's files are read: from the SerDe parameters (LazySimpleSerDe's field.delim, escape.delim,
    serialization.null.format; OpenCSVSerde's separatorChar, quoteChar, escapeChar) and the table's
    skip.header.line.count."""
    descriptor = table.get("StorageDescriptor", {})
    serde_parameters = descriptor.get("SerdeInfo", {}).get("Parameters", {})
    parameters = {**descriptor.get("Parameters", {}), **table.get("Parameters", {})}
    try:
        header_lines = int(parameters.get("skip.header.line.count") or 0)
    except ValueError:
        header_lines = 0
    return {
        "sep": serde_parameters.get("field.delim") or serde_parameters.get("separatorChar") or parameters.get("delimiter") or ",",
        "header": "true" if header_lines == 1 else "false",
        "header_lines": header_lines,
        "quote": serde_parameters.get("quoteChar") or '"',
        "escape": serde_parameters.get("escape.delim") or serde_parameters.get("escapeChar") or "\\",
        "null_format": serde_parameters.get("serialization.null.format"),
    }


def column_types(table: dict) -> dict[str, str]:
    columns = table.get("StorageDescriptor", {}).get("Columns", []) + table.get("PartitionKeys", [])
    return {column["Name"]: column.get("Type", "string") for column in columns}


def partitions(database: str, table_name: str) -> list[dict]:
    paginator = glue().get_paginator("get_partitions")
    return [p for page in paginator.paginate(DatabaseName=database, TableName=table_name) for p in page["Partitions"]]


def register_output(database: str, table_name: str, path: str, data_format: str, schema, partition_keys: list[str],
                    partition_values: list[tuple[str, ...]], update_schema: bool, compression: str | None = None) -> None:
    """Creates or updates the table for data a job wrote at `path`, and adds partitions it does not have yet."""
    location = path if path.endswith("/") else path + "/"
    data_format = "parquet" if data_format == "glueparquet" else data_format
    input_format, output_format, serde = STORAGE_FORMATS[data_format]
    types = {field.name: field.dataType.simpleString() for field in schema.fields}
    columns = [{"Name": name, "Type": kind} for name, kind in types.items() if name not in partition_keys]
    parameters = {"classification": data_format}
    if compression:
        parameters["compressionType"] = compression
    descriptor = {
        "Columns": columns,
        "Location": location,
        "InputFormat": input_format,
        "OutputFormat": output_format,
        "SerdeInfo": {"SerializationLibrary": serde, "Parameters": {"serialization.format": "1"}},
        "Parameters": parameters,
    }
    table_input = {
        "Name": table_name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "StorageDescriptor": descriptor,
        "PartitionKeys": [{"Name": key, "Type": types.get(key, "string")} for key in partition_keys],
    }
    client = glue()
    try:
        existing = client.get_table(DatabaseName=database, Name=table_name)["Table"]
    except client.exceptions.EntityNotFoundException:
        existing = None
    if existing is None:
        client.create_table(DatabaseName=database, TableInput=table_input)
    elif update_schema:
        known = {column["Name"] for column in existing.get("StorageDescriptor", {}).get("Columns", [])}
        merged = existing.get("StorageDescriptor", {}).get("Columns", []) + [c for c in columns if c["Name"] not in known]
        table_input["StorageDescriptor"]["Columns"] = merged
        client.update_table(DatabaseName=database, TableInput=table_input)
    if not partition_keys:
        return
    known_values = {tuple(p["Values"]) for p in partitions(database, table_name)}
    new = [values for values in partition_values if tuple(values) not in known_values]
    for start in range(0, len(new), 100):
        client.batch_create_partition(
            DatabaseName=database,
            TableName=table_name,
            PartitionInputList=[
                {
                    "Values": list(values),
                    "StorageDescriptor": {
                        **descriptor,
                        "Location": location + "/".join(f"{key}={value}" for key, value in zip(partition_keys, values)) + "/",
                    },
                }
                for values in new[start:start + 100]
            ],
        )
