"""Kinesis as AWS answers it: expiring iterators, and AWS's errors for bad input instead of a 500."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from werkzeug.datastructures import Headers

from dealab.wire.engine import EngineContext
from dealab.engines.kinesis import KinesisEngine, iterators
from dealab.wire.messages import AwsRequest, AwsResponse
from tests.conftest import admin_headers, client


def aws_error(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]


@pytest.fixture
def kinesis(clean_stack):
    kinesis = client(clean_stack, "kinesis")
    kinesis.create_stream(StreamName="clicks", ShardCount=2)
    return kinesis


def test_an_unknown_stream_is_resource_not_found(kinesis):
    error = aws_error(lambda: kinesis.put_records(StreamName="nope", Records=[{"Data": b"x", "PartitionKey": "k"}]))
    assert error == {"Code": "ResourceNotFoundException", "Message": "Stream nope under account 123456789012 not found."}


def test_a_batch_over_500_records_is_refused(kinesis):
    error = aws_error(lambda: kinesis.put_records(StreamName="clicks", Records=[{"Data": b"x", "PartitionKey": "k"}] * 501))
    assert error["Code"] == "ValidationException" and "less than or equal to 500" in error["Message"]


def test_a_record_over_1_mib_is_refused_in_a_batch_and_alone(kinesis):
    big = b"x" * (1024 * 1024 + 1)
    in_batch = aws_error(lambda: kinesis.put_records(StreamName="clicks", Records=[{"Data": b"ok", "PartitionKey": "k"}, {"Data": big, "PartitionKey": "k"}]))
    assert in_batch["Code"] == "ValidationException" and "records.2.member.data" in in_batch["Message"]
    alone = aws_error(lambda: kinesis.put_record(StreamName="clicks", Data=big, PartitionKey="k"))
    assert alone["Code"] == "ValidationException" and "Value at 'data'" in alone["Message"]
    kinesis.put_record(StreamName="clicks", Data=b"x" * (1024 * 1024), PartitionKey="k")  # exactly 1 MiB is allowed


def test_an_unreadable_iterator_is_invalid_argument(kinesis):
    error = aws_error(lambda: kinesis.get_records(ShardIterator="not-an-iterator"))
    assert error == {"Code": "InvalidArgumentException", "Message": "Invalid ShardIterator."}


def test_iterators_read_the_stream_and_chain(kinesis):
    for n in range(5):
        kinesis.put_record(StreamName="clicks", Data=json.dumps({"n": n}).encode(), PartitionKey="same")
    shard = kinesis.put_record(StreamName="clicks", Data=b'{"n": 5}', PartitionKey="same")["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="clicks", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    first = kinesis.get_records(ShardIterator=iterator, Limit=4)
    second = kinesis.get_records(ShardIterator=first["NextShardIterator"], Limit=4)
    assert [json.loads(r["Data"])["n"] for r in first["Records"] + second["Records"]] == [0, 1, 2, 3, 4, 5]
    after = kinesis.get_shard_iterator(StreamName="clicks", ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                       StartingSequenceNumber=first["Records"][-1]["SequenceNumber"])["ShardIterator"]
    assert [json.loads(r["Data"])["n"] for r in kinesis.get_records(ShardIterator=after)["Records"]] == [4, 5]


class Clock:
    def __init__(self):
        self.now = datetime.datetime(2026, 11, 29, 12, 0, 0)

    def __call__(self) -> datetime.datetime:
        return self.now


def engine_call(engine: KinesisEngine, operation: str, payload: dict, backend) -> AwsResponse:
    request = AwsRequest("POST", "/", "", Headers(), json.dumps(payload).encode(), service="kinesis", operation=operation)
    request.forward = backend
    return engine.handle(request)


def test_an_iterator_held_over_five_minutes_expires(tmp_path: Path):
    clock = Clock()
    engine = KinesisEngine(EngineContext("http://127.0.0.1:1", "us-east-1", tmp_path), now=clock)
    seen_by_backend = []

    def backend(request: AwsRequest) -> AwsResponse:
        seen_by_backend.append(request.json)
        if request.operation == "GetShardIterator":
            return AwsResponse.json({"ShardIterator": "backend-iterator-1"})
        return AwsResponse.json({"Records": [], "NextShardIterator": "backend-iterator-2", "MillisBehindLatest": 0})

    iterator = json.loads(engine_call(engine, "GetShardIterator", {"StreamName": "s"}, backend).read())["ShardIterator"]
    clock.now += datetime.timedelta(minutes=4, seconds=59)
    fresh = json.loads(engine_call(engine, "GetRecords", {"ShardIterator": iterator}, backend).read())
    assert seen_by_backend[-1]["ShardIterator"] == "backend-iterator-1"
    assert iterators.unwrap(fresh["NextShardIterator"]) == ("backend-iterator-2", clock.now)

    clock.now += datetime.timedelta(minutes=5, seconds=1)
    expired = engine_call(engine, "GetRecords", {"ShardIterator": fresh["NextShardIterator"]}, backend)
    error = json.loads(expired.read())
    assert expired.status == 400 and error["__type"] == "ExpiredIteratorException"
    assert error["message"] == (
        "Iterator expired. The iterator was created at time Sun Nov 29 12:04:59 UTC 2026 while right now it is "
        "Sun Nov 29 12:10:00 UTC 2026 which is further in the future than the tolerated delay of 300000 milliseconds."
    )
    assert len(seen_by_backend) == 2


def test_the_lab_clock_expires_iterators_through_the_stack(kinesis, clean_stack):
    import urllib.request

    def clock(payload: dict) -> None:
        request = urllib.request.Request(f"{clean_stack.endpoint_url}/_dealab/clock", data=json.dumps(payload).encode(), method="POST",
                                         headers=admin_headers(clean_stack))
        urllib.request.urlopen(request, timeout=60).read()

    by_arn = kinesis.describe_stream_summary(StreamName="clicks")["StreamDescriptionSummary"]["StreamARN"]
    kinesis.put_record(StreamARN=by_arn, Data=b"kept", PartitionKey="k")
    shard = kinesis.list_shards(StreamARN=by_arn)["Shards"]
    iterators_by_arn = [kinesis.get_shard_iterator(StreamARN=by_arn, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"] for s in shard]
    assert [r["Data"] for i in iterators_by_arn for r in kinesis.get_records(ShardIterator=i)["Records"]] == [b"kept"]
    clock({"action": "advance", "by": "6m"})  # the clock never moves back; the next clean_stack returns it to real time
    error = aws_error(lambda: kinesis.get_records(ShardIterator=iterators_by_arn[0]))
    assert error["Code"] == "ExpiredIteratorException" and "tolerated delay of 300000 milliseconds" in error["Message"]


def test_sequence_numbers_look_like_aws_and_read_back_in_iterators(kinesis):
    first = kinesis.put_record(StreamName="clicks", Data=b'{"n": 0}', PartitionKey="same")
    batch = kinesis.put_records(StreamName="clicks", Records=[{"Data": json.dumps({"n": n}).encode(), "PartitionKey": "same"} for n in (1, 2, 3)])
    numbers = [first["SequenceNumber"]] + [r["SequenceNumber"] for r in batch["Records"]]
    assert all(len(n) == 56 and n.isdigit() for n in numbers)  # AWS's are 56-digit decimal strings
    assert [int(n) for n in numbers] == sorted(int(n) for n in numbers) and len(set(numbers)) == 4
    shard = first["ShardId"]
    read = kinesis.get_records(ShardIterator=kinesis.get_shard_iterator(StreamName="clicks", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"])
    assert [r["SequenceNumber"] for r in read["Records"]] == numbers
    at = kinesis.get_shard_iterator(StreamName="clicks", ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=numbers[2])
    assert [json.loads(r["Data"])["n"] for r in kinesis.get_records(ShardIterator=at["ShardIterator"])["Records"]] == [2, 3]
    after = kinesis.get_shard_iterator(StreamName="clicks", ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=numbers[2])
    assert [r["SequenceNumber"] for r in kinesis.get_records(ShardIterator=after["ShardIterator"])["Records"]] == numbers[3:]
    ranges = [s["SequenceNumberRange"]["StartingSequenceNumber"] for s in kinesis.list_shards(StreamName="clicks")["Shards"]]
    assert all(len(n) == 56 for n in ranges)
    forged = str(int(numbers[0]) + 1)
    error = aws_error(lambda: kinesis.get_shard_iterator(StreamName="clicks", ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=forged))
    assert error["Code"] == "InvalidArgumentException" and "did not come from this stream" in error["Message"]


def test_sequence_numbers_are_derived_not_stored(tmp_path: Path):
    """A restarted engine (nothing kept) reads back the numbers an earlier one showed."""
    seen_by_backend = []

    def backend(request: AwsRequest) -> AwsResponse:
        seen_by_backend.append(request.json)
        if request.operation == "PutRecord":
            return AwsResponse.json({"SequenceNumber": "7", "ShardId": "shardId-000000000000"})
        return AwsResponse.json({"ShardIterator": "backend-iterator"})

    context = EngineContext("http://127.0.0.1:1", "us-east-1", tmp_path)
    shown = json.loads(engine_call(KinesisEngine(context), "PutRecord", {"StreamName": "s", "Data": "eA==", "PartitionKey": "k"}, backend).read())
    engine_call(KinesisEngine(context), "GetShardIterator", {"StreamName": "s", "ShardId": "shardId-000000000000",
                                                             "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": shown["SequenceNumber"]}, backend)
    assert len(shown["SequenceNumber"]) == 56 and seen_by_backend[-1]["StartingSequenceNumber"] == "7"
