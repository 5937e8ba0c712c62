"""Kinesis and DynamoDB Streams event source mappings: shards read in order, batches retried, bisected and
discarded as Lambda does ("Using Lambda with Kinesis Data Streams", "... with DynamoDB Streams").

Each shard is read in order and its position is checkpointed in the store after every batch that is done
(processed, or discarded after MaximumRetryAttempts / MaximumRecordAgeInSeconds), so a restarted stack
resumes after the last batch done. On a function error the batch is retried after a backoff on the lab
clock; with BisectBatchOnFunctionError it is split in two first (splitting does not use up retries); a
ReportBatchItemFailures answer retries from the first failed record. A discarded batch is described to the
DestinationConfig.OnFailure SQS queue or SNS topic in AWS's invocation record shape.

The first start of a mapping fixes its StartingPosition in the checkpoint: TRIM_HORIZON, AT_TIMESTAMP, or
LATEST as "records from the mapping's first poll on", so records written while the stack was down are not
skipped after a restart.
"""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from dealab.engines.eventsources.poller import Poller, log
from dealab.engines.eventsources.rawcalls import RawCalls
from dealab.wire import labtime, metrics
from dealab.wire.store import JsonFile

IDLE_POLL_SECONDS = 0.5  # Lambda polls each shard a few times a second
SHARD_REFRESH_SECONDS = 10.0  # new shards (a resharded stream) are found this often
DEFAULT_BATCH_SIZE = 100
# Backoff between retries of a failed batch, lab seconds: first, then doubled up to the cap.
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0


@dataclass
class Record:
    sequence: str
    arrival: float  # epoch seconds, lab time
    event: dict  # as the function gets it


def _epoch(moment) -> float:
    if isinstance(moment, datetime.datetime):
        return moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc).timestamp()
    return float(moment)


def _iso(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class KinesisSource:
    batch_info = "KinesisBatchInfo"

    def __init__(self, client: Callable, arn: str, region: str, role: str):
        self.kinesis, self.arn, self.region, self.role = client("kinesis"), arn, region, role

    def shards(self) -> list[str]:
        found, kwargs = [], {"StreamARN": self.arn}
        while True:
            page = self.kinesis.list_shards(**kwargs)
            found += [shard["ShardId"] for shard in page["Shards"]]
            if not page.get("NextToken"):
                return found
            kwargs = {"NextToken": page["NextToken"]}

    def iterator(self, shard: str, position: dict) -> str:
        kwargs = {"StreamARN": self.arn, "ShardId": shard}
        if "after" in position:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=position["after"])
        elif "at_timestamp" in position:
            kwargs.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=datetime.datetime.fromtimestamp(position["at_timestamp"], datetime.timezone.utc))
        else:
            kwargs.update(ShardIteratorType="TRIM_HORIZON")
        return self.kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    def first_position(self, mapping: dict, now: float) -> dict:
        start = mapping.get("StartingPosition", "TRIM_HORIZON")
        if start == "AT_TIMESTAMP":
            return {"at_timestamp": _epoch(mapping["StartingPositionTimestamp"])}
        return {"at_timestamp": now} if start == "LATEST" else {}

    def read(self, shard: str, iterator: str, limit: int) -> tuple[list[Record], str | None]:
        try:
            page = self.kinesis.get_records(ShardIterator=iterator, Limit=limit, StreamARN=self.arn)  # IAM judges it on the stream
        except self.kinesis.exceptions.ExpiredIteratorException:
            raise ExpiredIterator() from None
        records = []
        for item in page["Records"]:
            arrival = _epoch(item["ApproximateArrivalTimestamp"])
            records.append(Record(item["SequenceNumber"], arrival, {
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": item["PartitionKey"], "sequenceNumber": item["SequenceNumber"],
                            "data": base64.b64encode(item["Data"]).decode("ascii"), "approximateArrivalTimestamp": arrival},
                "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{shard}:{item['SequenceNumber']}",
                "eventName": "aws:kinesis:record", "invokeIdentityArn": self.role, "awsRegion": self.region, "eventSourceARN": self.arn}))
        return records, page.get("NextShardIterator")


class DynamoDBSource:
    batch_info = "DDBStreamBatchInfo"

    def __init__(self, client: Callable, arn: str, region: str, role: str):
        self.streams, self.arn, self.region = client("dynamodbstreams"), arn, region

    def shards(self) -> list[str]:
        found, kwargs = [], {"StreamArn": self.arn}
        while True:
            description = self.streams.describe_stream(**kwargs)["StreamDescription"]
            found += [shard["ShardId"] for shard in description["Shards"]]
            if not description.get("LastEvaluatedShardId"):
                return found
            kwargs["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]

    def iterator(self, shard: str, position: dict) -> str:
        kwargs = {"StreamArn": self.arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}
        if "after" in position:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=position["after"])
        return self.streams.get_shard_iterator(**kwargs)["ShardIterator"]

    def first_position(self, mapping: dict, now: float) -> dict:
        # DynamoDB Streams has no AT_TIMESTAMP iterator: LATEST reads from the start and skips what is older
        return {"not_before": now} if mapping.get("StartingPosition") == "LATEST" else {}

    def read(self, shard: str, iterator: str, limit: int) -> tuple[list[Record], str | None]:
        try:
            page = self.streams.get_records(ShardIterator=iterator, Limit=limit)
        except self.streams.exceptions.ExpiredIteratorException:
            raise ExpiredIterator() from None
        records = []
        for item in page["Records"]:
            body = dict(item["dynamodb"])
            created = _epoch(body["ApproximateCreationDateTime"])
            body["ApproximateCreationDateTime"] = int(created)
            event = {"eventID": item["eventID"], "eventName": item["eventName"], "eventVersion": item.get("eventVersion", "1.1"),
                     "eventSource": "aws:dynamodb", "awsRegion": item.get("awsRegion", self.region), "dynamodb": body, "eventSourceARN": self.arn}
            if "userIdentity" in item:  # TTL deletions (the clock engine labels them): Lambda spells the fields in lower case
                event["userIdentity"] = {"type": item["userIdentity"]["Type"], "principalId": item["userIdentity"]["PrincipalId"]}
            records.append(Record(body["SequenceNumber"], created, event))
        return records, page.get("NextShardIterator")


class ExpiredIterator(Exception):
    pass


SOURCES = {"kinesis": KinesisSource, "dynamodb": DynamoDBSource}


class StreamPoller(Poller):
    def __init__(self, mapping: dict, clients, raw: RawCalls, sessions, report, checkpoints: JsonFile):
        super().__init__(mapping, clients, raw, sessions, report)
        self.checkpoints = checkpoints
        self.batch_size = mapping.get("BatchSize") or DEFAULT_BATCH_SIZE
        self.window = mapping.get("MaximumBatchingWindowInSeconds") or 0
        self.bisect = bool(mapping.get("BisectBatchOnFunctionError"))
        self.max_retries = mapping.get("MaximumRetryAttempts", -1)
        self.max_age = mapping.get("MaximumRecordAgeInSeconds", -1)
        self.report_failures = "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or [])
        self.on_failure = (mapping.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        self.source = None

    def run(self) -> None:
        if self.source is None:  # the stream is read as the function's execution role
            self.source = SOURCES[self.source_arn.split(":")[2]](self.role_client, self.source_arn, self.region, self.role)
        state = self.checkpoints.load({})
        state.setdefault("shards", {})
        if "first" not in state:  # the mapping's starting position, fixed at its first poll
            state["first"] = self.source.first_position(self.mapping, labtime.live_now().timestamp())
            self.checkpoints.save(state)
        iterators: dict[str, str | None] = {}
        refreshed = 0.0
        while not self.stopped.is_set():
            if labtime.real_now().timestamp() - refreshed > SHARD_REFRESH_SECONDS:
                shards, refreshed = self.source.shards(), labtime.real_now().timestamp()
            busy = False
            for shard in shards:
                if self.stopped.is_set():
                    return
                busy |= self._poll_shard(shard, state, iterators)
            if not busy:
                self.stopped.wait(IDLE_POLL_SECONDS)

    def _position(self, shard: str, state: dict) -> dict:
        return state["shards"].get(shard) or state["first"]

    def _poll_shard(self, shard: str, state: dict, iterators: dict) -> bool:
        """Reads and processes one batch of `shard`; True if it had records."""
        records: list[Record] = []
        deadline = labtime.live_now().timestamp() + self.window
        while True:
            if iterators.get(shard) is None:
                iterators[shard] = self.source.iterator(shard, self._position(shard, state))
            try:
                page, iterators[shard] = self.source.read(shard, iterators[shard], self.batch_size - len(records))
                self.read_succeeded()
            except ExpiredIterator:
                iterators[shard] = None
                continue
            not_before = self._position(shard, state).get("not_before")
            records += [record for record in page if not_before is None or record.arrival >= int(not_before)]
            if len(records) >= self.batch_size or labtime.live_now().timestamp() >= deadline or self.stopped.is_set():
                break
            self.stopped.wait(min(IDLE_POLL_SECONDS, max(0.0, deadline - labtime.live_now().timestamp())))
        if records:
            self._deliver(shard, records, state)
            if self.stopped.is_set():
                iterators[shard] = None  # an unfinished batch is read again from the checkpoint
        return bool(records)

    def _checkpoint(self, shard: str, state: dict, record: Record) -> None:
        state["shards"][shard] = {"after": record.sequence}
        self.checkpoints.save(state)

    def _deliver(self, shard: str, records: list[Record], state: dict) -> None:
        pending = [records]
        while pending and not self.stopped.is_set():
            batch = pending.pop(0)
            attempts, backoff = 0, FIRST_BACKOFF_SECONDS
            while not self.stopped.is_set():
                age = labtime.live_now().timestamp() - batch[0].arrival
                if self.max_age != -1 and age > self.max_age:
                    self._discard(shard, batch, "RecordAgeExceeded", attempts, None)
                    break
                outcome = self.invoke({"Records": [record.event for record in batch]})
                self._iterator_age(batch)
                # "Maximum retry attempts ... doesn't apply to service errors or throttles where the batch didn't
                # reach the function": a throttled mapping retries until the function takes the batch
                attempts += outcome.reached
                if outcome.ok:
                    failed_from = self._first_failed(outcome.json(), batch) if self.report_failures else len(batch)
                    if failed_from >= len(batch):
                        break
                    if failed_from > 0:  # what came before the first failure is done
                        self._checkpoint(shard, state, batch[failed_from - 1])
                    batch = batch[failed_from:]
                elif self.bisect and len(batch) > 1:
                    middle = len(batch) // 2
                    pending[:0] = [batch[:middle], batch[middle:]]
                    batch = []
                    break
                if self.max_retries != -1 and attempts > self.max_retries:
                    self._discard(shard, batch, "RetryAttemptsExhausted", attempts, outcome)
                    break
                self.wait_lab(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            if batch and not self.stopped.is_set():
                self._checkpoint(shard, state, batch[-1])

    def _iterator_age(self, batch: list[Record]) -> None:
        """AWS/Lambda IteratorAge: the age of the batch's last record when the mapping sends it to the function."""
        age_ms = max(0.0, (labtime.live_now().timestamp() - batch[-1].arrival) * 1000)
        metrics.put("AWS/Lambda", "IteratorAge", {"FunctionName": self.function_arn.split(":")[6]}, age_ms, "Milliseconds", region=self.region)

    @staticmethod
    def _first_failed(answer, batch: list[Record]) -> int:
        """Index of the first record a partial batch response names as failed (len(batch) when none); a
        malformed response fails the whole batch (index 0)."""
        if not isinstance(answer, dict) or not answer.get("batchItemFailures"):
            return len(batch)
        sequences = [record.sequence for record in batch]
        indexes = []
        for entry in answer["batchItemFailures"]:
            identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
            if identifier not in sequences:
                return 0
            indexes.append(sequences.index(identifier))
        return min(indexes)

    def _discard(self, shard: str, batch: list[Record], condition: str, attempts: int, outcome) -> None:
        log.info("event source mapping %s: %d record(s) of %s discarded (%s)", self.uuid, len(batch), shard, condition)
        if not self.on_failure:
            return
        response = {"statusCode": outcome.status, "executedVersion": outcome.executed_version} if outcome else {}
        if outcome is not None and outcome.function_error:
            response["functionError"] = outcome.function_error
        document = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": self.function_arn, "condition": condition,
                               "approximateInvokeCount": attempts},
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso(labtime.live_now().timestamp()),
            self.source.batch_info: {"shardId": shard, "startSequenceNumber": batch[0].sequence, "endSequenceNumber": batch[-1].sequence,
                                     "approximateArrivalOfFirstRecord": _iso(batch[0].arrival),
                                     "approximateArrivalOfLastRecord": _iso(batch[-1].arrival), "batchSize": len(batch),
                                     "streamArn": self.source_arn},
        }
        body = json.dumps(document)
        service, region, account, name = self.on_failure.split(":")[2:6]
        try:
            if service == "sqs":
                url = self._clients("sqs", region).get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
                self.role_client("sqs", region).send_message(QueueUrl=url, MessageBody=body)  # sent as the execution role, as Lambda does
            else:
                self.role_client("sns", region).publish(TopicArn=self.on_failure, Message=body)
        except ClientError as error:
            log.warning("event source mapping %s: on-failure destination %s refused the record: %s", self.uuid, self.on_failure, error)
