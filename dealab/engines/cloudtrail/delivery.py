"""Trail log files: records a trail logs wait in the store, and about every 5 minutes of lab time become one
gzipped `{"Records": [...]}` file per region in the trail's bucket, in CloudTrail's key layout. With log file
validation on, an hourly digest file lists each delivered file's SHA-256, chained to the previous digest and
signed (SHA256withRSA) with the stack's own key, as CloudTrail signs with its own.

Pending records are JSON lines per trail (`pending/<trail>.jsonl`), so a record the trail logged survives a
`kill -9` and is delivered after the restart; delivery state (last delivery, errors, the digest chain) is one
JSON document per trail.
"""

from __future__ import annotations

import datetime
import fnmatch
import gzip
import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from dealab.engines.cloudtrail.shapes import ACCOUNT_ID
from dealab.wire.store import JsonFile, JsonLines, child_path, write_atomic

DELIVERY_INTERVAL = datetime.timedelta(minutes=5)
DIGEST_INTERVAL = datetime.timedelta(hours=1)
CLOUDTRAIL_PRINCIPAL = "cloudtrail.amazonaws.com"
SIGNATURE_ALGORITHM = "SHA256withRSA"


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(moment: datetime.datetime) -> float:
    return (moment - datetime.datetime(1970, 1, 1)).total_seconds()


def log_prefix(trail: dict) -> str:
    prefix = trail.get("S3KeyPrefix") or ""
    return f"{prefix}/" if prefix else ""


def log_file_key(trail: dict, region: str, moment: datetime.datetime) -> str:
    return (f"{log_prefix(trail)}AWSLogs/{ACCOUNT_ID}/CloudTrail/{region}/{moment:%Y/%m/%d}/"
            f"{ACCOUNT_ID}_CloudTrail_{region}_{moment:%Y%m%dT%H%MZ}_{secrets.token_hex(8).upper()}.json.gz")


def digest_key(trail: dict, region: str, moment: datetime.datetime) -> str:
    home = trail["TrailARN"].split(":")[3]
    return (f"{log_prefix(trail)}AWSLogs/{ACCOUNT_ID}/CloudTrail-Digest/{region}/{moment:%Y/%m/%d}/"
            f"{ACCOUNT_ID}_CloudTrail-Digest_{region}_{trail['Name']}_{home}_{moment:%Y%m%dT%H%M%SZ}.json.gz")


# ---- the bucket policy CloudTrail needs ------------------------------------------------------------------
def _listed(value) -> list:
    return value if isinstance(value, list) else [value] if value is not None else []


def _grants(statement: dict, action: str, resource: str) -> bool:
    principal = statement.get("Principal")
    services = _listed(principal.get("Service")) if isinstance(principal, dict) else []
    if CLOUDTRAIL_PRINCIPAL not in services and principal != "*" and not (isinstance(principal, dict) and "*" in _listed(principal.get("AWS"))):
        return False
    actions = _listed(statement.get("Action"))
    if not any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in actions):
        return False
    return any(fnmatch.fnmatchcase(resource, pattern) for pattern in _listed(statement.get("Resource")))


def policy_refusal(policy_text: str | None, bucket: str, prefix: str) -> str | None:
    """Why the bucket's policy does not let CloudTrail write the trail's files (None when it does): AWS wants
    s3:GetBucketAcl on the bucket and s3:PutObject on [prefix/]AWSLogs/<account>/* for cloudtrail.amazonaws.com.
    Conditions (aws:SourceArn, s3:x-amz-acl) are not evaluated: CloudTrail's own writes meet the documented ones."""
    try:
        statements = _listed(json.loads(policy_text).get("Statement")) if policy_text else []
    except (ValueError, AttributeError):
        statements = []
    log_object = f"arn:aws:s3:::{bucket}/{prefix}AWSLogs/{ACCOUNT_ID}/{'x' * 8}"
    needs = (("s3:GetBucketAcl", f"arn:aws:s3:::{bucket}"), ("s3:PutObject", log_object))
    for action, resource in needs:
        if any(s.get("Effect") == "Deny" and _grants(s, action, resource) for s in statements if isinstance(s, dict)):
            return f"the policy denies {action} to {CLOUDTRAIL_PRINCIPAL}"
        if not any(s.get("Effect") == "Allow" and _grants(s, action, resource) for s in statements if isinstance(s, dict)):
            return f"the policy does not allow {CLOUDTRAIL_PRINCIPAL} {action} on {resource.replace('x' * 8, '*')}"
    return None


class Deliveries:
    """What each logging trail has yet to deliver, and delivering it."""

    def __init__(self, folder: Path, put_object: Callable[[str, str, bytes, dict], None], bucket_policy: Callable[[str], str | None]):
        self.folder = folder
        self.put_object = put_object
        self.bucket_policy = bucket_policy
        self._lock = threading.Lock()
        self._pending: dict[str, JsonLines] = {}
        self._key_file = folder / "digest-key.pem"
        self._key = None

    # ---- pending records --------------------------------------------------------------------------------
    def add(self, trail_name: str, region: str, record: dict) -> bool:
        """Keeps the record for the trail; True when it is the first one waiting (a delivery is to be scheduled)."""
        with self._lock:
            pending = self._pending.get(trail_name)
            if pending is None:
                pending = self._pending[trail_name] = JsonLines(child_path(self.folder / "pending", trail_name, ".jsonl"))
            first = not pending.path.exists() or pending.path.stat().st_size == 0
            pending.append([{"region": region, "record": record}])
            return first

    def waiting(self) -> list[str]:
        """Trails with records waiting (for the schedule after a restart)."""
        return sorted(path.stem for path in (self.folder / "pending").glob("*.jsonl") if path.stat().st_size)

    def _take(self, trail_name: str) -> list[dict]:
        with self._lock:
            pending = self._pending.pop(trail_name, None) or JsonLines(child_path(self.folder / "pending", trail_name, ".jsonl"))
            lines = list(pending.read())
            pending.remove()
            return lines

    def clear(self) -> None:
        """Forgets every trail's waiting records and delivery state (the digest signing key stays)."""
        with self._lock:
            for pending in self._pending.values():
                pending.close()
            self._pending.clear()
        for kind in ("pending", "status"):
            for path in (self.folder / kind).glob("*"):
                path.unlink(missing_ok=True)

    def forget(self, trail_name: str) -> None:
        self._take(trail_name)
        JsonFile(child_path(self.folder / "status", trail_name, ".json")).remove()

    # ---- delivery -----------------------------------------------------------------------------------------
    def deliver(self, trail: dict | None, trail_name: str, at: datetime.datetime) -> bool:
        """Writes what the trail has waiting; True when a digest is due to be scheduled for it."""
        lines = self._take(trail_name)
        if not lines or trail is None:
            return False  # a deleted trail's records go with it
        status_file = JsonFile(child_path(self.folder / "status", trail_name, ".json"))
        status = status_file.load({})
        status["LatestDeliveryAttemptTime"] = _iso(at)
        bucket, prefix = trail["S3BucketName"], log_prefix(trail)
        refusal = policy_refusal(self.bucket_policy(bucket), bucket, prefix)
        if refusal is not None:
            # AWS shows AccessDenied and keeps trying; the records of a failed attempt are not kept here
            status["LatestDeliveryError"] = "AccessDenied"
            status["LatestDeliveryErrorDetail"] = refusal
            status_file.save(status)
            return False
        by_region: dict[str, list[dict]] = {}
        for line in lines:
            by_region.setdefault(line["region"], []).append(line["record"])
        digest_due = False
        for region, records in sorted(by_region.items()):
            key = log_file_key(trail, region, at)
            content = json.dumps({"Records": records}, separators=(",", ":")).encode()
            self.put_object(bucket, key, gzip.compress(content, mtime=0), {})
            if trail.get("LogFileValidationEnabled"):
                times = sorted(record["eventTime"] for record in records)
                digest = status.setdefault("digest", {}).setdefault(region, {"files": []})
                digest["files"].append({"s3Bucket": bucket, "s3Object": key, "hashValue": hashlib.sha256(content).hexdigest(),
                                        "hashAlgorithm": "SHA-256", "newestEventTime": times[-1], "oldestEventTime": times[0]})
                digest.setdefault("start", _iso(at - DELIVERY_INTERVAL))
                digest_due = True
        status.update(LatestDeliveryTime=_epoch(at), LatestDeliveryAttemptSucceeded=_iso(at), LatestDeliveryError=None)
        status.pop("LatestDeliveryErrorDetail", None)
        status_file.save(status)
        return digest_due

    def deliver_digest(self, trail: dict | None, trail_name: str, at: datetime.datetime) -> None:
        status_file = JsonFile(child_path(self.folder / "status", trail_name, ".json"))
        status = status_file.load({})
        if trail is None or not trail.get("LogFileValidationEnabled"):
            return
        bucket = trail["S3BucketName"]
        for region, digest in sorted((status.get("digest") or {}).items()):
            if not digest.get("files"):
                continue
            previous = (status.get("previous_digest") or {}).get(region) or {}
            key = digest_key(trail, region, at)
            files = digest["files"]
            document = {
                "awsAccountId": ACCOUNT_ID, "digestStartTime": digest["start"], "digestEndTime": _iso(at),
                "digestS3Bucket": bucket, "digestS3Object": key, "digestPublicKeyFingerprint": self.public_key_fingerprint(),
                "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
                "newestEventTime": max(item["newestEventTime"] for item in files), "oldestEventTime": min(item["oldestEventTime"] for item in files),
                "previousDigestS3Bucket": previous.get("bucket"), "previousDigestS3Object": previous.get("key"),
                "previousDigestHashValue": previous.get("hash"), "previousDigestHashAlgorithm": "SHA-256" if previous else None,
                "previousDigestSignature": previous.get("signature"), "logFiles": files,
            }
            content = json.dumps(document, separators=(",", ":")).encode()
            content_hash = hashlib.sha256(content).hexdigest()
            # the string CloudTrail signs: end time, S3 path, the digest's hash, the previous digest's signature
            signed = f"{_iso(at)}\n{bucket}/{key}\n{content_hash}\n{previous.get('signature') or 'null'}".encode()
            signature = self._private_key().sign(signed, padding.PKCS1v15(), hashes.SHA256()).hex()
            self.put_object(bucket, key, gzip.compress(content, mtime=0),
                            {"signature": signature, "signature-algorithm": SIGNATURE_ALGORITHM})
            status.setdefault("previous_digest", {})[region] = {"bucket": bucket, "key": key, "hash": content_hash, "signature": signature}
            status["digest"][region] = {"files": []}
            status["LatestDigestDeliveryTime"] = _epoch(at)
            status["LatestDigestDeliveryError"] = None
        status_file.save(status)

    def status(self, trail_name: str) -> dict:
        return JsonFile(child_path(self.folder / "status", trail_name, ".json")).load({})

    # ---- the digest signing key -----------------------------------------------------------------------
    def _private_key(self):
        with self._lock:
            if self._key is None:
                try:
                    self._key = serialization.load_pem_private_key(self._key_file.read_bytes(), password=None)
                except (FileNotFoundError, ValueError):
                    self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                    write_atomic(self._key_file, self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                         serialization.NoEncryption()))
            return self._key

    def public_key(self) -> bytes:
        """The public key (DER, PKCS#1 RSAPublicKey as ListPublicKeys gives it) that verifies digest signatures."""
        return self._private_key().public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)

    def public_key_fingerprint(self) -> str:
        return hashlib.md5(self.public_key()).hexdigest()
