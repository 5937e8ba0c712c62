"""The clock engine: the lab clock, and the S3 lifecycle and DynamoDB TTL work that moving it sets off.

Admin endpoints: /_dealab/clock (GET shows, with "labs": each started lab's lab start time and how far the
clock has moved since; POST {"action": "advance", "by": "30d"} | {"action": "set", "to": "2027-01-01"} |
{"action": "lab-start", "lab": "4"} | {"action": "lab-reset", "lab": "4"} | {"action": "reset"}) and /_dealab/storage (GET: bytes and monthly cost per storage
class per bucket now, and the history recorded as the clock moved).

Moving the clock forward applies, in time order, everything that would have happened in between: the
clock is set to each due moment in turn, so what the backend records (delete markers, stream records) is
dated when it would have happened. Lifecycle configurations are kept by this engine, because the backend
drops parts of them (object size filters, NewerNoncurrentVersions); they are validated as S3 validates them.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import logging
import re
import threading
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER, ResponseParserFactory, RestXMLParser

from dealab import pricing as prices
from dealab.wire.engine import Engine, EngineContext
from dealab.wire import s3notices
from dealab.wire.timers import timers
from dealab.engines.clock.clock import UTC, ClockError, LabClock, parse_duration, parse_moment
from dealab.engines.clock import storagemetrics
from dealab.engines.clock.lifecycle import LIST_PAGE, LifecycleRun
from dealab.engines.clock.overlay import RESTORE_DURATIONS, Overlay, epoch_second, lab_dated_headers, parse_http_date, parse_iso, precise_stamp
from dealab.engines.clock.rules import (
    DEFAULT_MINIMUM_SIZE_BEHAVIOUR,
    LifecycleConfiguration,
    LifecycleError,
    parse,
)
from dealab.wire.store import JsonFile
from dealab.engines.clock.tags import ObservedTags, tags_from_body, tags_from_header
from dealab.engines.clock.ttl import TtlMarks, TtlRun, table_of_stream_arn
from dealab.wire.messages import AwsRequest, AwsResponse

log = logging.getLogger("dealab.clock")
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")
_COPY_ETAG = re.compile(rb"<ETag>([^<]+)</ETag>")

# S3 operation → the method that takes it (with the request, bucket and key)
S3_OPERATIONS = {
    "PutBucketLifecycleConfiguration": "_put_lifecycle",
    "PutBucketLifecycle": "_put_lifecycle",
    "GetBucketLifecycleConfiguration": "_get_lifecycle",
    "GetBucketLifecycle": "_get_lifecycle",
    "DeleteBucketLifecycle": "_delete_lifecycle",
    "DeleteBucket": "_delete_bucket",
    "ListObjects": "_listing",
    "ListObjectsV2": "_listing",
    "ListObjectVersions": "_listing",
    "HeadObject": "_object_read",
    "GetObject": "_object_read",
    "GetObjectAttributes": "_object_attributes",
    "RestoreObject": "_restore",
    "PutObject": "_note_tags",
    "PutObjectTagging": "_note_tags",
    "DeleteObjectTagging": "_note_tags",
    "CopyObject": "_copy_object",
    "CreateMultipartUpload": "_create_upload",
    "CompleteMultipartUpload": "_end_upload",
    "AbortMultipartUpload": "_end_upload",
}
MINIMUM_SIZE_HEADER = "x-amz-transition-default-minimum-object-size"
INVALID_OBJECT_STATE = "The operation is not valid for the object's storage class"
# A clock asked to move back by less than this is left where it is (the request took time to arrive).
BACKWARD_TOLERANCE = datetime.timedelta(seconds=5)
MAX_HISTORY_POINTS = 5000
RESTORE_TIMER_OWNER = "s3-restores"
STARTUP_RETRY_SECONDS = 0.2
_INSTANT = datetime.timedelta(microseconds=1)


class ClockEngine(Engine):
    name = "clock"
    operations = {("s3", operation): method for operation, method in S3_OPERATIONS.items()} | {("dynamodbstreams", "GetRecords"): "_get_records"}

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self.folder = context.state_dir / "clock"
        self.clock = LabClock(self.folder)
        self.overlay = Overlay(self.folder)
        self.ttl_marks = TtlMarks(self.folder)
        self.tags = ObservedTags(self.folder)
        self._configs_file = JsonFile(self.folder / "lifecycle.json")
        self._history_file = JsonFile(self.folder / "history.json")
        self._configs: dict[str, dict] = self._configs_file.load({})
        self._history: list[dict] = [point for point in self._history_file.load([]) if _priced_per_object(point)]
        # lab number → {"started": lab time at `lab start`, "offset_seconds": the clock's offset then}
        self._labs_file = JsonFile(self.folder / "labs.json")
        self._labs: dict[str, dict] = self._labs_file.load({})
        self._initiated_file = JsonFile(self.folder / "uploads.json")
        self._initiated: dict[str, str] = self._initiated_file.load({})
        self._last_move: dict | None = None
        # the move under way, for GET /_dealab/clock (the CLI's progress bar); replaced whole, never edited
        self._moving: dict | None = None
        self._lock = threading.RLock()
        self._move_lock = threading.Lock()
        self._clients: dict[str, object] = {}
        self._closing = threading.Event()
        threading.Thread(target=self._arm_pending_restores, name="clock-restores", daemon=True).start()

    # ---- routing ---------------------------------------------------------------------------------
    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        if request.service == "s3":  # the S3 methods take the bucket and key the path names
            return handler(request, *_bucket_and_key(request.path))
        return handler(request)

    def admin_routes(self):
        return {"clock": self._clock_admin, "storage": self._storage_admin}

    def _client(self, service: str):
        """The engine's client (context.client), whose parser reads
        timestamps without dateutil (botocore's default takes ~0.4 ms per timestamp, which dominates
        listing 100,000 objects) and S3's XML answers with _ListingParser, and which does not check the
        engine's own parameters against the model before sending them (~15 ms per DeleteObjects of 1000 keys;
        the backend still refuses a malformed request)."""
        if service not in self._clients:
            session = botocore.session.get_session()
            session.register_component("response_parser_factory", _ParserFactory())
            session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_fast_timestamp)
            self._clients[service] = self.context.client(
                service, engine=self.name, session=session, read_timeout=900, parameter_validation=False
            )
        return self._clients[service]

    # ---- lifecycle configurations ------------------------------------------------------------------
    def _bucket_exists(self, bucket: str) -> bool:
        s3 = self._client("s3")
        try:
            s3.head_bucket(Bucket=bucket)
            return True
        except s3.exceptions.ClientError:
            return False

    def _put_lifecycle(self, request: AwsRequest, bucket: str, _key: str) -> AwsResponse:
        behaviour = request.headers.get(MINIMUM_SIZE_HEADER)
        try:
            rules = parse(request.body, behaviour)
        except LifecycleError as error:
            return AwsResponse.xml_error(error.code, error.message, 400, f"/{bucket}")
        if not self._bucket_exists(bucket):
            return AwsResponse.xml_error("NoSuchBucket", "The specified bucket does not exist", 404, bucket)
        now = self.clock.now().isoformat()
        with self._lock:
            previous = self._configs.get(bucket, {}).get("since", {})
            since = {rule.signature(): previous.get(rule.signature(), now) for rule in rules}
            self._configs[bucket] = {
                "body": base64.b64encode(request.body).decode("ascii"),
                "behaviour": behaviour or DEFAULT_MINIMUM_SIZE_BEHAVIOUR,
                "since": since,
            }
            self._configs_file.save(self._configs)
        return AwsResponse(200, [(MINIMUM_SIZE_HEADER, behaviour or DEFAULT_MINIMUM_SIZE_BEHAVIOUR)], b"")

    def _get_lifecycle(self, request: AwsRequest, bucket: str, _key: str) -> AwsResponse:
        stored = self._configs.get(bucket)
        if stored is None:
            if not self._bucket_exists(bucket):
                return AwsResponse.xml_error("NoSuchBucket", "The specified bucket does not exist", 404, bucket)
            return AwsResponse.xml_error("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist", 404, bucket)
        headers = [("Content-Type", "application/xml"), (MINIMUM_SIZE_HEADER, stored["behaviour"])]
        return AwsResponse(200, headers, base64.b64decode(stored["body"]))

    def _delete_lifecycle(self, request: AwsRequest, bucket: str, _key: str) -> AwsResponse:
        if not self._bucket_exists(bucket):
            return AwsResponse.xml_error("NoSuchBucket", "The specified bucket does not exist", 404, bucket)
        with self._lock:
            if self._configs.pop(bucket, None) is not None:
                self._configs_file.save(self._configs)
        return AwsResponse(204, [], b"")

    def _delete_bucket(self, request: AwsRequest, bucket: str, _key: str) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            self._forget_bucket(bucket)
        return response

    def _listing(self, request: AwsRequest, bucket: str, _key: str) -> AwsResponse:
        response = request.send_on()
        if response.status == 200:
            _replace_body(response, self.overlay.rewrite_listing(bucket, response.read()))
        return response

    def _forget_bucket(self, bucket: str) -> None:
        with self._lock:
            if self._configs.pop(bucket, None) is not None:
                self._configs_file.save(self._configs)
        self.overlay.forget_bucket(bucket)
        self.overlay.save()
        self.tags.forget_bucket(bucket)
        self._forget_history_of(bucket)

    def _forget_history_of(self, bucket: str) -> None:
        """A deleted bucket (a lab's reset, the grader's probe) leaves the storage history: the report is about
        the buckets there are, and a point left with no bucket goes too."""
        with self._lock:
            kept = []
            for point in self._history:
                buckets = {name: classes for name, classes in point["buckets"].items() if name != bucket}
                if buckets:
                    kept.append({**point, "buckets": buckets})
            if len(kept) != len(self._history) or any(bucket in point["buckets"] for point in self._history):
                self._history = kept
                self._history_file.save(self._history)

    def configurations(self) -> dict[str, LifecycleConfiguration]:
        with self._lock:
            stored = dict(self._configs)
        return {
            bucket: LifecycleConfiguration(parse(base64.b64decode(entry["body"])), entry["behaviour"], dict(entry["since"]))
            for bucket, entry in stored.items()
        }

    # ---- reads through the overlay ---------------------------------------------------------------------
    def _object_read(self, request: AwsRequest, bucket: str, key: str) -> AwsResponse:
        response = request.send_on()
        etag, modified = response.header("ETag"), response.header("Last-Modified")
        response.headers = self._lab_dated(response, bucket, key)
        # the backend refuses archived objects it never restored by itself; restores all pass through here
        if response.status >= 300 or not self.overlay.knows_bucket(bucket) or not etag or not modified:
            return response
        version_id = response.header("x-amz-version-id") or "null"
        view = self.overlay.view(bucket, key, version_id, etag, epoch_second(parse_http_date(modified)),
                                 response.header("x-amz-storage-class") or "STANDARD", self.clock.now())
        if view is None:
            return response
        if request.operation == "GetObject" and not view.readable:
            return _invalid_object_state(view.storage_class, f"/{bucket}/{key}")
        headers = [(k, v) for k, v in response.headers if k.lower() not in ("x-amz-storage-class", "x-amz-restore")]
        headers.append(("x-amz-storage-class", view.storage_class))
        restore = self.overlay.restore_header(view.restore, view.restore_record)
        if restore:
            headers.append(("x-amz-restore", restore))
        response.headers = headers
        return response

    def _lab_dated(self, response: AwsResponse, bucket: str, key: str) -> list[tuple[str, str]]:
        """The answer's headers with Last-Modified on the lab clock, for a backend that keeps real time."""
        version_id = response.header("x-amz-version-id")
        return lab_dated_headers(response.headers, lambda: precise_stamp(self._client("s3"), bucket, key, version_id))

    def _object_attributes(self, request: AwsRequest, bucket: str, key: str) -> AwsResponse:
        response = request.send_on()
        response.headers = self._lab_dated(response, bucket, key)
        if response.status != 200 or not self.overlay.has_bucket(bucket):
            return response
        # the answer carries an ETag only when asked for one: the version's own identity comes from HeadObject
        head = self._raw_head(bucket, key, response.header("x-amz-version-id"))
        if head is not None:
            storage_class = self.overlay.storage_class(bucket, key, head.get("VersionId") or "null", head["ETag"],
                                                       head["LastModified"], head.get("StorageClass", "STANDARD"))
            _replace_body(response, self.overlay.rewrite_attributes(response.read(), storage_class))
        return response

    def _raw_head(self, bucket: str, key: str, version_id: str | None) -> dict | None:
        s3 = self._client("s3")
        try:
            return s3.head_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
        except s3.exceptions.ClientError:
            return None

    def _restore(self, request: AwsRequest, bucket: str, key: str) -> AwsResponse:
        requested_version = request.query.get("versionId", [None])[0]
        head = self._raw_head(bucket, key, requested_version)
        if head is None:
            return request.send_on()
        version_id = head.get("VersionId") or "null"
        modified = epoch_second(head["LastModified"])
        now = self.clock.now()
        view = self.overlay.view(bucket, key, version_id, head["ETag"], modified, head.get("StorageClass", "STANDARD"), now)
        if view is None:
            return request.send_on()  # the backend refuses classes that need no restore itself
        storage_class = view.storage_class
        if not view.archived:
            return _invalid_object_state(storage_class, f"/{bucket}/{key}")
        try:
            days, tier = _restore_request(request.body)
        except (ValueError, KeyError, ET.ParseError):
            return AwsResponse.xml_error("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
        if tier not in RESTORE_DURATIONS[storage_class]:
            return AwsResponse.xml_error("InvalidArgument", f"{tier} retrieval is not available for the {storage_class} storage class", 400)
        if view.restore == "ongoing":
            return AwsResponse.xml_error("RestoreAlreadyInProgress", "Object restore is already in progress", 409, f"/{bucket}/{key}")
        if not view.transitioned:
            # The backend keeps this object archived and would restore it at once: it restores it now so it can
            # serve the body later, and reads stay refused here until the lab clock reaches the tier's time.
            backend = request.send_on()
            if backend.status >= 300:
                return backend
        if view.restore == "restored":
            self.overlay.extend_restore(bucket, key, version_id, days, now)
            status = 200
        else:
            record = self.overlay.start_restore(bucket, key, version_id, head["ETag"], modified, storage_class, tier, days, now,
                                                size=head.get("ContentLength", 0))
            self._arm_restore_completion((bucket, key, version_id), record)
            status = 202
        self.overlay.save()
        return AwsResponse(status, [] if version_id == "null" else [("x-amz-version-id", version_id)], b"")

    def _arm_pending_restores(self) -> None:
        """Arms the announcements of restores still pending in the store, once the gateway answers (one that came
        due while the stack was down fires at once, and the engines that announce it must be there to hear it)."""
        while not self._closing.is_set():
            try:
                self._client("s3").list_buckets()
                break
            except Exception:  # the gateway is not attached yet
                self._closing.wait(STARTUP_RETRY_SECONDS)
        else:
            return
        for entry, record in self.overlay.pending_completions():
            self._arm_restore_completion(entry, record)

    def _arm_restore_completion(self, entry: tuple[str, str, str], record: dict) -> None:
        """At the lab moment a restore is ready, S3 announces it (s3:ObjectRestore:Completed): a lab timer,
        armed again from the overlay's records when the stack starts."""
        ready = _naive_utc(record["ready"])
        timers.schedule(RESTORE_TIMER_OWNER, "restore/" + "/".join(entry), ready, lambda at: self._restore_completed(entry, record["ready"]))

    def _restore_completed(self, entry: tuple[str, str, str], ready: str) -> None:
        bucket, key, version_id = entry
        record = self.overlay.complete_restore(bucket, key, version_id, ready)
        if record is None:
            return
        self.overlay.save()
        s3notices.publish(s3notices.ObjectNotice(
            s3notices.RESTORE_COMPLETED, self.context.region, bucket, key, version_id, record["size"], record["etag"],
            _naive_utc(record["ready"]), record["class"], _naive_utc(record["expires"])))

    def _copy_object(self, request: AwsRequest, bucket: str, key: str) -> AwsResponse:
        return self._note_copy(request, bucket, key, self._copy(request))

    def _copy(self, request: AwsRequest) -> AwsResponse:
        source = request.headers.get("x-amz-copy-source", "")
        parts = urlsplit("/" + unquote(source.lstrip("/")))
        src_bucket, _, src_key = parts.path.lstrip("/").partition("/")
        if src_bucket and src_key and self.overlay.knows_bucket(src_bucket):
            version = parse_qs(parts.query).get("versionId", [None])[0]
            head = self._raw_head(src_bucket, src_key, version)
            if head is not None:
                view = self.overlay.view(src_bucket, src_key, head.get("VersionId") or "null", head["ETag"],
                                         epoch_second(head["LastModified"]), head.get("StorageClass", "STANDARD"), self.clock.now())
                if view is not None and not view.readable:
                    return _invalid_object_state(view.storage_class, f"/{src_bucket}/{src_key}")
        return request.send_on()

    def _create_upload(self, request: AwsRequest, _bucket: str, _key: str) -> AwsResponse:
        """Notes when each multipart upload began: the embedded backend lists a fixed Initiated date."""
        response = request.send_on()
        if response.status == 200:
            match = _UPLOAD_ID.search(response.read())
            if match:
                with self._lock:
                    self._initiated[match.group(1).decode()] = self.clock.now().isoformat()
                    self._initiated_file.save(self._initiated)
        return response

    def _end_upload(self, request: AwsRequest, bucket: str, key: str) -> AwsResponse:
        response = request.send_on()
        if request.operation == "CompleteMultipartUpload" and response.status < 300:
            # the tags were given when the upload began; look them up when a rule needs them
            self.tags.forget(bucket, key, response.header("x-amz-version-id") or "null")
        upload_id = request.query.get("uploadId", [""])[0]
        if response.status < 300 and upload_id in self._initiated:
            with self._lock:
                self._initiated.pop(upload_id, None)
                self._initiated_file.save(self._initiated)
        return response

    def _note_tags(self, request: AwsRequest, bucket: str, key: str) -> AwsResponse:
        response = request.send_on()
        if response.status >= 300:
            return response
        version_id = response.header("x-amz-version-id") or request.query.get("versionId", [None])[0]
        if version_id is None and request.operation != "PutObject":
            # the backend's (Put|Delete)ObjectTagging answers do not name the version they tagged (S3's do):
            # it is the current one, which a versioned bucket names in HeadObject
            head = self._raw_head(bucket, key, None)
            version_id = head.get("VersionId") if head else None
        version_id = version_id or "null"
        if request.operation == "PutObject":
            self.tags.record(bucket, key, version_id, response.header("ETag"), tags_from_header(request.headers.get("x-amz-tagging")))
        elif request.operation == "PutObjectTagging":
            try:
                self.tags.record(bucket, key, version_id, None, tags_from_body(request.body))
            except ET.ParseError:
                self.tags.forget(bucket, key, version_id)
        else:
            self.tags.record(bucket, key, version_id, None, {})
        return response

    def _note_copy(self, request: AwsRequest, bucket: str, key: str, response: AwsResponse) -> AwsResponse:
        if response.status >= 300:
            return response
        version_id = response.header("x-amz-version-id") or "null"
        etag = _COPY_ETAG.search(response.read())
        if request.headers.get("x-amz-tagging-directive", "COPY").upper() == "REPLACE" and etag:
            self.tags.record(bucket, key, version_id, html.unescape(etag.group(1).decode()), tags_from_header(request.headers.get("x-amz-tagging")))
        else:
            self.tags.forget(bucket, key, version_id)
        return response

    # ---- DynamoDB Streams ----------------------------------------------------------------------------
    def _get_records(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status != 200:
            return response
        document = json.loads(response.read())
        table = table_of_stream_arn(request.json.get("ShardIterator", ""))
        if self.ttl_marks.label(table, document.get("Records", [])):
            _replace_body(response, json.dumps(document).encode())
        return response

    # ---- the clock -----------------------------------------------------------------------------------
    def _clock_admin(self, request: AwsRequest) -> AwsResponse:
        if request.method == "GET":
            return AwsResponse.json({**self.clock.describe(), "last_move": self._last_move, "moving": self._moving, "labs": self._started_labs()})
        if request.method != "POST":
            return AwsResponse.json_error("MethodNotAllowed", "the clock takes GET or POST", 405)
        payload = request.json
        action = payload.get("action")
        try:
            if action == "advance":
                summary = self.move_to(self.clock.now() + parse_duration(payload.get("by", "")))
            elif action == "set":
                summary = self.move_to(parse_moment(payload.get("to", "")))
            elif action == "reset":
                summary = self._reset_request()
            elif action in ("lab-start", "lab-reset"):
                self._note_lab(str(payload.get("lab", "")), started=action == "lab-start")
                summary = self._last_move
            else:
                raise ClockError(f"unknown clock action {action!r}; use advance, set, lab-start, lab-reset or reset")
        except ClockError as error:
            return AwsResponse.json_error("InvalidClockRequest", str(error), 400)
        return AwsResponse.json({**self.clock.describe(), "last_move": summary, "moving": None, "labs": self._started_labs()})

    def _reset_request(self) -> dict | None:
        """`dealab clock reset`: the clock never moves back (objects, logs and sessions would be dated in the
        future), so a reset only answers where real time is: a clock at real time stays; one ahead is refused,
        naming the one reset that does return it, `make reset`, which empties the local AWS first."""
        if self.clock.offset > BACKWARD_TOLERANCE:
            raise ClockError(
                f"the lab clock reads {self.clock.now().isoformat(timespec='seconds')} and only moves forward: "
                "moving it back would date objects, logs and sessions in the future. `make reset` empties the "
                "local AWS and returns the clock to real time; each lab measures from its own start, so it need not."
            )
        return self._last_move

    def _note_lab(self, lab: str, started: bool) -> None:
        """Records the lab time a lab started at (`lab start`), or forgets it (`lab reset`)."""
        if not lab.isdigit():
            raise ClockError(f"name the lab by its number, e.g. {{\"lab\": \"4\"}}; got {lab!r}")
        with self._lock:
            if started:
                self._labs[str(int(lab))] = {"started": self.clock.now().isoformat(timespec="seconds"),
                                             "offset_seconds": round(self.clock.offset.total_seconds(), 3)}
            else:
                self._labs.pop(str(int(lab)), None)
            self._labs_file.save(self._labs)

    def _started_labs(self) -> dict[str, dict]:
        """Each started lab: its lab start time and how far the clock has been moved since (real time passing
        is not a move)."""
        offset = self.clock.offset.total_seconds()
        with self._lock:
            labs = dict(self._labs)
        return {lab: {"started": entry["started"],
                      "moved_days": round((offset - entry["offset_seconds"]) / 86400, 3)}
                for lab, entry in sorted(labs.items(), key=lambda item: int(item[0]))}

    def move_to(self, target: datetime.datetime) -> dict:
        """Moves the clock to `target`, carrying out every lifecycle and TTL action due on the way, in order."""
        with self._move_lock:
            start = self.clock.now()
            if target < start - BACKWARD_TOLERANCE:
                raise ClockError(
                    f"the lab clock reads {start.isoformat(timespec='seconds')}; it only moves forward "
                    f"(what has expired stays expired, and nothing may be dated in the future)."
                )
            target = max(target, start)
            began = time.monotonic()
            timers.moving_to(target)
            try:
                lifecycle, ttl, moments, fired = self._carry_out(start, target)
            finally:
                self._moving = None
                timers.moving_to(None)
            self.clock.move_to(target)
            self._record_history(target, lifecycle, always=True)
            self.overlay.save()
            self.ttl_marks.save()
            self.tags.save()
            with self._lock:
                for upload_id in lifecycle.aborted_uploads:
                    self._initiated.pop(upload_id, None)
                self._initiated_file.save(self._initiated)
            self._history_file.save(self._history)
            self._last_move = {
                "from": start.isoformat(timespec="seconds"),
                "to": target.isoformat(timespec="seconds"),
                "moments": moments,
                "lifecycle": lifecycle.counts,
                "ttl_deleted": ttl.deleted,
                "timers_fired": fired,
                "skipped": timers.skipped(),
                "seconds": round(time.monotonic() - began, 3),
            }
            log.info("clock moved %s → %s: %s", start, target, self._last_move)
            return self._last_move

    def _carry_out(self, start: datetime.datetime, target: datetime.datetime) -> tuple[LifecycleRun, TtlRun, int, int]:
        """Takes stock of the buckets and tables, then sets the clock to each due moment up to `target` in turn
        and carries out what is due there (lifecycle, TTL, and other engines' lab timers, whose work it lets
        settle); returns the runs, the number of moments and the number of timers fired."""
        def publish(stage: str, moment: datetime.datetime, moments: int) -> None:
            self._moving = {"from": start.isoformat(timespec="seconds"), "to": target.isoformat(timespec="seconds"),
                            "stage": stage, "at": moment.isoformat(timespec="seconds"), "moments": moments}

        publish("taking stock", start, 0)
        with self._lock:
            initiated = dict(self._initiated)
        lifecycle = LifecycleRun(self._client("s3"), self.configurations(), self.overlay, initiated, target, self.tags)
        ttl = TtlRun(self._client("dynamodb"), self.ttl_marks, target)
        self._record_history(start, lifecycle)
        moments = fired = 0
        published = start
        while True:
            dues = [due for due in (lifecycle.next_due(), ttl.next_due(), _aware(timers.next_due())) if due is not None]
            if not dues or min(dues) > target:
                storagemetrics.publish_days(lifecycle.totals, published, target)  # S3's daily storage metrics: the days not yet published
                return lifecycle, ttl, moments, fired
            moment = max(min(dues), start)
            publish("carrying out", moment, moments)
            storagemetrics.publish_days(lifecycle.totals, published, moment - _INSTANT)  # the days before this moment, storage as it stood
            self.clock.move_to(moment, persist=False)
            fired += timers.fire_due(moment.replace(tzinfo=None), settle=True)
            lifecycle.run_due(moment)
            ttl.run_due(moment, self.clock.now)
            storagemetrics.publish_days(lifecycle.totals, moment - _INSTANT, moment)  # a midnight's day, after its lifecycle work
            self._record_history(moment, lifecycle)
            published = moment  # S3 daily metrics are published up to here
            moments += 1

    def _record_history(self, moment: datetime.datetime, lifecycle: LifecycleRun, always: bool = False) -> None:
        """A point of the storage history: the totals per class per bucket with lifecycle rules."""
        if not lifecycle.buckets:
            return
        snapshot = lifecycle.snapshot()
        if not always and self._history and self._history[-1]["buckets"] == snapshot:
            return
        self._history.append({"time": moment.isoformat(timespec="seconds"), "buckets": snapshot})
        del self._history[:-MAX_HISTORY_POINTS]

    # ---- the storage report ----------------------------------------------------------------------
    def _storage_admin(self, request: AwsRequest) -> AwsResponse:
        s3 = self._client("s3")
        buckets: dict[str, dict[str, list[int]]] = {}
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            classes: dict[str, list[int]] = {}
            kwargs = {"Bucket": name, "MaxKeys": LIST_PAGE}
            while True:
                page = s3.list_object_versions(**kwargs)
                for item in page.get("Versions", []):
                    storage_class = self.overlay.storage_class(
                        name, item["Key"], item.get("VersionId") or "null", item.get("ETag", ""), item["LastModified"],
                        item.get("StorageClass", "STANDARD"),
                    )
                    prices.tally(classes.setdefault(storage_class, prices.new_totals()), storage_class, item.get("Size", 0))
                if not page.get("IsTruncated"):
                    break
                kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page.get("NextVersionIdMarker", ""))
            buckets[name] = classes
        history = [
            {"time": point["time"], "buckets": point["buckets"],
             "usd_month": round(sum(prices.cost_of(classes) for classes in point["buckets"].values()), 6)}
            for point in self._history
        ]
        return AwsResponse.json({
            "now": self.clock.now().isoformat(timespec="seconds"),
            "prices": {k: prices.PRICE_TABLE[k] for k in ("region", "as_of", "source", "usd_per_gb_month")},
            "buckets": {
                name: {cls: {**dict(zip(prices.TOTALS_FIELDS, totals)), "usd_month": round(prices.monthly_cost(cls, totals), 6)}
                       for cls, totals in classes.items()}
                for name, classes in buckets.items()
            },
            "usd_month": round(sum(prices.cost_of(classes) for classes in buckets.values()), 6),
            "history": history,
        })

    # ---- lifecycle of the engine ---------------------------------------------------------------------
    def reset(self) -> None:
        with self._move_lock, self._lock:
            self.clock.reset()
            self._configs.clear()
            self._configs_file.remove()
            self._history.clear()
            self._history_file.remove()
            self._labs.clear()
            self._labs_file.remove()
            self._initiated.clear()
            self._initiated_file.remove()
            self._last_move = None
            self.overlay.clear()
            self.ttl_marks.clear()
            self.tags.clear()
        timers.cancel_owner(RESTORE_TIMER_OWNER)


    def close(self) -> None:
        self._closing.set()
        timers.cancel_owner(RESTORE_TIMER_OWNER)
        self.tags.save()


class _ListingParser(RestXMLParser):
    """botocore's parser of S3's XML answers, minus what it works out again for each element (parsing the
    listing and the DeleteObjects answers was a third of a clock move over 100,000 versions): the XML name
    of each member of a structure, kept per shape; each tag stripped of its namespace, kept per tag; and the
    text of a string, integer, boolean or timestamp element converted in place, as botocore's handlers
    convert it (the empty text of <a/> is ""). The walk is botocore's; structures with XML attributes,
    tagged unions and error shapes are parsed by botocore itself, and so is a member that comes as several
    elements."""

    SCALARS = {"string": str, "integer": int, "long": int, "boolean": "true".__eq__}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._members: dict = {}
        self._tags: dict[str, str] = {}

    def _node_tag(self, node) -> str:
        name = self._tags.get(node.tag)
        if name is None:
            name = self._tags[node.tag] = super()._node_tag(node)
        return name

    def _members_of(self, shape) -> list | None:
        if shape.metadata.get("exception", False) or shape.is_tagged_union:
            return None
        members = []
        for name, member in shape.members.items():
            traits = member.serialization
            if traits.get("location") in self.KNOWN_LOCATIONS or traits.get("eventheader"):
                continue  # read from the headers
            if traits.get("xmlAttribute"):
                return None
            convert = self._timestamp_parser if member.type_name == "timestamp" else self.SCALARS.get(member.type_name)
            members.append((name, member, self._member_key_name(member, name), convert))
        return members

    def _handle_structure(self, shape, node):
        if shape not in self._members:
            self._members[shape] = self._members_of(shape)
        members = self._members[shape]
        if members is None:
            return super()._handle_structure(shape, node)
        xml_dict = self._build_name_to_xml_node(node)
        parsed = {}
        for name, member, xml_name, convert in members:
            member_node = xml_dict.get(xml_name)
            if member_node is None:
                continue
            if convert is not None and type(member_node) is not list:
                parsed[name] = convert(member_node.text or "")
            else:
                parsed[name] = self._parse_shape(member, member_node)
        return parsed


class _ParserFactory(ResponseParserFactory):
    def create_parser(self, protocol_name: str):
        if protocol_name == "rest-xml":
            return _ListingParser(**self._defaults)
        return super().create_parser(protocol_name)


def _naive_utc(text: str) -> datetime.datetime:
    """An overlay record's ISO moment as the lab timers take it."""
    return parse_iso(text).astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime.datetime | None) -> datetime.datetime | None:
    """A lab timer's moment (naive UTC) as the clock engine's moments are (aware UTC)."""
    return moment.replace(tzinfo=datetime.timezone.utc) if moment is not None else None


def _priced_per_object(point: dict) -> bool:
    """Whether a saved storage history point has every class's totals in today's shape (an earlier build kept
    bytes and objects only, which cannot be priced object by object; such points are left out)."""
    return all(len(totals) == len(prices.TOTALS_FIELDS) for classes in point["buckets"].values() for totals in classes.values())


def _fast_timestamp(value: str):
    """ISO 8601 timestamps (S3 listings) by the standard library; anything else as botocore would."""
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        return DEFAULT_TIMESTAMP_PARSER(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _bucket_and_key(path: str) -> tuple[str, str]:
    bucket, _, key = path.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


def _replace_body(response: AwsResponse, body: bytes) -> None:
    response.body = body
    response.headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
    response.headers.append(("Content-Length", str(len(body))))


def _invalid_object_state(storage_class: str, resource: str) -> AwsResponse:
    response = AwsResponse.xml_error("InvalidObjectState", INVALID_OBJECT_STATE, 403, resource)
    response.body = response.body.replace(b"</Error>", f"<StorageClass>{storage_class}</StorageClass></Error>".encode())
    return response


def _restore_request(body: bytes) -> tuple[int, str]:
    root = ET.fromstring(body)
    values = {element.tag.rsplit("}", 1)[-1]: (element.text or "").strip() for element in root.iter()}
    days = int(values["Days"])
    if days < 1:
        raise ValueError("Days must be positive")
    return days, values.get("Tier") or "Standard"
