"""The Kinesis engine: expiring shard iterators and AWS's errors where the backend would accept or crash.

- GetShardIterator hands out iterators stamped with the time; GetRecords refuses one older than five
  minutes with ExpiredIteratorException, and one it cannot read with InvalidArgumentException (the
  backend answered those with a 500). NextShardIterator is stamped afresh on every GetRecords.
- PutRecord refuses data over 1 MiB with AWS's ValidationException (the backend stored it).
- GetShardIterator by StreamARN alone works (the backend's iterator named no stream, so GetRecords failed).
- Sequence numbers look like AWS's: 56-digit decimals, increasing per shard (the backend counts 1, 2, 3), in
  every answer that carries one and read back in GetShardIterator's AT/AFTER_SEQUENCE_NUMBER. They are
  derived from the backend's numbers, not stored, so they survive a restart (see sequences).
Batch limits (500 records, 1 MiB each, 5 MiB in all) and unknown streams the backend already answers as AWS does.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import json

from dealab.wire.engine import Engine
from dealab.engines.kinesis import iterators
from dealab.wire import labtime, metrics
from dealab.wire.messages import AwsRequest, AwsResponse

MAX_RECORD_BYTES = 1024 * 1024
# Sequence number n of the backend is shown as SEQUENCE_BASE + n * SEQUENCE_STRIDE: 56 digits like AWS's for
# any n the backend reaches, increasing with n, and read back by division. Numbers below BACKEND_SEQUENCE_LIMIT
# are the backend's own counter (a backend that already draws AWS-like numbers is passed through as it is).
SEQUENCE_BASE = 49_650_123_087_346_915_208_433_169_572_601_882_947_163_052_708_213_305_346
SEQUENCE_STRIDE = 1_000_000_000_000_000_000_000_067
BACKEND_SEQUENCE_LIMIT = 10**20
SEQUENCE_FIELDS_OF_SHARD = ("StartingSequenceNumber", "EndingSequenceNumber")


def aws_sequence(backend_number: str) -> str:
    if backend_number.isdigit() and int(backend_number) < BACKEND_SEQUENCE_LIMIT:
        return str(SEQUENCE_BASE + int(backend_number) * SEQUENCE_STRIDE)
    return backend_number


def backend_sequence(number: str) -> str | None:
    """The backend's number for one this engine showed; the number itself when it is not one of ours; None
    for a number of our shape that no record of this engine could have had."""
    if not number.isdigit() or int(number) < SEQUENCE_BASE:
        return number
    count, remainder = divmod(int(number) - SEQUENCE_BASE, SEQUENCE_STRIDE)
    return str(count) if remainder == 0 and count < BACKEND_SEQUENCE_LIMIT else None


def _shown_shards(shards: list[dict]) -> None:
    for shard in shards:
        numbers = shard.get("SequenceNumberRange", {})
        for name in SEQUENCE_FIELDS_OF_SHARD:
            if name in numbers:
                numbers[name] = aws_sequence(numbers[name])


class KinesisEngine(Engine):
    name = "kinesis"
    operations = {
        ("kinesis", "GetShardIterator"): "_GetShardIterator",
        ("kinesis", "GetRecords"): "_GetRecords",
        ("kinesis", "PutRecord"): "_PutRecord",
        ("kinesis", "PutRecords"): "_PutRecords",
        ("kinesis", "ListShards"): "_ListShards",
        ("kinesis", "DescribeStream"): "_DescribeStream",
    }

    def __init__(self, context, now=labtime.now):
        super().__init__(context)
        self._now = now  # naive UTC, the lab clock's

    def _GetShardIterator(self, request: AwsRequest) -> AwsResponse:
        arn = request.json.get("StreamARN")
        changed = {}
        if arn and not request.json.get("StreamName"):
            # The backend builds a by-ARN iterator that names no stream, and GetRecords then finds none.
            changed["StreamName"] = arn.rpartition("/")[2]
        given = request.json.get("StartingSequenceNumber")
        if isinstance(given, str):
            changed["StartingSequenceNumber"] = backend_sequence(given)
            if changed["StartingSequenceNumber"] is None:
                stream = request.json.get("StreamName") or (arn or "").rpartition("/")[2]
                return AwsResponse.json_error(
                    "InvalidArgumentException",
                    f"StartingSequenceNumber {given} used in GetShardIterator on shard {request.json.get('ShardId')} in stream "
                    f"{stream} is invalid because it did not come from this stream.")
        if changed:
            request = dataclasses.replace(request, body=json.dumps({**request.json, **changed}).encode())
        response = request.send_on()
        if response.status != 200:
            return response
        answer = json.loads(response.read())
        answer["ShardIterator"] = iterators.wrap(answer["ShardIterator"], self._now())
        return AwsResponse.json(answer)

    def _GetRecords(self, request: AwsRequest) -> AwsResponse:
        given = request.json.get("ShardIterator", "")
        try:
            backend_iterator, issued = iterators.unwrap(given)
        except iterators.InvalidIterator:
            return AwsResponse.json_error("InvalidArgumentException", "Invalid ShardIterator.")
        now = self._now()
        if now - issued > iterators.LIFETIME:
            lifetime_ms = int(iterators.LIFETIME.total_seconds() * 1000)
            return AwsResponse.json_error(
                "ExpiredIteratorException",
                f"Iterator expired. The iterator was created at time {iterators.aws_time(issued)} while right now it is "
                f"{iterators.aws_time(now)} which is further in the future than the tolerated delay of {lifetime_ms} milliseconds.",
            )
        body = json.dumps({**request.json, "ShardIterator": backend_iterator}).encode()
        response = dataclasses.replace(request, body=body).send_on()
        if response.status != 200:
            return response
        answer = json.loads(response.read())
        for record in answer.get("Records", []):
            record["SequenceNumber"] = aws_sequence(record["SequenceNumber"])
            # a remote backend stamps arrival in real time; the stream received the record at that moment's lab time
            arrived = datetime.datetime.fromtimestamp(float(record["ApproximateArrivalTimestamp"]), datetime.timezone.utc)
            record["ApproximateArrivalTimestamp"] = labtime.lab_time_of_backend_stamp(arrived).timestamp()
        newest = max((float(record["ApproximateArrivalTimestamp"]) for record in answer.get("Records", [])), default=None)
        metrics.put("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", {"StreamName": _iterator_stream(request.json, backend_iterator)},
                    0 if newest is None else max(0.0, (labtime.unix_time() - newest) * 1000), "Milliseconds", region=request.region)
        if answer.get("NextShardIterator"):
            answer["NextShardIterator"] = iterators.wrap(answer["NextShardIterator"], now)
        return AwsResponse.json(answer)

    def _PutRecord(self, request: AwsRequest) -> AwsResponse:
        try:
            size = len(base64.b64decode(request.json.get("Data", ""), validate=True))
        except (binascii.Error, ValueError):
            return request.send_on()
        if size > MAX_RECORD_BYTES:
            return AwsResponse.json_error(
                "ValidationException",
                f"1 validation error detected: Value at 'data' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_RECORD_BYTES}",
            )
        response = self._shown(request, lambda answer: answer.update(SequenceNumber=aws_sequence(answer["SequenceNumber"])))
        if response.status == 200:
            _count_incoming(request, [size])
        return response

    def _PutRecords(self, request: AwsRequest) -> AwsResponse:
        def show(answer: dict) -> None:
            for entry in answer.get("Records", []):
                if "SequenceNumber" in entry:  # failed entries carry an error code instead
                    entry["SequenceNumber"] = aws_sequence(entry["SequenceNumber"])
            _count_incoming(request, [len(base64.b64decode(sent.get("Data", ""))) for sent, entry in
                                      zip(request.json.get("Records", []), answer.get("Records", [])) if "SequenceNumber" in entry])
        return self._shown(request, show)

    def _ListShards(self, request: AwsRequest) -> AwsResponse:
        return self._shown(request, lambda answer: _shown_shards(answer.get("Shards", [])))

    def _DescribeStream(self, request: AwsRequest) -> AwsResponse:
        return self._shown(request, lambda answer: _shown_shards(answer.get("StreamDescription", {}).get("Shards", [])))

    @staticmethod
    def _shown(request: AwsRequest, show) -> AwsResponse:
        """The backend's answer with its sequence numbers shown as AWS's (`show` rewrites them in place)."""
        response = request.send_on()
        if response.status != 200:
            return response
        answer = json.loads(response.read())
        show(answer)
        return AwsResponse.json(answer)


def _count_incoming(request: AwsRequest, sizes: list[int]) -> None:
    """AWS/Kinesis IncomingRecords and IncomingBytes of the records the stream accepted."""
    dimensions = {"StreamName": request.json.get("StreamName") or request.json.get("StreamARN", "").rpartition("/")[2]}
    metrics.put("AWS/Kinesis", "IncomingRecords", dimensions, len(sizes), region=request.region)
    metrics.put("AWS/Kinesis", "IncomingBytes", dimensions, sum(sizes), "Bytes", region=request.region)


def _iterator_stream(parameters: dict, backend_iterator: str) -> str:
    """The stream a GetRecords reads: named by StreamARN when the caller gave it, else by the embedded backend's
    iterator (base64 of "stream:shard:sequence")."""
    if parameters.get("StreamARN"):
        return parameters["StreamARN"].rpartition("/")[2]
    try:
        return base64.b64decode(backend_iterator).decode().split(":", 1)[0]
    except (binascii.Error, ValueError):
        return ""
