"""Lab 05 checks: the telemetry database, the crawler and its schedule, the tables it made (formats, column
types, day partitions), the schema that followed the new day's extra field, and Athena reading every partition."""

from __future__ import annotations

import time

from dealab.datasets.telemetry import NEW_COLUMN, RAW_BUCKET, READING_COLUMNS, STATION_COLUMNS
from grader.catalog import glue_table
from grader.core import Fail, LabContext, check

DATABASE = "telemetry"
CRAWLER = "raw-telemetry"
SCHEDULE = "cron(0 2 * * ? *)"
GRADER_OUTPUT = f"s3://{RAW_BUCKET}/_grader-results/"
DOCS = "https://docs.aws.amazon.com/glue/latest/dg"


def _table(ctx: LabContext, name: str) -> dict:
    return glue_table(ctx, DATABASE, name, f"the crawler makes one table per folder under s3://{RAW_BUCKET}/raw/")


def _columns(table: dict) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in table["StorageDescriptor"].get("Columns", [])]


def _crawler(ctx: LabContext) -> dict:
    glue = ctx.client("glue")
    try:
        return glue.get_crawler(Name=CRAWLER)["Crawler"]
    except glue.exceptions.EntityNotFoundException:
        raise Fail(f"crawler {CRAWLER} does not exist") from None


@check("L05-01", "Database telemetry exists", points=1, task="2.2",
       hints=("glue.create_database(DatabaseInput={'Name': 'telemetry'})",), docs=f"{DOCS}/define-database.html")
def database(ctx: LabContext) -> str:
    glue = ctx.client("glue")
    try:
        glue.get_database(Name=DATABASE)
    except glue.exceptions.EntityNotFoundException:
        raise Fail(f"database {DATABASE} does not exist in the Glue Data Catalog") from None
    return f"database {DATABASE} exists"


@check("L05-02", "Crawler raw-telemetry crawled the raw zone into telemetry", points=2, task="2.2",
       hints=("create_crawler(Name='raw-telemetry', DatabaseName='telemetry', Targets={'S3Targets': [{'Path': 's3://dea-catalog-raw/raw/'}]}, ...), then start_crawler and wait until its State is READY.",),
       docs=f"{DOCS}/add-crawler.html")
def crawler_ran(ctx: LabContext) -> str:
    crawler = _crawler(ctx)
    if crawler.get("DatabaseName") != DATABASE:
        raise Fail(f"crawler {CRAWLER} writes to database {crawler.get('DatabaseName')!r}, expected {DATABASE}")
    paths = [t["Path"] for t in crawler.get("Targets", {}).get("S3Targets", [])]
    if not any(path.startswith(f"s3://{RAW_BUCKET}/") for path in paths):
        raise Fail(f"crawler {CRAWLER} targets {paths}, none in s3://{RAW_BUCKET}/")
    last = crawler.get("LastCrawl")
    if not last:
        raise Fail(f"crawler {CRAWLER} has never run: start_crawler(Name='{CRAWLER}')")
    if last["Status"] != "SUCCEEDED":
        raise Fail(f"crawler {CRAWLER}: last crawl {last['Status']}: {last.get('ErrorMessage', '')}")
    return f"crawler {CRAWLER} crawled {', '.join(paths)} into {DATABASE}; last crawl SUCCEEDED"


@check("L05-03", "Table readings: JSON with the sensor columns and types", points=2, task="2.2",
       hints=("The crawler infers the columns from the JSON lines; if the types look wrong, check which files it read (only data files under raw/readings/).",),
       docs=f"{DOCS}/crawler-data-stores.html")
def readings_table(ctx: LabContext) -> str:
    table = _table(ctx, "readings")
    classification = table.get("Parameters", {}).get("classification")
    if classification != "json":
        raise Fail(f"table {DATABASE}.readings is classified {classification!r}, expected json")
    columns = _columns(table)
    if columns[: len(READING_COLUMNS)] != READING_COLUMNS:
        raise Fail(f"table {DATABASE}.readings has columns {columns}, expected {READING_COLUMNS} first")
    return f"table {DATABASE}.readings is JSON with {len(READING_COLUMNS)} typed sensor columns"


@check("L05-04", "readings is partitioned by dt, one partition per day", points=2, task="2.2",
       hints=("Folders named dt=YYYY-MM-DD become partitions of key dt; a new day's folder is registered by the next crawl.",),
       docs=f"{DOCS}/tables-described.html#tables-partition")
def readings_partitions(ctx: LabContext) -> str:
    table = _table(ctx, "readings")
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    if keys != ["dt"]:
        raise Fail(f"table {DATABASE}.readings has partition keys {keys}, expected ['dt']")
    pages = ctx.client("glue").get_paginator("get_partitions").paginate(DatabaseName=DATABASE, TableName="readings")
    got = sorted(p["Values"][0] for page in pages for p in page["Partitions"])
    expected = sorted(ctx.dataset["rows_per_day"])
    if got != expected:
        missing = sorted(set(expected) - set(got))
        raise Fail(f"table {DATABASE}.readings has {len(got)} partitions, expected {len(expected)}" + (f"; missing {missing}" if missing else ""))
    return f"table {DATABASE}.readings has all {len(got)} day partitions, {expected[-1]} included"


@check("L05-05", "Table stations: CSV with a header and typed columns", points=1, task="2.2",
       hints=("Crawl the whole raw zone (s3://dea-catalog-raw/raw/), so that raw/stations/ becomes its own table.",),
       docs=f"{DOCS}/add-classifier.html")
def stations_table(ctx: LabContext) -> str:
    table = _table(ctx, "stations")
    parameters = table.get("Parameters", {})
    if parameters.get("classification") != "csv" or parameters.get("skip.header.line.count") != "1":
        raise Fail(f"table {DATABASE}.stations: classification {parameters.get('classification')!r}, "
                   f"skip.header.line.count {parameters.get('skip.header.line.count')!r}; expected csv with a header line")
    if _columns(table) != STATION_COLUMNS:
        raise Fail(f"table {DATABASE}.stations has columns {_columns(table)}, expected {STATION_COLUMNS}")
    return f"table {DATABASE}.stations is CSV with its header skipped and {len(STATION_COLUMNS)} typed columns"


@check("L05-06", "The catalog followed the new firmware field", points=2, task="2.4",
       hints=("With SchemaChangePolicy UpdateBehavior LOG the crawler only logs a new column. update_crawler(..., SchemaChangePolicy={'UpdateBehavior': 'UPDATE_IN_DATABASE', 'DeleteBehavior': 'LOG'}), then crawl again.",),
       docs=f"{DOCS}/crawler-configuration.html#crawler-schema-changes-prevent")
def evolved_schema(ctx: LabContext) -> str:
    columns = _columns(_table(ctx, "readings"))
    if NEW_COLUMN not in columns:
        crawler = _crawler(ctx)
        behavior = crawler.get("SchemaChangePolicy", {}).get("UpdateBehavior")
        raise Fail(f"table {DATABASE}.readings has no column firmware string (crawler {CRAWLER} UpdateBehavior is {behavior})")
    if columns[: len(READING_COLUMNS)] != READING_COLUMNS:
        raise Fail(f"table {DATABASE}.readings changed its existing columns: {columns}")
    return f"table {DATABASE}.readings gained firmware string and kept its other columns"


@check("L05-07", "Athena reads every partition with all its rows", points=2, task="2.4",
       hints=("Every day's folder must be a registered partition, and the table's format must match the files.",),
       docs="https://docs.aws.amazon.com/athena/latest/ug/glue-best-practices.html")
def every_partition_readable(ctx: LabContext) -> str:
    athena = ctx.client("athena")
    _table(ctx, "readings")
    execution_id = athena.start_query_execution(
        QueryString=f"SELECT dt, count(*) FROM {DATABASE}.readings GROUP BY dt",
        QueryExecutionContext={"Database": DATABASE}, ResultConfiguration={"OutputLocation": GRADER_OUTPUT},
    )["QueryExecutionId"]
    for _ in range(600):
        status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.1)
    if status["State"] != "SUCCEEDED":
        raise Fail(f"Athena cannot read {DATABASE}.readings: {status['State']} {status.get('StateChangeReason', '')}")
    rows = athena.get_query_results(QueryExecutionId=execution_id)["ResultSet"]["Rows"][1:]
    got = {row["Data"][0]["VarCharValue"]: int(row["Data"][1]["VarCharValue"]) for row in rows}
    expected = ctx.dataset["rows_per_day"]
    if got != expected:
        wrong = sorted(day for day in set(got) | set(expected) if got.get(day) != expected.get(day))
        raise Fail(f"Athena over {DATABASE}.readings: days {wrong} return {[got.get(d, 0) for d in wrong]} rows, "
                   f"the files hold {[expected.get(d, 0) for d in wrong]}")
    return f"Athena reads all {len(got)} partitions of {DATABASE}.readings, {sum(got.values())} rows"


@check("L05-08", "The crawler runs daily at 02:00 UTC", points=1, task="2.2",
       hints=("Schedule='cron(0 2 * * ? *)' on create_crawler or update_crawler.",),
       docs=f"{DOCS}/schedule-crawler.html")
def schedule(ctx: LabContext) -> str:
    expression = (_crawler(ctx).get("Schedule") or {}).get("ScheduleExpression", "")
    if expression != SCHEDULE:
        raise Fail(f"crawler {CRAWLER} has schedule {expression or 'none'}, expected {SCHEDULE}")
    return f"crawler {CRAWLER} runs on {SCHEDULE}"
