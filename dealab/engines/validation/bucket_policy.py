"""PutBucketPolicy documents are checked as S3 checks them (MalformedPolicy, 400, with S3's messages), and
also refused when the s3access engine could not evaluate them: a stored policy that cannot be evaluated
would deny every later request to the bucket."""

from __future__ import annotations

import fnmatch
import json
import re

from dealab.engines.iam import policy as evaluator
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.engines.validation.s3 import bucket_and_key

VERSIONS = frozenset({"2012-10-17", "2008-10-17"})
TOP_LEVEL_FIELDS = frozenset({"Version", "Id", "Statement"})
STATEMENT_FIELDS = frozenset({"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"})
PRINCIPAL_TYPES = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})
AWS_PRINCIPAL = re.compile(
    r"\*|\d{12}|arn:aws:iam::\d{12}:(root|user/.+|role/.+)|arn:aws:sts::\d{12}:assumed-role/.+|arn:aws:iam::cloudfront:user/.+"
)
ACTION = re.compile(r"\*|s3:[A-Za-z*?]+", re.IGNORECASE)
S3_ARN_PREFIX = "arn:aws:s3:::"
CONDITION_OPERATORS = frozenset(
    {"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike",
     "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan",
     "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
     "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals",
     "ArnNotLike", "Null"}
)
CONDITION_KEY_PREFIXES = ("aws:", "s3:")
# Object-level actions (resource arn:aws:s3:::bucket/key) besides those named "...Object..." without "Bucket".
OTHER_OBJECT_ACTIONS = frozenset({"abortmultipartupload", "listmultipartuploadparts", "replicatedelete", "replicatetags",
                                  "bypassgovernanceretention", "initiatereplication"})


class Malformed(ValueError):
    """The policy's first fault, in S3's words."""


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _strings(value, missing: str) -> list[str]:
    values = _as_list(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise Malformed(missing)
    return values


def check(document: str, bucket: str) -> None:
    """Raises Malformed naming the first fault of `document` as a policy of `bucket`."""
    if not document.lstrip().startswith("{"):
        raise Malformed("Policies must be valid JSON and the first byte must be '{'")
    try:
        parsed = json.loads(document)
    except ValueError:
        raise Malformed("This policy contains invalid Json") from None
    for field in parsed:
        if field not in TOP_LEVEL_FIELDS:
            raise Malformed(f"Unknown field {field}")
    if "Version" in parsed and parsed["Version"] not in VERSIONS:
        raise Malformed("The policy must contain a valid version string")
    if "Statement" not in parsed:
        raise Malformed("Missing required field Statement")
    statements = _as_list(parsed["Statement"])
    if not statements:
        raise Malformed("Could not parse the policy: Statement is empty!")
    for statement in statements:
        if not isinstance(statement, dict):
            raise Malformed("This policy contains invalid Json")
        _check_statement(statement, bucket)
    _check_evaluable(document)


def _check_statement(statement: dict, bucket: str) -> None:
    for field in statement:
        if field not in STATEMENT_FIELDS:
            raise Malformed(f"Unknown field {field}")
    if "Effect" not in statement:
        raise Malformed("Missing required field Effect")
    if statement["Effect"] not in ("Allow", "Deny"):
        raise Malformed(f"Invalid effect: {statement['Effect']}")
    _check_principal(statement)
    actions = _check_actions(statement)
    resources = _check_resources(statement, bucket)
    if actions is not None and resources is not None and not _applies(actions, resources):
        raise Malformed("Action does not apply to any resource(s) in statement")
    _check_conditions(statement)


def _check_principal(statement: dict) -> None:
    if "Principal" not in statement and "NotPrincipal" not in statement:
        raise Malformed("Missing required field Principal")
    principal = statement.get("Principal", statement.get("NotPrincipal"))
    if principal == "*":
        return
    if not isinstance(principal, dict) or not principal or not set(principal) <= PRINCIPAL_TYPES:
        raise Malformed("Invalid principal in policy")
    for kind, values in principal.items():
        values = _strings(values, "Invalid principal in policy")
        if kind == "AWS" and not all(AWS_PRINCIPAL.fullmatch(v) for v in values):
            raise Malformed("Invalid principal in policy")


def _check_actions(statement: dict) -> list[str] | None:
    """The statement's actions (None for NotAction, which applies to whatever it does not name)."""
    if "Action" not in statement and "NotAction" not in statement:
        raise Malformed("Missing required field Action")
    actions = _strings(statement.get("Action", statement.get("NotAction")), "Policy has invalid action")
    if not all(ACTION.fullmatch(a) for a in actions):
        raise Malformed("Policy has invalid action")
    return actions if "Action" in statement else None


def _check_resources(statement: dict, bucket: str) -> list[str] | None:
    if "Resource" not in statement and "NotResource" not in statement:
        raise Malformed("Missing required field Resource")
    resources = _strings(statement.get("Resource", statement.get("NotResource")), "Policy has invalid resource")
    for resource in resources:
        # A bucket policy may name only its own bucket and the objects in it.
        bucket_pattern = resource[len(S3_ARN_PREFIX):].split("/", 1)[0]
        if not resource.startswith(S3_ARN_PREFIX) or not fnmatch.fnmatchcase(bucket, bucket_pattern):
            raise Malformed("Policy has invalid resource")
    return resources if "Resource" in statement else None


def _is_object_action(action: str) -> bool:
    name = action.lower().removeprefix("s3:")
    return name in OTHER_OBJECT_ACTIONS or ("object" in name and "bucket" not in name)


def _applies(actions: list[str], resources: list[str]) -> bool:
    """True when some action can act on some resource: bucket actions on the bucket's ARN, object actions on
    an object ARN. Wildcard actions and bucket names are taken to reach both."""
    reaches_bucket = any("/" not in r[len(S3_ARN_PREFIX):] for r in resources)
    reaches_objects = any("/" in r[len(S3_ARN_PREFIX):] or "*" in r[len(S3_ARN_PREFIX):] for r in resources)
    for action in actions:
        if "*" in action or "?" in action:
            return True
        if reaches_objects if _is_object_action(action) else reaches_bucket:
            return True
    return False


def _base_operator(operator: str) -> str:
    return operator.split(":", 1)[-1].removesuffix("IfExists")


def _check_conditions(statement: dict) -> None:
    conditions = statement.get("Condition", {})
    if not isinstance(conditions, dict):
        raise Malformed("This policy contains invalid Json")
    for operator, keys in conditions.items():
        if _base_operator(operator) not in CONDITION_OPERATORS or not isinstance(keys, dict):
            raise Malformed(f"Invalid Condition type : {operator}")
        for key in keys:
            if not key.lower().startswith(CONDITION_KEY_PREFIXES):
                raise Malformed("Policy has an invalid condition key")


def _check_evaluable(document: str) -> None:
    """The s3access engine evaluates every Deny statement's conditions on each request; an operator it cannot
    evaluate is refused now rather than denying every request later."""
    for statement in evaluator.parse(document):
        if statement.effect != "Deny":
            continue
        for operator, keys in statement.raw.get("Condition", {}).items():
            probe = evaluator.Statement({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*", "Condition": {operator: keys}})
            try:
                evaluator.explicit_deny([probe], "s3:GetObject", "arn:aws:s3:::probe", {key: "probe" for key in keys})
            except evaluator.PolicyError as error:
                raise Malformed(f"{error}; AWS accepts it, but dealab could not enforce this Deny statement") from None


def policy_is_well_formed(request: AwsRequest) -> AwsResponse | None:
    bucket, _ = bucket_and_key(request)
    try:
        check(request.body.decode("utf-8", "replace"), bucket)
    except Malformed as fault:
        return AwsResponse.xml_error("MalformedPolicy", str(fault), 400, bucket)
    return None
