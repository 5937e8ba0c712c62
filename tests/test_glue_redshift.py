"""Glue jobs writing to and reading from Redshift (connection_type "redshift", from_jdbc_conf with a Glue JDBC
connection): the rows are staged in redshiftTmpDir and COPYed as the connector's IAM role, through the
workgroup's endpoint, and read back with the Data API."""

from __future__ import annotations

import json

from tests.conftest import client
from tests.gluekit import create_job, run_job, upload_script
from tests.test_redshift import TRUSTS_REDSHIFT, redshift_role, rows

BUCKET = "glue-rs"
PASSWORD = "Passw0rd!"

TO_REDSHIFT = '''
import json
import sys

import boto3
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["port", "role"])
glueContext = GlueContext(SparkContext.getOrCreate())
spark = glueContext.spark_session
people = DynamicFrame.fromDF(spark.createDataFrame([(1, "ana", 9.5), (2, "bo", None)], "id int, name string, score double"),
                             glueContext, "people")
options = {"url": f"jdbc:redshift://127.0.0.1:{args['port']}/dev", "user": "admin", "password": "Passw0rd!",
           "dbtable": "public.people", "redshiftTmpDir": "s3://glue-rs/temp/", "aws_iam_role": args["role"],
           "preactions": "CREATE TABLE IF NOT EXISTS loads (n INT)", "postactions": "INSERT INTO loads VALUES (1); INSERT INTO loads VALUES (2)"}
glueContext.write_dynamic_frame.from_options(frame=people, connection_type="redshift", connection_options=options)

# a Glue JDBC connection naming the workgroup's Redshift DNS name, as a learner copies it from the console
more = DynamicFrame.fromDF(spark.createDataFrame([(3, "cy", 7.25)], "id int, name string, score double"), glueContext, "more")
glueContext.write_dynamic_frame.from_jdbc_conf(frame=more, catalog_connection="warehouse",
                                               connection_options={"dbtable": "people", "database": "dev", "aws_iam_role": args["role"]},
                                               redshift_tmp_dir="s3://glue-rs/temp/")

back = glueContext.create_dynamic_frame.from_options(connection_type="redshift", connection_options={
    "connectionName": "warehouse", "query": "SELECT id, name FROM people WHERE id > 1", "redshiftTmpDir": "s3://glue-rs/temp/",
    "aws_iam_role": args["role"]})
report = {"query": sorted([row["id"], row["name"]] for row in back.toDF().collect())}

# a catalog table a JDBC crawler made over Redshift: written and read through its connection
last = DynamicFrame.fromDF(spark.createDataFrame([(4, "di", 1.5)], "id int, name string, score double"), glueContext, "last")
glueContext.write_dynamic_frame.from_catalog(frame=last, database="warehouse_db", table_name="dev_public_people",
                                             redshift_tmp_dir="s3://glue-rs/temp/", additional_options={"aws_iam_role": args["role"]})
catalogued = glueContext.create_dynamic_frame.from_catalog(database="warehouse_db", table_name="dev_public_people",
                                                            redshift_tmp_dir="s3://glue-rs/temp/",
                                                            additional_options={"aws_iam_role": args["role"]})
report["catalog"] = catalogued.count()
boto3.client("s3").put_object(Bucket="glue-rs", Key="report.json", Body=json.dumps(report).encode())
'''


def test_a_glue_job_writes_a_dynamic_frame_to_redshift_serverless_and_reads_it_back(clean_stack):
    s3, glue = client(clean_stack, "s3"), client(clean_stack, "glue")
    rs, data, iam = client(clean_stack, "redshift-serverless"), client(clean_stack, "redshift-data"), client(clean_stack, "iam")
    s3.create_bucket(Bucket=BUCKET)
    loader = redshift_role("glue-loader", iam=iam)
    reader_only = redshift_role("no-get", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:PutObject"], "Resource": "*"}]}, TRUSTS_REDSHIFT, iam)
    rs.create_namespace(namespaceName="lab", adminUsername="admin", adminUserPassword=PASSWORD, dbName="dev", iamRoles=[loader, reader_only])
    port = rs.create_workgroup(workgroupName="lab-wg", namespaceName="lab")["workgroup"]["endpoint"]["port"]
    glue.create_connection(ConnectionInput={"Name": "warehouse", "ConnectionType": "JDBC", "ConnectionProperties": {
        "JDBC_CONNECTION_URL": "jdbc:redshift://lab-wg.123456789012.us-east-1.redshift-serverless.amazonaws.com:5439/dev",
        "USERNAME": "admin", "PASSWORD": PASSWORD}})
    glue.create_database(DatabaseInput={"Name": "warehouse_db"})
    glue.create_table(DatabaseName="warehouse_db", TableInput={
        "Name": "dev_public_people", "Parameters": {"connectionName": "warehouse", "classification": "redshift", "typeOfData": "table"},
        "StorageDescriptor": {"Location": "dev.public.people", "Columns": [{"Name": "id", "Type": "int"}, {"Name": "name", "Type": "string"}]}})
    create_job(clean_stack, "to-redshift", upload_script(clean_stack, BUCKET, "scripts/to_redshift.py", TO_REDSHIFT))

    run = run_job(clean_stack, "to-redshift", {"--port": str(port), "--role": loader})
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    target = {"WorkgroupName": "lab-wg"}
    assert rows(data, "SELECT id, name, score FROM people ORDER BY id", **target) == [
        [1, "ana", 9.5], [2, "bo", None], [3, "cy", 7.25], [4, "di", 1.5]]
    assert rows(data, "SELECT count(*) FROM loads", **target) == [[2]]  # preactions made it, postactions filled it
    assert json.loads(s3.get_object(Bucket=BUCKET, Key="report.json")["Body"].read()) == {"query": [[2, "bo"], [3, "cy"]], "catalog": 4}
    staged = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="temp/")["Contents"]]
    assert any(key.endswith("/manifest.json") for key in staged) and any(key.endswith(".parquet") for key in staged)

    # the connector's COPY acts as aws_iam_role: a role that may not read the staged objects fails the run
    refused = run_job(clean_stack, "to-redshift", {"--port": str(port), "--role": reader_only})
    assert refused["JobRunState"] == "FAILED"
    assert "S3ServiceException:Access Denied,Status 403,Error AccessDenied" in refused["ErrorMessage"], refused["ErrorMessage"]
    assert rows(data, "SELECT count(*) FROM people", **target) == [[4]]
