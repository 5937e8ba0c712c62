"""Lab 06 — the Glue job: raw JSON orders → cleansed, deduplicated Parquet partitioned by day.

This script runs inside Glue (on Spark), not on your machine: deploy_job.py uploads it, run_job.py runs it.
Arguments (the job's DefaultArguments): --raw_path --curated_path --quarantine_path --database --table

The rules:
- a row is valid when order_id and customer_id are present, amount reads as a number >= 0, quantity as a
  whole number >= 1, and order_ts as a timestamp; every other row goes, as JSON, to the quarantine path;
- of the valid rows keep only the latest version (greatest updated_at) of each order;
- write order_id, customer_id, amount (double), quantity (int), status, order_ts, updated_at (timestamps)
  as Snappy Parquet partitioned by order_date (the date of order_ts), and register the table in the catalog.
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


# TODO 1: read the raw JSON files under args["raw_path"] (recursively) with a transformation_ctx, so that job
#         bookmarks can remember which files were read.
raw = glue_context.create_dynamic_frame.from_options(
    connection_type="s3",
    connection_options={"paths": [args["raw_path"]], "recurse": True},
    format="json",
).toDF()

if not raw.columns:
    print("no new raw files since the last run")
else:
    text = raw.select(*[field(raw, name).alias(name) for name in RAW_FIELDS])
    # TODO 2: type the fields (amount double, quantity int, order_ts and updated_at timestamps), split valid from
    #         invalid rows by the rules above, and keep the latest valid version of each order.
    curated = text.withColumn("order_date", F.substring("order_ts", 1, 10))
    # TODO 3: write the invalid rows as JSON to args["quarantine_path"], each with the values it arrived with
    #         (someone must be able to see what was wrong with it): the raw text, not the casted columns.

    # TODO 4: write `curated` as Snappy Parquet partitioned by order_date to args["curated_path"], and create or
    #         update the table args["database"].args["table"] with its partitions (a sink that updates the catalog).
    glue_context.write_dynamic_frame.from_options(
        frame=DynamicFrame.fromDF(curated, glue_context, "curated"),
        connection_type="s3",
        connection_options={"path": args["curated_path"]},
        format="json",
    )

# TODO 5: commit the job, so the bookmark remembers what this run read.
