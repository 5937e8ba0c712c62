"""Crawlers on the stack: they read the objects under their S3 targets and write what they find to the catalog."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import client
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
    glue.create_crawler(Name=name, Role="arn:aws:iam::123456789012:role/crawler", DatabaseName="raw_db",
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

    assert stopping == "STOPPING"
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
