"""The CloudTrail engine: every call through the gateway becomes a CloudTrail record (shapes.py).

- Management events go to the event history (history.py) that LookupEvents reads: 90 days of lab time.
- Each logging trail whose selectors take a record (selectors.py) keeps it until its next delivery, about
  every 5 minutes of lab time, as gzipped files in its bucket, with hourly digests (delivery.py).
- EventBridge gets "AWS API Call via CloudTrail" events on the default bus, sent from a thread of their own
  so a call never waits for them; read-only management events only reach rules whose State is
  ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS (the events engine decides by the rule's state).
- S3 server access logs for buckets with logging enabled (accesslogs.py).
The backend keeps trails, their status and selectors (the control plane); this engine answers what moto
lacks (LookupEvents, ListPublicKeys), corrects GetTrailStatus with real deliveries, and refuses CreateTrail
without the bucket policy CloudTrail needs.

Calls other engines make are not recorded: they are dealab's plumbing (a policy read, a rule listing), and
where they stand for AWS acting for the learner (Athena reading S3, a Step Functions task) AWS would record
them as that service's role, which the call does not carry. docs/cloudtrail.md says more.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import queue
import re
import threading
import time

from botocore.exceptions import ClientError

from dealab.config import TEST_ACCESS_KEY
from dealab.engines.cloudtrail import accesslogs, selectors, shapes
from dealab.engines.cloudtrail.delivery import DELIVERY_INTERVAL, DIGEST_INTERVAL, Deliveries, log_prefix, policy_refusal
from dealab.engines.cloudtrail.history import EventHistory, HistoryError
from dealab.wire import labtime, rolesessions, trailevents
from dealab.wire.engine import ANY_OPERATION, ENGINE_HEADER, Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.readcache import ReadCache
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

log = logging.getLogger("dealab.cloudtrail")

OWNER = "cloudtrail"
ROOT_ARN = f"arn:aws:iam::{shapes.ACCOUNT_ID}:root"
DETAIL_TYPE = "AWS API Call via CloudTrail"
# eventType → EventBridge detail type (AWS: a service's own actions arrive as service events)
DETAIL_TYPES = {"AwsApiCall": DETAIL_TYPE, "AwsServiceEvent": "AWS Service Event via CloudTrail"}
ALL_MANAGEMENT_STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
# Calls that change what this engine caches: the trails, the rules on the default bus, the IAM keys.
TRAIL_CHANGES = frozenset({"CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging", "PutEventSelectors"})
RULE_CHANGES = frozenset({"PutRule", "DeleteRule", "EnableRule", "DisableRule", "DeleteEventBus"})
KEY_CHANGES = frozenset({"DeleteAccessKey", "UpdateAccessKey", "DeleteUser", "CreateAccessKey"})
UNRECORDED_SERVICES = frozenset({"", "moto-api"})
MAX_EVENTS_PER_PUT = 10
TRAILS = "trails"  # the one key of the trail cache: every logging trail is read at once
_LOGGING_ENABLED_END = re.compile(rb"</LoggingEnabled>")


class CloudTrailEngine(Engine):
    name = "cloudtrail"
    operations = {
        (ANY_OPERATION, ANY_OPERATION): "_pass",
        ("cloudtrail", "LookupEvents"): "_lookup_events",
        ("cloudtrail", "GetTrailStatus"): "_get_trail_status",
        ("cloudtrail", "CreateTrail"): "_check_bucket_policy",
        ("cloudtrail", "UpdateTrail"): "_check_bucket_policy",
        ("cloudtrail", "DeleteTrail"): "_delete_trail",
        ("cloudtrail", "PutEventSelectors"): "_put_event_selectors",
        ("cloudtrail", "GetEventSelectors"): "_get_event_selectors",
        ("cloudtrail", "ListPublicKeys"): "_list_public_keys",
        ("s3", "PutBucketLogging"): "_put_bucket_logging",
        ("s3", "GetBucketLogging"): "_get_bucket_logging",
    }

    def __init__(self, context: EngineContext):
        super().__init__(context)
        folder = context.state_dir / self.name
        self.history = EventHistory(folder / "history")
        self.deliveries = Deliveries(folder, self._put_object, self._bucket_policy)
        self.access_logs = accesslogs.AccessLogs(folder, self._put_object)
        # which kind of selectors each trail's last PutEventSelectors set (moto keeps both kinds side by side)
        self._selector_kinds_file = JsonFile(folder / "selector_kinds.json")
        self._selector_kinds: dict[str, str] = self._selector_kinds_file.load({})
        self._lock = threading.Lock()
        self._trails: ReadCache[list[dict]] = ReadCache()  # TRAILS → every logging trail with its selectors
        self._identities: ReadCache[dict] = ReadCache()  # access key → the identity CloudTrail shows for it
        self._rule_states: ReadCache[set[str]] = ReadCache()  # region → states of the default bus's rules
        self._outbox: queue.Queue = queue.Queue()
        self._closing = threading.Event()
        threading.Thread(target=self._send_events, name="cloudtrail-eventbridge", daemon=True).start()
        self._schedule_saved_work()
        trailevents.attach(self._service_event, self._served_call, self._would_record)

    # ---- every call --------------------------------------------------------------------------------------
    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        at = labtime.now()
        started = time.perf_counter()
        try:
            response = handler(request)
        except HistoryError as error:
            response = AwsResponse.json_error(error.code, error.message)
        if request.service not in UNRECORDED_SERVICES and not request.headers.get(ENGINE_HEADER):
            try:
                self._record(request, response, at, round((time.perf_counter() - started) * 1000))
            except Exception:  # recording must never cost the caller its answer
                log.exception("recording %s.%s failed", request.service, request.operation)
        return response

    def _pass(self, request: AwsRequest) -> AwsResponse:
        return request.send_on()

    def _record(self, request: AwsRequest, response: AwsResponse, at: datetime.datetime, total_ms: int) -> None:
        self._note_changes(request, response)
        service, operation, region = request.service, request.operation, request.region
        management = (service, operation) not in shapes.DATA_EVENTS
        trails = self._logging_trails(region)
        identity = None
        if management or trails:
            identity = self._identity(request)
            record, resources = shapes.build(request, response, identity, at.strftime("%Y-%m-%dT%H:%M:%SZ"))
            logged = False
            for trail in trails:
                if selectors.logs(trail, record):
                    logged = True
                    if self.deliveries.add(trail["Name"], region, record):
                        self._schedule_delivery(trail["Name"], at + DELIVERY_INTERVAL)
            if management:
                self.history.append(record, resources)
            if management or logged:
                self._outbox.put((region, record))
        if service == "s3":
            self._access_log(request, response, identity, at, total_ms)

    def _service_event(self, region: str, record: dict, resources: list[dict]) -> None:
        """A service's own action (wire.trailevents): filed as a management event, like a call's record."""
        for trail in self._logging_trails(region):
            if selectors.logs(trail, record) and self.deliveries.add(trail["Name"], region, record):
                self._schedule_delivery(trail["Name"], labtime.now() + DELIVERY_INTERVAL)
        self.history.append(record, resources)
        self._outbox.put((region, record))

    def _served_call(self, request: AwsRequest, response: AwsResponse) -> None:
        """A call an engine answered from a cache of its own (wire.trailevents.served): recorded as if it had passed."""
        self._record(request, response, labtime.now(), 0)

    def _would_record(self, service: str, operation: str, region: str, bucket: str) -> bool:
        """Whether _record would keep anything of such a call: a management event is always kept; a data event only
        where a trail logs in its region, or (S3) where the bucket's server access log is on."""
        return ((service, operation) not in shapes.DATA_EVENTS or bool(self._logging_trails(region))
                or (service == "s3" and self.access_logs.config(bucket) is not None))

    def _note_changes(self, request: AwsRequest, response: AwsResponse) -> None:
        if response.status >= 300:
            return
        service, operation = request.service, request.operation
        if service == "cloudtrail" and operation in TRAIL_CHANGES:
            self._trails.forget_all()
        elif service == "events" and operation in RULE_CHANGES:
            self._rule_states.forget_all()
        elif service == "iam" and operation in KEY_CHANGES:
            self._identities.forget_all()
        elif service == "s3" and operation == "DeleteBucket":
            bucket, _ = shapes.s3_bucket_and_key(request.path, request.headers.get("Host", ""))
            if self.access_logs.config(bucket) is not None:
                self.access_logs.configure(bucket, None)

    # ---- who called ------------------------------------------------------------------------------------
    def _identity(self, request: AwsRequest) -> dict:
        key = shapes.access_key_of(request)
        if key is None:
            return {"type": "AWSAccount", "principalId": "", "accountId": "anonymous"}
        if key == TEST_ACCESS_KEY:
            return {"type": "Root", "principalId": shapes.ACCOUNT_ID, "arn": ROOT_ARN, "accountId": shapes.ACCOUNT_ID, "accessKeyId": key}
        caller = request.caller_arn or ""
        if ":assumed-role/" in caller:  # an STS session (AssumeRole, or an engine acting with an execution role)
            return self._identities.get(key, lambda: self._assumed_role(key, caller))

        def read() -> dict:
            iam = self.own_client("iam", self.context.region)
            try:
                user_name = iam.get_access_key_last_used(AccessKeyId=key)["UserName"]
                user = iam.get_user(UserName=user_name)["User"]
                return {"type": "IAMUser", "principalId": user["UserId"], "arn": user["Arn"], "accountId": shapes.ACCOUNT_ID,
                        "accessKeyId": key, "userName": user_name}
            except (ClientError, KeyError):
                # a key IAM does not know (STS credentials, a deleted user): the key is all there is to show
                return {"type": "Unknown", "principalId": key, "accountId": shapes.ACCOUNT_ID, "accessKeyId": key}
        return self._identities.get(key, read)

    def _assumed_role(self, key: str, session_arn: str) -> dict:
        """CloudTrail's userIdentity of a role session: the session's ARN, and the role that issued it."""
        role_name, _, session_name = session_arn.split(":assumed-role/", 1)[1].partition("/")
        role_arn = f"arn:aws:iam::{shapes.ACCOUNT_ID}:role/{role_name}"
        role_id = role_name
        try:
            role = self.own_client("iam", self.context.region).get_role(RoleName=role_name)["Role"]
            role_id, role_arn = role["RoleId"], f"arn:aws:iam::{shapes.ACCOUNT_ID}:role{role.get('Path') or '/'}{role_name}"
        except (ClientError, KeyError):
            pass  # the role is gone: its name is all there is to show
        identity = {"type": "AssumedRole", "principalId": f"{role_id}:{session_name}", "arn": session_arn, "accountId": shapes.ACCOUNT_ID,
                    "accessKeyId": key, "sessionContext": {
                        "sessionIssuer": {"type": "Role", "principalId": role_id, "arn": role_arn, "accountId": shapes.ACCOUNT_ID, "userName": role_name},
                        "attributes": {"mfaAuthenticated": "false"}}}
        service = rolesessions.invoked_by(self.context.loopback, key)
        if service:  # a service's own call with the role it was given (a crawler's, a state machine's task, ...)
            identity["invokedBy"] = service
        return identity

    # ---- trails ------------------------------------------------------------------------------------------
    def _logging_trails(self, region: str) -> list[dict]:
        return [trail for trail in self._every_logging_trail() if trail["IsMultiRegionTrail"] or trail["HomeRegion"] == region]

    def _every_logging_trail(self) -> list[dict]:
        return self._trails.get(TRAILS, self._load_trails)

    def _load_trails(self) -> list[dict]:
        """Every logging trail with its status and selectors (the backend's)."""
        cloudtrail = self.own_client("cloudtrail", self.context.region)
        found = []
        for trail in cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]:
            home = trail.get("HomeRegion") or self.context.region
            client = self.own_client("cloudtrail", home)
            try:
                if not client.get_trail_status(Name=trail["TrailARN"])["IsLogging"]:
                    continue
                chosen = client.get_event_selectors(TrailName=trail["TrailARN"])
            except ClientError:
                continue
            kind = self._selector_kinds.get(trail["TrailARN"])
            trail["EventSelectors"] = chosen.get("EventSelectors") or [] if kind != "advanced" else []
            trail["AdvancedEventSelectors"] = chosen.get("AdvancedEventSelectors") or [] if kind != "basic" else []
            trail["HomeRegion"] = home
            found.append(trail)
        return found

    def _trail_named(self, name: str) -> dict | None:
        self._trails.forget_all()
        return next((trail for trail in self._every_logging_trail() if trail["Name"] == name), None)

    def _check_bucket_policy(self, request: AwsRequest) -> AwsResponse:
        bucket = request.json.get("S3BucketName")
        if bucket:
            prefix = log_prefix({"S3KeyPrefix": request.json.get("S3KeyPrefix")})
            refusal = policy_refusal(self._bucket_policy(bucket), bucket, prefix) if self._bucket_exists(bucket) else None
            if refusal is not None:
                return AwsResponse.json_error("InsufficientS3BucketPolicyException",
                                              f"Incorrect S3 bucket policy is detected for bucket: {bucket} ({refusal})")
        return request.send_on()

    def _delete_trail(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            name = request.json.get("Name", "").rsplit("/", 1)[-1]
            self.deliveries.forget(name)
            timers.cancel(OWNER, f"trail:{name}")
            timers.cancel(OWNER, f"digest:{name}")
        return response

    def _put_event_selectors(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            arn = json.loads(response.read()).get("TrailARN")
            if arn:
                self._selector_kinds[arn] = "advanced" if request.json.get("AdvancedEventSelectors") else "basic"
                self._selector_kinds_file.save(self._selector_kinds)
        return response

    def _get_event_selectors(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status >= 300:
            return response
        answer = json.loads(response.read())
        kind = self._selector_kinds.get(answer.get("TrailARN", ""))
        if kind:
            answer.pop("EventSelectors" if kind == "advanced" else "AdvancedEventSelectors", None)
        return AwsResponse.json(answer)

    def _get_trail_status(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status >= 300:
            return response
        answer = json.loads(response.read())
        name = request.json.get("Name", "").rsplit("/", 1)[-1]
        # moto stamps a delivery at every call; the deliveries made are the ones this engine knows
        for member in ("LatestDeliveryTime", "LatestDeliveryAttemptTime", "LatestDeliveryAttemptSucceeded", "LatestDeliveryError",
                       "LatestDigestDeliveryTime", "LatestDigestDeliveryError"):
            answer.pop(member, None)
        status = self.deliveries.status(name)
        for member in ("LatestDeliveryTime", "LatestDeliveryAttemptTime", "LatestDeliveryAttemptSucceeded", "LatestDeliveryError",
                       "LatestDigestDeliveryTime", "LatestDigestDeliveryError"):
            if status.get(member) is not None:
                answer[member] = status[member]
        return AwsResponse.json(answer)

    def _list_public_keys(self, request: AwsRequest) -> AwsResponse:
        start = labtime.now() - datetime.timedelta(days=1)
        return AwsResponse.json({"PublicKeyList": [{
            "Value": base64.b64encode(self.deliveries.public_key()).decode(),
            "ValidityStartTime": (start - labtime.EPOCH).total_seconds(),
            "ValidityEndTime": (start + datetime.timedelta(days=366) - labtime.EPOCH).total_seconds(),
            "Fingerprint": self.deliveries.public_key_fingerprint(),
        }]})

    def _lookup_events(self, request: AwsRequest) -> AwsResponse:
        return AwsResponse.json(self.history.lookup(request.json, labtime.now()))

    # ---- S3 server access logging --------------------------------------------------------------------
    def _put_bucket_logging(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            bucket, _ = shapes.s3_bucket_and_key(request.path, request.headers.get("Host", ""))
            self.access_logs.configure(bucket, accesslogs.parse_logging(request.body))
        return response

    def _get_bucket_logging(self, request: AwsRequest) -> AwsResponse:
        """moto leaves TargetObjectKeyFormat out of its answer: it is put back as PutBucketLogging gave it."""
        response = request.send_on()
        bucket, _ = shapes.s3_bucket_and_key(request.path, request.headers.get("Host", ""))
        config = self.access_logs.config(bucket)
        if response.status >= 300 or config is None:
            return response
        partitioned = config["TargetObjectKeyFormat"].get("PartitionedPrefix")
        element = (f"<TargetObjectKeyFormat><PartitionedPrefix><PartitionDateSource>{partitioned['PartitionDateSource']}"
                   "</PartitionDateSource></PartitionedPrefix></TargetObjectKeyFormat>" if partitioned else
                   "<TargetObjectKeyFormat><SimplePrefix></SimplePrefix></TargetObjectKeyFormat>")
        body = _LOGGING_ENABLED_END.sub(element.encode() + b"</LoggingEnabled>", response.read(), count=1)
        headers = [(name, value) for name, value in response.headers if name.lower() != "content-length"]
        return AwsResponse(response.status, headers + [("Content-Length", str(len(body)))], body)

    def _access_log(self, request: AwsRequest, response: AwsResponse, identity: dict | None, at: datetime.datetime, total_ms: int) -> None:
        bucket, key = shapes.s3_bucket_and_key(request.path, request.headers.get("Host", ""))
        if not bucket or self.access_logs.config(bucket) is None:
            return
        failure = shapes.error_of(response)
        requester = accesslogs.requester_of(identity or self._identity(request))
        line = accesslogs.log_line(request, response, bucket, key, requester, failure[0] if failure else None, at, total_ms)
        added = self.access_logs.add(bucket, request.region, line, at)
        if added is not None and added[1]:
            target = added[0]
            timers.schedule(OWNER, f"access:{target}", at + accesslogs.DELIVERY_INTERVAL,
                            lambda moment, target=target: self.access_logs.deliver(target, moment))

    # ---- deliveries on the lab clock ---------------------------------------------------------------------
    def _schedule_delivery(self, name: str, at: datetime.datetime) -> None:
        timers.schedule(OWNER, f"trail:{name}", at, lambda moment, name=name: self._deliver(name, moment))

    def _deliver(self, name: str, at: datetime.datetime) -> None:
        if self.deliveries.deliver(self._trail_named(name), name, at) and timers.due_at(OWNER, f"digest:{name}") is None:
            timers.schedule(OWNER, f"digest:{name}", at + DIGEST_INTERVAL,
                            lambda moment, name=name: self.deliveries.deliver_digest(self._trail_named(name), name, moment))

    def _schedule_saved_work(self) -> None:
        """After a restart: what waits in the store is delivered on the lab clock again; history is pruned nightly."""
        now = labtime.live_now()
        for name in self.deliveries.waiting():
            self._schedule_delivery(name, now + DELIVERY_INTERVAL)
        for target in self.access_logs.waiting():
            timers.schedule(OWNER, f"access:{target}", now + accesslogs.DELIVERY_INTERVAL,
                            lambda moment, target=target: self.access_logs.deliver(target, moment))
        self._schedule_prune(now)

    def _schedule_prune(self, now: datetime.datetime) -> None:
        midnight = datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time())
        timers.schedule(OWNER, "prune", midnight, self._prune)

    def _prune(self, at: datetime.datetime) -> None:
        self.history.prune(at)
        self._schedule_prune(at)

    # ---- EventBridge -------------------------------------------------------------------------------------
    def _send_events(self) -> None:
        """Puts records on the default bus in batches, off the request's thread."""
        while not self._closing.is_set():
            try:
                first = self._outbox.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < 100:
                try:
                    batch.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            by_region: dict[str, list[dict]] = {}
            for region, record in batch:
                by_region.setdefault(region, []).append(record)
            for region, records in by_region.items():
                try:
                    self._put_events(region, records)
                except Exception:
                    log.exception("CloudTrail events to EventBridge in %s failed", region)

    def _put_events(self, region: str, records: list[dict]) -> None:
        states = self._default_bus_rule_states(region)
        wanted = [record for record in records
                  if ALL_MANAGEMENT_STATE in states or ("ENABLED" in states and not (record["readOnly"] and record["managementEvent"]))]
        events = self.own_client("events", region)
        for start in range(0, len(wanted), MAX_EVENTS_PER_PUT):
            entries = [{"Source": "aws." + record["eventSource"].split(".", 1)[0], "DetailType": DETAIL_TYPES[record["eventType"]],
                        "Detail": json.dumps(record), "Time": datetime.datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ"),
                        "EventBusName": "default"} for record in wanted[start:start + MAX_EVENTS_PER_PUT]]
            events.put_events(Entries=entries)

    def _default_bus_rule_states(self, region: str) -> set[str]:
        """The states of the default bus's rules (cached until a rule changes): no rule, no event to send."""
        def read() -> set[str]:
            events = self.own_client("events", region)
            return {rule.get("State", "") for page in events.get_paginator("list_rules").paginate(EventBusName="default")
                    for rule in page["Rules"]}
        return self._rule_states.get(region, read)

    # ---- plumbing ----------------------------------------------------------------------------------------
    def _put_object(self, bucket: str, key: str, body: bytes, metadata: dict) -> None:
        self.own_client("s3", self.context.region).put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata,
                                                             ACL="bucket-owner-full-control")

    def _bucket_policy(self, bucket: str) -> str | None:
        s3 = self.own_client("s3", self.context.region)
        try:
            return s3.get_bucket_policy(Bucket=bucket)["Policy"]
        except ClientError:
            return None

    def _bucket_exists(self, bucket: str) -> bool:
        s3 = self.own_client("s3", self.context.region)
        try:
            s3.head_bucket(Bucket=bucket)
            return True
        except ClientError:
            return False  # the backend answers CreateTrail with its own S3BucketDoesNotExistException

    def reset(self) -> None:
        timers.cancel_owner(OWNER)
        self.history.clear()
        self.deliveries.clear()
        self.access_logs.clear()
        self._trails.forget_all()
        self._rule_states.forget_all()
        self._identities.forget_all()
        with self._lock:
            self._selector_kinds = {}
        self._selector_kinds_file.remove()
        self._schedule_prune(labtime.live_now())

    def close(self) -> None:
        trailevents.detach(self._service_event)
        self._closing.set()
        timers.cancel_owner(OWNER)
