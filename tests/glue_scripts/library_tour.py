"""Exercises the awsglue API on a small nested dataset and writes what each step produced to S3 as JSON."""

import json
import sys

import boto3
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.transforms import (ApplyMapping, DropFields, DropNullFields, Filter, Join, Map, Relationalize, RenameField,
                                ResolveChoice, SelectFields, SplitFields)
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "bucket"])
sc = SparkContext()
glueContext = GlueContext(sc)
spark = glueContext.spark_session
job = Job(glueContext)
job.init(args["JOB_NAME"], args)
bucket = args["bucket"]

people = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [f"s3://{bucket}/people/"]}, format="json")
cities = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [f"s3://{bucket}/cities/"]}, format="csv",
    format_options={"withHeader": True, "separator": ";"})


def rows(frame):
    return sorted((json.loads(json.dumps(r.asDict(recursive=True), default=str)) for r in frame.toDF().collect()), key=json.dumps)


report = {}
mapped = ApplyMapping.apply(frame=people, mappings=[
    ("id", "long", "person_id", "int"), ("name", "string", "name", "string"), ("age", "string", "age", "int"),
    ("address.city", "string", "city", "string"), ("missing", "string", "missing", "string")])
report["apply_mapping"] = rows(mapped)
report["resolve_choice"] = [f.dataType.typeName() for f in ResolveChoice.apply(frame=people, specs=[("age", "cast:double")]).schema().fields if f.name == "age"]
report["drop_null_fields"] = sorted(DropNullFields.apply(frame=mapped).toDF().columns)
report["filter"] = [r["name"] for r in rows(Filter.apply(frame=mapped, f=lambda rec: rec["age"] is not None and rec["age"] > 30))]


def shout(rec):
    rec["name"] = rec["name"].upper()
    return rec


report["map"] = sorted(r["name"] for r in rows(Map.apply(frame=mapped, f=shout)))
joined = Join.apply(mapped, cities, "city", "city_name")
report["join"] = sorted((r["name"], r["country"]) for r in rows(joined))
report["select_fields"] = SelectFields.apply(frame=mapped, paths=["name", "city"]).toDF().columns
report["drop_fields"] = DropFields.apply(frame=mapped, paths=["missing", "age"]).toDF().columns
report["rename_field"] = RenameField.apply(frame=mapped, old_name="name", new_name="full_name").toDF().columns
collection = Relationalize.apply(frame=people, staging_path=f"s3://{bucket}/tmp/", name="root")
report["relationalize"] = {name: sorted(collection.select(name).toDF().columns) for name in sorted(collection.keys())}
report["relationalized_tags"] = sorted(r["tags.val"] for r in rows(collection.select("root_tags")))
split = SplitFields.apply(frame=mapped, paths=["name"], name1="names", name2="rest")
report["split_fields"] = {name: split.select(name).toDF().columns for name in sorted(split.keys())}
report["unnest"] = sorted(people.unnest().toDF().columns)
report["count"] = people.count()
report["from_df"] = DynamicFrame.fromDF(spark.createDataFrame([(1,)], ["x"]), glueContext, "x").count()
report["partitions"] = people.repartition(3).getNumPartitions(), people.coalesce(1).getNumPartitions()

sink = glueContext.getSink(connection_type="s3", path=f"s3://{bucket}/people_out/", enableUpdateCatalog=True,
                           updateBehavior="UPDATE_IN_DATABASE", partitionKeys=["city"])
sink.setFormat("glueparquet", compression="snappy")
sink.setCatalogInfo(catalogDatabase="tour", catalogTableName="people")
sink.writeFrame(mapped)
report["from_catalog"] = rows(glueContext.create_dynamic_frame.from_catalog(database="tour", table_name="people", push_down_predicate="city = 'Lisbon'"))

glueContext.write_dynamic_frame.from_catalog(frame=mapped, database="tour", table_name="people")
report["rows_after_catalog_write"] = spark.read.parquet(f"s3://{bucket}/people_out/").count()
s3 = boto3.client("s3")
s3.put_object(Bucket=bucket, Key="scratch/old.txt", Body=b"x")
glueContext.purge_s3_path(f"s3://{bucket}/scratch/", options={"retentionPeriod": 0})
report["left_after_purge"] = s3.list_objects_v2(Bucket=bucket, Prefix="scratch/").get("KeyCount", 0)
s3.put_object(Bucket=bucket, Key="report.json", Body=json.dumps(report).encode())
job.commit()
