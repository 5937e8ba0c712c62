"""Crawlers on the stack: they read the objects under their S3 targets and write what they find to the catalog."""

from __future__ import annotations

import io
import json
import time
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import admin_headers, client, service_role
from tests.gluekit import wait_for_crawler

BUCKET = "crawler-test"
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


def _orders(day: str, with_coupon: bool = False) -> bytes:
    rows = [{"order_id": i, "amount": i * 1.5, "paid": i % 2 == 0, "customer": {"id": i, "tier": "gold"}} for i in range(1, 4)]
    if with_coupon:
        rows = [dict(row, coupon="NEWYEAR") for row in rows]
    return "".join(json.dumps(dict(row, note=None)) + "\n" for row in rows).encode()


def _parquet(rows: dict) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(rows), sink)
    return sink.getvalue()


@pytest.fixture
def raw_zone(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket=BUCKET)
    for day in DAYS:
        s3.put_object(Bucket=BUCKET, Key=f"raw/orders/dt={day}/part-0.json", Body=_orders(day))
    s3.put_object(Bucket=BUCKET, Key="raw/customers/customers.csv", Body=b"customer_id,name,signup_day,score\n1,Ana,2024-01-01,3.5\n2,Bo,2024-01-02,4\n")
    s3.put_object(Bucket=BUCKET, Key="raw/events/events.txt", Body=b"click|home|1\nview|cart|2\n")
    for month in ("01", "02"):
        s3.put_object(Bucket=BUCKET, Key=f"raw/metrics/2024/{month}/m.parquet",
                      Body=_parquet({"metric": pa.array(["cpu"]), "value": pa.array([0.5], pa.float32()), "n": pa.array([7], pa.int32())}))
    s3.put_object(Bucket=BUCKET, Key="raw/orders/dt=2024-01-03/empty.json", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="raw/events/garbage.bin", Body=b"\x00\x01\x02 not a table")
    s3.put_object(Bucket=BUCKET, Key="raw/orders/_SUCCESS", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="raw/orders/dt=2024-01-02/upload.tmp", Body=b'{"half_written": 1}\n')  # excluded by **.tmp
    glue = client(clean_stack, "glue")
    glue.create_database(DatabaseInput={"Name": "raw_db"})
    return s3, glue


def _create_crawler(glue, name: str, **options) -> None:
    glue.create_crawler(Name=name, Role=service_role(glue, "crawler", "glue"), DatabaseName="raw_db",
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/raw/", "Exclusions": ["**.tmp"]}]}, **options)


def _columns(glue, table: str) -> dict[str, str]:
    return {c["Name"]: c["Type"] for c in glue.get_table(DatabaseName="raw_db", Name=table)["Table"]["StorageDescriptor"]["Columns"]}


def _partitions(glue, table: str) -> list[list[str]]:
    return sorted(p["Values"] for p in glue.get_partitions(DatabaseName="raw_db", TableName=table)["Partitions"])


def test_a_crawl_catalogs_each_dataset_with_formats_types_and_partitions(clean_stack, raw_zone):
    s3, glue = raw_zone
    _create_crawler(glue, "raw", TablePrefix="raw_")

    glue.start_crawler(Name="raw")
    crawler = wait_for_crawler(clean_stack, "raw")

    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert sorted(t["Name"] for t in glue.get_tables(DatabaseName="raw_db")["TableList"]) == ["raw_customers", "raw_events", "raw_metrics", "raw_orders"]
    orders = glue.get_table(DatabaseName="raw_db", Name="raw_orders")["Table"]
    assert orders["Parameters"]["classification"] == "json"
    assert orders["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/raw/orders/"
    assert _columns(glue, "raw_orders") == {
        "order_id": "bigint", "amount": "double", "paid": "boolean", "customer": "struct<id:bigint,tier:string>", "note": "string"}
    assert [k["Name"] for k in orders["PartitionKeys"]] == ["dt"]
    assert _partitions(glue, "raw_orders") == [[day] for day in DAYS]
    customers = glue.get_table(DatabaseName="raw_db", Name="raw_customers")["Table"]
    assert customers["Parameters"]["skip.header.line.count"] == "1" and customers["Parameters"]["delimiter"] == ","
    assert _columns(glue, "raw_customers") == {"customer_id": "bigint", "name": "string", "signup_day": "string", "score": "double"}
    events = glue.get_table(DatabaseName="raw_db", Name="raw_events")["Table"]
    assert events["StorageDescriptor"]["SerdeInfo"]["Parameters"]["field.delim"] == "|" and "skip.header.line.count" not in events["Parameters"]
    assert _columns(glue, "raw_events") == {"col0": "string", "col1": "string", "col2": "bigint"}
    metrics = glue.get_table(DatabaseName="raw_db", Name="raw_metrics")["Table"]
    assert metrics["Parameters"]["classification"] == "parquet"
    assert _columns(glue, "raw_metrics") == {"metric": "string", "value": "float", "n": "int"}
    assert [k["Name"] for k in metrics["PartitionKeys"]] == ["partition_0", "partition_1"]
    assert _partitions(glue, "raw_metrics") == [["2024", "01"], ["2024", "02"]]
    metrics_entry = glue.get_crawler_metrics(CrawlerNameList=["raw"])["CrawlerMetricsList"][0]
    assert metrics_entry["TablesCreated"] == 4 and metrics_entry["TablesUpdated"] == 0
    messages = [e["message"] for e in client(clean_stack, "logs").get_log_events(logGroupName="/aws-glue/crawlers", logStreamName="raw")["events"]]
    assert any("dt=2024-01-03/empty.json: empty file" in m for m in messages)
    assert any("garbage.bin: unreadable" in m for m in messages)


@pytest.mark.parametrize("behavior", ["UPDATE_IN_DATABASE", "LOG"])
def test_a_new_column_in_a_later_partition_follows_the_schema_change_policy(clean_stack, raw_zone, behavior):
    s3, glue = raw_zone
    _create_crawler(glue, "evolving", SchemaChangePolicy={"UpdateBehavior": behavior, "DeleteBehavior": "LOG"})
    glue.start_crawler(Name="evolving")
    wait_for_crawler(clean_stack, "evolving")
    s3.put_object(Bucket=BUCKET, Key="raw/orders/dt=2024-01-04/part-0.json", Body=_orders("2024-01-04", with_coupon=True))

    glue.start_crawler(Name="evolving")
    crawler = wait_for_crawler(clean_stack, "evolving")

    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert len(_partitions(glue, "orders")) == 4
    updated = glue.get_crawler_metrics(CrawlerNameList=["evolving"])["CrawlerMetricsList"][0]["TablesUpdated"]
    if behavior == "UPDATE_IN_DATABASE":
        assert _columns(glue, "orders")["coupon"] == "string" and updated == 1
    else:
        assert "coupon" not in _columns(glue, "orders") and updated == 0
        messages = [e["message"] for e in client(clean_stack, "logs").get_log_events(logGroupName="/aws-glue/crawlers", logStreamName="evolving")["events"]]
        assert any("coupon string" in m and "not applied" in m for m in messages)


@pytest.mark.parametrize("recrawl", ["CRAWL_EVERYTHING", "CRAWL_NEW_FOLDERS_ONLY"])
def test_crawl_new_folders_only_leaves_folders_it_has_seen(clean_stack, raw_zone, recrawl):
    s3, glue = raw_zone
    _create_crawler(glue, "incremental", RecrawlPolicy={"RecrawlBehavior": recrawl},
                    SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"})
    glue.start_crawler(Name="incremental")
    wait_for_crawler(clean_stack, "incremental")
    glue.batch_delete_partition(DatabaseName="raw_db", TableName="orders", PartitionsToDelete=[{"Values": ["2024-01-01"]}])
    s3.put_object(Bucket=BUCKET, Key="raw/orders/dt=2024-01-04/part-0.json", Body=_orders("2024-01-04"))

    glue.start_crawler(Name="incremental")
    wait_for_crawler(clean_stack, "incremental")

    expected = ["2024-01-02", "2024-01-03", "2024-01-04"] if recrawl == "CRAWL_NEW_FOLDERS_ONLY" else DAYS + ["2024-01-04"]
    assert _partitions(glue, "orders") == [[day] for day in expected]


def test_a_crawler_cannot_start_twice_and_reports_states(clean_stack, raw_zone):
    s3, glue = raw_zone
    for index in range(300):
        s3.put_object(Bucket=BUCKET, Key=f"raw/orders/dt=2024-02-{index % 28 + 1:02d}/part-{index}.json", Body=_orders("x"))
    _create_crawler(glue, "busy")

    glue.start_crawler(Name="busy")
    state_while_running = glue.get_crawler(Name="busy")["Crawler"]["State"]
    with pytest.raises(glue.exceptions.CrawlerRunningException):
        glue.start_crawler(Name="busy")
    crawler = wait_for_crawler(clean_stack, "busy")

    assert state_while_running == "RUNNING"
    assert crawler["State"] == "READY" and crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert len(_partitions(glue, "orders")) == 3 + 28


def test_a_stopped_crawl_ends_cancelled(clean_stack, raw_zone):
    s3, glue = raw_zone
    for index in range(300):
        s3.put_object(Bucket=BUCKET, Key=f"raw/orders/dt=2024-03-{index % 28 + 1:02d}/part-{index}.json", Body=_orders("x"))
    _create_crawler(glue, "stoppable")

    glue.start_crawler(Name="stoppable")
    glue.stop_crawler(Name="stoppable")
    stopping = glue.get_crawler(Name="stoppable")["Crawler"]["State"]
    crawler = wait_for_crawler(clean_stack, "stoppable")

    # STOPPING lasts until the crawl next looks at its stop flag, which may come before GetCrawler does
    assert stopping in ("STOPPING", "READY")
    assert crawler["State"] == "READY" and crawler["LastCrawl"]["Status"] == "CANCELLED"
    with pytest.raises(glue.exceptions.CrawlerNotRunningException):
        glue.stop_crawler(Name="stoppable")


def test_update_crawler_changes_only_the_members_given(clean_stack, raw_zone):
    s3, glue = raw_zone
    _create_crawler(glue, "changing", Schedule="cron(0 2 * * ? *)", TablePrefix="p_",
                    SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"})

    glue.update_crawler(Name="changing", SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"})

    crawler = glue.get_crawler(Name="changing")["Crawler"]
    assert crawler["SchemaChangePolicy"]["UpdateBehavior"] == "UPDATE_IN_DATABASE"
    assert crawler["TablePrefix"] == "p_" and crawler["Schedule"]["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert crawler["Targets"]["S3Targets"][0]["Path"] == f"s3://{BUCKET}/raw/"


def _crawl(clean_stack, glue, name: str) -> dict:
    glue.start_crawler(Name=name)
    return wait_for_crawler(clean_stack, name)


def _log_messages(settings, crawler: str) -> list[str]:
    return [e["message"] for e in client(settings, "logs").get_log_events(logGroupName="/aws-glue/crawlers", logStreamName=crawler)["events"]]


def _remove(s3, prefix: str) -> None:
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in keys]})


@pytest.mark.parametrize("behavior", ["DELETE_FROM_DATABASE", "DEPRECATE_IN_DATABASE", "LOG"])
def test_a_removed_folder_follows_the_delete_behavior(clean_stack, raw_zone, behavior):
    s3, glue = raw_zone
    _create_crawler(glue, "pruning", SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": behavior})
    _crawl(clean_stack, glue, "pruning")
    glue.create_table(DatabaseName="raw_db", TableInput={  # made by hand over the same folder: never the crawler's to remove
        "Name": "hand_made_events", "StorageDescriptor": {"Location": f"s3://{BUCKET}/raw/events/", "Columns": [{"Name": "a", "Type": "string"}]}})
    _remove(s3, "raw/events/")
    _remove(s3, "raw/orders/dt=2024-01-01/")

    crawler = _crawl(clean_stack, glue, "pruning")

    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="raw_db")["TableList"]}
    metrics = glue.get_crawler_metrics(CrawlerNameList=["pruning"])["CrawlerMetricsList"][0]
    messages = _log_messages(clean_stack, "pruning")
    assert "hand_made_events" in tables and {"customers", "metrics", "orders"} <= set(tables)
    if behavior == "DELETE_FROM_DATABASE":
        assert "events" not in tables and metrics["TablesDeleted"] == 1
        assert _partitions(glue, "orders") == [["2024-01-02"], ["2024-01-03"]]
        assert any("Deleted table events" in m for m in messages)
        assert any("deleted 1 partitions whose folders are gone (2024-01-01)" in m for m in messages)
    elif behavior == "DEPRECATE_IN_DATABASE":
        mark = tables["events"]["Parameters"]["DEPRECATED_BY_CRAWLER"]
        assert mark.isdigit() and abs(int(mark) / 1000 - crawler["LastCrawl"]["StartTime"].timestamp()) < 60
        assert metrics["TablesDeleted"] == 1 and any("Deprecated table events" in m for m in messages)
        assert len(_partitions(glue, "orders")) == 3  # AWS deprecates tables; a gone partition stays
    else:
        assert "DEPRECATED_BY_CRAWLER" not in tables["events"]["Parameters"] and metrics["TablesDeleted"] == 0
        assert len(_partitions(glue, "orders")) == 3
        assert any("Table events: no data at" in m and "DeleteBehavior is LOG" in m for m in messages)


def test_a_deprecated_table_whose_data_returns_loses_its_mark_and_is_not_deprecated_twice(clean_stack, raw_zone):
    s3, glue = raw_zone
    _create_crawler(glue, "returning")  # the default DeleteBehavior: DEPRECATE_IN_DATABASE
    _crawl(clean_stack, glue, "returning")
    events = s3.get_object(Bucket=BUCKET, Key="raw/events/events.txt")["Body"].read()
    _remove(s3, "raw/events/")
    _crawl(clean_stack, glue, "returning")
    first_mark = glue.get_table(DatabaseName="raw_db", Name="events")["Table"]["Parameters"]["DEPRECATED_BY_CRAWLER"]

    _crawl(clean_stack, glue, "returning")
    still = glue.get_table(DatabaseName="raw_db", Name="events")["Table"]["Parameters"]["DEPRECATED_BY_CRAWLER"]
    deleted_again = glue.get_crawler_metrics(CrawlerNameList=["returning"])["CrawlerMetricsList"][0]["TablesDeleted"]
    s3.put_object(Bucket=BUCKET, Key="raw/events/events.txt", Body=events)
    _crawl(clean_stack, glue, "returning")

    assert still == first_mark and deleted_again == 0
    assert "DEPRECATED_BY_CRAWLER" not in glue.get_table(DatabaseName="raw_db", Name="events")["Table"]["Parameters"]
    assert any("Table events: its data is back" in m for m in _log_messages(clean_stack, "returning"))


def test_crawler_definitions_glue_refuses_are_refused(clean_stack, raw_zone):
    s3, glue = raw_zone
    refusals = {
        "bad delete behavior": {"SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "DROP"}},
        "new folders only must log": {"RecrawlPolicy": {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}},
        "not cron": {"Schedule": "rate(1 day)"},
        "both day fields": {"Schedule": "cron(0 2 * * MON *)"},
        "faster than 5 minutes": {"Schedule": "cron(0/2 * * * ? *)"},
    }
    for case, options in refusals.items():
        with pytest.raises(glue.exceptions.InvalidInputException) as refused:
            _create_crawler(glue, "refused", **options)
        assert refused.value.response["Error"]["Code"] == "InvalidInputException", case
    _create_crawler(glue, "kept", SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"})
    with pytest.raises(glue.exceptions.InvalidInputException) as refused_update:
        glue.update_crawler(Name="kept", RecrawlPolicy={"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
                            SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "DEPRECATE_IN_DATABASE"})

    assert "DeleteBehavior" in str(refused_update.value)
    assert glue.get_crawlers()["Crawlers"][0]["Name"] == "kept"


def _advance_clock(settings, by: str) -> None:
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/clock", data=json.dumps({"action": "advance", "by": by}).encode(),
                                     method="POST", headers={"Content-Type": "application/json", **admin_headers(settings)})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def _scheduled_starts(settings, crawler: str) -> list[str]:
    try:
        return [m for m in _log_messages(settings, crawler) if "Started by its schedule" in m]
    except client(settings, "logs").exceptions.ResourceNotFoundException:
        return []


def _wait_for_scheduled_starts(settings, crawler: str, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while len(starts := _scheduled_starts(settings, crawler)) < count or wait_for_crawler(settings, crawler)["State"] != "READY":
        assert time.monotonic() < deadline, f"crawler {crawler} was started {len(starts)} times by its schedule, not {count}"
        time.sleep(0.2)
    return starts


def test_a_schedule_starts_the_crawler_when_the_lab_clock_passes_its_times_once_per_move(clean_stack, raw_zone):
    s3, glue = raw_zone
    _create_crawler(glue, "nightly", Schedule="cron(0 2 * * ? *)")
    time.sleep(2)  # the schedule watcher has seen it; no due time has passed in real time
    assert glue.get_crawler(Name="nightly")["Crawler"].get("LastCrawl") is None

    _advance_clock(clean_stack, "3d")  # three 02:00s pass: one crawl, as AWS skips a schedule while its crawler runs
    starts = _wait_for_scheduled_starts(clean_stack, "nightly", 1)
    time.sleep(2.5)

    assert len(_scheduled_starts(clean_stack, "nightly")) == 1 and "cron(0 2 * * ? *)" in starts[0]
    crawler = glue.get_crawler(Name="nightly")["Crawler"]
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED" and crawler["Schedule"]["State"] == "SCHEDULED"
    assert {"orders", "customers"} <= {t["Name"] for t in glue.get_tables(DatabaseName="raw_db")["TableList"]}

    glue.stop_crawler_schedule(CrawlerName="nightly")
    paused = glue.get_crawler(Name="nightly")["Crawler"]["Schedule"]["State"]
    _advance_clock(clean_stack, "2d")
    time.sleep(2.5)
    starts_while_paused = len(_scheduled_starts(clean_stack, "nightly"))
    with pytest.raises(glue.exceptions.SchedulerNotRunningException):
        glue.stop_crawler_schedule(CrawlerName="nightly")
    glue.start_crawler_schedule(CrawlerName="nightly")
    glue.update_crawler_schedule(CrawlerName="nightly", Schedule="cron(30 6 ? * MON *)")
    _advance_clock(clean_stack, "8d")
    resumed = _wait_for_scheduled_starts(clean_stack, "nightly", 2)

    assert paused == "NOT_SCHEDULED" and starts_while_paused == 1
    assert "cron(30 6 ? * MON *)" in resumed[1]
    assert glue.get_crawler(Name="nightly")["Crawler"]["Schedule"] == {"ScheduleExpression": "cron(30 6 ? * MON *)", "State": "SCHEDULED"}


def test_schedule_calls_on_a_crawler_without_a_schedule_are_refused(clean_stack, raw_zone):
    s3, glue = raw_zone
    _create_crawler(glue, "manual")

    with pytest.raises(glue.exceptions.NoScheduleException):
        glue.start_crawler_schedule(CrawlerName="manual")
    with pytest.raises(glue.exceptions.InvalidInputException):
        glue.update_crawler_schedule(CrawlerName="manual", Schedule="cron(0 2 * * ?)")


def test_csv_classifiers_are_kept_and_checked_as_glue_does(clean_stack):
    glue = client(clean_stack, "glue")
    glue.create_classifier(CsvClassifier={"Name": "semicolons", "Delimiter": ";", "QuoteSymbol": "'", "ContainsHeader": "PRESENT"})
    glue.update_classifier(CsvClassifier={"Name": "semicolons", "Serde": "OpenCSVSerDe"})

    stored = glue.get_classifier(Name="semicolons")["Classifier"]["CsvClassifier"]
    assert (stored["Delimiter"], stored["QuoteSymbol"], stored["ContainsHeader"], stored["Serde"], stored["Version"]) == (";", "'", "PRESENT", "OpenCSVSerDe", 2)
    assert [c["CsvClassifier"]["Name"] for c in glue.get_classifiers()["Classifiers"]] == ["semicolons"]
    refused = {
        "AlreadyExistsException": {"CsvClassifier": {"Name": "semicolons"}},
        "InvalidInputException": {"GrokClassifier": {"Name": "g", "Classification": "logs", "GrokPattern": "%{WORD:w}"}},
    }
    for code, definition in refused.items():
        with pytest.raises(glue.exceptions.ClientError) as error:
            glue.create_classifier(**definition)
        assert error.value.response["Error"]["Code"] == code
    for bad in ({"Delimiter": "::"}, {"Delimiter": ",", "QuoteSymbol": ","}, {"ContainsHeader": "MAYBE"}):
        with pytest.raises(glue.exceptions.InvalidInputException):
            glue.create_classifier(CsvClassifier={"Name": "bad", **bad})
    glue.delete_classifier(Name="semicolons")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_classifier(Name="semicolons")


def test_a_crawler_tries_its_csv_classifiers_before_the_built_in_ones(clean_stack, raw_zone):
    s3, glue = raw_zone
    # Semicolons inside quotes: the built-in classifier finds no delimiter that splits every line alike.
    s3.put_object(Bucket=BUCKET, Key="raw/shops/shops.csv", Body=b"shop_id;name;rating\n1;'Ana; Jr';3.5\n2;'Bo';4\n")
    glue.create_classifier(CsvClassifier={"Name": "quoted-semicolons", "Delimiter": ";", "QuoteSymbol": "'",
                                          "ContainsHeader": "PRESENT", "Serde": "OpenCSVSerDe"})
    _create_crawler(glue, "builtin")
    _crawl(clean_stack, glue, "builtin")
    builtin_tables = {t["Name"] for t in glue.get_tables(DatabaseName="raw_db")["TableList"]}
    _create_crawler(glue, "custom", TablePrefix="custom_", Classifiers=["quoted-semicolons", "not-there"])

    _crawl(clean_stack, glue, "custom")

    assert "shops" not in builtin_tables
    shops = glue.get_table(DatabaseName="raw_db", Name="custom_shops")["Table"]
    assert _columns(glue, "custom_shops") == {"shop_id": "bigint", "name": "string", "rating": "double"}
    assert shops["Parameters"]["classification"] == "csv" and shops["Parameters"]["skip.header.line.count"] == "1"
    serde = shops["StorageDescriptor"]["SerdeInfo"]
    assert serde["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.OpenCSVSerde"
    assert serde["Parameters"] == {"separatorChar": ";", "quoteChar": "'"}
    assert glue.get_table(DatabaseName="raw_db", Name="custom_orders")["Table"]["Parameters"]["classification"] == "json"
    messages = _log_messages(clean_stack, "custom")
    assert any("Created table custom_shops" in m and "by classifier quoted-semicolons" in m for m in messages)
    assert any("Classifier not-there not found" in m for m in messages)


def test_empty_json_lists_take_the_element_type_of_the_lists_beside_them():
    """AWS's legislators sample: some persons have `links: []`, others a list of {note, url}."""
    from dealab.engines.glue import inference

    lines = [{"name": "a", "links": []}, {"name": "b", "links": [{"note": "x", "url": "u"}]}, {"name": "c", "tags": []}]
    one_file = inference.infer("\n".join(json.dumps(line) for line in lines).encode(), whole_file=True)
    assert dict(inference.finalize(one_file.columns)) == {
        "name": "string", "links": "array<struct<note:string,url:string>>", "tags": "array<string>"}
    only_empty = inference.infer(b'{"links": []}', whole_file=True)  # the other file decides, across files too
    with_items = inference.infer(b'{"links": [{"id": 1}]}', whole_file=True)
    assert inference.finalize(inference.merge_columns(only_empty.columns, with_items.columns)) == [("links", "array<struct<id:bigint>>")]
