"""Connections besides S3: what `connection_type` a job reads from and writes to, as one table.

S3 is GlueContext's own (context.py). `CONNECTIONS` maps every other connection type to its reader and writer;
a type dealab has no data plane for yet maps to one that raises ConnectionNotAvailable naming it, so a job run
ends FAILED with that line. Making one real is adding its entry here.

DynamoDB is real: items are scanned from, and written to, the stack's DynamoDB with boto3 (options
`dynamodb.input.tableName` / `dynamodb.output.tableName`, as AWS Glue names them). Redshift is real: rows staged
in S3 and COPYed, or UNLOADed and read, over the wire endpoint of the stack's cluster or workgroup (redshift.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

import boto3
from pyspark.sql import DataFrame
from pyspark.sql.types import StructType

from awsglue import redshift


class ConnectionNotAvailable(Exception):
    """A connection type AWS Glue has and dealab does not run yet."""


@dataclass(frozen=True)
class Connection:
    read: Callable[[object, dict], DataFrame]  # (glue_context, connection_options) → rows
    write: Callable[[DataFrame, dict], None]  # (rows, connection_options)


@cache
def dynamodb():
    return boto3.client("dynamodb")


def _plain(value):
    """A DynamoDB value as JSON can carry it: numbers as int or float, sets as lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _table_name(options: dict, key: str) -> str:
    if not options.get(key):
        raise ValueError(f"connection_options needs {key!r}: the DynamoDB table's name")
    return options[key]


def read_dynamodb(glue_context, options: dict) -> DataFrame:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    table = _table_name(options, "dynamodb.input.tableName")
    lines = [
        json.dumps({name: _plain(deserializer.deserialize(value)) for name, value in item.items()})
        for page in dynamodb().get_paginator("scan").paginate(TableName=table)
        for item in page.get("Items", [])
    ]
    spark = glue_context.spark_session
    if not lines:
        return spark.createDataFrame([], StructType([]))
    return spark.read.json(spark.sparkContext.parallelize(lines))


def write_dynamodb(dataframe: DataFrame, options: dict) -> None:
    """Puts every record as an item (a record with the key of an existing item replaces it); null fields are left out."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    table = _table_name(options, "dynamodb.output.tableName")
    requests = [
        {"PutRequest": {"Item": {name: serializer.serialize(value) for name, value in json.loads(line, parse_float=Decimal).items() if value is not None}}}
        for line in dataframe.toJSON().collect()
    ]
    for start in range(0, len(requests), 25):
        pending = {table: requests[start:start + 25]}
        while pending:
            pending = dynamodb().batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def read_redshift(glue_context, options: dict) -> DataFrame:
    return redshift.read(glue_context, redshift.connection_options(options))


def write_redshift(dataframe: DataFrame, options: dict) -> None:
    redshift.write(dataframe, redshift.connection_options(options))


def _not_available(connection_type: str, what: str) -> Connection:
    message = (f"connection_type {connection_type!r} ({what}) is not available in dealab yet: "
               "dealab jobs read and write s3, dynamodb and redshift")

    def refuse(*_):
        raise ConnectionNotAvailable(message)

    return Connection(refuse, refuse)


CONNECTIONS: dict[str, Connection] = {
    "dynamodb": Connection(read_dynamodb, write_dynamodb),
    "redshift": Connection(read_redshift, write_redshift),
    **{name: _not_available(name, what) for name, what in {
        "postgresql": "PostgreSQL over JDBC",
        "mysql": "MySQL over JDBC",
        "sqlserver": "Microsoft SQL Server over JDBC",
        "oracle": "Oracle over JDBC",
        "jdbc": "a JDBC connection",
        "mongodb": "MongoDB",
        "documentdb": "Amazon DocumentDB",
        "opensearch": "Amazon OpenSearch Service",
        "kafka": "Apache Kafka",
        "kinesis": "Amazon Kinesis (streaming jobs)",
        "snowflake": "Snowflake",
        "marketplace.jdbc": "a Marketplace JDBC connector",
        "marketplace.spark": "a Marketplace Spark connector",
        "custom.jdbc": "a custom JDBC connector",
        "custom.spark": "a custom Spark connector",
    }.items()},
}


def connection(connection_type: str) -> Connection:
    if connection_type not in CONNECTIONS:
        raise ConnectionNotAvailable(f"connection_type {connection_type!r} is not one dealab knows; "
                                     f"use s3 or one of {sorted(CONNECTIONS)}")
    return CONNECTIONS[connection_type]


def jdbc_connection_type(catalog_connection: str) -> str:
    """The connection type of a catalog connection, from its JDBC URL (jdbc:redshift://... → redshift)."""
    from awsglue import catalog

    properties = catalog.glue().get_connection(Name=catalog_connection)["Connection"].get("ConnectionProperties", {})
    url = properties.get("JDBC_CONNECTION_URL", "")
    vendor = url.split(":")[1] if url.startswith("jdbc:") and url.count(":") > 1 else "jdbc"
    return vendor if vendor in CONNECTIONS else "jdbc"


class DataSource:
    """What `GlueContext.getSource` returns: `setFormat`, then `getFrame()` reads the frame."""

    def __init__(self, glue_context, connection_type: str, options: dict, transformation_ctx: str = "", push_down_predicate: str = ""):
        self._glue_context = glue_context
        self.connection_type, self.options = connection_type, options
        self.transformation_ctx, self.push_down_predicate = transformation_ctx, push_down_predicate
        self.format, self.format_options = options.get("format"), {}
        self.name = transformation_ctx
        if connection_type != "s3":
            connection(connection_type)  # an unknown or unavailable type fails here, as getSource does on AWS

    def setFormat(self, format: str, **options) -> None:
        self.format, self.format_options = format, options

    def getFrame(self, **_):
        from awsglue.dynamicframe import DynamicFrame

        errors = None
        if self.connection_type == "s3":
            paths = self.options.get("paths") or ([self.options["path"]] if "path" in self.options else [])
            if not paths:
                raise ValueError("getSource('s3', ...) needs paths=[...]: the s3:// paths to read")
            # read as create_dynamic_frame.from_options reads: values typed record by record, error records kept
            dataframe, errors = self._glue_context.read_s3_records(paths, self.format or "json", self.format_options, self.transformation_ctx,
                                                                   self.options.get("exclusions"), self.options.get("recurse", True))
        else:
            dataframe = connection(self.connection_type).read(self._glue_context, self.options)
        if self.push_down_predicate and dataframe.columns:
            dataframe = dataframe.where(self.push_down_predicate)
        return DynamicFrame(dataframe, self._glue_context, self.name)._with_stage_errors(errors, 0, 0)


class ConnectionSink:
    """What `GlueContext.getSink` returns for a connection type other than S3."""

    def __init__(self, connection_type: str, options: dict):
        self.connection = connection(connection_type)
        self.options = options

    def setFormat(self, format: str, **options) -> None:
        """Formats are for files; a connection's records have none."""

    def setCatalogInfo(self, catalogDatabase: str, catalogTableName: str, catalogId: str | None = None) -> None:
        """The catalog is updated only for S3 sinks."""

    def writeFrame(self, dynamic_frame, info: str = ""):
        self.connection.write(dynamic_frame.toDF(), self.options)
        return dynamic_frame
