"""S3 Control's access points where the backend falls short of AWS: names are checked, a second CreateAccessPoint of a name does not
replace the first (and its alias), an access point is made only on a bucket that exists, deleting one that does not
exist is an error, the access point's own Block Public Access refuses a public policy, and
GetAccessPointPolicyStatus says whether the policy is public (the backend says "public" of every policy).

Requests through access points (aliases, ARNs) are routed and authorized by the IAM engine
(dealab.engines.iam.accesspoints).
"""

from __future__ import annotations

import re
from urllib.parse import unquote
from xml.etree import ElementTree

from dealab.engines.iam import policy
from dealab.wire.messages import AwsRequest, AwsResponse

ACCESS_POINT_PATH = re.compile(r"^/v20180820/accesspoint/([^/]+)")
# 3-50 lowercase letters, digits and hyphens, beginning and ending with a letter or digit, no "--"; the -s3alias
# suffix is reserved for aliases
VALID_NAME = re.compile(r"^(?!.*--)(?!.*-s3alias$)[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$")
NAMESPACE = "http://awss3control.amazonaws.com/doc/2018-08-20/"
ALREADY_OWNED = "Your previous request to create the named accesspoint succeeded and you already own it."
NO_SUCH_ACCESS_POINT = "The specified accesspoint does not exist"


def name_of(request: AwsRequest) -> str:
    match = ACCESS_POINT_PATH.match(request.path)
    return unquote(match.group(1)) if match else ""


def account_of(request: AwsRequest) -> str:
    return request.headers.get("x-amz-account-id", "")


def create_refusal(request: AwsRequest, s3control, s3) -> AwsResponse | None:
    if not VALID_NAME.match(name_of(request)):
        return AwsResponse.xml_error("InvalidAccessPoint", "The specified access point name or account is not valid.", 400, name_of(request))
    if _exists(s3control, account_of(request), name_of(request)):
        return AwsResponse.xml_error("AccessPointAlreadyOwnedByYou", ALREADY_OWNED, 409)
    bucket = _xml_field(request.body, "Bucket")
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        return AwsResponse.xml_error("NoSuchBucket", f"The specified bucket does not exist: {bucket}", 404, bucket)
    return None


def delete_refusal(request: AwsRequest, s3control) -> AwsResponse | None:
    return None if _exists(s3control, account_of(request), name_of(request)) else \
        AwsResponse.xml_error("NoSuchAccessPoint", NO_SUCH_ACCESS_POINT, 404, name_of(request))


def public_policy_refusal(request: AwsRequest, s3control) -> AwsResponse | None:
    """The access point's own Block Public Access (all on unless turned off at creation) refuses a public policy."""
    try:
        settings = s3control.get_access_point(AccountId=account_of(request), Name=name_of(request))["PublicAccessBlockConfiguration"]
    except s3control.exceptions.ClientError:
        return None  # the backend answers NoSuchAccessPoint itself
    try:
        public = policy.is_public(policy.parse(_xml_field(request.body, "Policy")))
    except policy.PolicyError as error:
        return AwsResponse.xml_error("MalformedPolicy", str(error), 400)
    if public and settings.get("BlockPublicPolicy"):
        return AwsResponse.xml_error("AccessDenied", "Access Denied: the access point's Block Public Access (BlockPublicPolicy) forbids "
                                     "public policies", 403)
    return None


def policy_status(request: AwsRequest, s3control) -> AwsResponse:
    document = s3control.get_access_point_policy(AccountId=account_of(request), Name=name_of(request))["Policy"]
    public = "true" if policy.is_public(policy.parse(document)) else "false"
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<GetAccessPointPolicyStatusResult xmlns="{NAMESPACE}"><PolicyStatus>'
            f"<IsPublic>{public}</IsPublic></PolicyStatus></GetAccessPointPolicyStatusResult>")
    return AwsResponse(200, [("Content-Type", "application/xml")], body.encode())


def _exists(s3control, account: str, name: str) -> bool:
    try:
        s3control.get_access_point(AccountId=account, Name=name)
    except s3control.exceptions.ClientError:
        return False
    return True


def _xml_field(body: bytes, name: str) -> str:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return ""
    found = root.find(f"{{{NAMESPACE}}}{name}")
    if found is None:
        found = root.find(name)
    return (found.text or "") if found is not None else ""
