"""Lake Formation fine-grained access control in Glue jobs, as AWS Glue 5.0 applies it: a job whose role may read
only some columns or rows of a registered table reads just those with --enable-lakeformation-fine-grained-access
(Spark DataFrames only, reads only), and fails as Lake Formation refuses an engine that cannot filter without it;
a role with SELECT on the whole table reads it as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dealab
from tests.conftest import client
from tests.gluekit import create_job, run_job, upload_script

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/glue"  # the role gluekit.create_job gives its jobs
BUCKET = "lf-job-data"
COLUMNS = ["id", "customer", "email", "country"]
ROWS = ["1,ann,ann@example.com,PT", "2,bob,bob@example.com,NO", "3,cy,cy@example.com,PT"]

SCRIPT = """
import json, sys
import boto3
from awsglue.context import GlueContext
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

glueContext = GlueContext(SparkContext.getOrCreate())
report = {}

def attempt(name, read):
    try:
        frame = read()
        rows = frame.orderBy("id").collect()
        report[name] = {"columns": frame.columns, "ids": [row["id"] for row in rows]}
    except Exception as error:
        report[name] = {"error": f"{type(error).__name__}: {error}"}

def data_frame(table):
    return lambda: glueContext.create_data_frame.from_catalog(database="shop", table_name=table)

def dynamic_frame(table):
    return lambda: glueContext.create_dynamic_frame.from_catalog(database="shop", table_name=table).toDF()

def write(table):
    frame = glueContext.create_dynamic_frame.from_catalog(database="shop", table_name="orders_full")
    return lambda: glueContext.write_dynamic_frame.from_catalog(frame=frame, database="shop", table_name=table).toDF()

attempt("columns", data_frame("orders_columns"))
attempt("rows", data_frame("orders_rows"))
attempt("full_data_frame", data_frame("orders_full"))
attempt("full_dynamic_frame", dynamic_frame("orders_full"))
attempt("columns_dynamic_frame", dynamic_frame("orders_columns"))
attempt("write_columns", write("orders_columns"))
args = getResolvedOptions(sys.argv, ["report"])
boto3.client("s3").put_object(Bucket="lf-job-data", Key=args["report"], Body=json.dumps(report).encode())
"""


def _table(glue, name: str) -> None:
    glue.create_table(DatabaseName="shop", TableInput={"Name": name, "TableType": "EXTERNAL_TABLE", "StorageDescriptor": {
        "Columns": [{"Name": c, "Type": "int" if c == "id" else "string"} for c in COLUMNS], "Location": f"s3://{BUCKET}/orders/",
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", "Parameters": {"field.delim": ","}}},
        "Parameters": {"classification": "csv"}})


def _governed_tables(settings) -> None:
    """Three tables over one registered location, none left to IAM_ALLOWED_PRINCIPALS: the job's role may SELECT
    two columns of orders_columns, the PT rows of orders_rows (a data cells filter), and all of orders_full."""
    s3, glue, lakeformation = client(settings, "s3"), client(settings, "glue"), client(settings, "lakeformation")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="orders/part-0.csv", Body=("\n".join(ROWS) + "\n").encode())
    glue.create_database(DatabaseInput={"Name": "shop"})
    lakeformation.register_resource(ResourceArn=f"arn:aws:s3:::{BUCKET}/orders", UseServiceLinkedRole=True)
    for name in ("orders_columns", "orders_rows", "orders_full"):
        _table(glue, name)
        lakeformation.revoke_permissions(Principal={"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
                                         Resource={"Table": {"DatabaseName": "shop", "Name": name}}, Permissions=["ALL"])
    role = {"DataLakePrincipalIdentifier": ROLE_ARN}
    lakeformation.grant_permissions(Principal=role, Permissions=["SELECT"], Resource={"TableWithColumns": {
        "DatabaseName": "shop", "Name": "orders_columns", "ColumnNames": ["id", "customer"]}})
    lakeformation.create_data_cells_filter(TableData={
        "TableCatalogId": ACCOUNT, "DatabaseName": "shop", "TableName": "orders_rows", "Name": "portugal",
        "RowFilter": {"FilterExpression": "country = 'PT'"}, "ColumnWildcard": {}})
    lakeformation.grant_permissions(Principal=role, Permissions=["SELECT"], Resource={"DataCellsFilter": {
        "TableCatalogId": ACCOUNT, "DatabaseName": "shop", "TableName": "orders_rows", "Name": "portugal"}})
    lakeformation.grant_permissions(Principal=role, Permissions=["SELECT"], Resource={"Table": {"DatabaseName": "shop", "Name": "orders_full"}})


def _report(settings, key: str) -> dict:
    return json.loads(client(settings, "s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


@pytest.mark.slow
def test_a_role_reads_only_what_lake_formation_grants_it_with_fine_grained_access_and_fails_clearly_without(clean_stack):
    settings = clean_stack
    _governed_tables(settings)
    create_job(settings, "lf-reader", upload_script(settings, BUCKET, "scripts/reader.py", SCRIPT))
    fine = run_job(settings, "lf-reader", {"--report": "fine.json", "--enable-lakeformation-fine-grained-access": "true"})
    plain = run_job(settings, "lf-reader", {"--report": "plain.json"})
    assert fine["JobRunState"] == "SUCCEEDED", fine.get("ErrorMessage")
    assert plain["JobRunState"] == "SUCCEEDED", plain.get("ErrorMessage")
    every = {"columns": COLUMNS, "ids": [1, 2, 3]}

    report = _report(settings, "fine.json")
    assert report["columns"] == {"columns": ["id", "customer"], "ids": [1, 2, 3]}  # the two granted columns, every row
    assert report["rows"] == {"columns": COLUMNS, "ids": [1, 3]}  # the data cells filter's rows
    assert report["full_data_frame"] == every and report["full_dynamic_frame"] == every
    # AWS Glue 5.0 filters Spark DataFrames only, and reads only
    assert report["columns_dynamic_frame"]["error"].startswith(
        "UnsupportedOperationException: create_dynamic_frame.from_catalog does not support Lake Formation fine-grained access control")
    assert report["write_columns"]["error"].startswith(
        "UnsupportedOperationException: AWS Glue with Lake Formation fine-grained access control supports read queries only")

    report = _report(settings, "plain.json")  # without the argument a partial grant fails the read; a whole one reads as before
    mismatch = "PermissionTypeMismatchException: The engine does not support filtering data based on the enforced permissions"
    assert report["columns"]["error"].startswith(mismatch) and "shop.orders_columns" in report["columns"]["error"]
    assert report["rows"]["error"].startswith(mismatch) and report["columns_dynamic_frame"]["error"].startswith(mismatch)
    assert report["full_data_frame"] == every and report["full_dynamic_frame"] == every


def test_a_row_filter_reaches_spark_only_as_operators_literals_and_plain_functions(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(dealab.__file__).parent / "glue_runtime"))
    from awsglue import lakeformation

    assert lakeformation.spark_condition("country = 'PT' AND day >= DATE '2024-01-01'", "shop.orders") == (
        "country = 'PT' AND day >= CAST('2024-01-01' AS DATE)")
    assert lakeformation.spark_condition("lower(country) IN ('pt', 'no')", "shop.orders") == "LOWER(country) IN ('pt', 'no')"
    for expression in ("reflect('java.lang.System', 'exit', '0')", "id IN (SELECT id FROM other)", "t.id = 1",
                       "id = 1 UNION SELECT 2", "id = 1; DROP TABLE x", "getenv('HOME') = ''"):
        with pytest.raises(lakeformation.UnsupportedOperationException):
            lakeformation.spark_condition(expression, "shop.orders")
