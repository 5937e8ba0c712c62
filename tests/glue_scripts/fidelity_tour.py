# The DynamicFrame core as AWS Glue's documentation shows it (aws-glue-samples: data_cleaning_and_lambda.md,
# resolve_choice.md, join_and_relationalize.md), over a crawler-made CSV table laid out like the medicare sample:
# choices and resolveChoice, nested apply_mapping, a join of frames that share fields, error records, and the
# Glue 3+ create_data_frame readers. What each step gave goes to s3://<bucket>/report.json.
import contextlib
import io
import json
import sys

import boto3
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.transforms import ApplyMapping, Join, ResolveChoice
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "bucket"])
bucket = args["bucket"]
glueContext = GlueContext(SparkContext.getOrCreate())
spark = glueContext.spark_session
report = {}


def printed(frame):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        frame.printSchema()
    return out.getvalue().rstrip("\n") + "\n"


def rows(dataframe, *columns):
    picked = dataframe.select(*[f"`{c}`" for c in columns]) if columns else dataframe
    return sorted((json.loads(json.dumps(r.asDict(recursive=True), default=str)) for r in picked.collect()), key=json.dumps)


# ---- from_catalog: the catalog's names, values typed record by record, a choice ------------------------------
medicare_dyf = glueContext.create_dynamic_frame.from_catalog(database="payments", table_name="medicare")
report["schema"] = printed(medicare_dyf)
report["count"] = medicare_dyf.count()
report["todf_unresolved"] = medicare_dyf.toDF().schema["provider id"].dataType.simpleString()

med_resolve_cast = medicare_dyf.resolveChoice(specs=[("provider id", "cast:long")])
report["cast_schema"] = printed(med_resolve_cast)
report["cast_nulls"] = rows(med_resolve_cast.toDF().where("`provider id` is NULL"), "drg definition", "provider name")
report["cast_sum"] = med_resolve_cast.toDF().agg({"provider id": "sum"}).first()[0]

med_resolve_project = medicare_dyf.resolveChoice(specs=[("provider id", "project:string")])
report["project_values"] = rows(med_resolve_project.toDF().where("`provider id` is not NULL"), "provider id")
report["project_type"] = med_resolve_project.toDF().schema["provider id"].dataType.simpleString()

med_resolve_make_cols = medicare_dyf.resolveChoice(specs=[("provider id", "make_cols")])
report["make_cols_columns"] = med_resolve_make_cols.toDF().columns
report["make_cols_strings"] = rows(med_resolve_make_cols.toDF().where("`provider id_string` is not NULL"), "provider id_long", "provider id_string")

med_resolve_make_struct = ResolveChoice.apply(frame=medicare_dyf, choice="make_struct")
report["make_struct_schema"] = printed(med_resolve_make_struct)
report["make_struct_type"] = med_resolve_make_struct.toDF().schema["provider id"].dataType.simpleString()

med_match = medicare_dyf.resolveChoice(choice="match_catalog", database="payments", table_name="medicare")
report["match_catalog_type"] = med_match.toDF().schema["provider id"].dataType.simpleString()
report["match_catalog_nulls"] = med_match.toDF().where("`provider id` is NULL").count()
report["match_catalog_spec_type"] = medicare_dyf.resolveChoice(
    specs=[("provider id", "match_catalog")], database="payments", table_name="medicare").toDF().schema["provider id"].dataType.simpleString()

# ---- apply_mapping nests dotted targets (data_cleaning_and_lambda.md) ---------------------------------------------
medicare_nest_dyf = med_resolve_cast.apply_mapping([
    ("drg definition", "string", "drg", "string"),
    ("provider id", "long", "provider.id", "long"),
    ("provider name", "string", "provider.name", "string"),
    ("provider zip code", "long", "provider.zip", "long"),
    ("average covered charges", "string", "charges.covered", "string"),
    ("total discharges", "long", "`total.discharges`", "int"),
])
report["nested_schema"] = printed(medicare_nest_dyf)
report["nested_first"] = rows(medicare_nest_dyf.toDF().where("provider.id = 10001"))

# ---- SerDe parameters of a hand-made table: | delimiter, NA as null, two header-less files ------------------------
pipes = glueContext.create_dynamic_frame.from_catalog(database="payments", table_name="pipes")
report["pipes_schema"] = printed(pipes)
report["pipes_rows"] = rows(pipes.toDF())

# ---- a join of frames that share fields (name, image) writes its result ----------------------------------------------
persons = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [f"s3://{bucket}/join/persons/"]}, format="json")
orgs = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [f"s3://{bucket}/join/orgs/"]}, format="json")
joined = Join.apply(persons, orgs, "org", "org_id")
report["join_schema"] = printed(joined)
glueContext.write_dynamic_frame.from_options(frame=joined, connection_type="s3",
                                             connection_options={"path": f"s3://{bucket}/join/out/"}, format="parquet")
report["join_written"] = rows(spark.read.parquet(f"s3://{bucket}/join/out/"), "id", "name", "image", "seats")

# ---- error records: JSON lines that do not parse ---------------------------------------------------------------------
events = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [f"s3://{bucket}/events/"]}, format="json",
    transformation_ctx="events", stageThreshold=1)
report["events_count"] = events.count()
report["events_errors"] = [events.errorsCount(), events.stageErrorsCount()]
report["events_error_records"] = rows(events.errorsAsDynamicFrame().toDF().select("error.msg", "error.input"))
mapped = ApplyMapping.apply(frame=events, mappings=[("id", "long", "id", "long")])
report["mapped_errors"] = [mapped.errorsCount(), mapped.stageErrorsCount()]
try:
    events.assertErrorThreshold()
    report["threshold"] = "passed"
except Exception as error:
    report["threshold"] = f"{type(error).__name__}: {error}"
mapped.assertErrorThreshold()  # no threshold set: never raises

# ---- Glue 3+: create_data_frame ----------------------------------------------------------------------------------
medicare_df = glueContext.create_data_frame.from_catalog(database="payments", table_name="medicare")
report["data_frame_catalog"] = [f"{f.name}:{f.dataType.simpleString()}" for f in medicare_df.schema.fields]
report["data_frame_catalog_nulls"] = medicare_df.where("`provider id` is NULL").count()
headerless = glueContext.create_data_frame.from_options(
    connection_type="s3", connection_options={"paths": [f"s3://{bucket}/headerless/"]}, format="csv")
report["data_frame_csv"] = [f"{f.name}:{f.dataType.simpleString()}" for f in headerless.schema.fields]
try:
    glueContext.create_data_frame.from_options(
        connection_type="s3", connection_options={"paths": [f"s3://{bucket}/headerless/"]}, format="avro").count()
    report["avro"] = "read"
except Exception as error:
    report["avro"] = f"{type(error).__name__}: {error}"
report["from_df_round_trip"] = DynamicFrame.fromDF(medicare_df, glueContext, "back").count()

boto3.client("s3").put_object(Bucket=bucket, Key="report.json", Body=json.dumps(report).encode())
