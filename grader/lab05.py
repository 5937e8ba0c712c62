"""Lab 05 checks: the telemetry database, the crawler and its schedule, the tables it made (formats, column
types, day partitions), the schema that followed the new day's extra field, Athena reading every partition, and
the cautious delete policy. Schedules are compared by when they fire, so every spelling of "daily at 02:00 UTC"
passes."""

from __future__ import annotations

import datetime
import time

from dealab.wire.awscron import CronError, next_times
from dealab.datasets.telemetry import NEW_COLUMN, RAW_BUCKET, READING_COLUMNS, STATION_COLUMNS
from grader.catalog import glue_table
from grader.core import Fail, LabContext, check

DATABASE = "telemetry"
CRAWLER = "raw-telemetry"
SCHEDULE = "cron(0 2 * * ? *)"
# two schedules are the same when they fire at the same moments: these many, counted from this fixed moment
# (over a year, so weekday-only, monthly or year-limited schedules differ)
SCHEDULE_PROBE_FROM = datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc)
SCHEDULE_PROBE_COUNT = 400
CAUTIOUS_DELETE_BEHAVIOR = "LOG"
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
       hints=("The Data Catalog groups tables in databases; the crawler writes its tables into one that must exist first.",
              "Glue CreateDatabase (DatabaseInput with the Name), ignoring AlreadyExistsException so the script can run again.",
              "glue.create_database(DatabaseInput={'Name': 'telemetry'})"), docs=f"{DOCS}/define-database.html")
def database(ctx: LabContext) -> str:
    glue = ctx.client("glue")
    try:
        glue.get_database(Name=DATABASE)
    except glue.exceptions.EntityNotFoundException:
        raise Fail(f"database {DATABASE} does not exist in the Glue Data Catalog") from None
    return f"database {DATABASE} exists"


@check("L05-02", "Crawler raw-telemetry crawled the raw zone into telemetry", points=2, task="2.2",
       hints=("A crawler is defined once (role, target database, S3 targets) and then started; a run ends when its State is READY again, and LastCrawl says how it went.",
              "Glue CreateCrawler (DatabaseName, Targets.S3Targets), then StartCrawler and poll GetCrawler; a failed crawl's message is in LastCrawl and in /aws-glue/crawlers.",
              "create_crawler(Name='raw-telemetry', Role=ROLE, DatabaseName='telemetry', Targets={'S3Targets': [{'Path': 's3://dea-catalog-raw/raw/'}]}, ...), then start_crawler(Name='raw-telemetry') and wait until its State is READY."),
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
        raise Fail(f"crawler {CRAWLER} has never run, so the catalog holds nothing it found")
    if last["Status"] != "SUCCEEDED":
        reason = (last.get("ErrorMessage") or "").strip().splitlines()[:1]
        raise Fail(f"crawler {CRAWLER}: its last crawl {last['Status']}, so the catalog may be stale: {' '.join(reason) or 'no message'}")
    return f"crawler {CRAWLER} crawled {', '.join(paths)} into {DATABASE}; last crawl SUCCEEDED"


@check("L05-03", "Table readings: JSON with the sensor columns and types", points=2, task="2.2",
       hints=("The crawler infers a table's format and column types by sampling the files under its folder.",
              "Check the table with GetTable: Parameters.classification and StorageDescriptor.Columns; the crawler reads only what its S3 target covers.",
              "Crawl s3://dea-catalog-raw/raw/ as it is (no exclusions, no files added under raw/readings/), then glue.get_table(DatabaseName='telemetry', Name='readings')."),
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
       hints=("Folders named dt=YYYY-MM-DD below a table's folder become partitions of key dt; a day's folder is registered only by a crawl that runs after it arrives.",
              "Glue GetPartitions lists the registered days; StartCrawler again after new data lands.",
              "After evolve.py uploads the new day: glue.start_crawler(Name='raw-telemetry'), wait for READY, then glue.get_partitions(DatabaseName='telemetry', TableName='readings')."),
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
       hints=("One crawler target over a whole zone gives one table per dataset folder; a target on one folder catalogs only that folder.",
              "The crawler's Targets.S3Targets Path decides what it reads; the CSV classifier detects the header line itself.",
              "Targets={'S3Targets': [{'Path': 's3://dea-catalog-raw/raw/'}]} so that raw/stations/ becomes table stations."),
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
       hints=("A crawler's SchemaChangePolicy decides what happens when it meets a new column: with UpdateBehavior LOG it only writes a log line; the table changes only on a crawl that runs under UPDATE_IN_DATABASE.",
              "Glue UpdateCrawler with SchemaChangePolicy.UpdateBehavior UPDATE_IN_DATABASE (DeleteBehavior stays LOG), then StartCrawler again.",
              "glue.update_crawler(Name='raw-telemetry', SchemaChangePolicy={'UpdateBehavior': 'UPDATE_IN_DATABASE', 'DeleteBehavior': 'LOG'}), then start_crawler and wait."),
       docs=f"{DOCS}/crawler-configuration.html#crawler-schema-changes-prevent")
def evolved_schema(ctx: LabContext) -> str:
    columns = _columns(_table(ctx, "readings"))
    if NEW_COLUMN not in columns:
        crawler = _crawler(ctx)
        behavior = crawler.get("SchemaChangePolicy", {}).get("UpdateBehavior")
        raise Fail(f"table {DATABASE}.readings has no column firmware string although the new day's files carry it "
                   f"(crawler {CRAWLER} UpdateBehavior is now {behavior}): analysts cannot query the new field")
    if columns[: len(READING_COLUMNS)] != READING_COLUMNS:
        raise Fail(f"table {DATABASE}.readings changed its existing columns: {columns}")
    return f"table {DATABASE}.readings gained firmware string and kept its other columns"


@check("L05-07", "Athena reads every partition with all its rows", points=2, task="2.4",
       hints=("Athena reads a partitioned table only through its registered partitions, with the format the table declares.",
              "Compare Glue GetPartitions with the dt= folders in S3, and the table's classification with the files.",
              "SELECT dt, count(*) FROM telemetry.readings GROUP BY dt — every day of raw/readings/ must be there with all its rows."),
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
        reason = (status.get("StateChangeReason") or "").strip().splitlines()[:1]
        raise Fail(f"Athena cannot read {DATABASE}.readings: {status['State']} {' '.join(reason)}")
    rows = athena.get_query_results(QueryExecutionId=execution_id)["ResultSet"]["Rows"][1:]
    got = {row["Data"][0]["VarCharValue"]: int(row["Data"][1]["VarCharValue"]) for row in rows}
    expected = ctx.dataset["rows_per_day"]
    if got != expected:
        wrong = sorted(day for day in set(got) | set(expected) if got.get(day) != expected.get(day))
        raise Fail(f"Athena over {DATABASE}.readings: days {wrong} return {[got.get(d, 0) for d in wrong]} rows, "
                   f"the files hold {[expected.get(d, 0) for d in wrong]}")
    return f"Athena reads all {len(got)} partitions of {DATABASE}.readings, {sum(got.values())} rows"


@check("L05-08", "The crawler runs daily at 02:00 UTC", points=1, task="2.2",
       hints=("Crawler schedules are AWS cron expressions in UTC with six fields: Minutes Hours Day-of-month Month Day-of-week Year.",
              "The Schedule parameter of CreateCrawler or UpdateCrawler; one of the two day fields must be '?'.",
              "Schedule='cron(0 2 * * ? *)' on create_crawler or update_crawler."),
       docs=f"{DOCS}/schedule-crawler.html")
def schedule(ctx: LabContext) -> str:
    expression = (_crawler(ctx).get("Schedule") or {}).get("ScheduleExpression", "")
    if not expression:
        raise Fail(f"crawler {CRAWLER} has no schedule: it runs only when started by hand")
    expected = next_times(SCHEDULE, SCHEDULE_PROBE_FROM, SCHEDULE_PROBE_COUNT)
    try:
        got = next_times(expression, SCHEDULE_PROBE_FROM, SCHEDULE_PROBE_COUNT)
    except CronError as error:
        raise Fail(f"crawler {CRAWLER} has schedule {expression}, which is not an AWS cron expression: {error}") from None
    if got != expected:
        first_difference = next(index for index, (a, b) in enumerate(zip(got + [None] * len(expected), expected)) if a != b)
        wrong = got[first_difference] if first_difference < len(got) else None
        fires = f"fires at {wrong:%a %Y-%m-%d %H:%M} UTC" if wrong else "stops firing"
        raise Fail(f"crawler {CRAWLER} has schedule {expression}, which {fires} where a daily 02:00 UTC schedule fires at "
                   f"{expected[first_difference]:%a %Y-%m-%d %H:%M} UTC")
    return f"crawler {CRAWLER} runs on {expression}, daily at 02:00 UTC"


@check("L05-09", "The crawler never removes catalog entries on its own", points=1, task="2.4",
       hints=("A crawler's DeleteBehavior decides what happens to a table or partition whose files are gone: LOG keeps it and writes a log line; DELETE_FROM_DATABASE drops it, and the analysts' queries with it.",
              "SchemaChangePolicy.DeleteBehavior on CreateCrawler and UpdateCrawler; changing UpdateBehavior does not require changing it.",
              "SchemaChangePolicy={'UpdateBehavior': 'UPDATE_IN_DATABASE', 'DeleteBehavior': 'LOG'} in update_crawler."),
       docs=f"{DOCS}/crawler-configuration.html#crawler-schema-changes-prevent")
def cautious_deletes(ctx: LabContext) -> str:
    behavior = _crawler(ctx).get("SchemaChangePolicy", {}).get("DeleteBehavior")
    if behavior != CAUTIOUS_DELETE_BEHAVIOR:
        raise Fail(f"crawler {CRAWLER} has DeleteBehavior {behavior}: when files go missing it changes the catalog without a person "
                   f"deciding, where the team's policy is {CAUTIOUS_DELETE_BEHAVIOR}")
    return f"crawler {CRAWLER} only logs deleted objects (DeleteBehavior {behavior})"
