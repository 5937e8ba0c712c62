"""The events engine: EventBridge rules and Scheduler schedules executed on the lab clock.

The backend keeps buses, rules, targets and schedules (the control plane, journaled). Here:
- PutEvents is answered by this engine: each entry becomes an event of AWS's shape, the bus's enabled rules
  whose pattern matches (patterns.py) hand it to their targets (targets.py), each through its input
  transform (transform.py) and with its retry policy and dead-letter queue (delivery.py). The backend's own
  PutEvents never runs: it cannot target Lambda and knows no retries.
- PutRule refuses patterns and schedule expressions AWS refuses; TestEventPattern answers by the same matcher.
- Rules with a ScheduleExpression and Scheduler schedules fire through the lab timers (schedules.py): as
  time passes, and in order at each due moment when the clock is moved; a long move fires at most
  CATCH_UP_LIMIT runs per schedule and reports the rest as skipped.
- S3 object operations on a bucket whose notification configuration has EventBridgeConfiguration put
  S3's events on the default bus (s3events.py).
- A rule's target that EventBridge calls with the target's RoleArn (Step Functions, Kinesis, Firehose, a Glue
  workflow: `ROLE_TARGETS`) is called with a session of that role (dealab.wire.rolesessions, service principal
  events.amazonaws.com, the rule as aws:SourceArn), so the role's trust and policies decide; a refusal is the
  delivery's NO_PERMISSIONS failure (retried, then dead-lettered). Targets AWS reaches through their resource
  policy (Lambda, SNS, SQS, CloudWatch Logs, a bus) are called as the engine itself.
- A schedule's target, whatever its kind, is called with a session of the schedule's Target.RoleArn (service
  principal scheduler.amazonaws.com, the schedule as aws:SourceArn), and its dead letter is sent as that role, as
  Scheduler does; an event bus target gets PutEvents as the role. A refusal fails the attempt with the target API's
  error (retried, then dead-lettered with Scheduler's attributes).
What must survive a restart is in the store: each schedule's next due moment and every pending retry.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import threading
import uuid
from urllib.parse import parse_qs, unquote

from botocore.exceptions import ClientError

from dealab.engines.events import patterns, s3events, schedules, targets, transform
from dealab.engines.events.delivery import OWNER, Deliveries
from dealab.wire import labtime, rolesessions, s3notices, serviceevents
from dealab.wire.engine import ENGINE_HEADER, Engine, EngineContext
from dealab.wire.loopback import sign
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.readcache import ReadCache
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

log = logging.getLogger("dealab.events")

# Targets EventBridge calls with the target's RoleArn ("Permissions for targets"); the others' resource policies
# decide.
ROLE_TARGETS = frozenset({"states", "kinesis", "firehose", "glue"})
# Of those, the ones PutTargets refuses without a RoleArn ("RoleArn is required for target <arn>."). A Firehose target
# without one is accepted, as AWS's API reference does not require it, and is called as the engine.
ROLE_REQUIRED_TARGETS = frozenset({"states", "kinesis", "glue"})

ACCOUNT_ID = "123456789012"  # the one account every caller of the stack is (moto's default)
MAX_ENTRIES = 10
STARTUP_RETRY_SECONDS = 0.5
# Scheduler's RetryPolicy defaults equal EventBridge's; a FLEXIBLE window fires at its start, one legal moment of it.
SCHEDULER_GROUP = "default"
CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
ALL_CLOUDTRAIL_MANAGEMENT_EVENTS = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
REQUIRED_TEST_EVENT_FIELDS = ("id", "account", "source", "time", "region", "detail-type")


class EventsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _role_required(target_arn: str) -> bool:
    parts = target_arn.split(":")
    return len(parts) > 2 and parts[2] in ROLE_REQUIRED_TARGETS


def _bus_name(name_or_arn: str | None) -> tuple[str, str | None]:
    """(bus name, region named by an ARN or None)."""
    text = name_or_arn or "default"
    if text.startswith("arn:"):
        parts = text.split(":", 5)
        return parts[5].partition("/")[2], parts[3]
    return text, None


def _event_time(value) -> datetime.datetime:
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).replace(tzinfo=None)
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(datetime.timezone.utc).replace(tzinfo=None)
        except ValueError:
            pass
    return labtime.live_now()


def _rule_takes(rule: dict, event: dict) -> bool:
    """Whether the rule's State lets the event reach its pattern: CloudTrail's read-only management events reach
    only rules set to ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS, which take every other event as ENABLED does."""
    state = rule.get("State")
    if state == ALL_CLOUDTRAIL_MANAGEMENT_EVENTS:
        return True
    detail = event.get("detail") or {}
    read_only_management = (event.get("detail-type") == CLOUDTRAIL_DETAIL_TYPE and detail.get("readOnly") is True
                            and detail.get("managementEvent") is not False)
    return state == "ENABLED" and not read_only_management


def _rule_matches(rule: dict, event: dict) -> bool:
    return _rule_takes(rule, event) and bool(rule.get("EventPattern")) and patterns.matches(rule["EventPattern"], event)


class EventsEngine(Engine):
    name = "events"
    operations = {
        ("events", "PutEvents"): "_put_events",
        ("events", "TestEventPattern"): "_test_event_pattern",
        ("events", "PutRule"): "_put_rule",
        ("events", "DeleteRule"): "_rule_changed",
        ("events", "EnableRule"): "_rule_changed",
        ("events", "DisableRule"): "_rule_changed",
        ("events", "PutTargets"): "_put_targets",
        ("events", "RemoveTargets"): "_rule_changed",
        ("events", "DeleteEventBus"): "_rule_changed",
        ("events", "CreateArchive"): "_refuse_archives",
        ("events", "StartReplay"): "_refuse_archives",
        ("scheduler", "CreateSchedule"): "_put_schedule",
        ("scheduler", "UpdateSchedule"): "_put_schedule",
        ("scheduler", "DeleteSchedule"): "_delete_schedule",
        ("scheduler", "DeleteScheduleGroup"): "_delete_schedule_group",
        **{("s3", operation): "_s3_object_event" for operation in s3events.S3_EVENTS},
        **{("s3", operation): "_s3_configuration_changed" for operation in s3events.CONFIGURATION_CHANGES},
        ("s3", "GetBucketNotificationConfiguration"): "_s3_configuration_read",
    }

    def __init__(self, context: EngineContext):
        super().__init__(context)
        folder = context.state_dir / self.name
        self._lock = threading.RLock()
        self._rules: ReadCache[list[dict]] = ReadCache()  # (region, bus) → its rules with their targets
        # buckets whose notification configuration has EventBridgeConfiguration: moto stores it but its
        # GetBucketNotificationConfiguration leaves it out, so the engine keeps what each Put said
        self._eventbridge_file = JsonFile(folder / "s3_eventbridge.json")
        self._eventbridge_buckets: dict[str, bool] = self._eventbridge_file.load({})
        self._schedules_file = JsonFile(folder / "schedules.json")
        self._schedules: dict[str, dict] = self._schedules_file.load({})
        self.deliveries = Deliveries(folder, self._invoke, self.own_client, self._dead_letter_clients)
        self._sessions = rolesessions.RoleSessions(context, "events.amazonaws.com")
        self._scheduler_sessions = rolesessions.RoleSessions(context, "scheduler.amazonaws.com")
        self._role_clients: dict[tuple[str, str, str, str, str], object] = {}
        self._closing = threading.Event()
        s3notices.listen(self._s3_notice)
        serviceevents.listen(self._takes_service_event)
        threading.Thread(target=self._resume, name="events-resume", daemon=True).start()

    # ---- plumbing ---------------------------------------------------------------------------------
    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        try:
            return handler(request)
        except EventsError as error:
            return AwsResponse.json_error(error.code, error.message, error.status)

    def _resume(self) -> None:
        """Schedules again what the store says is due, then adds schedules the store does not know (made
        before this engine kept one); waits for the gateway to answer first, as timers call through it."""
        while not self._closing.is_set():
            try:
                self.own_client("events").list_event_buses(Limit=1)
                break
            except Exception:
                self._closing.wait(STARTUP_RETRY_SECONDS)
        if self._closing.is_set():
            return
        self.deliveries.resume()
        with self._lock:
            known = dict(self._schedules)
        for key, entry in known.items():
            if entry.get("next"):
                self._arm(key, datetime.datetime.fromisoformat(entry["next"]))
        try:
            self._adopt_unknown_schedules()
        except Exception as error:  # the backend refused a listing: what the store holds still runs
            log.warning("events: schedules not listed at start: %s", error)

    def _adopt_unknown_schedules(self) -> None:
        region = self.context.region
        events = self.own_client("events")
        for rule in events.list_rules(EventBusName="default").get("Rules", []):
            if rule.get("ScheduleExpression") and self._rule_key(region, "default", rule["Name"]) not in self._schedules:
                self._sync_rule(region, "default", rule["Name"])
        scheduler = self.own_client("scheduler")
        for page in scheduler.get_paginator("list_schedules").paginate():
            for summary in page.get("Schedules", []):
                key = self._schedule_key(region, summary.get("GroupName") or SCHEDULER_GROUP, summary["Name"])
                if key not in self._schedules:
                    self._sync_schedule(region, summary.get("GroupName") or SCHEDULER_GROUP, summary["Name"])

    def reset(self) -> None:
        timers.cancel_owner(OWNER)
        self.deliveries.reset()
        self._sessions.forget()
        self._scheduler_sessions.forget()
        with self._lock:
            self._schedules = {}
            self._schedules_file.save(self._schedules)
            self._rules.forget_all()
            self._eventbridge_buckets = {}
            self._eventbridge_file.save(self._eventbridge_buckets)

    def close(self) -> None:
        self._closing.set()
        s3notices.forget(self._s3_notice)
        serviceevents.forget(self._takes_service_event)
        timers.cancel_owner(OWNER)

    # ---- rules ------------------------------------------------------------------------------------
    def _put_rule(self, request: AwsRequest) -> AwsResponse:
        params = request.json
        source = params.get("EventPattern")
        if source is not None:
            try:
                patterns.parse(source)
            except patterns.PatternError as error:
                raise EventsError("InvalidEventPatternException", error.message(source)) from None
        expression = params.get("ScheduleExpression")
        bus, _ = _bus_name(params.get("EventBusName"))
        if expression is not None:
            if bus != "default":
                raise EventsError("ValidationException", "ScheduleExpression is supported only on the default event bus.")
            try:
                schedules.recurrence(expression, labtime.live_now())
            except schedules.ScheduleError:
                raise EventsError("ValidationException", "Parameter ScheduleExpression is not valid.") from None
        if source is None and expression is None:
            raise EventsError("ValidationException", "Parameter(s) EventPattern or ScheduleExpression must be specified.")
        return self._rule_changed(request)

    def _put_targets(self, request: AwsRequest) -> AwsResponse:
        for target in request.json.get("Targets") or []:
            try:
                transform.check_target_input(target)
            except transform.TransformError as error:
                raise EventsError("ValidationException", str(error)) from None
            if _role_required(target.get("Arn", "")) and not target.get("RoleArn"):
                raise EventsError("ValidationException", f"RoleArn is required for target {target.get('Arn')}.")
            if target.get("Arn", "").split(":")[2:3] == ["sqs"] and target["Arn"].endswith(".fifo") and not (target.get("SqsParameters") or {}).get("MessageGroupId"):
                raise EventsError("ValidationException", f"Parameter(s) SqsParameters must be specified for target: {target.get('Id')}.")
        return self._rule_changed(request)

    def _rule_changed(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            bus, arn_region = _bus_name(request.json.get("EventBusName"))
            region = arn_region or request.region
            self._rules.forget_all()
            if request.operation != "DeleteEventBus" and request.json.get("Name"):
                self._sync_rule(region, bus, request.json["Name"])
        return response

    def _refuse_archives(self, request: AwsRequest) -> AwsResponse:
        raise EventsError("OperationDisabledException",
                          "dealab does not archive or replay events: deliver them to a queue, a log group or a bucket (through Firehose) to keep them.")

    def _rules_of(self, region: str, bus: str) -> list[dict]:
        def read() -> list[dict]:
            events = self.own_client("events", region)
            rules = []
            for page in events.get_paginator("list_rules").paginate(EventBusName=bus):
                for rule in page["Rules"]:
                    rule["Targets"] = [target for targets_page in events.get_paginator("list_targets_by_rule").paginate(Rule=rule["Name"], EventBusName=bus)
                                       for target in targets_page["Targets"]]
                    rules.append(rule)
            return rules
        return self._rules.get((region, bus), read)

    # ---- events -----------------------------------------------------------------------------------
    def _put_events(self, request: AwsRequest) -> AwsResponse:
        entries = request.json.get("Entries") or []
        if not entries or len(entries) > MAX_ENTRIES:
            raise EventsError("ValidationException", "1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                              "Member must have length less than or equal to 10 and greater than or equal to 1")
        results, failed = [], 0
        for entry in entries:
            result = self._put_entry(entry, request.region)
            failed += "ErrorCode" in result
            results.append(result)
        return AwsResponse.json({"FailedEntryCount": failed, "Entries": results})

    def _put_entry(self, entry: dict, region: str) -> dict:
        for member in ("Source", "DetailType", "Detail"):
            if not entry.get(member):
                return {"ErrorCode": "InvalidArgument", "ErrorMessage": f"Parameter {member} is not valid. Reason: {member} is a required argument."}
        try:
            detail = json.loads(entry["Detail"])
        except ValueError:
            detail = None
        if not isinstance(detail, dict):
            return {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
        bus, arn_region = _bus_name(entry.get("EventBusName"))
        event = _event(entry, detail, arn_region or region)
        try:
            self.dispatch(event, bus, arn_region or region)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                return {"ErrorCode": "InvalidArgument", "ErrorMessage": f"Event bus {bus} does not exist."}
            raise
        return {"EventId": event["id"]}

    def _takes_service_event(self, region: str, entry: dict) -> bool:
        """Whether a rule on the region's default bus would take a service event's PutEvents entry
        (wire.serviceevents asks before it sends one)."""
        event = _event(entry, json.loads(entry["Detail"]), region)
        return any(_rule_matches(rule, event) for rule in self._rules_of(region, "default"))

    def dispatch(self, event: dict, bus: str, region: str, only_rule: str | None = None) -> int:
        """Hands `event` to every target of every enabled rule on `bus` whose pattern it matches (or of
        `only_rule`, a scheduled rule); returns the number of targets it went to."""
        sent = 0
        at = labtime.live_now()
        for rule in self._rules_of(region, bus):
            if only_rule is not None:
                if rule["Name"] != only_rule:
                    continue
            elif not _rule_matches(rule, event):
                continue
            for target in rule["Targets"]:
                self.deliveries.send(self._rule_delivery(rule, target, event), at)
                sent += 1
        return sent

    def _rule_delivery(self, rule: dict, target: dict, event: dict) -> dict:
        payload = transform.target_input(target, event, rule["Arn"], rule["Name"])
        partition_path = (target.get("KinesisParameters") or {}).get("PartitionKeyPath")
        return {
            "origin_kind": "RULE_ARN", "origin_arn": rule["Arn"], "target_arn": target["Arn"], "region": event["region"],
            "payload": payload, "event": event, "event_id": event["id"],
            "message_group_id": (target.get("SqsParameters") or {}).get("MessageGroupId"),
            "partition_key": transform.path_value_text(event, partition_path) if partition_path else None,
            "retry_policy": target.get("RetryPolicy"), "dead_letter_arn": (target.get("DeadLetterConfig") or {}).get("Arn"),
            "dead_letter_body": json.dumps(event),
            "role_arn": target.get("RoleArn"), "rule_name": rule["Name"],
        }

    def _invoke(self, record: dict) -> None:
        """Delivers one record to its target (delivery.Deliveries calls this for each attempt)."""
        arn = record["target_arn"]
        if targets.universal_action(arn):
            return targets.invoke_universal(self._client_for(record, None), arn, record["payload"], record["region"])
        parsed = targets.Arn.parse(arn)
        if parsed.service == "events" and parsed.resource.startswith("event-bus/"):
            if _is_scheduled(record):
                return self._scheduled_to_bus(record, parsed)
            return self._to_bus(record, parsed)
        if targets.is_glue_workflow(parsed):
            return self._to_glue_workflow(record, parsed)
        timestamp = _event_time(record["event"]["time"]) if record.get("event") else labtime.live_now()
        options = targets.Options(record["event_id"], record.get("message_group_id"), record.get("partition_key"),
                                  {"timestamp_ms": int((timestamp - labtime.EPOCH).total_seconds() * 1000)}, self.own_client)
        targets.invoke(self._client_for(record, parsed), arn, record["payload"], options)

    def _client_for(self, record: dict, arn: targets.Arn | None):
        """(service, region) → the client a target is called with: its role's session's, or the engine's own. Scheduler
        calls every target with the schedule's role; EventBridge only the ROLE_TARGETS kinds (`arn` None: a universal
        target)."""
        role = record.get("role_arn")
        scheduled = _is_scheduled(record)
        if not role or not (scheduled or (arn is not None and arn.service in ROLE_TARGETS)):
            return self.own_client
        sessions, who = (self._scheduler_sessions, "EventBridge Scheduler") if scheduled else (self._sessions, "EventBridge")
        session = _session_name(record)

        def refused(refusal: rolesessions.Refused) -> Exception:
            return targets.DeliveryFailure("NO_PERMISSIONS", f"{record['target_arn']}: {who} cannot assume {role}: {refusal.message}")

        def client_for(service: str, region: str):
            key = (sessions.service, service, region, role, session)
            with self._lock:
                if key not in self._role_clients:
                    self._role_clients[key] = sessions.client(service, role, session, region, source_arn=record["origin_arn"],
                                                              on_refusal=refused, engine=self.name)
                return self._role_clients[key]
        return client_for

    def _dead_letter_clients(self, record: dict):
        """The clients a dead letter is sent with: the schedule's role (Scheduler sends it so), else the engine's own."""
        if _is_scheduled(record) and record.get("role_arn"):
            return self._client_for(record, None)
        return self.own_client

    def _scheduled_to_bus(self, record: dict, arn: targets.Arn) -> None:
        """A schedule's event bus target: PutEvents as the schedule's role, with its EventBridgeParameters."""
        parameters = record.get("eventbridge_parameters") or {}
        try:
            detail = json.loads(record["payload"] or "{}")
        except ValueError:
            detail = None
        entry = {"Source": parameters.get("Source", "aws.scheduler"), "DetailType": parameters.get("DetailType", "Scheduled Event"),
                 "Detail": json.dumps(detail if isinstance(detail, dict) else {}), "Resources": [record["origin_arn"]],
                 "EventBusName": record["target_arn"]}
        try:
            answer = self._client_for(record, arn)("events", arn.region).put_events(Entries=[entry])
        except ClientError as error:
            raise targets.failure_of(error.response["Error"]["Code"], error.response["Error"].get("Message", ""), record["target_arn"]) from None
        failed = answer["Entries"][0] if answer.get("FailedEntryCount") else None
        if failed:
            raise targets.failure_of(failed.get("ErrorCode", "InternalException"), failed.get("ErrorMessage", ""), record["target_arn"])

    def _to_bus(self, record: dict, arn: targets.Arn) -> None:
        bus = arn.resource.partition("/")[2]
        event = dict(record["event"])
        try:
            self.dispatch(event, bus, arn.region)
        except ClientError as error:
            raise targets.DeliveryFailure("RESOURCE_NOT_FOUND" if "NotFound" in error.response["Error"]["Code"] else "SDK_CLIENT_ERROR",
                                          f"{record['target_arn']}: {error.response['Error'].get('Message')}") from None

    def _to_glue_workflow(self, record: dict, arn: targets.Arn) -> None:
        """Glue's NotifyEvent, as EventBridge calls it for a workflow target: in no SDK, so it is sent as a raw
        signed request through the loopback (the same gateway and engines as any call)."""
        url = self.context.endpoint_url.rstrip("/") + "/"
        body = json.dumps({"Name": arn.resource.partition("/")[2], "EventId": record["event_id"], "Event": record["payload"]}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSGlue.NotifyEvent"}
        keys = None
        if record.get("role_arn"):  # sent as the target's role (a record from before roles were used has none)
            try:
                found = self._sessions.credentials(record["role_arn"], _session_name(record), record["origin_arn"])
            except rolesessions.Refused as refusal:
                raise targets.DeliveryFailure("NO_PERMISSIONS", f"{record['target_arn']}: EventBridge cannot assume "
                                                                f"{record['role_arn']}: {refusal.message}") from None
            keys = None if found is None else (found.access_key, found.secret_key, found.token)
        if keys is None:
            headers[ENGINE_HEADER] = self.name
        answer = self.context.loopback.dispatch("POST", url, sign("POST", url, headers, body, "glue", arn.region, keys), body)
        if answer.status >= 300:
            try:
                error = json.loads(answer.body or b"{}")
            except ValueError:
                error = {}
            code = str(error.get("__type", f"HTTP{answer.status}")).rpartition("#")[2]
            raise targets.failure_of(code, error.get("message") or error.get("Message") or code, record["target_arn"])

    def _test_event_pattern(self, request: AwsRequest) -> AwsResponse:
        source = request.json.get("EventPattern", "")
        try:
            test = patterns.parse(source)
        except patterns.PatternError as error:
            raise EventsError("InvalidEventPatternException", error.message(source)) from None
        try:
            event = json.loads(request.json.get("Event", ""))
        except ValueError:
            event = None
        if not isinstance(event, dict) or any(field not in event for field in REQUIRED_TEST_EVENT_FIELDS):
            raise EventsError("InvalidEventPatternException" if event is None else "ValidationException",
                              f"Parameter Event is not valid. Reason: an event needs the fields {', '.join(REQUIRED_TEST_EVENT_FIELDS)}")
        return AwsResponse.json({"Result": test(event)})

    # ---- schedules on the lab clock ------------------------------------------------------------------
    @staticmethod
    def _rule_key(region: str, bus: str, name: str) -> str:
        return f"rule/{region}/{bus}/{name}"

    @staticmethod
    def _schedule_key(region: str, group: str, name: str) -> str:
        return f"schedule/{region}/{group}/{name}"

    def _arm(self, key: str, due: datetime.datetime) -> None:
        timers.schedule(OWNER, key, due, lambda at: self._fire(key, at))

    def _save_schedule(self, key: str, entry: dict | None) -> None:
        with self._lock:
            if entry is None:
                self._schedules.pop(key, None)
            else:
                self._schedules[key] = entry
            self._schedules_file.save(self._schedules)
        if entry is None or not entry.get("next"):
            timers.cancel(OWNER, key)
        else:
            self._arm(key, datetime.datetime.fromisoformat(entry["next"]))

    def _sync_rule(self, region: str, bus: str, name: str) -> None:
        """Brings the rule's schedule in line with the backend: armed when scheduled and enabled."""
        key = self._rule_key(region, bus, name)
        try:
            rule = self.own_client("events", region).describe_rule(Name=name, EventBusName=bus)
        except ClientError:
            rule = None  # deleted
        expression = (rule or {}).get("ScheduleExpression")
        if not expression or rule.get("State") != "ENABLED":
            self._save_schedule(key, None)
            return
        now = labtime.live_now()
        with self._lock:
            known = self._schedules.get(key)
        if known and known["expression"] == expression:
            return  # same schedule: its next due moment stands
        recurrence = schedules.recurrence(expression, now)
        due = recurrence.next_after(now)
        self._save_schedule(key, {"kind": "rule", "region": region, "bus": bus, "name": name, "arn": rule["Arn"],
                                  "expression": expression, "anchor": now.isoformat(), "next": due.isoformat() if due else None})

    def _sync_schedule(self, region: str, group: str, name: str) -> None:
        key = self._schedule_key(region, group, name)
        try:
            schedule = self.own_client("scheduler", region).get_schedule(Name=name, GroupName=group)
        except ClientError:
            schedule = None
        if not schedule or schedule.get("State", "ENABLED") != "ENABLED":
            self._save_schedule(key, None)
            return
        now = labtime.live_now()
        recurrence = self._schedule_recurrence(schedule, now)
        due = recurrence.next_after(now)
        window = (schedule.get("FlexibleTimeWindow") or {})
        self._save_schedule(key, {"kind": "schedule", "region": region, "group": group, "name": name, "arn": schedule["Arn"],
                                  "expression": schedule["ScheduleExpression"], "timezone": schedule.get("ScheduleExpressionTimezone"),
                                  "anchor": now.isoformat(), "start": _naive_text(schedule.get("StartDate")), "end": _naive_text(schedule.get("EndDate")),
                                  "window": window.get("Mode", "OFF"), "next": due.isoformat() if due else None})

    @staticmethod
    def _schedule_recurrence(schedule: dict, anchor: datetime.datetime):
        start, end = _naive(schedule.get("StartDate")), _naive(schedule.get("EndDate"))
        inner = schedules.recurrence(schedule["ScheduleExpression"], start or anchor, schedule.get("ScheduleExpressionTimezone"), one_time=True)
        return inner if isinstance(inner, schedules.At) else schedules.Window(inner, start, end)

    def _entry_recurrence(self, entry: dict):
        anchor = datetime.datetime.fromisoformat(entry["anchor"])
        if entry["kind"] == "rule":
            return schedules.recurrence(entry["expression"], anchor)
        return self._schedule_recurrence({"ScheduleExpression": entry["expression"], "ScheduleExpressionTimezone": entry.get("timezone"),
                                          "StartDate": entry.get("start"), "EndDate": entry.get("end")}, anchor)

    def _fire(self, key: str, due: datetime.datetime) -> None:
        """A schedule's occurrence at lab moment `due`: invokes it (or skips it, catching up on a long
        move), then arms the next one."""
        with self._lock:
            entry = self._schedules.get(key)
        if entry is None:
            return
        recurrence = self._entry_recurrence(entry)
        target = _naive(timers.move_target()) or labtime.live_now()  # the clock engine's target is aware
        skipped, fire_at = schedules.catch_up(recurrence, due, max(target, due))
        if skipped:
            timers.note_skipped(OWNER, key, skipped)
            self._save_schedule(key, {**entry, "next": fire_at.isoformat() if fire_at else None})
            if fire_at is None:
                self._completed(entry)
            return
        try:
            if entry["kind"] == "rule":
                self._fire_rule(entry, due)
            else:
                self._fire_schedule(entry, due)
        except Exception:  # a backend that refuses a listing: the schedule goes on to its next occurrence
            log.exception("events: %s at %s failed", key, due)
        following = recurrence.next_after(due)
        with self._lock:
            if key not in self._schedules:  # deleted while it fired
                return
        self._save_schedule(key, {**entry, "next": following.isoformat() if following else None})
        if following is None:
            self._completed(entry)

    def _fire_rule(self, entry: dict, due: datetime.datetime) -> None:
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": ACCOUNT_ID, "time": _iso(due), "region": entry["region"], "resources": [entry["arn"]], "detail": {}}
        self.dispatch(event, entry["bus"], entry["region"], only_rule=entry["name"])

    def _fire_schedule(self, entry: dict, due: datetime.datetime) -> None:
        try:
            schedule = self.own_client("scheduler", entry["region"]).get_schedule(Name=entry["name"], GroupName=entry["group"])
        except ClientError:
            self._save_schedule(self._schedule_key(entry["region"], entry["group"], entry["name"]), None)
            return
        target = schedule["Target"]
        execution = str(uuid.uuid4())
        payload = target.get("Input") or "{}"
        for placeholder, value in (("<aws.scheduler.schedule-arn>", schedule["Arn"]), ("<aws.scheduler.scheduled-time>", _iso(due)),
                                   ("<aws.scheduler.execution-id>", execution), ("<aws.scheduler.attempt-number>", "1")):
            payload = payload.replace(placeholder, value)
        record = {
            "origin_kind": "SCHEDULE_ARN", "origin_arn": schedule["Arn"], "target_arn": target["Arn"], "region": entry["region"],
            "payload": payload, "event": None, "event_id": execution,
            "message_group_id": (target.get("SqsParameters") or {}).get("MessageGroupId"),
            "partition_key": (target.get("KinesisParameters") or {}).get("PartitionKey"),
            "eventbridge_parameters": target.get("EventBridgeParameters"),
            "retry_policy": target.get("RetryPolicy"), "dead_letter_arn": (target.get("DeadLetterConfig") or {}).get("Arn"),
            "dead_letter_body": payload, "role_arn": target.get("RoleArn"), "schedule_name": entry["name"], "scheduled_time": _iso(due),
        }
        self.deliveries.send(record, due)

    def _completed(self, entry: dict) -> None:
        """A schedule with no occurrence left: a one-time schedule with ActionAfterCompletion DELETE goes."""
        if entry["kind"] != "schedule":
            return
        scheduler = self.own_client("scheduler", entry["region"])
        try:
            schedule = scheduler.get_schedule(Name=entry["name"], GroupName=entry["group"])
            if schedule.get("ActionAfterCompletion") == "DELETE":
                scheduler.delete_schedule(Name=entry["name"], GroupName=entry["group"])
        except ClientError:
            pass  # already gone
        self._save_schedule(self._schedule_key(entry["region"], entry["group"], entry["name"]), None)

    # ---- Scheduler API ------------------------------------------------------------------------------
    def _schedule_identity(self, request: AwsRequest) -> tuple[str, str]:
        name = unquote(request.path.rstrip("/").rpartition("/")[2])
        group = request.json.get("GroupName") or (parse_qs(request.query_string).get("groupName") or [SCHEDULER_GROUP])[0]
        return group, name

    def _put_schedule(self, request: AwsRequest) -> AwsResponse:
        params = request.json
        try:
            self._schedule_recurrence({"ScheduleExpression": params.get("ScheduleExpression", ""),
                                       "ScheduleExpressionTimezone": params.get("ScheduleExpressionTimezone"),
                                       "StartDate": params.get("StartDate"), "EndDate": params.get("EndDate")}, labtime.live_now())
        except schedules.ScheduleError as error:
            raise EventsError("ValidationException", f"Invalid Schedule Expression {params.get('ScheduleExpression')}: {error}") from None
        if not (params.get("Target") or {}).get("RoleArn"):  # required by Scheduler's API (SDKs check it before sending)
            raise EventsError("ValidationException", "1 validation error detected: Value null at 'target.roleArn' failed to satisfy "
                                                     "constraint: Member must not be null")
        target_arn = (params.get("Target") or {}).get("Arn", "")
        if not (targets.supported(target_arn) or targets.universal_action(target_arn)):
            raise EventsError("ValidationException", f"dealab cannot invoke the target {target_arn}: it delivers to Lambda, SQS, SNS, Step Functions, "
                                                     "Kinesis, Firehose, CloudWatch Logs, event buses and aws-sdk universal targets")
        response = request.send_on()
        if response.status < 300:
            group, name = self._schedule_identity(request)
            if request.operation == "UpdateSchedule":
                self._save_schedule(self._schedule_key(request.region, group, name), None)
            self._sync_schedule(request.region, group, name)
        return response

    def _delete_schedule(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            group, name = self._schedule_identity(request)
            self._save_schedule(self._schedule_key(request.region, group, name), None)
        return response

    def _delete_schedule_group(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            group = unquote(request.path.rstrip("/").rpartition("/")[2])
            prefix = f"schedule/{request.region}/{group}/"
            with self._lock:
                keys = [key for key in self._schedules if key.startswith(prefix)]
            for key in keys:
                self._save_schedule(key, None)
        return response

    # ---- S3 → EventBridge -----------------------------------------------------------------------------
    def _s3_configuration_changed(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            bucket, _ = s3events.bucket_and_key(request.path)
            on = request.operation == "PutBucketNotificationConfiguration" and b"<EventBridgeConfiguration" in request.body
            with self._lock:
                self._eventbridge_buckets[bucket] = on
                self._eventbridge_file.save(self._eventbridge_buckets)
        return response

    def _s3_configuration_read(self, request: AwsRequest) -> AwsResponse:
        """The backend's answer with the EventBridgeConfiguration it left out, as S3 shows it once it was put."""
        response = request.send_on()
        bucket, _ = s3events.bucket_and_key(request.path)
        with self._lock:
            on = self._eventbridge_buckets.get(bucket)
        body = response.read()
        if response.status < 300 and on and b"<EventBridgeConfiguration" not in body:
            # moto closes an otherwise empty configuration in its opening tag
            body = re.sub(rb"<NotificationConfiguration([^>]*?)\s*/>", rb"<NotificationConfiguration\1></NotificationConfiguration>", body)
            response.body = body.replace(b"</NotificationConfiguration>", b"<EventBridgeConfiguration></EventBridgeConfiguration></NotificationConfiguration>")
            response.headers = [(name, str(len(response.body)) if name.lower() == "content-length" else value) for name, value in response.headers]
        return response

    def _sends_to_eventbridge(self, bucket: str) -> bool:
        with self._lock:
            known = self._eventbridge_buckets.get(bucket)
        if known is None:  # configured before this engine kept the list: ask a backend that answers it
            try:
                known = "EventBridgeConfiguration" in self.own_client("s3").get_bucket_notification_configuration(Bucket=bucket)
            except ClientError:
                known = False
            with self._lock:
                self._eventbridge_buckets[bucket] = known
        return known

    def _s3_object_event(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        bucket, key = s3events.bucket_and_key(request.path)
        if response.status >= 300 or not bucket or not self._sends_to_eventbridge(bucket):
            return response
        if request.operation == "CompleteMultipartUpload" and b"<Error>" in response.read()[:512]:
            return response  # S3 reports a failed completion inside a 200
        kind = s3events.S3_EVENTS[request.operation]
        if kind.reads_object:
            try:
                head = self.own_client("s3").head_object(Bucket=bucket, Key=key)
            except ClientError:
                return response
            objects = [{"key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"'), "version-id": head.get("VersionId")}]
        else:
            objects = s3events.deleted_objects(request, response)
        for obj in objects:
            obj = {name: value for name, value in obj.items() if value is not None}
            obj["sequencer"] = s3events.sequencer()
            event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": kind.detail_type, "source": "aws.s3", "account": ACCOUNT_ID,
                     "time": _iso(labtime.live_now()), "region": request.region, "resources": [f"arn:aws:s3:::{bucket}"],
                     "detail": s3events.detail(kind, bucket, obj, request, ACCOUNT_ID)}
            try:
                self.dispatch(event, "default", request.region)
            except ClientError as error:  # S3 answered already; the event is lost, as a failed async send is
                log.warning("events: S3 event for s3://%s/%s not delivered: %s", bucket, obj.get("key"), error)
        return response

    def _s3_notice(self, notice: s3notices.ObjectNotice) -> None:
        """A lifecycle transition or a finished restore (from the clock engine) on a bucket that sends to
        EventBridge: S3's event on the default bus, at the notice's lab moment."""
        if not self._sends_to_eventbridge(notice.bucket):
            return
        detail_type, detail = s3events.notice_detail(notice, uuid.uuid4().hex[:16].upper())
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.s3", "account": ACCOUNT_ID,
                 "time": _iso(notice.at), "region": notice.region, "resources": [f"arn:aws:s3:::{notice.bucket}"], "detail": detail}
        try:
            self.dispatch(event, "default", notice.region)
        except ClientError as error:  # as for an object event: the change stands, the event is lost
            log.warning("events: %s of s3://%s/%s not delivered: %s", detail_type, notice.bucket, notice.key, error)


def _event(entry: dict, detail: dict, region: str) -> dict:
    """The event EventBridge makes of a PutEvents entry (its Detail already parsed)."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"], "source": entry["Source"],
        "account": ACCOUNT_ID, "time": _iso(_event_time(entry.get("Time"))), "region": region,
        "resources": entry.get("Resources") or [], "detail": detail,
    }


def _naive(value) -> datetime.datetime | None:
    """A Scheduler date (epoch seconds in the API, a datetime from boto3, ISO text in the store) as naive UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    return _event_time(value)


def _naive_text(value) -> str | None:
    moment = _naive(value)
    return moment.isoformat() if moment else None


def _is_scheduled(record: dict) -> bool:
    """A Scheduler schedule's delivery (a rule's is RULE_ARN)."""
    return record.get("origin_kind") == "SCHEDULE_ARN"


def _session_name(record: dict) -> str:
    """The role session's name, made of the rule's or the schedule's: letters, digits and +=,.@- only, 64 characters at most."""
    name = f"scheduler-{record.get('schedule_name') or 'schedule'}" if _is_scheduled(record) else f"events-{record.get('rule_name') or 'target'}"
    return re.sub(r"[^\w+=,.@-]", "-", name)[:64]
