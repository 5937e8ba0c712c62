"""Lab 06 checks: the Glue job definition and its run history, the curated Parquet (orders, values, no
duplicates, format, compression, day partitions) against values recomputed from the learner's seed, the
quarantine (its records compared with the source's raw values), the catalog table, and job bookmarks.

A row written again by a later run (the bookmark did not skip files already read) is blamed on the bookmark
check L06-10 alone: the deduplication and quarantine checks count each source row once."""

from __future__ import annotations

import io
import json
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from dealab.datasets import etl_orders
from grader.catalog import glue_table
from grader.core import Fail, LabContext, check

JOB = "orders-etl"
CURATED_BUCKET = "dea-etl-curated"
CURATED_PREFIX = "curated/orders/"
QUARANTINE_PREFIX = "quarantine/orders/"
DATABASE = "sales"
TABLE = "orders_curated"
AMOUNT_TOLERANCE = 0.005
RAW_FIELDS = ("order_id", "customer_id", "amount", "quantity", "status", "order_ts", "updated_at")
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


def _source_rows(ctx: LabContext) -> list[dict]:
    """Every raw row of the learner's two batches, as the seed writes them (values of their original JSON types)."""
    if "source_rows" not in ctx.__dict__:
        with tempfile.TemporaryDirectory(prefix="dealab-expected-") as scratch:
            ctx.lab.generator()(ctx.seed, Path(scratch), **ctx.lab.dataset.get("params", {}))
            ctx.__dict__["source_rows"] = [json.loads(line) for path in sorted(Path(scratch).rglob("*.json"))
                                           for line in path.read_text().splitlines() if line.strip()]
    return ctx.__dict__["source_rows"]


def _quarantine_records(ctx: LabContext) -> list[dict]:
    s3 = ctx.client("s3")
    records = []
    for item in _objects(ctx, QUARANTINE_PREFIX):
        if item["Size"] == 0 or item["Key"].rsplit("/", 1)[-1].startswith(("_", ".")):
            continue
        for line in s3.get_object(Bucket=CURATED_BUCKET, Key=item["Key"])["Body"].read().decode(errors="replace").splitlines():
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError:
                    raise Fail(f"s3://{CURATED_BUCKET}/{item['Key']} is not JSON lines") from None
                if not isinstance(record, dict):
                    raise Fail(f"s3://{CURATED_BUCKET}/{item['Key']} holds {type(record).__name__}s, not one JSON object per row")
                records.append(record)
    return records


def _same_raw_value(source, kept) -> bool:
    """A quarantined value keeps the source's: the same text, or the same number written as text or number."""
    if source is None or kept is None:
        return source is None and kept is None
    if str(source) == str(kept):
        return True
    try:
        return not isinstance(source, bool) and float(source) == float(kept)
    except (TypeError, ValueError):
        return False


def _moment(value) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM:SS', whether raw text ('...T...Z') or a value read from Parquet."""
    return str(value).replace("T", " ")[:19]


def _curated_versions(ctx: LabContext) -> Counter:
    """How often each version (order_id, updated_at) was written to the curated data."""
    return Counter((row.get("order_id"), _moment(row.get("updated_at"))) for row in _curated_rows(ctx))


def _times_read(ctx: LabContext, written: Counter) -> int:
    """How many times the runs read the same raw rows: a row that occurs once in the source yet was written n
    times was read by n runs (deduplication cannot make a copy of a row that has none). 1 when bookmarks work."""
    source = Counter((row.get("order_id"), _moment(row.get("updated_at"))) for row in _source_rows(ctx))
    return max((n for version, n in written.items() if source.get(version) == 1), default=1)


@check("L06-01", "Job orders-etl: Spark (glueetl) on Glue 5.0, script in S3, bookmarks on", points=2, task="1.2",
       hints=("A Glue job is a definition (type, Glue version, workers, default arguments) that points at a script in S3; a Spark job is type glueetl, and bookmarks are a job argument.",
              "Glue CreateJob / UpdateJob: Command.Name and ScriptLocation, GlueVersion, DefaultArguments['--job-bookmark-option'].",
              "create_job(Name='orders-etl', Command={'Name': 'glueetl', 'ScriptLocation': 's3://dea-etl-scripts/jobs/etl_orders.py'}, GlueVersion='5.0', DefaultArguments={'--job-bookmark-option': 'job-bookmark-enable', ...})"),
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
       hints=("An incremental job runs once per arrival of data: once for the first batch, again after the second lands.",
              "Glue StartJobRun and GetJobRun (JobRunState, ErrorMessage); a failed run's traceback is in CloudWatch Logs /aws-glue/jobs/error, stream = run id.",
              "python run_job.py (make run-6): it runs, uploads batch 2 and runs again; aws logs get-log-events --log-group-name /aws-glue/jobs/error --log-stream-name <run id>."),
       docs=f"{DOCS}/monitor-continuations.html")
def run_history(ctx: LabContext) -> str:
    runs = _runs(ctx)
    succeeded = [run for run in runs if run["JobRunState"] == "SUCCEEDED"]
    if not runs:
        raise Fail(f"job {JOB} has never run")
    if runs[0]["JobRunState"] != "SUCCEEDED":
        raise Fail(f"job {JOB}: the latest run is {runs[0]['JobRunState']}: {' '.join((runs[0].get('ErrorMessage') or '').splitlines()[:1])}")
    if len(succeeded) < 2:
        raise Fail(f"job {JOB} has {len(succeeded)} successful run(s), expected at least 2 (before and after the second batch)")
    return f"job {JOB} has {len(succeeded)} successful runs, the latest included"


@check("L06-03", "Every valid order is curated", points=2, task="1.2",
       hints=("Cleansing keeps every row that passes the rules, and only those; a rule that is too strict drops good orders.",
              "PySpark casts (cast('double'), to_timestamp) turn bad text into null; filter on the casted columns.",
              "Valid: order_id and customer_id present, amount a number >= 0, quantity a whole number >= 1, order_ts a timestamp (F.to_timestamp('order_ts').isNotNull())."),
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
       hints=("Curated data is typed, and an order re-sent with updates is represented by its latest valid version.",
              "Column.cast for types; a window partitioned by order_id ordered by updated_at picks the latest version.",
              "F.col('amount').cast('double'), F.col('quantity').cast('int'); row_number().over(Window.partitionBy('order_id').orderBy(F.col('updated_at').desc())) == 1, after filtering the valid rows."),
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
       hints=("Raw feeds re-send orders and repeat rows; curated data holds each order once.",
              "A window function (row_number) over the rows of each order_id, or dropDuplicates for exact copies only.",
              "F.row_number().over(Window.partitionBy('order_id').orderBy(F.col('updated_at').desc())) and keep the rows where it is 1."),
       docs="https://spark.apache.org/docs/3.5.0/api/python/reference/pyspark.sql/api/pyspark.sql.functions.row_number.html")
def no_duplicates(ctx: LabContext) -> str:
    versions = _curated_versions(ctx)
    rereads = _times_read(ctx, versions)
    # a run that re-read old files writes each of their rows once more: that is the bookmark's failure (L06-10)
    kept = {version: n / rereads for version, n in versions.items()}
    counts = Counter()
    for (order_id, _), n in kept.items():
        counts[order_id] += n
    repeated = {order_id: n for order_id, n in counts.items() if n > 1}
    if repeated:
        example = sorted(repeated, key=str)[0]
        raise Fail(f"{len(repeated)} orders appear more than once in s3://{CURATED_BUCKET}/{CURATED_PREFIX} (re-sent versions or exact "
                   f"copies kept), e.g. {example} ×{round(repeated[example])}: sums and counts over them are inflated")
    return f"{len(counts)} curated orders, each exactly once"


@check("L06-06", "Curated files are Parquet compressed with Snappy", points=1, task="1.2",
       hints=("Columnar Parquet with a splittable, fast codec is the usual curated format for Athena and Spark.",
              "The sink's setFormat (or format_options) chooses the format and its compression.",
              "sink.setFormat('glueparquet', compression='snappy') (or format='parquet' with compression 'snappy')."),
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
       hints=("Partitioning by day lets queries read only the days they ask for: Hive-style folders key=value.",
              "The sink's partitionKeys option writes one folder per value.",
              "getSink(..., partitionKeys=['order_date']) with order_date = F.to_date('order_ts')."),
       docs=f"{DOCS}/aws-glue-programming-etl-partitions.html")
def partitions(ctx: LabContext) -> str:
    folders = {item["Key"][len(CURATED_PREFIX):].split("/")[0] for item in _data_files(ctx)}
    expected = {f"order_date={day}" for day in ctx.dataset["order_dates"]}
    if folders != expected:
        raise Fail(f"s3://{CURATED_BUCKET}/{CURATED_PREFIX} has folders {sorted(folders)[:4]}…, expected {sorted(expected)}")
    return f"s3://{CURATED_BUCKET}/{CURATED_PREFIX} has one folder per order date ({len(expected)})"


@check("L06-08", "Invalid rows are in the quarantine", points=2, task="1.2",
       hints=("A quarantine keeps every row that failed the rules exactly as it arrived, so someone can see what was wrong and replay it; casting first destroys the bad values.",
              "Keep the raw text of each field beside the typed columns (to_json of a struct, or the source frame itself) and write the failing rows as JSON.",
              "Write the invalid rows' original fields (F.from_json of the raw_record, not the casted columns) with write_dynamic_frame.from_options(..., connection_options={'path': quarantine_path}, format='json')."),
       docs=f"{DOCS}/aws-glue-programming-etl-format-json-home.html")
def quarantine(ctx: LabContext) -> str:
    records = _quarantine_records(ctx)
    got = {record.get("order_id") or "" for record in records}
    expected_rows = [row for row in _source_rows(ctx) if not etl_orders.is_valid(row)]
    expected = {row.get("order_id") or "" for row in expected_rows}
    if got != expected:
        missing, extra = sorted(expected - got), sorted(got - expected, key=str)
        raise Fail(f"s3://{CURATED_BUCKET}/{QUARANTINE_PREFIX} holds rows of {len(got)} orders, expected the {len(expected)} with invalid rows"
                   + (f"; missing e.g. {missing[:3]}" if missing else "") + (f"; valid rows quarantined, e.g. {extra[:3]}" if extra else ""))
    by_order: dict[str, list[dict]] = {}
    for record in records:
        by_order.setdefault(record.get("order_id") or "", []).append(record)
    altered = []
    for row in expected_rows:
        candidates = by_order.get(row.get("order_id") or "", [])
        if not any(all(_same_raw_value(row.get(name), record.get(name)) for name in RAW_FIELDS) for record in candidates):
            differing = next((name for name in RAW_FIELDS if not _same_raw_value(row.get(name), candidates[0].get(name))), "?")
            altered.append((row.get("order_id"), differing, row.get(differing), candidates[0].get(differing)))
    if altered:
        order_id, name, source, kept = altered[0]
        raise Fail(f"{len(altered)} of the {len(expected_rows)} quarantined rows lost their raw values, e.g. {order_id}: {name} arrived as "
                   f"{json.dumps(source)} but the quarantine holds {json.dumps(kept, default=str)}; nobody can see what was wrong with it")
    return f"the {len(expected_rows)} invalid rows are quarantined with their raw values"


@check("L06-09", "Table sales.orders_curated describes the curated data", points=2, task="1.2",
       hints=("A job can register its output in the Data Catalog as it writes, table and partitions, so Athena sees new days at once.",
              "getSink with enableUpdateCatalog and updateBehavior, plus setCatalogInfo on the sink.",
              "getSink(..., enableUpdateCatalog=True, partitionKeys=['order_date']) with setCatalogInfo(catalogDatabase='sales', catalogTableName='orders_curated')."),
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
       hints=("Job bookmarks remember, per source, which files a job has read, so the next run reads only new ones; without them every run reprocesses everything and writes it again.",
              "Three parts: --job-bookmark-option job-bookmark-enable, a transformation_ctx on the source read, and Job.commit() at the end.",
              "create_dynamic_frame.from_options(..., transformation_ctx='raw_orders') and job.commit() as the script's last line."),
       docs=f"{DOCS}/monitor-continuations.html")
def bookmarks(ctx: LabContext) -> str:
    glue = ctx.client("glue")
    try:
        entry = glue.get_job_bookmark(JobName=JOB)["JobBookmarkEntry"]
    except glue.exceptions.EntityNotFoundException:
        raise Fail(f"job {JOB} has no bookmark, so every run would read all raw files again") from None
    succeeded = [run["Id"] for run in _runs(ctx) if run["JobRunState"] == "SUCCEEDED"]
    if not succeeded or entry.get("RunId") != succeeded[0]:
        raise Fail(f"job {JOB}: the bookmark was last advanced by run {entry.get('RunId') or 'none'}, not by the latest successful run")
    if entry.get("Run", 0) < 2:
        raise Fail(f"job {JOB}: the bookmark advanced {entry.get('Run', 0)} time(s), expected once per run (at least 2)")
    try:
        written = _curated_versions(ctx)
    except Fail:  # no curated output to judge re-reads by: the curated checks report that
        written = Counter()
    reads = _times_read(ctx, written)
    if reads > 1:
        again = sorted(version[0] for version, n in written.items() if n == reads)
        raise Fail(f"job {JOB}: {len(again)} curated rows were written {reads} times (e.g. {again[0]}): a later run read again the raw "
                   f"files an earlier run had processed, so the bookmark did not track the source")
    return f"job {JOB}: the bookmark advanced {entry['Run']} times, last by the latest run"
