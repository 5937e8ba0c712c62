"""S3 → EventBridge: the events S3 sends to the default bus of a bucket whose notification configuration
has EventBridgeConfiguration, in the shape of AWS's "Amazon S3 events delivered to EventBridge" page.

`S3_EVENTS` maps each S3 operation to its detail-type and reason; the engine emits after the backend has
answered success, one event per object the operation touched.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote
from xml.etree import ElementTree

from dealab.wire import s3notices
from dealab.wire.messages import AwsRequest, AwsResponse


@dataclass(frozen=True)
class S3Event:
    detail_type: str
    reason: str
    reads_object: bool = True  # size and etag come from the object as it now is


S3_EVENTS: dict[str, S3Event] = {
    "PutObject": S3Event("Object Created", "PutObject"),
    "PostObject": S3Event("Object Created", "POST Object"),
    "CopyObject": S3Event("Object Created", "CopyObject"),
    "CompleteMultipartUpload": S3Event("Object Created", "CompleteMultipartUpload"),
    "DeleteObject": S3Event("Object Deleted", "DeleteObject", reads_object=False),
    "DeleteObjects": S3Event("Object Deleted", "DeleteObjects", reads_object=False),
    "RestoreObject": S3Event("Object Restore Initiated", "RestoreObject"),
    "PutObjectTagging": S3Event("Object Tags Added", "PutObjectTagging"),
    "DeleteObjectTagging": S3Event("Object Tags Deleted", "DeleteObjectTagging"),
    "PutObjectAcl": S3Event("Object ACL Updated", "PutObjectAcl"),
}
# Changes no request carries (notices from the clock engine, dealab.wire.s3notices): S3 event name → the
# detail-type S3 puts on the bus and what its detail adds (the requester is S3 itself).
NOTICE_EVENTS: dict[str, tuple[str, Callable[[s3notices.ObjectNotice], dict]]] = {
    s3notices.LIFECYCLE_TRANSITION: ("Object Storage Class Changed", lambda notice: {"destination-storage-class": notice.storage_class}),
    s3notices.RESTORE_COMPLETED: ("Object Restore Completed", lambda notice: {
        "restore-expiry-time": notice.restore_expiry.strftime("%Y-%m-%dT%H:%M:%SZ"), "source-storage-class": notice.storage_class}),
}
S3_PRINCIPAL = "s3.amazonaws.com"
# Operations after which the engine forgets what it knew of a bucket's notification configuration.
CONFIGURATION_CHANGES = frozenset({"PutBucketNotificationConfiguration", "DeleteBucket", "CreateBucket"})
_sequence = itertools.count(1)
_NAMESPACE = re.compile(r"\{[^}]*\}")


def bucket_and_key(path: str) -> tuple[str, str]:
    bucket, _, key = path.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


def sequencer() -> str:
    """S3's sequencer: a hex string that orders the events of one key; here a process-wide counter."""
    return f"{next(_sequence):018X}"


def deleted_objects(request: AwsRequest, response: AwsResponse) -> list[dict]:
    """What a DeleteObject(s) removed: key, version-id, and whether a delete marker was made."""
    if request.operation == "DeleteObject":
        _, key = bucket_and_key(request.path)
        marker = response.header("x-amz-delete-marker") == "true"
        version = response.header("x-amz-version-id")
        return [{"key": key, "version-id": version, "marker": marker}]
    objects = []
    root = ElementTree.fromstring(response.read())
    for element in root:
        if _NAMESPACE.sub("", element.tag) != "Deleted":
            continue
        fields = {_NAMESPACE.sub("", child.tag): child.text for child in element}
        objects.append({"key": fields.get("Key", ""), "marker": fields.get("DeleteMarker") == "true",
                        "version-id": fields.get("DeleteMarkerVersionId") or fields.get("VersionId")})
    return objects


def detail(kind: S3Event, bucket: str, obj: dict, request: AwsRequest, account: str) -> dict:
    body = {"version": "0", "bucket": {"name": bucket}, "object": obj, "request-id": request.headers.get("amz-sdk-invocation-id", "dealab"),
            "requester": account, "source-ip-address": request.source_ip, "reason": kind.reason}
    if kind.detail_type == "Object Deleted":
        body["deletion-type"] = "Delete Marker Created" if obj.pop("marker", False) else "Permanently Deleted"
    return body


def notice_detail(notice: s3notices.ObjectNotice, request_id: str) -> tuple[str, dict]:
    """(detail-type, detail) of the event S3 puts on the bus for a notice."""
    detail_type, extra = NOTICE_EVENTS[notice.kind]
    obj = {"key": notice.key, "size": notice.size, "etag": notice.etag, "sequencer": sequencer()}
    if notice.version_id != "null":
        obj["version-id"] = notice.version_id
    return detail_type, {"version": "0", "bucket": {"name": notice.bucket}, "object": obj, "request-id": request_id,
                         "requester": S3_PRINCIPAL, **extra(notice)}
