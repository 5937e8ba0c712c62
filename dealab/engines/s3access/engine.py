"""The S3 access engine: Block Public Access enforced, and what the door asks of S3 (CORS rules, whether an
unsigned request is public).

The backend stores public access blocks, CORS rules and bucket policies but decides nothing with them. Bucket
policies are evaluated with every other IAM policy by the IAM engine (dealab.engines.iam), which runs before
this one; this engine reads them only to tell the door whether a policy makes a request public.
"""

from __future__ import annotations


from dealab.wire.engine import ANY_OPERATION, Engine, EngineContext
from dealab.engines.iam import policy, requests
from dealab.engines.s3access import accesspoints
from dealab.engines.iam.actions import S3 as S3_RULES
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.readcache import ReadCache

PUBLIC_CANNED_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_GROUP_URIS = ("http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
# CreateBucket is not among them: a bucket that does not exist yet has no public access block.
ACL_OPERATIONS = frozenset({"PutBucketAcl", "PutObjectAcl", "PutObject", "CopyObject", "CreateMultipartUpload"})
STATE_CHANGING = frozenset({"PutBucketPolicy", "DeleteBucketPolicy", "PutPublicAccessBlock", "DeletePublicAccessBlock", "DeleteBucket",
                            "PutBucketCors", "DeleteBucketCors", "PutBucketAcl"})
# What an anonymous caller needs from a bucket or object ACL grant to AllUsers, per action.
ANONYMOUS_ACL_PERMISSION = {"s3:GetObject": "READ", "s3:ListBucket": "READ", "s3:PutObject": "WRITE"}
ANONYMOUS_AUTHORIZATION = "AWS4-HMAC-SHA256 Credential=anonymous/20000101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=anonymous"


class S3AccessEngine(Engine):
    name = "s3access"
    operations = {("s3", ANY_OPERATION): "_authorize", ("s3control", "CreateAccessPoint"): "_create_access_point",
                  ("s3control", "DeleteAccessPoint"): "_delete_access_point", ("s3control", "PutAccessPointPolicy"): "_put_access_point_policy",
                  ("s3control", "GetAccessPointPolicyStatus"): "_access_point_policy_status"}
    passes_engine_calls = True  # engines read and write with the account's own keys, as AWS's services do

    def __init__(self, context: EngineContext):
        super().__init__(context)
        # bucket → its policy, Block Public Access settings and CORS rules, as the backend holds them
        self._policies: ReadCache[tuple[policy.Statement, ...] | None] = ReadCache()
        self._blocks: ReadCache[dict] = ReadCache()
        self._cors: ReadCache[list[dict]] = ReadCache()

    def _authorize(self, request: AwsRequest) -> AwsResponse:
        bucket, _ = requests.bucket_and_key(request.path)
        if not bucket:
            return self._pass(request, bucket)
        refusal = self._public_access_refusal(request, bucket)
        if refusal is None and "Authorization" not in request.headers and "Signature=" not in request.query_string:
            # An unsigned request got here only because the door found it public (allows_anonymous). The
            # backend's own check would refuse it (its bucket policy evaluation is switched off in favour of
            # this engine's), so it goes on as the caller the backend expects; moto verifies no signature.
            request.headers["Authorization"] = ANONYMOUS_AUTHORIZATION
        return refusal or self._pass(request, bucket)

    def _pass(self, request: AwsRequest, bucket: str) -> AwsResponse:
        response = request.send_on()
        if bucket and request.operation in STATE_CHANGING and response.status < 300:
            for settings in (self._policies, self._blocks, self._cors):
                settings.forget(bucket)
        return response

    # ---- S3 Control's access points (accesspoints.py) ------------------------------------------------
    def _create_access_point(self, request: AwsRequest) -> AwsResponse:
        return accesspoints.create_refusal(request, self.own_client("s3control"), self.own_client("s3")) or request.send_on()

    def _delete_access_point(self, request: AwsRequest) -> AwsResponse:
        return accesspoints.delete_refusal(request, self.own_client("s3control")) or request.send_on()

    def _put_access_point_policy(self, request: AwsRequest) -> AwsResponse:
        return accesspoints.public_policy_refusal(request, self.own_client("s3control")) or request.send_on()

    def _access_point_policy_status(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()  # the backend answers NoSuchAccessPoint(Policy) in AWS's words
        return accesspoints.policy_status(request, self.own_client("s3control")) if response.status < 300 else response

    # ---- what the door asks: CORS rules and anonymous access ------------------------------------------
    def cors_rules(self, bucket: str) -> list[dict]:
        """The bucket's CORS rules (boto3's CORSRules shape); [] when it has none or does not exist."""
        return self._cached(self._cors, bucket, lambda s3: s3.get_bucket_cors(Bucket=bucket)["CORSRules"], [])

    def allows_anonymous(self, request: AwsRequest) -> bool:
        """Whether S3 would serve this unsigned request: a public Allow in the bucket policy, or a public
        ACL grant, unless Block Public Access says to ignore them. Denies are still checked in handle()."""
        bucket, key = requests.bucket_and_key(request.path)
        if not bucket:
            return False
        rule = S3_RULES.get(request.operation)
        if rule is None:
            return False
        action = rule.actions[0]
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
        s3 = self.own_client("s3")
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

    def _policy(self, bucket: str) -> tuple[policy.Statement, ...] | None:
        return self._cached(self._policies, bucket, lambda s3: policy.parse(s3.get_bucket_policy(Bucket=bucket)["Policy"]), None)

    def _block(self, bucket: str) -> dict:
        return self._cached(self._blocks, bucket, lambda s3: s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"], {})

    def _cached(self, cache: ReadCache, bucket: str, fetch, absent):
        """A bucket's setting from the cache, else from the backend (`absent` when the bucket has none)."""
        def read():
            s3 = self.own_client("s3")
            try:
                return fetch(s3)
            except s3.exceptions.ClientError:
                return absent
        return cache.get(bucket, read)

    def reset(self) -> None:
        for settings in (self._policies, self._blocks, self._cors):
            settings.forget_all()


def _condition_context(request: AwsRequest) -> dict[str, list[str]]:
    """What an anonymous request supplies to a public Allow's conditions."""
    params = requests.parameters(request)
    return {"aws:SecureTransport": ["true" if request.secure_transport else "false"], "aws:SourceIp": [request.source_ip],
            **requests.service_keys(request, params)}


def _grants_public_acl(request: AwsRequest) -> bool:
    if request.headers.get("x-amz-acl", "") in PUBLIC_CANNED_ACLS:
        return True
    grants = " ".join(value for key, value in request.headers.items() if key.lower().startswith("x-amz-grant-"))
    body = request.body.decode("utf-8", "replace") if request.operation in ("PutBucketAcl", "PutObjectAcl") else ""
    return any(uri in grants or uri in body for uri in PUBLIC_GROUP_URIS)


def _access_denied(action: str, resource: str, why: str) -> AwsResponse:
    message = f"User: {policy.ROOT_ARN} is not authorized to perform: {action} on resource: \"{resource}\" {why}"
    return AwsResponse.xml_error("AccessDenied", message, 403, resource)
