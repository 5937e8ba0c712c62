"""IAM at the gateway: AWS's policy evaluation logic, condition operators, policy variables, the denial shapes,
IAM users' keys at the door, STS sessions (trust policies, ExternalId, expiry on the lab clock), Simulate*."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from dealab.engines.iam import policy
from dealab.engines.iam.policy import Caller, NamedPolicy, Policies, decide
from tests.conftest import client, service_role
from tests.test_lifecycle_engine import admin

USER = Caller("arn:aws:iam::123456789012:user/ana", "user", frozenset({"arn:aws:iam::123456789012:user/ana"}))
SESSION_ARN = "arn:aws:sts::123456789012:assumed-role/reader/s1"
ROLE_ARN = "arn:aws:iam::123456789012:role/reader"
SESSION = Caller(SESSION_ARN, "assumed-role", frozenset({SESSION_ARN, ROLE_ARN}))
OBJECT = "arn:aws:s3:::b/k"


def doc(*statements, principal=False) -> NamedPolicy:
    return NamedPolicy("p", policy.parse(json.dumps({"Version": "2012-10-17", "Statement": list(statements)})))


def allow(action="s3:GetObject", resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action="s3:GetObject", resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# ---- AWS's policy evaluation logic table ------------------------------------------------------------------------
@pytest.mark.parametrize("policies, caller, decision, reason", [
    (Policies(), USER, "implicitDeny", "because no identity-based policy allows the s3:GetObject action"),
    (Policies(identity=[doc(allow())]), USER, "allowed", ""),
    (Policies(identity=[doc(allow(), deny())]), USER, "explicitDeny", "with an explicit deny in an identity-based policy"),
    (Policies(identity=[doc(allow())], resource=[doc(deny(Principal="*"))]), USER, "explicitDeny", "with an explicit deny in a resource-based policy"),
    # a resource policy naming the user grants alone, not limited by the boundary
    (Policies(resource=[doc(allow(Principal={"AWS": USER.arn}))], boundary=[doc(allow("s3:PutObject"))]), USER, "allowed", ""),
    # naming the account delegates to identity policies
    (Policies(resource=[doc(allow(Principal={"AWS": "123456789012"}))]), USER, "implicitDeny", "because no identity-based policy allows"),
    (Policies(identity=[doc(allow())], boundary=[doc(allow("s3:PutObject"))]), USER, "implicitDeny", "because no permissions boundary allows the s3:GetObject action"),
    (Policies(identity=[doc(allow())], boundary=[doc(allow("s3:*"))]), USER, "allowed", ""),
    (Policies(identity=[doc(allow())], boundary=[doc(allow(), deny())]), USER, "explicitDeny", "with an explicit deny in a permissions boundary"),
    (Policies(identity=[doc(allow())], session=[doc(allow("s3:PutObject"))]), SESSION, "implicitDeny", "because no session policy allows the s3:GetObject action"),
    (Policies(identity=[doc(allow())], session=[doc(allow())]), SESSION, "allowed", ""),
    (Policies(identity=[doc(allow())], session=[doc(deny())]), SESSION, "explicitDeny", "with an explicit deny in a session policy"),
    # a resource policy naming the role (not the session) is limited by the session policy; naming the session is not
    (Policies(resource=[doc(allow(Principal={"AWS": ROLE_ARN}))], session=[doc(allow("s3:PutObject"))]), SESSION, "implicitDeny", "session policy"),
    (Policies(resource=[doc(allow(Principal={"AWS": SESSION_ARN}))], session=[doc(allow("s3:PutObject"))]), SESSION, "allowed", ""),
    # the root: identity policies do not apply, a resource policy's explicit deny does
    (Policies(identity=[doc(deny())]), policy.ROOT, "allowed", ""),
    (Policies(resource=[doc(deny(Principal="*"))]), policy.ROOT, "explicitDeny", "with an explicit deny in a resource-based policy"),
    # KMS: the key policy must allow, directly or by delegating to the account's identity policies
    (Policies(identity=[doc(allow("kms:Decrypt"))], resource_required=True), USER, "implicitDeny", "because no resource-based policy allows"),
    (Policies(identity=[doc(allow("kms:Decrypt"))], resource=[doc(allow("kms:*", Principal={"AWS": "arn:aws:iam::123456789012:root"}))],
              resource_required=True), USER, "allowed", ""),
])
def test_policy_evaluation_logic(policies, caller, decision, reason):
    action = "kms:Decrypt" if policies.resource_required else "s3:GetObject"
    result = decide(caller, action, OBJECT, {}, policies)
    assert result.decision == decision
    assert reason in result.reason


# ---- condition operators, by family ---------------------------------------------------------------------------------
@pytest.mark.parametrize("condition, context, holds", [
    ({"StringEquals": {"aws:username": "ana"}}, {"aws:username": "ana"}, True),
    ({"StringNotEquals": {"aws:username": "ana"}}, {}, True),  # negated + missing key
    ({"StringEqualsIgnoreCase": {"aws:username": "ANA"}}, {"aws:username": "ana"}, True),
    ({"StringLike": {"s3:prefix": "home/*"}}, {"s3:prefix": "home/x"}, True),
    ({"StringNotLike": {"s3:prefix": "home/*"}}, {"s3:prefix": "home/x"}, False),
    ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, True),
    ({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "abc"}, False),
    ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {"aws:CurrentTime": "2026-05-01T00:00:00Z"}, True),
    ({"DateLessThan": {"aws:CurrentTime": "2020-01-01"}}, {"aws:CurrentTime": "2026-05-01T00:00:00Z"}, False),
    ({"DateEquals": {"aws:EpochTime": "1577836800"}}, {"aws:EpochTime": "2020-01-01T00:00:00Z"}, True),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "false"}, True),
    ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, {}, False),
    ({"BinaryEquals": {"k:bin": "QUJD"}}, {"k:bin": "QUJD"}, True),
    ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"aws:SourceIp": "127.0.0.1"}, True),
    ({"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, {"aws:SourceIp": "127.0.0.1"}, False),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/a*"}}, {"aws:PrincipalArn": USER.arn}, True),
    ({"ArnNotEquals": {"aws:PrincipalArn": USER.arn}}, {"aws:PrincipalArn": USER.arn}, False),
    ({"StringEqualsIfExists": {"s3:x-amz-acl": "private"}}, {}, True),
    ({"StringEqualsIfExists": {"s3:x-amz-acl": "private"}}, {"s3:x-amz-acl": "public-read"}, False),
    ({"Null": {"aws:RequestTag/team": "true"}}, {}, True),
    ({"Null": {"aws:RequestTag/team": "false"}}, {"aws:RequestTag/team": "data"}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}, {"aws:TagKeys": ["team"]}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, {"aws:TagKeys": ["team", "cost"]}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, {}, True),  # an empty set: true
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["cost"]}}, {"aws:TagKeys": ["team", "cost"]}, True),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["cost"]}}, {}, False),
    ({"StringEquals": {"aws:username": ["bo", "ana"]}}, {"aws:username": "ana"}, True),  # values are ORed
    ({"StringEquals": {"aws:username": "ana"}, "Bool": {"aws:SecureTransport": "true"}}, {"aws:username": "ana", "aws:SecureTransport": "false"}, False),
])
def test_condition_operators(condition, context, holds):
    statement = policy.parse(json.dumps({"Version": "2012-10-17", "Statement": [allow(Condition=condition)]}))[0]
    assert statement.conditions_hold(context) is holds


def test_unknown_operator_is_malformed():
    with pytest.raises(policy.PolicyError, match="StringRoughly"):
        policy.parse(json.dumps({"Statement": [allow(Condition={"StringRoughly": {"aws:username": "x"}})]}))


# ---- policy variables, NotAction / NotResource / NotPrincipal ---------------------------------------------------------
def test_policy_variables_in_resources_and_conditions():
    home = doc(allow("s3:*", "arn:aws:s3:::home/${aws:username}/*"),
               allow("s3:ListBucket", "arn:aws:s3:::home", Condition={"StringLike": {"s3:prefix": "${aws:username}/*"}}),
               allow("s3:GetObject", "arn:aws:s3:::team/${aws:PrincipalTag/team}/*"),
               allow("s3:GetObject", "arn:aws:s3:::ids/${aws:userid}/${*}x"))
    context = {"aws:username": "ana", "aws:PrincipalTag/team": "data", "aws:userid": "AIDA1"}
    check = lambda action, resource, extra={}: decide(USER, action, resource, {**context, **extra}, Policies(identity=[home])).decision
    assert check("s3:GetObject", "arn:aws:s3:::home/ana/f") == "allowed"
    assert check("s3:GetObject", "arn:aws:s3:::home/bo/f") == "implicitDeny"
    assert check("s3:ListBucket", "arn:aws:s3:::home", {"s3:prefix": "ana/"}) == "allowed"
    assert check("s3:ListBucket", "arn:aws:s3:::home", {"s3:prefix": "bo/"}) == "implicitDeny"
    assert check("s3:GetObject", "arn:aws:s3:::team/data/f") == "allowed"
    assert check("s3:GetObject", "arn:aws:s3:::ids/AIDA1/*x") == "allowed"  # ${*} is a literal *
    untagged = decide(USER, "s3:GetObject", "arn:aws:s3:::team/data/f", {"aws:username": "ana"}, Policies(identity=[home]))
    assert untagged.decision == "implicitDeny"  # a missing variable matches nothing
    old = NamedPolicy("old", policy.parse(json.dumps({"Version": "2008-10-17", "Statement": [allow("s3:*", "arn:aws:s3:::home/${aws:username}/*")]})))
    assert decide(USER, "s3:GetObject", "arn:aws:s3:::home/ana/f", context, Policies(identity=[old])).decision == "implicitDeny"


def test_not_action_not_resource_not_principal():
    everything_but_iam = doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert decide(USER, "s3:GetObject", OBJECT, {}, Policies(identity=[everything_but_iam])).allowed
    assert decide(USER, "iam:CreateUser", "*", {}, Policies(identity=[everything_but_iam])).decision == "implicitDeny"
    not_secret = doc({"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/secret/*"})
    assert decide(USER, "s3:GetObject", OBJECT, {}, Policies(identity=[not_secret])).allowed
    assert not decide(USER, "s3:GetObject", "arn:aws:s3:::b/secret/x", {}, Policies(identity=[not_secret])).allowed
    deny_all_but_ana = doc({"Effect": "Deny", "NotPrincipal": {"AWS": USER.arn}, "Action": "s3:*", "Resource": "*"})
    bo = Caller("arn:aws:iam::123456789012:user/bo", "user", frozenset({"arn:aws:iam::123456789012:user/bo"}))
    allow_all = doc(allow("s3:*"))
    assert decide(USER, "s3:GetObject", OBJECT, {}, Policies(identity=[allow_all], resource=[deny_all_but_ana])).allowed
    assert decide(bo, "s3:GetObject", OBJECT, {}, Policies(identity=[allow_all], resource=[deny_all_but_ana])).decision == "explicitDeny"


# ---- through the stack ------------------------------------------------------------------------------------------
def code(call) -> str:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    return "OK"


def message(call) -> str:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Message"]
    raise AssertionError("the call succeeded")


def as_keys(settings, service, keys: dict, **extra):
    return boto3.client(service, endpoint_url=settings.endpoint_url, region_name=settings.region,
                        aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"],
                        aws_session_token=keys.get("SessionToken"), **extra)


def new_user(settings, name: str, *statements) -> dict:
    iam = client(settings, "iam")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    return iam.create_access_key(UserName=name)["AccessKey"]


def test_user_keys_are_admitted_and_authorized(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="iam-data")
    s3.put_object(Bucket="iam-data", Key="k", Body=b"x")
    keys = new_user(clean_stack, "reader", allow("s3:GetObject", "arn:aws:s3:::iam-data/*"), deny("iam:*"))
    reader = as_keys(clean_stack, "s3", keys)
    assert reader.get_object(Bucket="iam-data", Key="k")["Body"].read() == b"x"
    assert as_keys(clean_stack, "sts", keys).get_caller_identity()["Arn"] == "arn:aws:iam::123456789012:user/reader"
    # S3's shape and words
    assert message(lambda: reader.put_object(Bucket="iam-data", Key="k2", Body=b"y")) == (
        'User: arn:aws:iam::123456789012:user/reader is not authorized to perform: s3:PutObject on resource: '
        '"arn:aws:s3:::iam-data/k2" because no identity-based policy allows the s3:PutObject action')
    # a JSON-protocol service: AccessDeniedException with the same sentence
    dynamodb = as_keys(clean_stack, "dynamodb", keys)
    assert code(lambda: dynamodb.list_tables()) == "AccessDeniedException"
    # query protocol: IAM's AccessDenied, an explicit deny; SNS says AuthorizationError
    iam = as_keys(clean_stack, "iam", keys)
    assert "with an explicit deny in an identity-based policy" in message(lambda: iam.create_user(UserName="x"))
    assert code(lambda: iam.create_user(UserName="x")) == "AccessDenied"
    assert code(lambda: as_keys(clean_stack, "sns", keys).list_topics()) == "AuthorizationError"
    # a bucket policy's explicit deny naming the user
    s3.put_bucket_policy(Bucket="iam-data", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        deny("s3:GetObject", "arn:aws:s3:::iam-data/*", Principal={"AWS": "arn:aws:iam::123456789012:user/reader"})]}))
    assert "explicit deny in a resource-based policy" in message(lambda: reader.get_object(Bucket="iam-data", Key="k"))
    assert s3.get_object(Bucket="iam-data", Key="k")["Body"].read() == b"x"  # the root is not named


def test_bad_and_inactive_keys_are_refused(clean_stack):
    keys = new_user(clean_stack, "gone", allow("sts:*"))
    forged = {**keys, "SecretAccessKey": "not-the-secret"}
    assert code(lambda: as_keys(clean_stack, "sts", forged).get_caller_identity()) == "SignatureDoesNotMatch"
    assert code(lambda: as_keys(clean_stack, "s3", {**keys, "AccessKeyId": "AKIANOTAKEY000000000"}).list_buckets()) == "InvalidAccessKeyId"
    assert code(lambda: as_keys(clean_stack, "dynamodb", {**keys, "AccessKeyId": "AKIANOTAKEY000000000"}).list_tables()) == "UnrecognizedClientException"
    client(clean_stack, "iam").update_access_key(UserName="gone", AccessKeyId=keys["AccessKeyId"], Status="Inactive")
    assert code(lambda: as_keys(clean_stack, "sts", keys).get_caller_identity()) == "InvalidClientTokenId"
    client(clean_stack, "iam").update_access_key(UserName="gone", AccessKeyId=keys["AccessKeyId"], Status="Active")
    assert code(lambda: as_keys(clean_stack, "sts", keys).get_caller_identity()) == "OK"
    client(clean_stack, "iam").delete_access_key(UserName="gone", AccessKeyId=keys["AccessKeyId"])
    assert code(lambda: as_keys(clean_stack, "sts", keys).get_caller_identity()) == "InvalidClientTokenId"


def test_deny_all_user_cannot_create_users(clean_stack):
    keys = new_user(clean_stack, "locked", allow("*"), deny("*"))
    assert code(lambda: as_keys(clean_stack, "iam", keys).create_user(UserName="sneaky")) == "AccessDenied"
    assert code(lambda: client(clean_stack, "iam").get_user(UserName="sneaky")) == "NoSuchEntity"


def test_assume_role_trust_policy_external_id_and_expiry(clean_stack):
    iam = client(clean_stack, "iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/caller"},
                                                     "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "ext-1"}}}]}
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=7200)["Role"]
    iam.put_role_policy(RoleName="reader", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow("s3:ListAllMyBuckets")]}))
    caller = as_keys(clean_stack, "sts", new_user(clean_stack, "caller"))  # no identity policy: the trust policy names it
    outsider = as_keys(clean_stack, "sts", new_user(clean_stack, "outsider", allow("sts:AssumeRole")))
    assert code(lambda: caller.assume_role(RoleArn=role["Arn"], RoleSessionName="s1")) == "AccessDenied"  # no ExternalId
    assert code(lambda: outsider.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", ExternalId="ext-1")) == "AccessDenied"
    assert code(lambda: caller.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", ExternalId="ext-1", DurationSeconds=7201)) == "ValidationError"
    assert code(lambda: client(clean_stack, "sts").assume_role(RoleArn=role["Arn"], RoleSessionName="s1")) == "AccessDenied"  # root
    credentials = caller.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", ExternalId="ext-1", DurationSeconds=900)["Credentials"]
    session = as_keys(clean_stack, "sts", credentials)
    assert session.get_caller_identity()["Arn"] == "arn:aws:sts::123456789012:assumed-role/reader/s1"
    assert code(lambda: as_keys(clean_stack, "s3", credentials).list_buckets()) == "OK"
    assert code(lambda: as_keys(clean_stack, "s3", credentials).create_bucket(Bucket="nope")) == "AccessDenied"
    assert code(lambda: as_keys(clean_stack, "s3", {**credentials, "SessionToken": "forged"}).list_buckets()) == "InvalidToken"
    admin(clean_stack, "clock", {"action": "advance", "by": "16m"})
    assert code(lambda: session.get_caller_identity()) == "ExpiredToken"


def test_role_chaining_is_limited_to_an_hour_and_session_policies_limit(clean_stack):
    iam = client(clean_stack, "iam")
    anyone_here = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "sts:AssumeRole"}]}
    for name in ("first", "second"):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(anyone_here), MaxSessionDuration=14400)
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow("sts:AssumeRole"), allow("s3:ListAllMyBuckets")]}))
    user = as_keys(clean_stack, "sts", new_user(clean_stack, "chain", allow("sts:AssumeRole")))
    first = user.assume_role(RoleArn="arn:aws:iam::123456789012:role/first", RoleSessionName="hop-a", DurationSeconds=7200)["Credentials"]
    hop = as_keys(clean_stack, "sts", first)
    assert "1 hour session limit" in message(lambda: hop.assume_role(RoleArn="arn:aws:iam::123456789012:role/second", RoleSessionName="hop-b", DurationSeconds=7200))
    limited = hop.assume_role(RoleArn="arn:aws:iam::123456789012:role/second", RoleSessionName="hop-b",
                              Policy=json.dumps({"Version": "2012-10-17", "Statement": [allow("sts:GetCallerIdentity")]}))["Credentials"]
    assert "because no session policy allows the s3:ListAllMyBuckets action" in message(lambda: as_keys(clean_stack, "s3", limited).list_buckets())


def test_get_session_token_acts_as_the_user(clean_stack):
    keys = new_user(clean_stack, "tokens", allow("s3:ListAllMyBuckets"))
    credentials = as_keys(clean_stack, "sts", keys).get_session_token(DurationSeconds=900)["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert as_keys(clean_stack, "sts", credentials).get_caller_identity()["Arn"] == "arn:aws:iam::123456789012:user/tokens"
    assert code(lambda: as_keys(clean_stack, "s3", credentials).list_buckets()) == "OK"
    assert code(lambda: as_keys(clean_stack, "sts", credentials).get_session_token()) == "AccessDenied"
    assert client(clean_stack, "sts").get_caller_identity()["Arn"] == "arn:aws:iam::123456789012:root"


def test_simulate_principal_and_custom_policy(clean_stack):
    new_user(clean_stack, "sim", allow("s3:GetObject", "arn:aws:s3:::b/*"), deny("s3:GetObject", "arn:aws:s3:::b/secret/*"))
    iam = client(clean_stack, "iam")
    results = iam.simulate_principal_policy(PolicySourceArn="arn:aws:iam::123456789012:user/sim", ActionNames=["s3:GetObject", "s3:PutObject"],
                                            ResourceArns=["arn:aws:s3:::b/k", "arn:aws:s3:::b/secret/k"])["EvaluationResults"]
    decisions = {(r["EvalActionName"], r["EvalResourceName"]): r["EvalDecision"] for r in results}
    assert decisions == {("s3:GetObject", "arn:aws:s3:::b/k"): "allowed", ("s3:GetObject", "arn:aws:s3:::b/secret/k"): "explicitDeny",
                         ("s3:PutObject", "arn:aws:s3:::b/k"): "implicitDeny", ("s3:PutObject", "arn:aws:s3:::b/secret/k"): "implicitDeny"}
    assert next(r for r in results if r["EvalDecision"] == "allowed")["MatchedStatements"][0]["SourcePolicyId"] == "p"
    custom = iam.simulate_custom_policy(
        PolicyInputList=[json.dumps({"Version": "2012-10-17", "Statement": [allow("s3:*", Condition={"Bool": {"aws:SecureTransport": "true"}})]})],
        ActionNames=["s3:GetObject"], ContextEntries=[{"ContextKeyName": "aws:SecureTransport", "ContextKeyValues": ["false"], "ContextKeyType": "boolean"}],
    )["EvaluationResults"]
    assert custom[0]["EvalDecision"] == "implicitDeny"


def test_malformed_policies_are_refused(clean_stack):
    iam = client(clean_stack, "iam")
    iam.create_user(UserName="m")
    bad_operator = {"Version": "2012-10-17", "Statement": [allow(Condition={"StringRoughly": {"aws:username": "x"}})]}
    assert "StringRoughly" in message(lambda: iam.put_user_policy(UserName="m", PolicyName="p", PolicyDocument=json.dumps(bad_operator)))
    assert code(lambda: iam.create_role(RoleName="r", AssumeRolePolicyDocument="{not json")) == "MalformedPolicyDocument"
    unknown_action = {"Version": "2012-10-17", "Statement": [allow("s3:NoSuchActionAnywhere")]}
    assert code(lambda: iam.put_user_policy(UserName="m", PolicyName="p", PolicyDocument=json.dumps(unknown_action))) == "OK"  # as AWS


def test_tls_only_deny_still_applies_to_the_root_on_the_plain_port(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="tls-only")
    s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        deny("s3:*", ["arn:aws:s3:::tls-only", "arn:aws:s3:::tls-only/*"], Principal="*", Condition={"Bool": {"aws:SecureTransport": "false"}})]}))
    plain = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{clean_stack.insecure_port}", region_name=clean_stack.region,
                         aws_access_key_id="test", aws_secret_access_key="test")
    assert code(lambda: plain.put_object(Bucket="tls-only", Key="k", Body=b"x")) == "AccessDenied"
    assert code(lambda: s3.put_object(Bucket="tls-only", Key="k", Body=b"x")) == "OK"


# ---- KMS: key policies, grants, kms:ViaService, SSE-KMS through S3 ------------------------------------------------------
ACCOUNT_ROOT = {"AWS": "arn:aws:iam::123456789012:root"}


def key_policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_grants_allow_their_operations_within_their_constraints():
    from dealab.engines.iam.kms import grant_allows

    grants = [{"GranteePrincipal": ROLE_ARN, "Operations": ["Decrypt"], "Constraints": {"EncryptionContextSubset": {"dept": "eu"}}}]
    assert grant_allows(grants, SESSION, "kms:Decrypt", {"dept": "eu", "x": "1"})  # a role's grant serves its sessions
    assert not grant_allows(grants, SESSION, "kms:Decrypt", {"dept": "us"})
    assert not grant_allows(grants, SESSION, "kms:Encrypt", {"dept": "eu"})
    assert not grant_allows(grants, USER, "kms:Decrypt", {"dept": "eu"})


def test_key_policies_decide_who_uses_a_key(clean_stack):
    kms = client(clean_stack, "kms")
    shared = kms.create_key()["KeyMetadata"]["KeyId"]  # the default key policy: the account's IAM policies decide
    analyst_keys = new_user(clean_stack, "analyst", allow(["kms:Encrypt", "kms:Decrypt"]))
    analyst, outsider = as_keys(clean_stack, "kms", analyst_keys), as_keys(clean_stack, "kms", new_user(clean_stack, "outsider"))
    assert code(lambda: analyst.encrypt(KeyId=shared, Plaintext=b"x")) == "OK"
    assert "because no identity-based policy allows the kms:Encrypt action" in message(lambda: outsider.encrypt(KeyId=shared, Plaintext=b"x"))
    assert code(lambda: outsider.encrypt(KeyId=shared, Plaintext=b"x")) == "AccessDeniedException"

    # a key policy that names the steward and keeps only administration for the account root
    steward_arn = "arn:aws:iam::123456789012:user/steward"
    steward = as_keys(clean_stack, "kms", new_user(clean_stack, "steward"))  # no identity policy at all
    admin_only = {"Sid": "Admin", "Effect": "Allow", "Principal": ACCOUNT_ROOT, "Resource": "*",
                  "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey", "kms:CreateAlias", "kms:CreateGrant", "kms:ListGrants"]}
    use = {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": steward_arn}, "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}
    # KMS's lockout safety check: a policy that would not let the caller change it again is refused
    assert code(lambda: kms.create_key(Policy=key_policy(use))) == "MalformedPolicyDocumentException"
    private = kms.create_key(Policy=key_policy(admin_only, use))["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/steward", TargetKeyId=private)
    blob = steward.encrypt(KeyId="alias/steward", Plaintext=b"secret")["CiphertextBlob"]
    assert steward.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    # the analyst's IAM policy is not enough: this key policy does not delegate to IAM; nor is the root allowed to use it
    assert "because no resource-based policy allows the kms:Decrypt action" in message(lambda: analyst.decrypt(CiphertextBlob=blob))
    assert code(lambda: analyst.encrypt(KeyId="alias/steward", Plaintext=b"x")) == "AccessDeniedException"
    assert code(lambda: kms.encrypt(KeyId=private, Plaintext=b"x")) == "AccessDeniedException"
    # a grant lets its grantee use the key for what it lists
    kms.create_grant(KeyId=private, GranteePrincipal="arn:aws:iam::123456789012:user/analyst", Operations=["Decrypt"])
    assert analyst.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    assert code(lambda: analyst.encrypt(KeyId=private, Plaintext=b"x")) == "AccessDeniedException"


def test_sse_kms_objects_need_the_key_for_the_caller(clean_stack):
    s3, kms, iam = client(clean_stack, "s3"), client(clean_stack, "kms"), client(clean_stack, "iam")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket="kms-lake")
    s3.put_object(Bucket="kms-lake", Key="sealed.csv", Body=b"a,b", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    s3.put_object(Bucket="kms-lake", Key="plain.csv", Body=b"c,d")
    # a learner role with s3 access but no kms:Decrypt
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/learner"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="lake-reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="lake-reader", PolicyName="s3", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::kms-lake/*")]}))
    learner = as_keys(clean_stack, "sts", new_user(clean_stack, "learner", allow("sts:AssumeRole", role)))
    session = as_keys(clean_stack, "s3", learner.assume_role(RoleArn=role, RoleSessionName="l1")["Credentials"])
    assert session.get_object(Bucket="kms-lake", Key="plain.csv")["Body"].read() == b"c,d"
    refused = message(lambda: session.get_object(Bucket="kms-lake", Key="sealed.csv"))
    assert refused == (f'User: arn:aws:sts::123456789012:assumed-role/lake-reader/l1 is not authorized to perform: kms:Decrypt on resource: '
                       f'"{key}" because no identity-based policy allows the kms:Decrypt action')
    assert code(lambda: session.put_object(Bucket="kms-lake", Key="new.csv", Body=b"e", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)) == "AccessDenied"
    s3.put_bucket_encryption(Bucket="kms-lake", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
    assert "kms:GenerateDataKey" in message(lambda: session.put_object(Bucket="kms-lake", Key="new.csv", Body=b"e"))  # the bucket's default key
    # kms:Decrypt and GenerateDataKey only through S3 (kms:ViaService), for callers of this account (kms:CallerAccount)
    iam.put_role_policy(RoleName="lake-reader", PolicyName="kms", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        allow(["kms:Decrypt", "kms:GenerateDataKey"], key, Condition={"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com",
                                                                                       "kms:CallerAccount": "123456789012"}})]}))
    assert session.get_object(Bucket="kms-lake", Key="sealed.csv")["Body"].read() == b"a,b"
    assert code(lambda: session.put_object(Bucket="kms-lake", Key="new.csv", Body=b"e")) == "OK"
    blob = kms.encrypt(KeyId=key, Plaintext=b"direct")["CiphertextBlob"]
    direct = as_keys(clean_stack, "kms", learner.assume_role(RoleArn=role, RoleSessionName="l2")["Credentials"])
    assert code(lambda: direct.decrypt(CiphertextBlob=blob)) == "AccessDeniedException"  # not through S3


def test_passing_a_role_to_a_service_needs_iam_pass_role_for_that_service(clean_stack):
    """A user creating a state machine or an EventBridge target that names a role must be allowed iam:PassRole on
    it, with iam:PassedToService naming the service; the account root needs no such permission."""
    machine_role = service_role(clean_stack, "pass-me", ("states", "events"))
    other_role = service_role(clean_stack, "not-me", ("states", "events"))
    passes = allow("iam:PassRole", machine_role, Condition={"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}})
    keys = new_user(clean_stack, "passer", allow(["states:CreateStateMachine", "events:PutRule", "events:PutTargets"]), passes)
    sfn, events = as_keys(clean_stack, "stepfunctions", keys), as_keys(clean_stack, "events", keys)
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})

    refused = message(lambda: sfn.create_state_machine(name="m-other", definition=definition, roleArn=other_role))
    assert refused.startswith("User: arn:aws:iam::123456789012:user/passer is not authorized to perform: iam:PassRole on resource: "
                              f"{other_role}")
    machine = sfn.create_state_machine(name="m-mine", definition=definition, roleArn=machine_role)["stateMachineArn"]
    events.put_rule(Name="r", EventPattern=json.dumps({"source": ["app"]}))
    # the condition names Step Functions: passing the same role to EventBridge is refused
    assert code(lambda: events.put_targets(Rule="r", Targets=[{"Id": "m", "Arn": machine, "RoleArn": machine_role}])) == "AccessDeniedException"
    assert client(clean_stack, "events").put_targets(Rule="r", Targets=[{"Id": "m", "Arn": machine, "RoleArn": machine_role}])["FailedEntryCount"] == 0


def test_passrole_to_scheduler_is_checked_at_create_and_update_schedule(clean_stack):
    """A user creating or updating a schedule must be allowed iam:PassRole on its Target.RoleArn with
    iam:PassedToService scheduler.amazonaws.com; a permission for another service does not do."""
    role = service_role(clean_stack, "sched-pass", ("scheduler", "states"))
    client(clean_stack, "sqs").create_queue(QueueName="sched-pass-q")
    target = {"Arn": f"arn:aws:sqs:{clean_stack.region}:123456789012:sched-pass-q", "RoleArn": role}
    for_states = allow("iam:PassRole", role, Condition={"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}})
    for_scheduler = allow("iam:PassRole", role, Condition={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}})
    wrong = as_keys(clean_stack, "scheduler", new_user(clean_stack, "sched-wrong", allow(["scheduler:CreateSchedule"]), for_states))
    right = as_keys(clean_stack, "scheduler", new_user(clean_stack, "sched-right", allow(["scheduler:CreateSchedule", "scheduler:UpdateSchedule"]),
                                                       for_scheduler))
    refused = message(lambda: wrong.create_schedule(Name="s", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"}, Target=target))
    assert refused.startswith("User: arn:aws:iam::123456789012:user/sched-wrong is not authorized to perform: iam:PassRole on resource: "
                              f"{role}")
    right.create_schedule(Name="s", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    other = service_role(clean_stack, "sched-other", "scheduler")
    assert code(lambda: right.update_schedule(Name="s", ScheduleExpression="rate(2 hours)", FlexibleTimeWindow={"Mode": "OFF"},
                                              Target={**target, "RoleArn": other})) == "AccessDeniedException"


def test_passrole_to_redshift_is_checked_for_a_cluster_s_iam_roles(clean_stack):
    """CreateCluster's IamRoles and ModifyClusterIamRoles' AddIamRoles give Redshift roles: a user must be allowed
    iam:PassRole on each, with iam:PassedToService redshift.amazonaws.com."""
    mine = service_role(clean_stack, "rs-pass-mine", "redshift")
    other = service_role(clean_stack, "rs-pass-other", "redshift")
    keys = new_user(clean_stack, "rs-passer", allow(["redshift:CreateCluster", "redshift:ModifyClusterIamRoles"]),
                    allow("iam:PassRole", mine, Condition={"StringEquals": {"iam:PassedToService": "redshift.amazonaws.com"}}))
    redshift = as_keys(clean_stack, "redshift", keys)
    cluster = {"NodeType": "dc2.large", "MasterUsername": "admin", "MasterUserPassword": "Passw0rd1"}
    refused = message(lambda: redshift.create_cluster(ClusterIdentifier="rs-other", IamRoles=[mine, other], **cluster))
    assert refused.startswith(f"User: arn:aws:iam::123456789012:user/rs-passer is not authorized to perform: iam:PassRole on resource: {other}")
    redshift.create_cluster(ClusterIdentifier="rs-mine", IamRoles=[mine], DefaultIamRoleArn=mine, **cluster)
    refused = message(lambda: redshift.modify_cluster_iam_roles(ClusterIdentifier="rs-mine", AddIamRoles=[other]))
    assert f"iam:PassRole on resource: {other}" in refused
