"""KMS keys as IAM evaluation meets them.

- Which key a request uses: KeyId as a key id, key ARN, alias name or alias ARN (aliases resolved through KMS and
  cached until an alias changes); a Decrypt without KeyId names its key only in the ciphertext, so it is
  authorized on the key the answer names; an S3 write's SSE-KMS key comes from its headers or else the bucket's
  default encryption, an S3 read's from the object's answer headers.
- What S3 needs of the key for the caller (AWS's SSE-KMS permissions): kms:GenerateDataKey to write,
  kms:Decrypt to read, evaluated with kms:ViaService = s3.<region>.amazonaws.com, kms:CallerAccount and the
  encryption context S3 uses (aws:s3:arn).
- Grants: a grant's grantee may use the operations it lists (within its encryption-context constraints),
  whatever the key policy says; read with ListGrants, cached until a grant changes.
- The key policy lockout check of CreateKey and PutKeyPolicy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from dealab.engines.iam.policy import ACCOUNT_ID, Caller

SSE_KMS = "aws:kms"
# S3 operations that make S3 use the object's KMS key for the caller, and the KMS action each needs
S3_WRITES_WITH_KEY = {"PutObject": "kms:GenerateDataKey", "PostObject": "kms:GenerateDataKey", "CopyObject": "kms:GenerateDataKey",
                      "CreateMultipartUpload": "kms:GenerateDataKey"}
S3_READS_WITH_KEY = {"GetObject": "kms:Decrypt"}
# KMS operations whose key may be named by the ciphertext alone
KEY_FROM_ANSWER = frozenset({"Decrypt"})
# successful calls after which a cache here may be stale: (service, operation) → the cache
CHANGES = {("kms", "CreateAlias"): "aliases", ("kms", "DeleteAlias"): "aliases", ("kms", "UpdateAlias"): "aliases",
           ("kms", "CreateGrant"): "grants", ("kms", "RetireGrant"): "grants", ("kms", "RevokeGrant"): "grants",
           ("s3", "PutBucketEncryption"): "bucket_keys", ("s3", "DeleteBucketEncryption"): "bucket_keys",
           ("s3", "DeleteBucket"): "bucket_keys"}
LOCKOUT = "The new key policy will not allow you to update the key policy in the future."


def key_arn(region: str, key_id: str) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{key_id}"


def via_service(service: str, region: str) -> str:
    return f"{service}.{region}.amazonaws.com"


def is_alias(reference: str) -> bool:
    return reference.startswith("alias/") or ":alias/" in reference


def written_key(headers) -> str | None:
    """The key an S3 write names in its SSE headers: a reference, "" for SSE-KMS under the AWS managed key, None when
    the write names no SSE-KMS (the bucket's default encryption decides)."""
    if headers.get("x-amz-server-side-encryption") != SSE_KMS:
        return None
    return headers.get("x-amz-server-side-encryption-aws-kms-key-id", "")


def grant_allows(grants: list[dict], caller: Caller, action: str, encryption_context: dict[str, str]) -> bool:
    """Whether a grant lets `caller` perform `action` (a grant lists KMS operations: kms:Decrypt → Decrypt)."""
    operation = action.partition(":")[2]
    for grant in grants:
        if grant.get("GranteePrincipal") not in caller.names | {caller.arn}:
            continue
        if operation not in grant.get("Operations", []):
            continue
        constraints = grant.get("Constraints") or {}
        equals, subset = constraints.get("EncryptionContextEquals"), constraints.get("EncryptionContextSubset")
        if equals is not None and encryption_context != equals:
            continue
        if subset is not None and any(encryption_context.get(name) != value for name, value in subset.items()):
            continue
        return True
    return False


class KeyLookups:
    """What evaluation reads of KMS and S3 about keys, cached until a call that changes it succeeds."""

    def __init__(self, client: Callable[[str, str], object]):
        self._client = client  # (service, region) → the IAM engine's own client
        self._lock = threading.Lock()
        self._caches: dict[str, dict] = {"aliases": {}, "grants": {}, "bucket_keys": {}}
        # counts changes: a read that began before one is not cached (it may have missed it)
        self._changes = 0

    def key_id(self, region: str, reference: str) -> str | None:
        """The key id behind a reference (None: no such key, for KMS to say so in its own words)."""
        if not reference:
            return None
        if not is_alias(reference):
            return reference.rsplit("/", 1)[-1] if reference.startswith("arn:") else reference

        def describe():
            kms = self._client("kms", region)
            try:
                return kms.describe_key(KeyId=reference)["KeyMetadata"]["KeyId"]
            except kms.exceptions.ClientError:
                return None

        return self._cached("aliases", (region, reference), describe)

    def grants(self, region: str, key_id: str) -> list[dict]:
        def list_grants():
            kms = self._client("kms", region)
            try:
                return [grant for page in kms.get_paginator("list_grants").paginate(KeyId=key_id) for grant in page["Grants"]]
            except kms.exceptions.ClientError:
                return []

        return self._cached("grants", (region, key_id), list_grants)

    def bucket_key(self, region: str, bucket: str) -> str | None:
        """The key reference of the bucket's default SSE-KMS encryption ("" for the AWS managed key), None without."""
        def read():
            s3 = self._client("s3", region)
            try:
                rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
            except s3.exceptions.ClientError:
                return None
            default = next((rule["ApplyServerSideEncryptionByDefault"] for rule in rules if "ApplyServerSideEncryptionByDefault" in rule), {})
            return default.get("KMSMasterKeyID", "") if default.get("SSEAlgorithm") in (SSE_KMS, "aws:kms:dsse") else None

        return self._cached("bucket_keys", bucket, read)

    def observe(self, service: str, operation: str) -> None:
        cache = CHANGES.get((service, operation))
        if cache is not None:
            with self._lock:
                self._caches[cache].clear()
                self._changes += 1

    def forget_all(self) -> None:
        with self._lock:
            for cache in self._caches.values():
                cache.clear()
            self._changes += 1

    def _cached(self, cache: str, key, read):
        with self._lock:
            if key in self._caches[cache]:
                return self._caches[cache][key]
            began = self._changes
        value = read()
        with self._lock:
            if self._changes == began:
                self._caches[cache][key] = value
        return value
