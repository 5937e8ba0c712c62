"""The S3 access engine: every S3 call passes a bucket's policy denies and Block Public Access first.

The backend stores bucket policies and public access blocks but decides nothing with them. Here Deny
statements are evaluated with their conditions (aws:SecureTransport, s3:x-amz-server-side-encryption,
aws:SourceIp, ...), so a learner's policy can be seen to deny. Allow statements need no evaluation: every
caller of the stack is the account's root, whom identity policies allow already.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote

from dealab.wire.engine import ANY_OPERATION, Engine, EngineContext
from dealab.engines.s3access import policy
from dealab.wire.messages import AwsRequest, AwsResponse

# S3 operations whose IAM action differs from "s3:" + the operation name.
ACTION_FOR_OPERATION = {
    "HeadObject": "s3:GetObject",
    "HeadBucket": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "CopyObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "UploadPartCopy": "s3:PutObject",
    "SelectObjectContent": "s3:GetObject",  # a read like any other: a GetObject deny covers it
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObjects": "s3:DeleteObject",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "PutBucketTagging": "s3:PutBucketTagging",
    "DeleteBucketTagging": "s3:PutBucketTagging",
}
# As on AWS, the bucket owner can always manage the policy itself, so a bad policy cannot lock them out.
OWNER_ALWAYS_ALLOWED = frozenset({"GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"})
PUBLIC_CANNED_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_GROUP_URIS = ("http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
# CreateBucket is not among them: a bucket that does not exist yet has no public access block.
ACL_OPERATIONS = frozenset({"PutBucketAcl", "PutObjectAcl", "PutObject", "CopyObject", "CreateMultipartUpload"})
STATE_CHANGING = frozenset({"PutBucketPolicy", "DeleteBucketPolicy", "PutPublicAccessBlock", "DeletePublicAccessBlock", "DeleteBucket",
                            "PutBucketCors", "DeleteBucketCors", "PutBucketAcl"})
# Operations that also read another object, named by x-amz-copy-source: its bucket's policy must allow the read.
COPY_OPERATIONS = frozenset({"CopyObject", "UploadPartCopy"})
# What an anonymous caller needs from a bucket or object ACL grant to AllUsers, per action.
ANONYMOUS_ACL_PERMISSION = {"s3:GetObject": "READ", "s3:ListBucket": "READ", "s3:PutObject": "WRITE"}
REQUEST_CONDITION_HEADERS = (
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-acl",
    "x-amz-storage-class",
    "x-amz-copy-source",
)
ANONYMOUS_AUTHORIZATION = "AWS4-HMAC-SHA256 Credential=anonymous/20000101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=anonymous"
_KEY_IN_DELETE = re.compile(rb"<Key>(.*?)</Key>", re.S)


class S3AccessEngine(Engine):
    name = "s3access"
    operations = {("s3", ANY_OPERATION): "_authorize"}
    passes_engine_calls = True  # engines read and write with the account's own keys, as AWS's services do

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self._policies: dict[str, list[policy.Statement] | None] = {}
        self._blocks: dict[str, dict] = {}
        self._cors: dict[str, list[dict]] = {}
        self._lock = threading.Lock()

    def _authorize(self, request: AwsRequest) -> AwsResponse:
        bucket, key = _bucket_and_key(request.path)
        if not bucket:
            return self._pass(request, bucket)
        refusal = (self._public_access_refusal(request, bucket) or self._policy_refusal(request, bucket, key)
                   or self._copy_source_refusal(request))
        if refusal is None and "Authorization" not in request.headers and "Signature=" not in request.query_string:
            # An unsigned request got here only because the door found it public (allows_anonymous). The
            # backend's own check would refuse it (its bucket policy evaluation is switched off in favour of
            # this engine's), so it goes on as the caller the backend expects; moto verifies no signature.
            request.headers["Authorization"] = ANONYMOUS_AUTHORIZATION
        return refusal or self._pass(request, bucket)

    def _pass(self, request: AwsRequest, bucket: str) -> AwsResponse:
        response = request.send_on()
        if bucket and request.operation in STATE_CHANGING and response.status < 300:
            with self._lock:
                self._policies.pop(bucket, None)
                self._blocks.pop(bucket, None)
                self._cors.pop(bucket, None)
        return response

    def _policy_refusal(self, request: AwsRequest, bucket: str, key: str) -> AwsResponse | None:
        if request.operation in OWNER_ALWAYS_ALLOWED or request.operation == "CreateBucket":
            return None
        try:
            statements = self._policy(bucket)
        except policy.PolicyError as error:
            return AwsResponse.xml_error("AccessDenied", f"bucket policy of {bucket} cannot be evaluated: {error}", 403)
        if not statements:
            return None
        action = ACTION_FOR_OPERATION.get(request.operation, f"s3:{request.operation}")
        context = _condition_context(request)
        keys = [key] if key else []
        if request.operation == "DeleteObjects":
            keys = [unquote(k.decode()) for k in _KEY_IN_DELETE.findall(request.body)]
        resources = [f"arn:aws:s3:::{bucket}/{k}" for k in keys] or [f"arn:aws:s3:::{bucket}"]
        try:
            for resource in resources:
                if policy.explicit_deny(statements, action, resource, context):
                    return _access_denied(action, resource, "with an explicit deny in a resource-based policy")
        except policy.PolicyError as error:
            return AwsResponse.xml_error("AccessDenied", f"bucket policy of {bucket}: {error}", 403)
        return None

    def _copy_source_refusal(self, request: AwsRequest) -> AwsResponse | None:
        """CopyObject / UploadPartCopy read their source: a deny on reading it refuses the copy, as on AWS."""
        if request.operation not in COPY_OPERATIONS:
            return None
        source = unquote(request.headers.get("x-amz-copy-source", "").partition("?")[0]).lstrip("/")
        bucket, _, key = source.partition("/")
        if not bucket or not key:
            return None
        try:
            statements = self._policy(bucket)
            if statements and policy.explicit_deny(statements, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", _condition_context(request)):
                return _access_denied("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", "with an explicit deny in a resource-based policy")
        except policy.PolicyError as error:
            return AwsResponse.xml_error("AccessDenied", f"bucket policy of {bucket} cannot be evaluated: {error}", 403)
        return None

    # ---- what the door asks: CORS rules and anonymous access ------------------------------------------
    def cors_rules(self, bucket: str) -> list[dict]:
        """The bucket's CORS rules (boto3's CORSRules shape); [] when it has none or does not exist."""
        return self._cached(self._cors, bucket, lambda s3: s3.get_bucket_cors(Bucket=bucket)["CORSRules"], [])

    def allows_anonymous(self, request: AwsRequest) -> bool:
        """Whether S3 would serve this unsigned request: a public Allow in the bucket policy, or a public
        ACL grant, unless Block Public Access says to ignore them. Denies are still checked in handle()."""
        bucket, key = _bucket_and_key(request.path)
        if not bucket:
            return False
        action = ACTION_FOR_OPERATION.get(request.operation, f"s3:{request.operation}")
        resource = f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"
        block = self._block(bucket)
        try:
            statements = self._policy(bucket) or []
        except policy.PolicyError:
            statements = []
        if not block.get("RestrictPublicBuckets"):
            context = _condition_context(request)
            for statement in statements:
                if (statement.effect == "Allow" and policy.is_public([statement]) and statement.covers(action, resource)
                        and statement.conditions_hold(context)):
                    return True
        permission = ANONYMOUS_ACL_PERMISSION.get(action)
        if permission is None or block.get("IgnorePublicAcls"):
            return False
        s3 = self._client()
        try:
            grants = (s3.get_object_acl(Bucket=bucket, Key=key) if key and permission == "READ" else s3.get_bucket_acl(Bucket=bucket))["Grants"]
        except s3.exceptions.ClientError:
            return False
        everyone = PUBLIC_GROUP_URIS[0]
        return any(grant.get("Grantee", {}).get("URI") == everyone and grant.get("Permission") in (permission, "FULL_CONTROL") for grant in grants)

    def _public_access_refusal(self, request: AwsRequest, bucket: str) -> AwsResponse | None:
        if request.operation not in ACL_OPERATIONS and request.operation != "PutBucketPolicy":
            return None
        block = self._block(bucket)
        resource = f"arn:aws:s3:::{bucket}"
        if block.get("BlockPublicAcls") and request.operation in ACL_OPERATIONS and _grants_public_acl(request):
            return _access_denied(f"s3:{request.operation}", resource, "because Block Public Access (BlockPublicAcls) forbids public ACLs")
        if block.get("BlockPublicPolicy") and request.operation == "PutBucketPolicy":
            try:
                public = policy.is_public(policy.parse(request.body.decode("utf-8", "replace")))
            except policy.PolicyError:
                public = False  # the backend answers malformed policies with its own error
            if public:
                return _access_denied("s3:PutBucketPolicy", resource, "because Block Public Access (BlockPublicPolicy) forbids public policies")
        return None

    def _policy(self, bucket: str) -> list[policy.Statement] | None:
        return self._cached(self._policies, bucket, lambda s3: policy.parse(s3.get_bucket_policy(Bucket=bucket)["Policy"]), None)

    def _block(self, bucket: str) -> dict:
        return self._cached(self._blocks, bucket, lambda s3: s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"], {})

    def _cached(self, cache: dict, bucket: str, fetch, absent):
        """A bucket's setting from the cache, else from the backend (`absent` when the bucket has none)."""
        with self._lock:
            if bucket in cache:
                return cache[bucket]
        s3 = self._client()
        try:
            value = fetch(s3)
        except s3.exceptions.ClientError:
            value = absent
        with self._lock:
            cache[bucket] = value
        return value

    def _client(self):
        if not hasattr(self, "_s3"):
            self._s3 = self.context.client("s3", engine=self.name)
        return self._s3

    def reset(self) -> None:
        with self._lock:
            self._policies.clear()
            self._blocks.clear()
            self._cors.clear()


def _bucket_and_key(path: str) -> tuple[str, str]:
    bucket, _, key = path.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


def _condition_context(request: AwsRequest) -> dict[str, str]:
    context = {
        "aws:SecureTransport": "true" if request.secure_transport else "false",
        "aws:SourceIp": request.source_ip,
        "aws:PrincipalAccount": policy.ACCOUNT_ID,
        "aws:PrincipalArn": policy.CALLER_ARN,
    }
    for header in REQUEST_CONDITION_HEADERS:
        value = request.headers.get(header)
        if value is not None:
            context[f"s3:{header}"] = value
    prefix = request.query.get("prefix")
    if prefix:
        context["s3:prefix"] = prefix[0]
    return context


def _grants_public_acl(request: AwsRequest) -> bool:
    if request.headers.get("x-amz-acl", "") in PUBLIC_CANNED_ACLS:
        return True
    grants = " ".join(value for key, value in request.headers.items() if key.lower().startswith("x-amz-grant-"))
    body = request.body.decode("utf-8", "replace") if request.operation in ("PutBucketAcl", "PutObjectAcl") else ""
    return any(uri in grants or uri in body for uri in PUBLIC_GROUP_URIS)


def _access_denied(action: str, resource: str, why: str) -> AwsResponse:
    message = f"User: {policy.CALLER_ARN} is not authorized to perform: {action} on resource: \"{resource}\" {why}"
    return AwsResponse.xml_error("AccessDenied", message, 403, resource)
