"""The Firehose engine: records are buffered and delivered to S3 as Firehose delivers them.

The backend writes every PutRecord(Batch) to S3 at once, under a fixed YYYY/MM/DD/HH/ prefix, uncompressed,
and never reads a Kinesis source. Here:
- PutRecord / PutRecordBatch go into a per-stream buffer (on disk), delivered as one object when it reaches
  BufferingHints.SizeInMBs or its oldest record is IntervalInSeconds old (by the lab clock);
- the object key is the evaluated Prefix (timestamp namespaces at the oldest record's arrival; Firehose's
  default YYYY/MM/dd/HH/ when the prefix has no expressions) plus Firehose's object name, GZIP-compressed
  with a .gz name when CompressionFormat is GZIP;
- a KinesisStreamAsSource delivery stream reads its Kinesis stream from the moment it was created, and
  refuses direct puts as AWS does;
- delivery stream names, prefixes, buffering hints and record sizes are validated with AWS's errors, and a
  name reaches the disk only through the store's child_path.
The delivery stream itself (its description, tags, deletion) stays the backend's.

Firehose acts with the stream's roles, as on AWS: it writes to S3 with a session of the destination's RoleARN and
reads a Kinesis source with a session of the source's RoleARN (session AWSFirehoseToS3, dealab.wire.rolesessions),
so those roles' policies and the bucket's policy decide. A delivery the role may not make (or a role Firehose
cannot assume) fails: the records stay buffered and are tried again, and DeliveryToS3.Success reports 0.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import gzip
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from dealab.wire.engine import Engine, EngineContext
from dealab.engines.firehose import prefixes
from dealab.engines.firehose.buffers import Buffer
from dealab.wire import labtime, metrics, rolesessions
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile, UnsafeName, child_path

log = logging.getLogger("dealab.firehose")

MAX_RECORD_BYTES = 1000 * 1024
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
DEFAULT_SIZE_MB = 5
DEFAULT_INTERVAL_SECONDS = 300
# BufferingHints ranges for S3 destinations.
SIZE_MB_RANGE = (1, 128)
INTERVAL_RANGE = (0, 900)
TICK_SECONDS = 0.5
DESTINATION_MEMBERS = ("ExtendedS3DestinationConfiguration", "S3DestinationConfiguration")
DESCRIPTION_MEMBERS = ("ExtendedS3DestinationDescription", "S3DestinationDescription")
UPDATE_MEMBERS = ("ExtendedS3DestinationUpdate", "S3DestinationUpdate")
# DeliveryStreamName as the Firehose API documents it (every operation that names a stream).
STREAM_NAME_PATTERN = "[a-zA-Z0-9_.-]+"
STREAM_NAME_LENGTH = (1, 64)
FIREHOSE_PRINCIPAL = "firehose.amazonaws.com"
SESSION_NAME = "AWSFirehoseToS3"  # the session Firehose's deliveries are made with (CloudTrail names it so)


@dataclass(frozen=True)
class Delivery:
    name: str
    version: str
    bucket: str
    prefix: str
    error_prefix: str
    size_bytes: int
    interval: datetime.timedelta
    gzip: bool
    source_stream_arn: str
    role_arn: str = ""  # the destination's RoleARN: S3 is written as that role
    source_role_arn: str = ""  # a Kinesis source's RoleARN: the stream is read as that role
    arn: str = ""

    @classmethod
    def from_description(cls, description: dict) -> Delivery | None:
        destination = description["Destinations"][0] if description.get("Destinations") else {}
        s3 = next((destination[m] for m in DESCRIPTION_MEMBERS if m in destination), None)
        if s3 is None:
            return None
        hints = s3.get("BufferingHints") or {}
        source = (description.get("Source") or {}).get("KinesisStreamSourceDescription") or {}
        return cls(
            name=description["DeliveryStreamName"],
            version=str(description.get("VersionId", "1")),
            bucket=s3["BucketARN"].rpartition(":")[2],
            prefix=s3.get("Prefix", ""),
            error_prefix=s3.get("ErrorOutputPrefix", ""),
            size_bytes=int(hints.get("SizeInMBs", DEFAULT_SIZE_MB)) * 1024 * 1024,
            interval=datetime.timedelta(seconds=int(hints.get("IntervalInSeconds", DEFAULT_INTERVAL_SECONDS))),
            gzip=s3.get("CompressionFormat") == "GZIP",
            source_stream_arn=source.get("KinesisStreamARN", "") if description.get("DeliveryStreamType") == "KinesisStreamAsSource" else "",
            role_arn=s3.get("RoleARN", ""),
            source_role_arn=source.get("RoleARN", ""),
            arn=description.get("DeliveryStreamARN", ""),
        )


class FirehoseEngine(Engine):
    name = "firehose"
    operations = {("firehose", name): f"_{name}" for name in ("CreateDeliveryStream", "UpdateDestination", "DeleteDeliveryStream", "PutRecord", "PutRecordBatch")}

    def __init__(self, context: EngineContext, now=labtime.now):
        super().__init__(context)
        self._now = now
        self._folder = context.state_dir / self.name
        self._lock = threading.RLock()
        self._deliveries: dict[str, Delivery] = {}
        self._buffers: dict[str, Buffer] = {
            path.stem: Buffer.load(path) for path in sorted((self._folder / "buffers").glob("*.jsonl"))
        }
        self._stop = threading.Event()
        self.roles = rolesessions.RoleSessions(context, FIREHOSE_PRINCIPAL)
        self._role_clients: dict[tuple[str, str, str], object] = {}  # (service, role, stream ARN) → client as the role
        self._worker = threading.Thread(target=self._run, name="firehose-delivery", daemon=True)
        self._worker.start()

    # --- API ------------------------------------------------------------------------------------------

    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        return _invalid_stream_name(request.json.get("DeliveryStreamName")) or handler(request)

    def _CreateDeliveryStream(self, request: AwsRequest) -> AwsResponse:
        refusal = _invalid_destination(request.json, DESTINATION_MEMBERS)
        if refusal:
            return refusal
        response = request.send_on()
        if response.status == 200 and request.json.get("DeliveryStreamType") == "KinesisStreamAsSource":
            self._save_source(request.json["DeliveryStreamName"], {"since": self._now().isoformat(), "shards": {}})
        self._forget(request.json.get("DeliveryStreamName", ""))
        return response

    def _UpdateDestination(self, request: AwsRequest) -> AwsResponse:
        refusal = _invalid_destination(request.json, UPDATE_MEMBERS)
        if refusal:
            return refusal
        response = request.send_on()
        self._forget(request.json.get("DeliveryStreamName", ""))
        return response

    def _DeleteDeliveryStream(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        name = request.json.get("DeliveryStreamName", "")
        if response.status == 200:
            with self._lock:
                self._buffers.pop(name, Buffer(self._buffer_path(name))).discard()
                self._source_path(name).unlink(missing_ok=True)
        self._forget(name)
        return response

    def _PutRecord(self, request: AwsRequest) -> AwsResponse:
        record = request.json.get("Record") or {}
        return self._put(request, [record], lambda ids: {"RecordId": ids[0], "Encrypted": False}, "record.data")

    def _PutRecordBatch(self, request: AwsRequest) -> AwsResponse:
        records = request.json.get("Records") or []
        if len(records) > MAX_BATCH_RECORDS:
            return AwsResponse.json_error("ValidationException", "1 validation error detected: Value at 'records' failed to satisfy "
                                          f"constraint: Member must have length less than or equal to {MAX_BATCH_RECORDS}")
        return self._put(request, records, lambda ids: {"FailedPutCount": 0, "Encrypted": False,
                                                        "RequestResponses": [{"RecordId": i} for i in ids]}, "records.{n}.member.data")

    def _put(self, request: AwsRequest, records: list[dict], answer, field: str) -> AwsResponse:
        name = request.json.get("DeliveryStreamName", "")
        try:
            payloads = [base64.b64decode(record.get("Data", ""), validate=True) for record in records]
        except (binascii.Error, ValueError):
            return AwsResponse.json_error("SerializationException", "Data is not valid base64")
        for number, payload in enumerate(payloads, start=1):
            if len(payload) > MAX_RECORD_BYTES:
                return AwsResponse.json_error("ValidationException", f"1 validation error detected: Value at '{field.format(n=number)}' failed "
                                              f"to satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}")
        if sum(map(len, payloads)) > MAX_BATCH_BYTES:
            return AwsResponse.json_error("InvalidArgumentException", f"Records size exceeds {MAX_BATCH_BYTES} bytes limit")
        try:
            delivery = self._delivery(name, request.region)
        except ClientError as error:
            details = error.response["Error"]
            return AwsResponse.json_error(details["Code"], details.get("Message", ""), error.response["ResponseMetadata"]["HTTPStatusCode"])
        if delivery is None:
            return request.send_on()  # not an S3 destination: the backend's behaviour is all there is
        if delivery.source_stream_arn:
            return AwsResponse.json_error("InvalidArgumentException",
                                          f"This operation is not permitted on KinesisStreamAsSource type delivery stream {name}.")
        now = self._now()
        self._accept(delivery, [(now, payload) for payload in payloads])
        return AwsResponse.json(answer([uuid.uuid4().hex + uuid.uuid4().hex for _ in payloads]))

    # --- buffering and delivery -----------------------------------------------------------------------

    def _accept(self, delivery: Delivery, records: list[tuple[datetime.datetime, bytes]]) -> None:
        with self._lock:
            buffer = self._buffers.setdefault(delivery.name, Buffer(self._buffer_path(delivery.name)))
            buffer.add(records)
            if buffer.size >= delivery.size_bytes:
                self._deliver(delivery, buffer)

    def _deliver(self, delivery: Delivery, buffer: Buffer) -> None:
        """One object per call: the buffer's records up to the size hint (the rest waits for the next)."""
        taken, size = 0, 0
        while taken < len(buffer.records) and (taken == 0 or size + len(buffer.records[taken][1]) <= delivery.size_bytes):
            size += len(buffer.records[taken][1])
            taken += 1
        records = buffer.records[:taken]
        oldest = min(moment for moment, _ in records)
        body = b"".join(data for _, data in records)
        if delivery.gzip:
            body = gzip.compress(body, mtime=0)
        key = prefixes.evaluate(delivery.prefix, oldest) + prefixes.object_name(delivery.name, delivery.version, self._now(), delivery.gzip)
        try:
            self._as_role("s3", delivery.role_arn, delivery.arn).put_object(Bucket=delivery.bucket, Key=key, Body=body)
        except ClientError as error:
            log.warning("firehose %s: delivery to s3://%s failed (%s); retrying", delivery.name, delivery.bucket, error)
            metrics.put("AWS/Firehose", "DeliveryToS3.Success", {"DeliveryStreamName": delivery.name}, 0)
            return
        buffer.drop_first(taken)
        for metric, value, unit in (("DeliveryToS3.Success", 1, "Count"), ("DeliveryToS3.Records", taken, "Count"), ("DeliveryToS3.Bytes", size, "Bytes"),
                                    ("DeliveryToS3.DataFreshness", (self._now() - oldest).total_seconds(), "Seconds")):
            metrics.put("AWS/Firehose", metric, {"DeliveryStreamName": delivery.name}, value, unit)

    def flush_due(self) -> None:
        """Delivers every buffer whose oldest record has waited its stream's buffering interval."""
        now = self._now()
        with self._lock:
            names = [name for name, buffer in self._buffers.items() if buffer.records]
        for name in names:
            try:
                delivery = self._delivery(name, self.context.region)
            except ClientError:
                continue  # the stream is gone or the stack is still starting; try again next tick
            if delivery is None:
                continue
            with self._lock:
                buffer = self._buffers[name]
                while buffer.records and (now - buffer.oldest >= delivery.interval or buffer.size >= delivery.size_bytes):
                    before = len(buffer.records)
                    self._deliver(delivery, buffer)
                    if len(buffer.records) == before:
                        break

    def poll_sources(self) -> None:
        """Moves new records of each Kinesis source into its delivery stream's buffer."""
        for path in sorted((self._folder / "sources").glob("*.json")):
            name = path.stem
            try:
                delivery = self._delivery(name, self.context.region)
            except ClientError:
                continue
            if delivery is None or not delivery.source_stream_arn:
                continue
            position = JsonFile(path).load({})
            if "since" not in position:
                log.warning("firehose %s: Kinesis source position unreadable; reading from now on", name)
                position = {"since": self._now().isoformat(), "shards": {}}
            position.setdefault("shards", {})
            self._poll(delivery, position)

    def _as_role(self, service: str, role_arn: str, stream_arn: str):
        """A client whose calls are the role's session (Firehose's own, the engine's, when no role is named)."""
        if not role_arn:
            return self.own_client(service)
        key = (service, role_arn, stream_arn)
        with self._lock:
            found = self._role_clients.get(key)
        if found is None:
            found = self.roles.client(service, role_arn, SESSION_NAME, source_arn=stream_arn or None, on_refusal=_refused, engine=self.name)
            with self._lock:
                self._role_clients[key] = found
        return found

    def _poll(self, delivery: Delivery, position: dict) -> None:
        kinesis = self._as_role("kinesis", delivery.source_role_arn, delivery.arn)
        stream = {"StreamARN": delivery.source_stream_arn}
        for shard in kinesis.list_shards(**stream)["Shards"]:
            shard_id = shard["ShardId"]
            last = position["shards"].get(shard_id)
            start = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": last} if last else
                     {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": datetime.datetime.fromisoformat(position["since"]).replace(tzinfo=datetime.timezone.utc)})
            iterator = kinesis.get_shard_iterator(ShardId=shard_id, **stream, **start)["ShardIterator"]
            records = kinesis.get_records(ShardIterator=iterator, Limit=10000)["Records"]
            if not records:
                continue
            self._accept(delivery, [(r["ApproximateArrivalTimestamp"].astimezone(datetime.timezone.utc).replace(tzinfo=None), r["Data"]) for r in records])
            position["shards"][shard_id] = records[-1]["SequenceNumber"]
            self._save_source(delivery.name, position)

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.poll_sources()
                self.flush_due()
            except Exception:  # the worker must outlive a bad tick (the stack still starting, a deleted stream)
                log.exception("firehose delivery tick failed")

    # --- state ----------------------------------------------------------------------------------------

    def _delivery(self, name: str, region: str) -> Delivery | None:
        with self._lock:
            if name in self._deliveries:
                return self._deliveries[name]
        description = self.own_client("firehose", region).describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        delivery = Delivery.from_description(description)
        with self._lock:
            self._deliveries[name] = delivery
        return delivery

    def _forget(self, name: str) -> None:
        with self._lock:
            self._deliveries.pop(name, None)

    def _buffer_path(self, name: str):
        return child_path(self._folder / "buffers", name, ".jsonl")

    def _source_path(self, name: str):
        return child_path(self._folder / "sources", name, ".json")

    def _save_source(self, name: str, position: dict) -> None:
        JsonFile(self._source_path(name)).save(position)

    def admin_routes(self):
        return {"firehose": self._admin}

    def _admin(self, request: AwsRequest) -> AwsResponse:
        """GET: records waiting per delivery stream. POST {"action": "deliver-due"}: deliver what is due now, then
        say what still waits (so a grader that moved the clock knows delivery is done instead of guessing from S3
        listings). POST {"action": "where", "stream": name, "arrived": ISO time}: the prefix a record arriving then
        would be delivered under (a grader asks at a moment whose fields all differ: objects delivered at hh:12 in
        December land right even when the month's pattern letter is the minute's)."""
        if request.method == "POST":
            action = request.json.get("action")
            if action == "where":
                return self._where(request.json.get("stream"), request.json.get("arrived"))
            if action != "deliver-due":
                return AwsResponse.json_error("InvalidAction", 'POST {"action": "deliver-due"} delivers every buffer that is due; '
                                              '{"action": "where", "stream": ..., "arrived": ...} says where a record would land')
            self.flush_due()
        with self._lock:
            waiting = {name: len(buffer.records) for name, buffer in self._buffers.items()}
        return AwsResponse.json({"waiting_records": waiting})

    def _where(self, name, arrived) -> AwsResponse:
        try:
            moment = datetime.datetime.fromisoformat(arrived)
        except (TypeError, ValueError):
            return AwsResponse.json_error("InvalidArgument", f"arrived must be an ISO 8601 time, not {arrived!r}")
        if moment.tzinfo is not None:  # Firehose's timestamps are UTC; a time without a zone is taken as UTC
            moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        try:
            delivery = self._delivery(name, self.context.region) if isinstance(name, str) else None
        except ClientError as error:
            return AwsResponse.json_error(error.response["Error"]["Code"], error.response["Error"]["Message"], 404)
        if delivery is None:
            return AwsResponse.json_error("InvalidArgument", f"delivery stream {name!r} has no S3 destination to deliver to")
        return AwsResponse.json({"prefix": prefixes.evaluate(delivery.prefix, moment)})

    def reset(self) -> None:
        with self._lock:
            for buffer in self._buffers.values():
                buffer.discard()
            self._buffers.clear()
            self._deliveries.clear()
            self._role_clients.clear()
            for path in (self._folder / "sources").glob("*.json"):
                path.unlink()
        self.roles.forget()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for buffer in self._buffers.values():
                buffer.close()


def _refused(refusal: rolesessions.Refused) -> Exception:
    """A role Firehose cannot assume fails the delivery like any refused call (it is tried again)."""
    return ClientError({"Error": {"Code": "AccessDenied", "Message": f"Firehose is unable to assume role {refusal.role_arn}: {refusal.message}"}},
                       "AssumeRole")


def _invalid_stream_name(name) -> AwsResponse | None:
    """AWS's refusal of a DeliveryStreamName outside its documented pattern and length. A name AWS would take
    but that cannot be a file name here ('..', or one starting with '.') is refused in the same shape."""
    if name is None:
        return None  # a missing name is the backend's to refuse, as AWS's serializer does
    low, high = STREAM_NAME_LENGTH
    constraint = None
    if not isinstance(name, str) or not re.fullmatch(STREAM_NAME_PATTERN, name):
        constraint = f"Member must satisfy regular expression pattern: {STREAM_NAME_PATTERN}"
    elif not low <= len(name) <= high:
        constraint = f"Member must have length less than or equal to {high}"
    else:
        try:
            child_path(Path("buffers"), name)
        except UnsafeName:
            constraint = "dealab keeps a stream's buffer in a file of its name, which cannot begin with '.'"
    if constraint is None:
        return None
    shown = re.sub(r"[\x00-\x1f\x7f]", lambda control: f"\\x{ord(control.group()):02x}", str(name)[:80])  # one readable line
    return AwsResponse.json_error("ValidationException", f"1 validation error detected: Value '{shown}' at 'deliveryStreamName' "
                                  f"failed to satisfy constraint: {constraint}")


def _invalid_destination(parameters: dict, members: tuple[str, ...]) -> AwsResponse | None:
    """AWS's refusals of an S3 destination: prefixes that cannot be evaluated, buffering hints out of range."""
    destination = next((parameters[m] for m in members if m in parameters), None)
    if not destination:
        return None
    try:
        prefixes.validate(destination.get("Prefix", ""), destination.get("ErrorOutputPrefix", ""))
    except prefixes.PrefixError as error:
        return AwsResponse.json_error("InvalidArgumentException", str(error))
    hints = destination.get("BufferingHints") or {}
    for hint, (low, high) in (("SizeInMBs", SIZE_MB_RANGE), ("IntervalInSeconds", INTERVAL_RANGE)):
        if hint in hints and not low <= int(hints[hint]) <= high:
            return AwsResponse.json_error("ValidationException", f"1 validation error detected: Value '{hints[hint]}' at "
                                          f"'bufferingHints.{hint[0].lower() + hint[1:]}' failed to satisfy constraint: "
                                          f"Member must have value between {low} and {high}")
    return None
