"""The Kinesis engine: expiring shard iterators and AWS's errors where the backend would accept or crash.

- GetShardIterator hands out iterators stamped with the time; GetRecords refuses one older than five
  minutes with ExpiredIteratorException, and one it cannot read with InvalidArgumentException (the
  backend answered those with a 500). NextShardIterator is stamped afresh on every GetRecords.
- PutRecord refuses data over 1 MiB with AWS's ValidationException (the backend stored it).
- GetShardIterator by StreamARN alone works (the backend's iterator named no stream, so GetRecords failed).
Batch limits (500 records, 1 MiB each, 5 MiB in all) and unknown streams the backend already answers as AWS does.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json

from dealab.wire.engine import Engine
from dealab.engines.kinesis import iterators
from dealab.wire import labtime
from dealab.wire.messages import AwsRequest, AwsResponse

MAX_RECORD_BYTES = 1024 * 1024


class KinesisEngine(Engine):
    name = "kinesis"
    operations = {
        ("kinesis", "GetShardIterator"): "_GetShardIterator",
        ("kinesis", "GetRecords"): "_GetRecords",
        ("kinesis", "PutRecord"): "_PutRecord",
    }

    def __init__(self, context, now=labtime.now):
        super().__init__(context)
        self._now = now  # naive UTC, the lab clock's

    def _GetShardIterator(self, request: AwsRequest) -> AwsResponse:
        arn = request.json.get("StreamARN")
        if arn and not request.json.get("StreamName"):
            # The backend builds a by-ARN iterator that names no stream, and GetRecords then finds none.
            body = json.dumps({**request.json, "StreamName": arn.rpartition("/")[2]}).encode()
            request = dataclasses.replace(request, body=body)
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
        return request.send_on()
