"""connection_type "redshift": what AWS Glue's Amazon Redshift connector does, against the stack's Redshift.

A write stages the frame's rows as Parquet under `redshiftTmpDir` in S3, with a manifest of the files written,
and loads them with `COPY ... FORMAT AS PARQUET MANIFEST IAM_ROLE '<aws_iam_role>'`; `preactions` run before
(and the table is created from the frame's schema when it does not exist), `postactions` after. A read UNLOADs
`dbtable` (or `query`) as Parquet under `redshiftTmpDir` and reads the files. The SQL goes over the Postgres wire
protocol to the endpoint the JDBC URL names (`jdbc:redshift://host:port/database`), signed in with the
connection's user and password, as the JDBC driver would: a host that is a workgroup's or cluster's Redshift
DNS name (`<workgroup>.<account>.<region>.redshift-serverless.amazonaws.com`, `<cluster>.<id>.<region>.
redshift.amazonaws.com`) resolves to that workgroup's or cluster's endpoint on the stack.

Options (AWS Glue's names): url, dbtable, query (reads), user, password, database (overrides the URL's),
redshiftTmpDir, aws_iam_role, preactions, postactions (`;`-separated), tempformat (PARQUET, CSV, CSV GZIP), and
connectionName (a Glue connection whose JDBC_CONNECTION_URL, USERNAME/PASSWORD or SECRET_ID supply the rest).
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import urlparse

import boto3
from pyspark.sql import DataFrame
from pyspark.sql import types as T

JDBC_URL = re.compile(r"^jdbc:redshift://(?P<host>[^:/?]+)(?::(?P<port>\d+))?/(?P<database>[^?;]+)", re.I)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
# Spark type → the Redshift column type the connector creates a missing table with
REDSHIFT_TYPES = [(T.StringType, "VARCHAR(MAX)"), (T.IntegerType, "INTEGER"), (T.LongType, "BIGINT"), (T.ShortType, "SMALLINT"),
                  (T.ByteType, "SMALLINT"), (T.DoubleType, "DOUBLE PRECISION"), (T.FloatType, "REAL"), (T.BooleanType, "BOOLEAN"),
                  (T.DateType, "DATE"), (T.TimestampType, "TIMESTAMP"), (T.TimestampNTZType, "TIMESTAMP")]
# tempformat → how the staged files are written and what COPY is told of them
TEMP_FORMATS = {"PARQUET": ("parquet", {}, "FORMAT AS PARQUET"),
                "CSV": ("csv", {"nullValue": "@NULL@", "quote": '"', "escape": '"'}, "CSV NULL AS '@NULL@'"),
                "CSV GZIP": ("csv", {"nullValue": "@NULL@", "quote": '"', "escape": '"', "compression": "gzip"}, "CSV GZIP NULL AS '@NULL@'")}
SKIPPED_FILES = ("_SUCCESS", "_committed", "_started")


class RedshiftConnectionError(Exception):
    """What AWS Glue's Redshift connector would fail with: options missing, an endpoint not found, SQL refused."""


def connection_options(options: dict, catalog_connection: str | None = None, redshift_tmp_dir: str = "") -> dict:
    """The options a Redshift read or write uses: a Glue connection's properties (named by `catalog_connection` or
    options["connectionName"]) under the job's own options, which win."""
    name = catalog_connection or options.get("connectionName")
    merged: dict = {}
    if name:
        glue = boto3.client("glue")
        properties = glue.get_connection(Name=name)["Connection"].get("ConnectionProperties", {})
        merged = {"url": properties.get("JDBC_CONNECTION_URL", ""), "user": properties.get("USERNAME"),
                  "password": properties.get("PASSWORD")}
        if properties.get("SECRET_ID") and not merged["password"]:
            secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=properties["SECRET_ID"])["SecretString"])
            merged.update(user=secret.get("username"), password=secret.get("password"))
    merged.update({key: value for key, value in options.items() if value is not None})
    if redshift_tmp_dir and not merged.get("redshiftTmpDir"):
        merged["redshiftTmpDir"] = redshift_tmp_dir
    return merged


def _required(options: dict, name: str, what: str) -> str:
    if not options.get(name):
        raise RedshiftConnectionError(f"connection_options needs {name!r}: {what}")
    return options[name]


def _endpoint(url: str) -> tuple[str, int, str]:
    """(host, port, database) on the stack for a JDBC URL."""
    match = JDBC_URL.match(url or "")
    if not match:
        raise RedshiftConnectionError(f"url {url!r} is not a Redshift JDBC URL (jdbc:redshift://host:port/database)")
    host, port, database = match.group("host").lower(), int(match.group("port") or 5439), match.group("database")
    if host in LOCAL_HOSTS:
        return host, port, database
    name = host.split(".")[0]
    if ".redshift-serverless." in host:
        serverless = boto3.client("redshift-serverless")
        try:
            endpoint = serverless.get_workgroup(workgroupName=name)["workgroup"]["endpoint"]
        except serverless.exceptions.ResourceNotFoundException:
            raise RedshiftConnectionError(f"The connection attempt failed: no Redshift Serverless workgroup {name} ({host})") from None
        return endpoint["address"], endpoint["port"], database
    redshift = boto3.client("redshift")
    try:
        endpoint = redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0]["Endpoint"]
    except redshift.exceptions.ClusterNotFoundFault:
        raise RedshiftConnectionError(f"The connection attempt failed: {host}:{port} is neither a Redshift cluster's nor a "
                                      "workgroup's endpoint in this stack") from None
    return endpoint["Address"], endpoint["Port"], database


def _connect(options: dict):
    import psycopg

    host, port, database = _endpoint(_required(options, "url", "the Redshift JDBC URL (jdbc:redshift://host:port/database)"))
    user = _required(options, "user", "the database user the connector signs in as")
    try:
        return psycopg.connect(host=host, port=port, dbname=options.get("database") or database, user=user,
                               password=options.get("password") or "", autocommit=True, connect_timeout=30)
    except psycopg.OperationalError as error:
        raise RedshiftConnectionError(f"The connection attempt failed: {str(error).strip().splitlines()[-1]}") from None


def _run(connection, sql: str) -> None:
    import psycopg

    try:
        connection.execute(sql)
    except psycopg.Error as error:
        raise RedshiftConnectionError(f"{str(error).strip()} (statement: {sql[:200]})") from None


def _statements(text: str | None) -> list[str]:
    return [statement.strip() for statement in (text or "").split(";") if statement.strip()]


def _authorization(options: dict) -> str:
    role = options.get("aws_iam_role")
    if not role:
        raise RedshiftConnectionError("connection_options needs 'aws_iam_role': the IAM role (associated with the cluster or "
                                      "namespace) Redshift's COPY and UNLOAD use on redshiftTmpDir; dealab does not pass the "
                                      "job's temporary credentials")
    return f"IAM_ROLE '{role}'"


def _column_type(data_type: T.DataType) -> str:
    if isinstance(data_type, T.DecimalType):
        return f"DECIMAL({data_type.precision},{data_type.scale})"
    found = next((name for kind, name in REDSHIFT_TYPES if isinstance(data_type, kind)), None)
    if found is None:
        raise RedshiftConnectionError(f"a column of type {data_type.simpleString()} has no Redshift column type the connector "
                                      "writes (flatten or cast it first)")
    return found


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _staging(options: dict) -> str:
    folder = _required(options, "redshiftTmpDir", "the s3:// folder the connector stages rows in").rstrip("/")
    return f"{folder}/{uuid.uuid4()}/"


def _objects(s3_url: str) -> list[tuple[str, int]]:
    """(url, size) of the files a Spark write left under `s3_url` (its marker files left out)."""
    location = urlparse(s3_url)
    s3 = boto3.client("s3")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.netloc, Prefix=location.path.lstrip("/")):
        found += [(f"s3://{location.netloc}/{item['Key']}", item["Size"]) for item in page.get("Contents", [])
                  if not item["Key"].rsplit("/", 1)[-1].startswith(SKIPPED_FILES)]
    return found


def write(dataframe: DataFrame, options: dict) -> None:
    """Appends the frame's rows to `dbtable`, as the connector does: preactions, CREATE TABLE IF NOT EXISTS from the
    frame's schema, the rows staged in S3 and COPYed with a manifest, postactions."""
    table = _required(options, "dbtable", "the table to write ([schema.]table)")
    tempformat = (options.get("tempformat") or "PARQUET").upper()
    if tempformat not in TEMP_FORMATS:
        raise RedshiftConnectionError(f"tempformat {tempformat!r} is not one dealab stages with: use one of {sorted(TEMP_FORMATS)} "
                                      "(AVRO needs Spark's Avro data source, which the Glue worker does not have)")
    authorization = _authorization(options)
    spark_format, spark_options, copy_format = TEMP_FORMATS[tempformat]
    columns = [(field.name, _column_type(field.dataType)) for field in dataframe.schema.fields]
    with _connect(options) as connection:
        for statement in _statements(options.get("preactions")):
            _run(connection, statement)
        _run(connection, f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{_quoted(name)} {kind}' for name, kind in columns)})")
        if columns and not dataframe.isEmpty():
            staged = _staging(options)
            dataframe.write.format(spark_format).options(**spark_options).save(staged)
            entries = [{"url": url, "mandatory": True, "meta": {"content_length": size}} for url, size in _objects(staged)]
            location = urlparse(staged)
            boto3.client("s3").put_object(Bucket=location.netloc, Key=location.path.lstrip("/") + "manifest.json",
                                          Body=json.dumps({"entries": entries}).encode())
            column_list = ", ".join(_quoted(name) for name, _ in columns)
            _run(connection, f"COPY {table} ({column_list}) FROM '{staged}manifest.json' {authorization} {copy_format} MANIFEST")
        for statement in _statements(options.get("postactions")):
            _run(connection, statement)


def read(glue_context, options: dict) -> DataFrame:
    """`dbtable`'s rows (or `query`'s), UNLOADed as Parquet under redshiftTmpDir and read from there."""
    query = options.get("query") or options.get("sampleQuery")
    if not query:
        query = f"SELECT * FROM {_required(options, 'dbtable', 'the table to read ([schema.]table), or query')}"
    authorization = _authorization(options)
    staged = _staging(options)
    with _connect(options) as connection:
        quoted = query.rstrip().rstrip(";").replace("'", "''")
        _run(connection, f"UNLOAD ('{quoted}') TO '{staged}' {authorization} FORMAT AS PARQUET")
    return glue_context.spark_session.read.parquet(staged)


def catalog_table_options(table: dict, redshift_tmp_dir: str = "", additional_options: dict | None = None) -> dict | None:
    """The options for a catalog table a JDBC crawler made over Redshift (Parameters connectionName, location
    `database.schema.table`), or None for a table of files."""
    parameters = table.get("Parameters", {})
    name = parameters.get("connectionName")
    if not name:
        return None
    options = connection_options(dict(additional_options or {}), name, redshift_tmp_dir)
    if not JDBC_URL.match(options.get("url") or ""):
        return None
    location = table.get("StorageDescriptor", {}).get("Location") or table["Name"]
    options.setdefault("dbtable", ".".join(location.split(".")[-2:]))
    return options
