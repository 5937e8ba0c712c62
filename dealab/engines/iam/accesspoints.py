"""S3 Access Points, as the IAM engine sees them: which access point an S3 request goes through, the bucket it
reaches, and what its authorization adds.

A request names an access point by its alias in the bucket's place (path style, `/<alias>/<key>`), or as a
virtual host under the endpoint: `<alias>.localhost`, or `<name>-<account>.localhost` (what boto3 builds from an
access point ARN in Bucket=). The request is rewritten to path style on the access point's bucket, the key
unchanged, so every engine after this one and the backend act on the bucket.

AWS's rule ("Configuring IAM policies for using access points"): both the access point and the bucket must
permit the request. Each is one more (action, resource) check for the one evaluator (policy.decide): the access
point's ARN (`arn:aws:s3:<region>:<account>:accesspoint/<name>[/object/<key>]`) with the access point policy as
its resource policy, and the bucket's ARN with the bucket policy, both with the caller's identity policies and
the condition keys s3:DataAccessPointArn, s3:DataAccessPointAccount and s3:AccessPointNetworkOrigin.
"""

from __future__ import annotations

from dataclasses import dataclass

from dealab.engines.iam.policy import ACCOUNT_ID
from dealab.engines.iam.requests import bucket_and_key
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.operations import identify
from dealab.wire.readcache import ReadCache

ALIAS_SUFFIX = "-s3alias"
ARN_PREFIX = "arn:aws:s3:"  # an access point's ARN has a region and account; a bucket's has neither (arn:aws:s3:::)
# Hosts naming a bucket or access point under the endpoint (RFC 6761: *.localhost is this machine); the
# longest first, so <b>.s3.localhost names bucket b.
VIRTUAL_HOST_SUFFIXES = (".s3.localhost", ".localhost", ".s3.127.0.0.1", ".127.0.0.1")
ENDPOINT_HOSTS = frozenset(suffix.lstrip(".") for suffix in VIRTUAL_HOST_SUFFIXES)  # s3.localhost is an endpoint, not bucket s3
# s3control operations after which the access points (or their policies) differ
CHANGES = frozenset({"CreateAccessPoint", "DeleteAccessPoint", "PutAccessPointPolicy", "DeleteAccessPointPolicy"})
# S3 operations an access point serves (AWS: "Access point compatibility"); bucket configuration is not among them.
SERVED = frozenset({
    "AbortMultipartUpload", "CompleteMultipartUpload", "CopyObject", "CreateMultipartUpload", "DeleteObject", "DeleteObjects",
    "DeleteObjectTagging", "GetBucketAcl", "GetBucketCors", "GetBucketLocation", "GetBucketNotificationConfiguration", "GetBucketPolicy",
    "GetObject", "GetObjectAcl", "GetObjectAttributes", "GetObjectLegalHold", "GetObjectRetention", "GetObjectTagging", "HeadBucket",
    "HeadObject", "ListMultipartUploads", "ListObjects", "ListObjectsV2", "ListObjectVersions", "ListParts", "PutObject", "PutObjectAcl",
    "PutObjectLegalHold", "PutObjectRetention", "PutObjectTagging", "RestoreObject", "UploadPart", "UploadPartCopy",
})


@dataclass(frozen=True)
class AccessPoint:
    name: str
    arn: str
    alias: str
    bucket: str
    network_origin: str

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    def resource(self, bucket_resource: str) -> str:
        """The access point's ARN for what `bucket_resource` (arn:aws:s3:::bucket[/key]) names."""
        _, _, key = bucket_resource[len("arn:aws:s3:::"):].partition("/")
        return f"{self.arn}/object/{key}" if key else self.arn

    def condition_keys(self) -> dict[str, list[str]]:
        return {"s3:dataaccesspointarn": [self.arn], "s3:dataaccesspointaccount": [self.account],
                "s3:accesspointnetworkorigin": [self.network_origin]}


class AccessPoints:
    """The account's access points as the backend holds them (read through s3control, kept until one changes)."""

    def __init__(self, client):
        self._client = client  # service → a client acting as the account
        self._known: ReadCache[dict[str, AccessPoint]] = ReadCache()  # alias, and <name>-<account>, → access point
        self._policies: ReadCache[str | None] = ReadCache()  # access point ARN → its policy

    def route(self, request: AwsRequest) -> AccessPoint | AwsResponse | None:
        """The access point `request` goes through (rewritten onto its bucket), an S3 error for an access point that
        does not exist or an operation it does not serve, or None: a request on a bucket."""
        if request.service != "s3":
            return None
        virtual_host = _to_path_style(request)
        label, _ = bucket_and_key(request.path)
        # <name>-<account> is an access point only as the host boto3 makes of its ARN; in a path it is a bucket's name
        named = label.endswith(ALIAS_SUFFIX) or label == virtual_host
        access_point = self._known.get("all", self._list).get(label) if label and named else None
        if access_point is None:
            # CreateBucket of such a name goes on, to be refused as S3 refuses it: the suffix is reserved (InvalidBucketName)
            if label.endswith(ALIAS_SUFFIX) and request.operation != "CreateBucket":
                return AwsResponse.xml_error("NoSuchBucket", "The specified bucket does not exist", 404, label)
            return None
        if access_point.network_origin == "VPC":
            return AwsResponse.xml_error("AccessDenied", f"Access Denied: the access point {access_point.arn} takes requests only from its VPC, "
                                         "and no request to dealab comes from a VPC", 403, label)
        if request.operation not in SERVED:
            return AwsResponse.xml_error("InvalidRequest", f"{request.operation or request.method} is not supported through an access point "
                                         f"({access_point.arn}); call it on the bucket {access_point.bucket}", 400, label)
        _, slash, rest = request.path.lstrip("/").partition("/")
        request.path = f"/{access_point.bucket}{slash}{rest}"
        return access_point

    def policy(self, resource: str) -> str | None:
        """The policy of the access point `resource` (an access point ARN, with /object/<key> or not) names."""
        arn = "/".join(resource.split("/")[:2])

        def read() -> str | None:
            s3control = self._client("s3control")
            try:
                return s3control.get_access_point_policy(AccountId=ACCOUNT_ID, Name=arn.rsplit("/", 1)[-1])["Policy"]
            except s3control.exceptions.ClientError:
                return None

        return self._policies.get(arn, read)

    def observe(self, service: str, operation: str) -> None:
        if service == "s3control" and operation in CHANGES:
            self.forget_all()

    def forget_all(self) -> None:
        self._known.forget_all()
        self._policies.forget_all()

    def _list(self) -> dict[str, AccessPoint]:
        known: dict[str, AccessPoint] = {}
        s3control = self._client("s3control")
        page = {"NextToken": ""}
        while "NextToken" in page:
            page = s3control.list_access_points(AccountId=ACCOUNT_ID, **({"NextToken": page["NextToken"]} if page["NextToken"] else {}))
            for listed in page.get("AccessPointList", []):
                access_point = AccessPoint(listed["Name"], listed["AccessPointArn"], listed.get("Alias", ""), listed["Bucket"],
                                           listed.get("NetworkOrigin", "Internet"))
                known[access_point.alias] = known[f"{access_point.name}-{access_point.account}"] = access_point
        return known


def _to_path_style(request: AwsRequest) -> str | None:
    """A virtual-hosted request (<bucket>.localhost) as the path-style request it stands for, named again (the
    operation of `GET /` on a virtual host is the bucket's listing, not ListBuckets); the host's bucket label, or None
    for a path-style request."""
    host = request.headers.get("Host", "")
    name, colon, port = host.partition(":")
    suffix = next((s for s in VIRTUAL_HOST_SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None or name.lower() in ENDPOINT_HOSTS:
        return None
    bucket = name[:-len(suffix)]
    request.path = f"/{bucket}" if request.path == "/" else f"/{bucket}{request.path}"
    request.headers["Host"] = suffix.removeprefix(".s3").lstrip(".") + colon + port
    request.operation = identify(request.method, request.path, request.query, request.headers, request.form).name
    return bucket
