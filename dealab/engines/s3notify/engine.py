"""The S3 notification engine: S3 event notifications delivered to SQS queues, SNS topics and Lambda functions.

The backend stores a bucket's notification configuration; its own delivery (straight into its SQS and SNS
backends, Lambda only through Docker) is switched off (motohooks) in favour of this engine's, which sends
through the gateway like any AWS service would: SendMessage, Publish, and an asynchronous Invoke. So every
delivery is journaled on its own and no event arrives twice.

- PutBucketNotificationConfiguration is refused as S3 refuses it: an unknown event type, two configurations
  that could match one event (overlapping prefixes and suffixes for a shared event type), a destination that
  does not exist ("Unable to validate the following destination configurations"). Once stored, each SQS and
  SNS destination gets the s3:TestEvent message.
- After an object operation succeeds, each configuration whose event type (wildcards included) and key
  filter match gets one record in the shape AWS documents (eventVersion 2.1, eventTime on the lab clock, the
  key URL-encoded, size, eTag, versionId, sequencer, configurationId).
- Deletions the clock engine makes when lifecycle rules expire objects (DeleteObjects sent as the clock
  engine) raise s3:LifecycleExpiration:Delete / :DeleteMarkerCreated instead of s3:ObjectRemoved:*.
- Changes no request carries come as notices from the clock engine (dealab.wire.s3notices): a lifecycle
  transition raises s3:LifecycleTransition (with lifecycleEventData), a restore that finishes on the lab
  clock s3:ObjectRestore:Completed (with glacierEventData); RestoreObject itself raises s3:ObjectRestore:Post.
"""

from __future__ import annotations

import json
import logging
import uuid
from urllib.parse import parse_qs, quote_plus, unquote
from xml.etree import ElementTree

from botocore.exceptions import ClientError

from dealab.engines.s3notify import rules
from dealab.wire import labtime, s3notices
from dealab.wire.engine import ENGINE_HEADER, Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.readcache import ReadCache

log = logging.getLogger("dealab.s3notify")

ACCOUNT_ID = "123456789012"  # the one account every caller of the stack is (moto's default)
# The engine whose DeleteObjects calls are lifecycle expirations (it carries out lifecycle rules).
LIFECYCLE_ENGINE = "clock"
LIFECYCLE_PRINCIPAL = "s3.amazonaws.com"
CONFIGURATION_CHANGES = ("CreateBucket", "DeleteBucket")
# Records of changes no request carries: their event version and the members AWS adds for them
# ("Event message structure": 2.3 for S3 Lifecycle events, glacierEventData on a finished restore).
NOTICE_EVENT_VERSIONS = {s3notices.LIFECYCLE_TRANSITION: "2.3", s3notices.RESTORE_COMPLETED: "2.1"}
NOTICE_DATA = {
    s3notices.LIFECYCLE_TRANSITION: lambda notice: {
        "lifecycleEventData": {"transitionEventData": {"destinationStorageClass": notice.storage_class}}},
    s3notices.RESTORE_COMPLETED: lambda notice: {
        "glacierEventData": {"restoreEventData": {"lifecycleRestorationExpiryTime": _iso(notice.restore_expiry),
                                                  "lifecycleRestoreStorageClass": notice.storage_class}}},
}


def _iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _bucket_and_key(path: str) -> tuple[str, str]:
    bucket, _, key = path.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class S3NotifyEngine(Engine):
    name = "s3notify"
    operations = {
        ("s3", "PutBucketNotificationConfiguration"): "_put_configuration",
        **{("s3", operation): "_object_event" for operation in (*rules.CREATED_EVENTS, *rules.OTHER_OBJECT_EVENTS, *rules.DELETE_OPERATIONS)},
        **{("s3", operation): "_configuration_changed" for operation in CONFIGURATION_CHANGES},
    }

    def __init__(self, context: EngineContext):
        super().__init__(context)
        # bucket → its configurations, read from the backend on first need (the backend keeps them)
        self._configurations: ReadCache[list[rules.Configuration]] = ReadCache()
        self._sequencer = rules.Sequencer()
        s3notices.listen(self._object_notice)

    def reset(self) -> None:
        self._configurations.forget_all()

    def close(self) -> None:
        s3notices.forget(self._object_notice)

    # ---- configuration ---------------------------------------------------------------------------
    def _put_configuration(self, request: AwsRequest) -> AwsResponse:
        bucket, _ = _bucket_and_key(request.path)
        try:
            configurations = rules.parse_request(request.body)
            refusal = rules.event_type_refusal(configurations) or rules.overlap_refusal(configurations)
        except rules.InvalidConfiguration as error:
            refusal = error
        if refusal is not None:
            return AwsResponse.xml_error("InvalidArgument", refusal.message, 400, refusal.value)
        missing = [c.arn for c in configurations if not self._destination_exists(c)]
        if missing:
            return AwsResponse.xml_error("InvalidArgument", "Unable to validate the following destination configurations", 400,
                                         ", ".join(missing))
        response = request.send_on()
        self._configurations.forget(bucket)
        if response.status < 300:
            self._send_test_events(bucket, configurations)
        return response

    def _configuration_changed(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        bucket, _ = _bucket_and_key(request.path)
        self._configurations.forget(bucket)
        return response

    def _destination_exists(self, configuration: rules.Configuration) -> bool:
        parts = configuration.arn.split(":")
        if len(parts) < 6 or parts[2] != configuration.service:
            return False
        region, account, name = parts[3], parts[4], parts[5]
        try:
            if configuration.service == "sqs":
                self.own_client("sqs", region).get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            elif configuration.service == "sns":
                self.own_client("sns", region).get_topic_attributes(TopicArn=configuration.arn)
            else:
                self.own_client("lambda", region).get_function(FunctionName=configuration.arn)
        except ClientError:
            return False
        return True

    def _send_test_events(self, bucket: str, configurations: list[rules.Configuration]) -> None:
        """s3:TestEvent, once to each SQS queue and SNS topic the configuration names."""
        sent = set()
        for configuration in configurations:
            if configuration.service == "lambda" or configuration.arn in sent:
                continue
            sent.add(configuration.arn)
            message = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": _iso(labtime.live_now()), "Bucket": bucket,
                       "RequestId": uuid.uuid4().hex[:16].upper(), "HostId": uuid.uuid4().hex}
            self._deliver(configuration, message)

    def _configurations_of(self, bucket: str) -> list[rules.Configuration]:
        def read() -> list[rules.Configuration]:
            try:
                return rules.from_answer(self.own_client("s3").get_bucket_notification_configuration(Bucket=bucket))
            except ClientError:
                return []
        return self._configurations.get(bucket, read)

    # ---- events ----------------------------------------------------------------------------------
    def _object_event(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        bucket, key = _bucket_and_key(request.path)
        if response.status >= 300 or not bucket or not self._configurations_of(bucket):
            return response
        if request.operation == "CompleteMultipartUpload" and b"<Error>" in response.read()[:512]:
            return response  # S3 reports a failed completion inside a 200
        lifecycle = request.headers.get(ENGINE_HEADER) == LIFECYCLE_ENGINE
        if request.operation in rules.DELETE_OPERATIONS:
            for event_name, obj in self._deletions(request, response, bucket, lifecycle):
                self._notify(request, response, bucket, event_name, obj, lifecycle)
            return response
        event_name = rules.CREATED_EVENTS.get(request.operation) or rules.OTHER_OBJECT_EVENTS[request.operation]
        if any(c.matches(event_name, key) for c in self._configurations_of(bucket)):
            obj = self._object_fields(bucket, key, response.header("x-amz-version-id") or _version_query(request))
            if obj is not None:
                self._notify(request, response, bucket, event_name, obj, lifecycle)
        return response

    def _object_fields(self, bucket: str, key: str, version_id: str | None) -> dict | None:
        try:
            head = self.own_client("s3").head_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
        except ClientError:
            return None  # gone again already; S3 would have read it at once
        obj = {"key": key, "size": head["ContentLength"], "eTag": head["ETag"].strip('"')}
        if head.get("VersionId") and head["VersionId"] != "null":
            obj["versionId"] = head["VersionId"]
        return obj

    def _deletions(self, request: AwsRequest, response: AwsResponse, bucket: str, lifecycle: bool) -> list[tuple[str, dict]]:
        """(event name, object fields) for each object a DeleteObject(s) removed."""
        group = "LifecycleExpiration" if lifecycle else "ObjectRemoved"
        if request.operation == "DeleteObject":
            _, key = _bucket_and_key(request.path)
            asked_version = _version_query(request)
            marker_made = response.header("x-amz-delete-marker") == "true" and not asked_version
            return [(f"{group}:{'DeleteMarkerCreated' if marker_made else 'Delete'}",
                     _deleted_fields(key, response.header("x-amz-version-id") or asked_version))]
        answer = ElementTree.fromstring(response.read())
        deleted = [{_local(child.tag): child.text or "" for child in element} for element in answer if _local(element.tag) == "Deleted"]
        if not deleted:  # Quiet mode lists only errors: what was asked, less what failed
            deleted = self._quiet_deletions(request, answer, bucket)
        found = []
        for entry in deleted:
            marker_made = entry.get("DeleteMarker") == "true" and not entry.get("VersionId")
            version = entry.get("DeleteMarkerVersionId") if marker_made else entry.get("VersionId")
            found.append((f"{group}:{'DeleteMarkerCreated' if marker_made else 'Delete'}", _deleted_fields(entry.get("Key", ""), version)))
        return found

    def _quiet_deletions(self, request: AwsRequest, answer, bucket: str) -> list[dict]:
        failed = {rules.text_of(element, "Key") for element in answer if _local(element.tag) == "Error"}
        asked = ElementTree.fromstring(request.body)
        versioning = None
        entries = []
        for element in asked:
            if _local(element.tag) != "Object" or rules.text_of(element, "Key") in failed:
                continue
            entry = {"Key": rules.text_of(element, "Key"), "VersionId": rules.text_of(element, "VersionId")}
            if not entry["VersionId"]:
                if versioning is None:
                    versioning = self.own_client("s3").get_bucket_versioning(Bucket=bucket).get("Status", "")
                entry["DeleteMarker"] = "true" if versioning else ""
            entries.append(entry)
        return entries

    def _notify(self, request: AwsRequest, response: AwsResponse, bucket: str, event_name: str, obj: dict, lifecycle: bool) -> None:
        self._send_records(bucket, event_name, obj, {
            "eventVersion": "2.1", "awsRegion": request.region, "eventTime": _iso(labtime.live_now()),
            "userIdentity": {"principalId": LIFECYCLE_PRINCIPAL if lifecycle else f"AWS:{ACCOUNT_ID}"},
            "requestParameters": {"sourceIPAddress": request.source_ip},
            "responseElements": {"x-amz-request-id": response.header("x-amz-request-id") or uuid.uuid4().hex[:16].upper(),
                                 "x-amz-id-2": response.header("x-amz-id-2") or uuid.uuid4().hex},
        })

    def _object_notice(self, notice: s3notices.ObjectNotice) -> None:
        """A change no request carries (a lifecycle transition, a finished restore), raised as S3 raises it: by S3
        itself, at the notice's lab moment, with the operation's own data (eventVersion 2.3 for lifecycle)."""
        obj = {"key": notice.key, "size": notice.size, "eTag": notice.etag}
        if notice.version_id != "null":
            obj["versionId"] = notice.version_id
        self._send_records(notice.bucket, notice.kind, obj, {
            "eventVersion": NOTICE_EVENT_VERSIONS[notice.kind], "awsRegion": notice.region, "eventTime": _iso(notice.at),
            "userIdentity": {"principalId": LIFECYCLE_PRINCIPAL}, "requestParameters": {"sourceIPAddress": LIFECYCLE_PRINCIPAL},
            "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
            **NOTICE_DATA[notice.kind](notice),
        })

    def _send_records(self, bucket: str, event_name: str, obj: dict, fields: dict) -> None:
        """One record to each configuration of the bucket that takes the event; `fields`: the record's members
        besides eventSource, eventName and s3."""
        matching = [c for c in self._configurations_of(bucket) if c.matches(event_name, obj["key"])]
        if not matching:
            return
        obj = dict(obj, key=quote_plus(obj["key"], safe="/"), sequencer=self._sequencer.next())
        for configuration in matching:
            record = {
                "eventVersion": fields["eventVersion"], "eventSource": "aws:s3", "eventName": event_name,
                **{name: value for name, value in fields.items() if name != "eventVersion"},
                "s3": {"s3SchemaVersion": "1.0", "configurationId": configuration.id,
                       "bucket": {"name": bucket, "ownerIdentity": {"principalId": ACCOUNT_ID}, "arn": f"arn:aws:s3:::{bucket}"},
                       "object": obj},
            }
            self._deliver(configuration, {"Records": [record]})

    def _deliver(self, configuration: rules.Configuration, message: dict) -> None:
        """Sends one message as S3 does, asynchronously for the caller: a failed send is logged, never answered."""
        parts = configuration.arn.split(":")
        region, account, name = parts[3], parts[4], parts[5]
        body = json.dumps(message)
        try:
            if configuration.service == "sqs":
                sqs = self.own_client("sqs", region)
                url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
                sqs.send_message(QueueUrl=url, MessageBody=body)
            elif configuration.service == "sns":
                self.own_client("sns", region).publish(TopicArn=configuration.arn, Message=body, Subject="Amazon S3 Notification")
            else:
                self.own_client("lambda", region).invoke(FunctionName=configuration.arn, InvocationType="Event", Payload=body.encode())
        except ClientError as error:
            log.warning("s3notify: event for %s not delivered: %s", configuration.arn, error)


def _version_query(request: AwsRequest) -> str | None:
    return (parse_qs(request.query_string).get("versionId") or [None])[0]


def _deleted_fields(key: str, version_id: str | None) -> dict:
    return {"key": key, **({"versionId": version_id} if version_id and version_id != "null" else {})}

