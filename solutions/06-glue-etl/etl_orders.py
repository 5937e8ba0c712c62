"""Lab 06 — the Glue job: raw JSON orders → cleansed, deduplicated Parquet partitioned by day (reference solution).

Arguments (the job's DefaultArguments): --raw_path --curated_path --quarantine_path --database --table
"""

import sys

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

args = getResolvedOptions(sys.argv, ["JOB_NAME", "raw_path", "curated_path", "quarantine_path", "database", "table"])
glue_context = GlueContext(SparkContext.getOrCreate())
job = Job(glue_context)
job.init(args["JOB_NAME"], args)

RAW_FIELDS = ["order_id", "customer_id", "amount", "quantity", "status", "order_ts", "updated_at"]


def field(frame: DataFrame, name: str):
    """A raw field as text; a field no file of this batch has is null."""
    return F.col(name).cast("string") if name in frame.columns else F.lit(None).cast("string")


def typed(raw: DataFrame) -> DataFrame:
    text = raw.select(*[field(raw, name).alias(name) for name in RAW_FIELDS])
    return text.select(
        "order_id", "customer_id",
        F.col("amount").cast("double").alias("amount"),
        F.when(F.col("quantity").rlike(r"^-?\d+$"), F.col("quantity").cast("int")).alias("quantity"),
        "status",
        F.to_timestamp("order_ts").alias("order_ts"),
        F.to_timestamp("updated_at").alias("updated_at"),
        F.to_json(F.struct(*RAW_FIELDS)).alias("raw_record"),
    )


def is_valid():
    return (
        F.col("order_id").isNotNull() & (F.col("order_id") != "")
        & F.col("customer_id").isNotNull() & (F.col("customer_id") != "")
        & F.col("amount").isNotNull() & (F.col("amount") >= 0)
        & F.col("quantity").isNotNull() & (F.col("quantity") >= 1)
        & F.col("order_ts").isNotNull()
    )


raw = glue_context.create_dynamic_frame.from_options(
    connection_type="s3",
    connection_options={"paths": [args["raw_path"]], "recurse": True},
    format="json",
    transformation_ctx="raw_orders",
).toDF()

if not raw.columns:
    print("no new raw files since the last run")
else:
    orders = typed(raw).withColumn("valid", is_valid()).cache()
    quarantine = orders.where(~F.col("valid")).select(F.from_json("raw_record", "order_id string, customer_id string, amount string, "
                                                                   "quantity string, status string, order_ts string, updated_at string").alias("r")).select("r.*")
    latest_first = Window.partitionBy("order_id").orderBy(F.col("updated_at").desc())
    curated = (
        orders.where(F.col("valid"))
        .withColumn("version", F.row_number().over(latest_first))
        .where(F.col("version") == 1)
        .select("order_id", "customer_id", "amount", "quantity", "status", "order_ts", "updated_at",
                F.to_date("order_ts").alias("order_date"))
    )
    print(f"{orders.count()} raw rows: {curated.count()} curated orders, {quarantine.count()} quarantined")

    glue_context.write_dynamic_frame.from_options(
        frame=DynamicFrame.fromDF(quarantine, glue_context, "quarantine"),
        connection_type="s3",
        connection_options={"path": args["quarantine_path"]},
        format="json",
    )
    sink = glue_context.getSink(
        connection_type="s3",
        path=args["curated_path"],
        enableUpdateCatalog=True,
        updateBehavior="UPDATE_IN_DATABASE",
        partitionKeys=["order_date"],
        transformation_ctx="curated_sink",
    )
    sink.setFormat("glueparquet", compression="snappy")
    sink.setCatalogInfo(catalogDatabase=args["database"], catalogTableName=args["table"])
    sink.writeFrame(DynamicFrame.fromDF(curated, glue_context, "curated"))

job.commit()
