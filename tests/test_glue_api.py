"""The awsglue API beyond the core frame, in real job runs written as AWS's Glue examples write them: getSource,
Spigot, SplitRows, Unbox, UnnestFrame, mergeDynamicFrame, schema() in Glue types, getSink writing and cataloguing,
DynamoDB as a connection, the JDBC refusal line, transition_s3_path on the lab clock.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.conftest import admin_headers, client
from tests.gluekit import create_job, run_job, upload_script

pytestmark = pytest.mark.slow

BUCKET = "glue-api-tour"
PEOPLE = [
    {"id": 1, "name": "ana", "age": 34, "payload": '{"city": "Lisbon", "zip": 1000}', "line": "red|1"},
    {"id": 2, "name": "bo", "age": 29, "payload": '{"city": "Oslo", "zip": 150}', "line": "blue|2"},
    {"id": 3, "name": "cy", "payload": '{"city": "Lisbon", "zip": 1100}', "line": "red|3"},
]

TOUR = '''
import json
import sys

import boto3
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.gluetypes import Field, IntegerType, StringType, StructType
from awsglue.job import Job
from awsglue.transforms import ApplyMapping, SelectFromCollection, Spigot, SplitRows, Unbox, UnnestFrame
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "bucket"])
sc = SparkContext()
glueContext = GlueContext(sc)
spark = glueContext.spark_session
job = Job(glueContext)
job.init(args["JOB_NAME"], args)
bucket = args["bucket"]
report = {}


def names(frame):
    return sorted(row["name"] for row in frame.toDF().collect())


source = glueContext.getSource("s3", paths=[f"s3://{bucket}/people/"])
source.setFormat("json")
people = source.getFrame()
report["schema"] = {field.name: field.dataType.typeName() for field in people.schema().fields}

Spigot.apply(frame=people, path=f"s3://{bucket}/spigot/", options={"topk": 2})

split = SplitRows.apply(frame=people, comparison_dict={"age": {">": 30}}, name1="older", name2="others")
report["split_rows"] = {"older": names(SelectFromCollection.apply(dfc=split, key="older")), "others": names(split["others"])}

unboxed = Unbox.apply(frame=people, path="payload", format="json")
report["unbox_json"] = sorted([row["name"], row["payload"]["city"], row["payload"]["zip"]] for row in unboxed.toDF().collect())
city_only = StructType([Field("city", StringType()), Field("zip", IntegerType())])
typed = people.unbox("payload", "json", withSchema=json.dumps(city_only.jsonValue()))
report["unbox_schema"] = [(field.name, field.dataType.typeName()) for field in typed.schema().getField("payload").dataType.fields]
colours = people.unbox("line", "csv", separator="|")
report["unbox_csv"] = sorted([row["line"]["col0"], row["line"]["col1"]] for row in colours.toDF().collect())
unnested = UnnestFrame.apply(frame=unboxed)
report["unnest"] = sorted(unnested.toDF().columns)

staging = DynamicFrame.fromDF(spark.createDataFrame([(2, "bo", 30), (4, "di", 41)], "id long, name string, age long"), glueContext, "staging")
merged = people.select_fields(["id", "name", "age"]).mergeDynamicFrame(staging, ["id"])
report["merge"] = sorted([row["id"], row["name"], row["age"]] for row in merged.toDF().collect())

sink = glueContext.getSink(connection_type="s3", path=f"s3://{bucket}/by_city/", enableUpdateCatalog=True,
                           updateBehavior="UPDATE_IN_DATABASE", partitionKeys=["city"])
sink.setFormat("glueparquet")
sink.setCatalogInfo(catalogDatabase="api_tour", catalogTableName="people_by_city")
sink.writeFrame(ApplyMapping.apply(frame=unboxed, mappings=[("name", "string", "name", "string"), ("payload.city", "string", "city", "string")]))

glueContext.write_dynamic_frame.from_options(frame=merged, connection_type="dynamodb",
                                             connection_options={"dynamodb.output.tableName": "people"})
from_table = glueContext.create_dynamic_frame.from_options(connection_type="dynamodb",
                                                           connection_options={"dynamodb.input.tableName": "people"})
report["dynamodb"] = sorted([row["id"], row["name"]] for row in from_table.toDF().collect())

try:
    glueContext.write_dynamic_frame.from_jdbc_conf(frame=merged, catalog_connection="warehouse",
                                                   connection_options={"dbtable": "people", "database": "dev"},
                                                   redshift_tmp_dir=f"s3://{bucket}/temp/")
except Exception as error:
    report["from_jdbc_conf"] = f"{type(error).__name__}: {error}"

glueContext.transition_s3_path(f"s3://{bucket}/archive/", "GLACIER", options={
    "retentionPeriod": 1, "excludeStorageClasses": ["STANDARD_IA"], "accountId": "123456789012",
    "roleArn": "arn:aws:iam::123456789012:role/glue", "manifestFilePath": f"s3://{bucket}/manifests/"}, transformation_ctx="archive")

boto3.client("s3").put_object(Bucket=bucket, Key="report.json", Body=json.dumps(report).encode())
job.commit()
'''

REFUSED = '''
import sys
from awsglue.context import GlueContext
from pyspark.context import SparkContext

glueContext = GlueContext(SparkContext.getOrCreate())
frame = glueContext.create_dynamic_frame.from_options(connection_type="s3", connection_options={"paths": ["s3://glue-api-tour/people/"]}, format="json")
glueContext.write_dynamic_frame.from_options(frame=frame, connection_type="postgresql", connection_options={
    "url": "jdbc:postgresql://db.example:5432/dev", "dbtable": "public.people"})
'''


def _advance_clock(settings, by: str) -> None:
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/clock", data=json.dumps({"action": "advance", "by": by}).encode(),
                                     method="POST", headers={"Content-Type": "application/json", **admin_headers(settings)})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def test_the_api_tour_script_gives_aws_glue_results(clean_stack):
    s3, glue, dynamodb = client(clean_stack, "s3"), client(clean_stack, "glue"), client(clean_stack, "dynamodb")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="people/p.json", Body="".join(json.dumps(p) + "\n" for p in PEOPLE).encode())
    s3.put_object(Bucket=BUCKET, Key="archive/old.json", Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="archive/infrequent.json", Body=b"{}", StorageClass="STANDARD_IA")
    _advance_clock(clean_stack, "2h")  # the two above are now 2 hours old on the lab clock; the next one is new
    s3.put_object(Bucket=BUCKET, Key="archive/new.json", Body=b"{}")
    glue.create_database(DatabaseInput={"Name": "api_tour"})
    glue.create_connection(ConnectionInput={"Name": "warehouse", "ConnectionType": "JDBC", "ConnectionProperties": {
        "JDBC_CONNECTION_URL": "jdbc:mysql://db.example:3306/dev", "USERNAME": "admin", "PASSWORD": "secret"}})
    dynamodb.create_table(TableName="people", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}], BillingMode="PAY_PER_REQUEST")
    create_job(clean_stack, "api-tour", upload_script(clean_stack, BUCKET, "scripts/api_tour.py", TOUR))
    create_job(clean_stack, "to-postgresql", upload_script(clean_stack, BUCKET, "scripts/to_postgresql.py", REFUSED))

    run = run_job(clean_stack, "api-tour", {"--bucket": BUCKET})
    refused = run_job(clean_stack, "to-postgresql", {})

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    report = json.loads(s3.get_object(Bucket=BUCKET, Key="report.json")["Body"].read())
    assert report["schema"] == {"age": "long", "id": "long", "line": "string", "name": "string", "payload": "string"}
    spigot = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="spigot/")["Contents"] if item["Key"].endswith(".json")]
    sampled = [line for key in spigot for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()]
    assert len(sampled) == 2 and all(json.loads(line)["name"] in ("ana", "bo", "cy") for line in sampled)
    assert report["split_rows"] == {"older": ["ana"], "others": ["bo", "cy"]}
    assert report["unbox_json"] == [["ana", "Lisbon", 1000], ["bo", "Oslo", 150], ["cy", "Lisbon", 1100]]
    assert report["unbox_schema"] == [["city", "string"], ["zip", "int"]]
    assert report["unbox_csv"] == [["blue", 2], ["red", 1], ["red", 3]]
    assert report["unnest"] == ["age", "id", "line", "name", "payload.city", "payload.zip"]
    assert report["merge"] == [[1, "ana", 34], [2, "bo", 30], [3, "cy", None], [4, "di", 41]]
    table = glue.get_table(DatabaseName="api_tour", Name="people_by_city")["Table"]
    assert [key["Name"] for key in table["PartitionKeys"]] == ["city"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/by_city/"
    assert sorted(p["Values"] for p in glue.get_partitions(DatabaseName="api_tour", TableName="people_by_city")["Partitions"]) == [["Lisbon"], ["Oslo"]]
    assert report["dynamodb"] == [[1, "ana"], [2, "bo"], [3, "cy"], [4, "di"]]
    assert dynamodb.get_item(TableName="people", Key={"id": {"N": "4"}})["Item"]["name"] == {"S": "di"}
    assert report["from_jdbc_conf"] == ("ConnectionNotAvailable: connection_type 'mysql' (MySQL over JDBC) is not available "
                                        "in dealab yet: dealab jobs read and write s3, dynamodb and redshift")
    classes = {item["Key"]: item.get("StorageClass", "STANDARD") for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="archive/")["Contents"]}
    assert classes == {"archive/old.json": "GLACIER", "archive/infrequent.json": "STANDARD_IA", "archive/new.json": "STANDARD"}
    manifest = s3.get_object(Bucket=BUCKET, Key="manifests/archive/Success.csv")["Body"].read().decode()
    assert manifest == f"s3://{BUCKET}/archive/old.json\n"

    assert refused["JobRunState"] == "FAILED"
    assert refused["ErrorMessage"] == ("ConnectionNotAvailable: connection_type 'postgresql' (PostgreSQL over JDBC) is not available "
                                       "in dealab yet: dealab jobs read and write s3, dynamodb and redshift")
