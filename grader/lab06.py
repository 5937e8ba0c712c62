"""Lab 06 checks: the Glue job definition and its run history, the curated Parquet (orders, values, no
duplicates, format, compression, day partitions) against values recomputed from the learner's seed, the
quarantine, the catalog table, and job bookmarks."""

from __future__ import annotations

import io
import json
from collections import Counter

import pyarrow.parquet as pq

from grader.catalog import glue_table
from grader.core import Fail, LabContext, check

JOB = "orders-etl"
CURATED_BUCKET = "dea-etl-curated"
CURATED_PREFIX = "curated/orders/"
QUARANTINE_PREFIX = "quarantine/orders/"
DATABASE = "sales"
TABLE = "orders_curated"
AMOUNT_TOLERANCE = 0.005
DOCS = "https://docs.aws.amazon.com/glue/latest/dg"


def _objects(ctx: LabContext, prefix: str) -> list[dict]:
    s3 = ctx.client("s3")
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=CURATED_BUCKET, Prefix=prefix)
        return [item for page in pages for item in page.get("Contents", [])]
    except s3.exceptions.NoSuchBucket:
        raise Fail(f"bucket {CURATED_BUCKET} does not exist") from None


def _data_files(ctx: LabContext) -> list[dict]:
    files = [item for item in _objects(ctx, CURATED_PREFIX) if not item["Key"].rsplit("/", 1)[-1].startswith(("_", ".")) and item["Size"] > 0]
    if not files:
        raise Fail(f"s3://{CURATED_BUCKET}/{CURATED_PREFIX} holds no data files: has the job run and written its output?")
    return files


def _parquet(ctx: LabContext, key: str) -> pq.ParquetFile:
    body = ctx.client("s3").get_object(Bucket=CURATED_BUCKET, Key=key)["Body"].read()
    try:
        return pq.ParquetFile(io.BytesIO(body))
    except Exception as error:  # pyarrow raises several types for bytes that are not Parquet
        raise Fail(f"s3://{CURATED_BUCKET}/{key} is not a Parquet file ({type(error).__name__})") from None


def _curated_rows(ctx: LabContext) -> list[dict]:
    rows = []
    for item in _data_files(ctx):
        folders = dict(part.split("=", 1) for part in item["Key"][len(CURATED_PREFIX):].split("/")[:-1] if "=" in part)
        for row in _parquet(ctx, item["Key"]).read().to_pylist():
            rows.append({**row, **folders})
    return rows


def _runs(ctx: LabContext) -> list[dict]:
    glue = ctx.client("glue")
    try:
        return glue.get_job_runs(JobName=JOB)["JobRuns"]
    except glue.exceptions.EntityNotFoundException:
        raise Fail(f"job {JOB} does not exist") from None


@check("L06-01", "Job orders-etl: Spark (glueetl) on Glue 5.0, script in S3, bookmarks on", points=2, task="1.2",
       hints=("create_job(Name='orders-etl', Command={'Name': 'glueetl', 'ScriptLocation': 's3://dea-etl-scripts/jobs/etl_orders.py'}, GlueVersion='5.0', DefaultArguments={'--job-bookmark-option': 'job-bookmark-enable', ...})",),
       docs=f"{DOCS}/add-job.html")
def job_definition(ctx: LabContext) -> str:
    glue = ctx.client("glue")
    try:
        job = glue.get_job(JobName=JOB)["Job"]
    except glue.exceptions.EntityNotFoundException:
        raise Fail(f"job {JOB} does not exist") from None
    command = job.get("Command", {})
    if command.get("Name") != "glueetl":
        raise Fail(f"job {JOB} has Command.Name {command.get('Name')!r}, expected glueetl (a Spark job)")
    if job.get("GlueVersion") != "5.0":
        raise Fail(f"job {JOB} has GlueVersion {job.get('GlueVersion')!r}, expected 5.0")
    location = command.get("ScriptLocation", "")
    bucket, _, key = location.removeprefix("s3://").partition("/")
    try:
        ctx.client("s3").head_object(Bucket=bucket, Key=key)
    except Exception:  # noqa: BLE001 - any failure to find the script is the same finding
        raise Fail(f"job {JOB}: its script {location!r} is not an object in S3") from None
    option = job.get("DefaultArguments", {}).get("--job-bookmark-option")
    if option != "job-bookmark-enable":
        raise Fail(f"job {JOB}: --job-bookmark-option is {option!r}, expected job-bookmark-enable")
    return f"job {JOB} runs {location} on Glue 5.0 with bookmarks enabled"


@check("L06-02", "The job ran twice and its latest run SUCCEEDED", points=1, task="1.2",
       hints=("run_job.py starts a run, waits, uploads the second batch and runs again; read /aws-glue/jobs/error for a failed run's traceback.",),
       docs=f"{DOCS}/monitor-continuations.html")
def run_history(ctx: LabContext) -> str:
    runs = _runs(ctx)
    succeeded = [run for run in runs if run["JobRunState"] == "SUCCEEDED"]
    if not runs:
        raise Fail(f"job {JOB} has never run")
    if runs[0]["JobRunState"] != "SUCCEEDED":
        raise Fail(f"job {JOB}: the latest run is {runs[0]['JobRunState']}: {runs[0].get('ErrorMessage', '')}")
    if len(succeeded) < 2:
        raise Fail(f"job {JOB} has {len(succeeded)} successful run(s), expected at least 2 (before and after the second batch)")
    return f"job {JOB} has {len(succeeded)} successful runs, the latest included"


@check("L06-03", "Every valid order is curated", points=2, task="1.2",
       hints=("Keep the rows whose order_id and customer_id are present, amount is a number >= 0, quantity a whole number >= 1 and order_ts a timestamp.",),
       docs=f"{DOCS}/aws-glue-programming-python-samples-medicaid.html")
def curated_orders(ctx: LabContext) -> str:
    got = {row.get("order_id") for row in _curated_rows(ctx)}
    expected = set(ctx.dataset["curated"])
    if got != expected:
        missing, extra = sorted(expected - got), sorted(got - expected, key=str)
        raise Fail(f"s3://{CURATED_BUCKET}/{CURATED_PREFIX} has {len(got)} distinct orders, expected {len(expected)}"
                   + (f"; missing e.g. {missing[:3]}" if missing else "") + (f"; not expected e.g. {extra[:3]}" if extra else ""))
    return f"all {len(expected)} valid orders are curated"


@check("L06-04", "Curated values are typed and the latest version of each order", points=2, task="1.2",
       hints=("Cast amount to double and quantity to int; of the valid versions of an order keep the one with the greatest updated_at.",),
       docs="https://spark.apache.org/docs/3.5.0/sql-ref-syntax-qry-select-window.html")
def curated_values(ctx: LabContext) -> str:
    versions: dict[str, list[dict]] = {}
    for row in _curated_rows(ctx):
        versions.setdefault(row.get("order_id"), []).append(row)
    wrong = []
    for order_id, expected in ctx.dataset["curated"].items():
        candidates = versions.get(order_id, [])
        if candidates and not any(_matches(row, expected) for row in candidates):
            wrong.append((order_id, candidates[0], expected))
    if wrong:
        order_id, row, expected = wrong[0]
        shown = {key: row.get(key) for key in ("customer_id", "amount", "quantity", "status", "order_date")}
        wanted = {key: expected[key] for key in ("customer_id", "amount", "quantity", "status", "order_date")}
        raise Fail(f"{len(wrong)} curated orders differ from their latest valid version; {order_id}: {shown}, expected {wanted}")
    return f"every curated order has the typed values of its latest valid version"


def _matches(row: dict, expected: dict) -> bool:
    try:
        amount_ok = abs(float(row.get("amount")) - expected["amount"]) <= AMOUNT_TOLERANCE and isinstance(row.get("amount"), float)
        quantity_ok = isinstance(row.get("quantity"), int) and row["quantity"] == expected["quantity"]
    except (TypeError, ValueError):
        return False
    return (amount_ok and quantity_ok and row.get("customer_id") == expected["customer_id"]
            and row.get("status") == expected["status"] and str(row.get("order_date"))[:10] == expected["order_date"])


@check("L06-05", "No order appears twice", points=2, task="1.2",
       hints=("Re-sent orders and exact copies must collapse to one row per order_id (row_number() over a window by order_id, latest updated_at first).",),
       docs="https://spark.apache.org/docs/3.5.0/api/python/reference/pyspark.sql/api/pyspark.sql.functions.row_number.html")
def no_duplicates(ctx: LabContext) -> str:
    counts = Counter(row.get("order_id") for row in _curated_rows(ctx))
    repeated = {order_id: n for order_id, n in counts.items() if n > 1}
    if repeated:
        example = sorted(repeated, key=str)[0]
        raise Fail(f"{len(repeated)} orders appear more than once in s3://{CURATED_BUCKET}/{CURATED_PREFIX}, e.g. {example} ×{repeated[example]}")
    return f"{len(counts)} curated orders, each exactly once"


@check("L06-06", "Curated files are Parquet compressed with Snappy", points=1, task="1.2",
       hints=("format='glueparquet' (or 'parquet') with compression 'snappy' on the sink.",),
       docs=f"{DOCS}/aws-glue-programming-etl-format-parquet-home.html")
def format_and_compression(ctx: LabContext) -> str:
    files = _data_files(ctx)
    for item in files:
        metadata = _parquet(ctx, item["Key"]).metadata
        codecs = {metadata.row_group(g).column(c).compression for g in range(metadata.num_row_groups) for c in range(metadata.num_columns)}
        if codecs - {"SNAPPY"}:
            raise Fail(f"s3://{CURATED_BUCKET}/{item['Key']} is compressed with {sorted(codecs)}, expected SNAPPY")
    return f"all {len(files)} curated files are Snappy-compressed Parquet"


@check("L06-07", "Curated data is partitioned by order_date", points=1, task="1.2",
       hints=("partitionKeys=['order_date'] gives folders order_date=YYYY-MM-DD, one per day of orders.",),
       docs=f"{DOCS}/aws-glue-programming-etl-partitions.html")
def partitions(ctx: LabContext) -> str:
    folders = {item["Key"][len(CURATED_PREFIX):].split("/")[0] for item in _data_files(ctx)}
    expected = {f"order_date={day}" for day in ctx.dataset["order_dates"]}
    if folders != expected:
        raise Fail(f"s3://{CURATED_BUCKET}/{CURATED_PREFIX} has folders {sorted(folders)[:4]}…, expected {sorted(expected)}")
    return f"s3://{CURATED_BUCKET}/{CURATED_PREFIX} has one folder per order date ({len(expected)})"


@check("L06-08", "Invalid rows are in the quarantine", points=2, task="1.2",
       hints=("Write the rows that fail the rules, as JSON, to s3://dea-etl-curated/quarantine/orders/ — every failing row, re-sent versions included.",),
       docs=f"{DOCS}/aws-glue-programming-etl-format-json-home.html")
def quarantine(ctx: LabContext) -> str:
    s3 = ctx.client("s3")
    order_ids = []
    for item in _objects(ctx, QUARANTINE_PREFIX):
        if item["Size"] == 0 or item["Key"].rsplit("/", 1)[-1].startswith(("_", ".")):
            continue
        for line in s3.get_object(Bucket=CURATED_BUCKET, Key=item["Key"])["Body"].read().decode().splitlines():
            if line.strip():
                try:
                    order_ids.append(json.loads(line).get("order_id") or "")
                except ValueError:
                    raise Fail(f"s3://{CURATED_BUCKET}/{item['Key']} is not JSON lines") from None
    expected = ctx.dataset["quarantined_order_ids"]
    if sorted(order_ids) != expected:
        raise Fail(f"s3://{CURATED_BUCKET}/{QUARANTINE_PREFIX} holds {len(order_ids)} rows, expected the {len(expected)} invalid ones"
                   + (f" (e.g. {sorted(set(expected) - set(order_ids))[:3]} missing)" if set(expected) - set(order_ids) else ""))
    return f"the {len(expected)} invalid rows are quarantined"


@check("L06-09", "Table sales.orders_curated describes the curated data", points=2, task="1.2",
       hints=("getSink(..., enableUpdateCatalog=True, partitionKeys=['order_date']) with setCatalogInfo(catalogDatabase='sales', catalogTableName='orders_curated').",),
       docs=f"{DOCS}/update-from-job.html")
def catalog_table(ctx: LabContext) -> str:
    table = glue_table(ctx, DATABASE, TABLE)
    descriptor = table.get("StorageDescriptor", {})
    location = descriptor.get("Location", "").rstrip("/") + "/"
    if location != f"s3://{CURATED_BUCKET}/{CURATED_PREFIX}":
        raise Fail(f"table {DATABASE}.{TABLE} points at {location}, expected s3://{CURATED_BUCKET}/{CURATED_PREFIX}")
    if "parquet" not in (table.get("Parameters", {}).get("classification", "") + descriptor.get("SerdeInfo", {}).get("SerializationLibrary", "")).lower():
        raise Fail(f"table {DATABASE}.{TABLE} is not declared as Parquet")
    keys = [key["Name"] for key in table.get("PartitionKeys", [])]
    if keys != ["order_date"]:
        raise Fail(f"table {DATABASE}.{TABLE} has partition keys {keys}, expected ['order_date']")
    pages = ctx.client("glue").get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName=TABLE)
    registered = sorted(p["Values"][0] for page in pages for p in page["Partitions"])
    if registered != ctx.dataset["order_dates"]:
        raise Fail(f"table {DATABASE}.{TABLE} has partitions {registered[:4]}…, expected {ctx.dataset['order_dates']}")
    return f"table {DATABASE}.{TABLE} is Parquet at s3://{CURATED_BUCKET}/{CURATED_PREFIX} with {len(registered)} partitions"


@check("L06-10", "Job bookmarks advanced with every run", points=2, task="1.4",
       hints=("Give the source a transformation_ctx, run with --job-bookmark-option job-bookmark-enable, and call job.commit() at the end of the script.",),
       docs=f"{DOCS}/monitor-continuations.html")
def bookmarks(ctx: LabContext) -> str:
    glue = ctx.client("glue")
    try:
        entry = glue.get_job_bookmark(JobName=JOB)["JobBookmarkEntry"]
    except glue.exceptions.EntityNotFoundException:
        raise Fail(f"job {JOB} has no bookmark: was job.commit() called, with bookmarks enabled?") from None
    succeeded = [run["Id"] for run in _runs(ctx) if run["JobRunState"] == "SUCCEEDED"]
    if not succeeded or entry.get("RunId") != succeeded[0]:
        raise Fail(f"job {JOB}: the bookmark was last advanced by run {entry.get('RunId') or 'none'}, not by the latest successful run")
    if entry.get("Run", 0) < 2:
        raise Fail(f"job {JOB}: the bookmark advanced {entry.get('Run', 0)} time(s), expected once per run (at least 2)")
    return f"job {JOB}: the bookmark advanced {entry['Run']} times, last by the latest run"
