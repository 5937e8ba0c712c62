"""S3 server access logging: one line per request to a bucket whose logging is enabled, in S3's documented
space-delimited format, delivered every few minutes of lab time to the target bucket under the target prefix,
with the TargetObjectKeyFormat's key layout (SimplePrefix, or PartitionedPrefix by EventTime/DeliveryTime).

moto keeps TargetBucket/TargetPrefix but drops TargetObjectKeyFormat, so each bucket's logging configuration
as PutBucketLogging gave it is kept here (`bucket_logging.json`); pending lines wait in the store per target
bucket (`access-pending/<bucket>.jsonl`) until delivered.
"""

from __future__ import annotations

import datetime
import re
import secrets
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from dealab.engines.cloudtrail.shapes import ACCOUNT_ID
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile, JsonLines, child_path

DELIVERY_INTERVAL = datetime.timedelta(minutes=5)
# The bucket owner's canonical ID as the backend reports it (moto's fixed owner of every bucket).
OWNER_CANONICAL_ID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
# A query sub-resource → the RESOURCE of the operation field REST.<METHOD>.<RESOURCE>, as S3 names it.
SUBRESOURCE_NAMES = {
    "acl": "ACL", "tagging": "TAGGING", "versioning": "VERSIONING", "logging": "LOGGING_STATUS", "policy": "BUCKETPOLICY",
    "cors": "CORS", "lifecycle": "LIFECYCLE", "location": "LOCATION", "notification": "NOTIFICATION", "encryption": "ENCRYPTION",
    "uploads": "UPLOADS", "uploadId": "UPLOAD", "delete": "MULTI_OBJECT_DELETE", "restore": "OBJECT_RESTORE",
    "publicAccessBlock": "PUBLIC_ACCESS_BLOCK", "website": "WEBSITE", "replication": "REPLICATION", "versions": "BUCKETVERSIONS",
    "object-lock": "OBJECT_LOCK_CONFIGURATION", "select": "SELECT", "ownershipControls": "OWNERSHIP_CONTROLS",
    "accelerate": "ACCELERATE", "requestPayment": "REQUEST_PAYMENT", "attributes": "OBJECT_ATTRIBUTES",
}
_NAMESPACE = re.compile(r"\{[^}]*\}")


def parse_logging(body: bytes) -> dict | None:
    """PutBucketLogging's XML as the configuration kept: None when it turns logging off."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    enabled = next((node for node in root.iter() if _NAMESPACE.sub("", node.tag) == "LoggingEnabled"), None)
    if enabled is None:
        return None

    def text(name: str) -> str:
        node = next((n for n in enabled.iter() if _NAMESPACE.sub("", n.tag) == name), None)
        return (node.text or "") if node is not None else ""

    partitioned = next((n for n in enabled.iter() if _NAMESPACE.sub("", n.tag) == "PartitionedPrefix"), None)
    key_format = {"PartitionedPrefix": {"PartitionDateSource": text("PartitionDateSource") or "EventTime"}} if partitioned is not None else {"SimplePrefix": {}}
    return {"TargetBucket": text("TargetBucket"), "TargetPrefix": text("TargetPrefix"), "TargetObjectKeyFormat": key_format}


def operation_name(request: AwsRequest, key: str) -> str:
    query = request.query
    method = request.method
    resource = next((name for sub, name in SUBRESOURCE_NAMES.items() if sub in query), None)
    if resource == "UPLOAD" and method == "PUT":
        resource = "PART"
    if resource is None:
        resource = "OBJECT" if key else "BUCKET"
        if method == "PUT" and key and "x-amz-copy-source" in request.headers:
            method = "COPY"
    return f"REST.{method}.{resource}"


def log_line(request: AwsRequest, response: AwsResponse, bucket: str, key: str, requester: str, error_code: str | None,
             at: datetime.datetime, total_ms: int) -> str:
    authorization = request.headers.get("Authorization", "")
    signed_in_query = "X-Amz-Signature" in request.query or "Signature" in request.query
    signature = "SigV4" if authorization.startswith("AWS4") or "X-Amz-Signature" in request.query else "SigV2" if authorization or signed_in_query else "-"
    auth_type = "AuthHeader" if authorization else "QueryString" if signed_in_query else "-"
    body = response.body if isinstance(response.body, bytes) else b""
    # the object's size: what a write sent (without aws-chunked framing), or what a read answered
    size = (request.headers.get("X-Amz-Decoded-Content-Length") or str(len(request.body)) if request.method in ("PUT", "POST")
            else response.header("Content-Length"))
    target = request.path + (f"?{request.query_string}" if request.query_string else "")
    fields = [
        OWNER_CANONICAL_ID, bucket, at.strftime("[%d/%b/%Y:%H:%M:%S +0000]"), request.source_ip, requester,
        response.header("x-amz-request-id") or secrets.token_hex(8).upper(), operation_name(request, key),
        quote(key, safe="/") if key else "-", f'"{request.method} {target} HTTP/1.1"', str(response.status), error_code or "-",
        str(len(body)) if body else "-", size if key and size else "-", str(total_ms), str(total_ms), '"-"',
        '"' + request.headers.get("User-Agent", "-").replace('"', "'") + '"', response.header("x-amz-version-id") or "-",
        response.header("x-amz-id-2") or secrets.token_urlsafe(48), signature,
        "ECDHE-RSA-AES128-GCM-SHA256" if request.secure_transport else "-", auth_type, request.headers.get("Host", "-"),
        "TLSv1.2" if request.secure_transport else "-", "-", "-",
    ]
    return " ".join(fields)


def requester_of(identity: dict) -> str:
    """The requester field: the IAM principal's ARN, the root's canonical ID, "-" when anonymous."""
    kind = identity.get("type")
    if kind == "Root":
        return OWNER_CANONICAL_ID
    return identity.get("arn") or "-"


class AccessLogs:
    def __init__(self, folder: Path, put_object: Callable[[str, str, bytes, dict], None]):
        self.folder = folder
        self.put_object = put_object
        self._lock = threading.Lock()
        self._configs_file = JsonFile(folder / "bucket_logging.json")
        self._configs: dict[str, dict] = self._configs_file.load({})
        self._pending: dict[str, JsonLines] = {}

    def config(self, bucket: str) -> dict | None:
        return self._configs.get(bucket)

    def configure(self, bucket: str, config: dict | None) -> None:
        with self._lock:
            if config is None:
                self._configs.pop(bucket, None)
            else:
                self._configs[bucket] = config
            self._configs_file.save(self._configs)

    def add(self, source_bucket: str, region: str, line: str, at: datetime.datetime) -> tuple[str, bool] | None:
        """Keeps a line for the source bucket's target; returns (target, first waiting) or None when not logged."""
        config = self._configs.get(source_bucket)
        if config is None:
            return None
        target = config["TargetBucket"]
        with self._lock:
            pending = self._pending.get(target)
            if pending is None:
                pending = self._pending[target] = JsonLines(child_path(self.folder / "access-pending", target, ".jsonl"))
            first = not pending.path.exists() or pending.path.stat().st_size == 0
            pending.append([{"source": source_bucket, "region": region, "at": at.strftime("%Y-%m-%dT%H:%M:%S"), "line": line}])
        return target, first

    def waiting(self) -> list[str]:
        return sorted(path.stem for path in (self.folder / "access-pending").glob("*.jsonl") if path.stat().st_size)

    def deliver(self, target: str, at: datetime.datetime) -> None:
        with self._lock:
            pending = self._pending.pop(target, None) or JsonLines(child_path(self.folder / "access-pending", target, ".jsonl"))
            lines = list(pending.read())
            pending.remove()
        files: dict[str, list[str]] = {}
        for entry in lines:
            config = self._configs.get(entry["source"])
            if config is None or config["TargetBucket"] != target:
                continue  # logging was turned off or moved since: S3 delivers on a best-effort basis
            files.setdefault(self._folder(config, entry, at), []).append(entry["line"])
        for folder, file_lines in sorted(files.items()):
            key = f"{folder}{at:%Y-%m-%d-%H-%M-%S}-{secrets.token_hex(8).upper()}"
            self.put_object(target, key, ("\n".join(file_lines) + "\n").encode(), {})

    @staticmethod
    def _folder(config: dict, entry: dict, at: datetime.datetime) -> str:
        """The key of a log file up to its time stamp: the target prefix, and for PartitionedPrefix the source
        account, region, bucket and date (the event's or the delivery's, as PartitionDateSource says)."""
        prefix = config.get("TargetPrefix", "")
        partitioned = (config.get("TargetObjectKeyFormat") or {}).get("PartitionedPrefix")
        if partitioned is None:
            return prefix
        dated = datetime.datetime.fromisoformat(entry["at"]) if partitioned.get("PartitionDateSource") == "EventTime" else at
        return f"{prefix}{ACCOUNT_ID}/{entry['region']}/{entry['source']}/{dated:%Y/%m/%d}/"

    def clear(self) -> None:
        with self._lock:
            for pending in self._pending.values():
                pending.remove()
            self._pending.clear()
            for path in (self.folder / "access-pending").glob("*.jsonl"):
                path.unlink(missing_ok=True)
            self._configs = {}
            self._configs_file.remove()
