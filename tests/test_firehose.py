"""Firehose into S3 as AWS delivers: evaluated prefixes, GZIP, buffering hints, Kinesis source, AWS's errors."""

from __future__ import annotations

import datetime
import gzip
import json
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from dealab.engines.firehose import prefixes
from dealab.stack import control
from tests.conftest import admin_headers, client, make_settings, service_role

BUCKET = "lake"
ROLE = "arn:aws:iam::123456789012:role/firehose-delivery"
PARTITIONED = "events/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
ERRORS = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"


# --- prefixes ------------------------------------------------------------------------------------------

MOMENT = datetime.datetime(2026, 3, 7, 9, 5, 1)


def test_timestamp_namespaces_are_evaluated_at_the_oldest_record():
    assert prefixes.evaluate(PARTITIONED, MOMENT) == "events/year=2026/month=03/day=07/hour=09/"
    assert prefixes.evaluate("d=!{timestamp:yyyy-MM-dd}/'x'/", MOMENT) == "d=2026-03-07/'x'/"
    assert prefixes.evaluate("!{timestamp:'y='yyyy}/", MOMENT) == "y=2026/"


def test_a_prefix_without_expressions_gets_the_default_time_prefix():
    assert prefixes.evaluate("raw/", MOMENT) == "raw/2026/03/07/09/"
    assert prefixes.evaluate("", MOMENT) == "2026/03/07/09/"


def test_the_error_prefix_names_the_error_type():
    assert prefixes.evaluate(ERRORS, MOMENT, error_type="processing-failed") == "errors/processing-failed/2026/03/07/"


@pytest.mark.parametrize("prefix, error_prefix, complaint", [
    (PARTITIONED, "", "ErrorOutputPrefix cannot be null or empty"),
    ("a/!{timestamp:yyyy}/", "errors/!{timestamp:yyyy}/", "must contain !{firehose:error-output-type}"),
    ("a/!{timestamp:qq}/", ERRORS, "not a supported date/time field"),
    ("a/!{partitionKeyFromQuery:id}/", ERRORS, "not supported in this prefix"),
    ("a/!{firehose:error-output-type}/", ERRORS, "not supported in this prefix"),
])
def test_prefixes_firehose_refuses(prefix, error_prefix, complaint):
    with pytest.raises(prefixes.PrefixError, match=complaint):
        prefixes.validate(prefix, error_prefix)


# --- through the stack ---------------------------------------------------------------------------------


def clock(settings, payload: dict) -> dict:
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/clock", data=json.dumps(payload).encode(), method="POST",
                                     headers=admin_headers(settings))
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture
def lake(clean_stack):
    client(clean_stack, "s3").create_bucket(Bucket=BUCKET)
    service_role(clean_stack, "firehose-delivery", "firehose")  # ROLE
    yield clean_stack  # the lab clock never moves back; the next clean_stack (a whole reset) returns it to real time


def destination(**overrides) -> dict:
    return {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": PARTITIONED, "ErrorOutputPrefix": ERRORS,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}, "CompressionFormat": "GZIP", **overrides}


def objects(settings, prefix: str = "", wait_for: int = 0, timeout: float = 10) -> dict[str, bytes]:
    s3 = client(settings, "s3")
    deadline = time.monotonic() + timeout
    while True:
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        if len(listed) >= wait_for or time.monotonic() > deadline:
            return {item["Key"]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listed}
        time.sleep(0.2)


def lines(settings, prefix: str = "") -> list[dict]:
    found = []
    for key, body in objects(settings, prefix).items():
        found += [json.loads(line) for line in (gzip.decompress(body) if key.endswith(".gz") else body).splitlines()]
    return found


def put(firehose, stream: str, numbers: range, padding: int = 0) -> None:
    firehose.put_record_batch(DeliveryStreamName=stream, Records=[
        {"Data": (json.dumps({"n": n, "pad": "x" * padding}) + "\n").encode()} for n in numbers
    ])


def test_records_wait_for_the_interval_then_land_gzipped_under_the_evaluated_prefix(lake):
    firehose = client(lake, "firehose")
    firehose.create_delivery_stream(DeliveryStreamName="clicks", ExtendedS3DestinationConfiguration=destination())
    put(firehose, "clicks", range(0, 50))
    put(firehose, "clicks", range(50, 100))
    time.sleep(1.5)
    assert objects(lake) == {}, "delivered before the buffering interval"
    moved = clock(lake, {"action": "advance", "by": "61s"})
    assert moved
    delivered = objects(lake, wait_for=1)
    assert len(delivered) == 1
    (key, body), = delivered.items()
    now = datetime.datetime.now(datetime.timezone.utc)
    assert key.startswith(f"events/year={now:%Y}/month={now:%m}/day=") and "/hour=" in key
    assert key.rpartition("/")[2].startswith("clicks-1-") and key.endswith(".gz")
    assert [json.loads(line)["n"] for line in gzip.decompress(body).splitlines()] == list(range(100))


def firehose_admin(settings, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/firehose", data=json.dumps(payload).encode(), method="POST",
                                     headers=admin_headers(settings))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_admin_endpoint_says_where_a_record_arriving_at_a_moment_would_land(lake):
    firehose = client(lake, "firehose")
    firehose.create_delivery_stream(DeliveryStreamName="clicks", ExtendedS3DestinationConfiguration=destination(
        Prefix="events/year=!{timestamp:yyyy}/month=!{timestamp:mm}/"))  # the minute where the month should be
    assert firehose_admin(lake, {"action": "where", "stream": "clicks", "arrived": "2031-04-09T17:52:33+00:00"}) == (
        200, {"prefix": "events/year=2031/month=52/"})
    assert firehose_admin(lake, {"action": "where", "stream": "clicks", "arrived": "2031-04-09T19:52:33+02:00"})[1] == {
        "prefix": "events/year=2031/month=52/"}  # Firehose's timestamps are UTC
    status, answer = firehose_admin(lake, {"action": "where", "stream": "nope", "arrived": "2031-04-09T17:52:33"})
    assert status == 404 and answer["__type"].endswith("ResourceNotFoundException")
    status, answer = firehose_admin(lake, {"action": "where", "stream": "clicks", "arrived": "last tuesday"})
    assert status == 400 and "ISO 8601" in answer["message"]


def test_the_size_hint_delivers_at_once_in_objects_no_larger(lake):
    firehose = client(lake, "firehose")
    firehose.create_delivery_stream(DeliveryStreamName="big", ExtendedS3DestinationConfiguration=destination(
        CompressionFormat="UNCOMPRESSED", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900}))
    for start in range(0, 1200, 100):
        put(firehose, "big", range(start, start + 100), padding=1000)  # ~1 KB a record, 1.2 MB in all
    delivered = objects(lake, wait_for=1)
    assert len(delivered) == 1 and all(len(body) <= 1024 * 1024 for body in delivered.values())
    clock(lake, {"action": "advance", "by": "901s"})
    objects(lake, wait_for=2)
    assert sorted(event["n"] for event in lines(lake)) == list(range(1200))


def test_a_kinesis_source_is_read_from_creation_on_and_refuses_direct_puts(lake):
    kinesis, firehose = client(lake, "kinesis"), client(lake, "firehose")
    kinesis.create_stream(StreamName="clickstream", ShardCount=2)
    arn = kinesis.describe_stream_summary(StreamName="clickstream")["StreamDescriptionSummary"]["StreamARN"]
    kinesis.put_record(StreamName="clickstream", Data=b'{"n": -1}\n', PartitionKey="before")
    time.sleep(0.05)
    firehose.create_delivery_stream(
        DeliveryStreamName="from-stream", DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=destination(Prefix="stream/", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0}),
    )
    time.sleep(0.05)
    kinesis.put_records(StreamName="clickstream", Records=[{"Data": (json.dumps({"n": n}) + "\n").encode(), "PartitionKey": str(n)} for n in range(40)])
    deadline = time.monotonic() + 15
    while len(lines(lake, "stream/")) < 40 and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(1.2)  # a second look: nothing more arrives
    assert sorted(event["n"] for event in lines(lake, "stream/")) == list(range(40))
    assert all(key.startswith("stream/20") for key in objects(lake, "stream/"))  # default time prefix appended
    with pytest.raises(ClientError) as caught:
        firehose.put_record(DeliveryStreamName="from-stream", Record={"Data": b"x"})
    assert caught.value.response["Error"]["Code"] == "InvalidArgumentException"


@pytest.mark.parametrize("call, code, message", [
    (lambda f: f.put_record(DeliveryStreamName="clicks", Record={"Data": b"x" * 1024001}), "ValidationException", "record.data"),
    (lambda f: f.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": b"x"}] * 501), "ValidationException", "less than or equal to 500"),
    (lambda f: f.put_record(DeliveryStreamName="nope", Record={"Data": b"x"}), "ResourceNotFoundException", "Firehose nope"),
    (lambda f: f.create_delivery_stream(DeliveryStreamName="bad", ExtendedS3DestinationConfiguration=destination(ErrorOutputPrefix="")),
     "InvalidArgumentException", "ErrorOutputPrefix cannot be null"),
    (lambda f: f.create_delivery_stream(DeliveryStreamName="bad", ExtendedS3DestinationConfiguration=destination(
        BufferingHints={"SizeInMBs": 129, "IntervalInSeconds": 60})), "ValidationException", "between 1 and 128"),
])
def test_bad_input_gets_aws_errors(lake, call, code, message):
    firehose = client(lake, "firehose")
    firehose.create_delivery_stream(DeliveryStreamName="clicks", ExtendedS3DestinationConfiguration=destination())
    with pytest.raises(ClientError) as caught:
        call(firehose)
    assert caught.value.response["Error"]["Code"] == code and message in caught.value.response["Error"]["Message"]


def test_buffered_records_survive_a_restart(tmp_path):
    settings = make_settings(tmp_path / "state")
    control.up(settings)
    try:
        client(settings, "s3").create_bucket(Bucket=BUCKET)
        service_role(settings, "firehose-delivery", "firehose")
        firehose = client(settings, "firehose")
        firehose.create_delivery_stream(DeliveryStreamName="clicks", ExtendedS3DestinationConfiguration=destination())
        put(firehose, "clicks", range(30))
        control.down(settings)
        control.up(settings)
        assert objects(settings) == {}
        clock(settings, {"action": "advance", "by": "61s"})
        objects(settings, wait_for=1)
        assert sorted(event["n"] for event in lines(settings)) == list(range(30))
    finally:
        control.down(settings)
