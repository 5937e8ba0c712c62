"""Bucket-policy denies and Block Public Access are enforced, with IAM's condition semantics."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from dealab.engines.iam import policy
from tests.conftest import client


def deny(condition: dict, action="s3:PutObject", resource="arn:aws:s3:::b/*") -> list:
    return policy.parse(json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": action, "Resource": resource, "Condition": condition}]}))


@pytest.mark.parametrize(
    "condition, context, denied",
    [
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "false"}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
        ({"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}, {}, True),  # negated + missing key
        ({"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}, {"s3:x-amz-server-side-encryption": "aws:kms"}, False),
        ({"StringEquals": {"s3:x-amz-server-side-encryption": "AES256"}}, {}, False),  # positive + missing key
        ({"StringEqualsIfExists": {"s3:x-amz-acl": "public-read"}}, {}, True),
        ({"Null": {"s3:x-amz-server-side-encryption": "true"}}, {}, True),
        ({"Null": {"s3:x-amz-server-side-encryption": "true"}}, {"s3:x-amz-server-side-encryption": "AES256"}, False),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "127.0.0.1"}, True),
        ({"StringLike": {"s3:prefix": "raw/*"}}, {"s3:prefix": "raw/2024"}, True),
        ({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, False),
    ],
)
def test_condition_operators(condition, context, denied):
    assert policy.explicit_deny(deny(condition), "s3:PutObject", "arn:aws:s3:::b/k", context) is denied


def test_action_and_resource_wildcards_and_not_forms():
    statements = deny({}, action="s3:Get*", resource="arn:aws:s3:::b/secret/*")
    assert policy.explicit_deny(statements, "s3:GetObject", "arn:aws:s3:::b/secret/x", {})
    assert not policy.explicit_deny(statements, "s3:PutObject", "arn:aws:s3:::b/secret/x", {})
    assert not policy.explicit_deny(statements, "s3:GetObject", "arn:aws:s3:::b/public/x", {})


def test_unsupported_operator_is_a_clear_error():
    with pytest.raises(policy.PolicyError, match="StringRoughly"):
        policy.explicit_deny(deny({"StringRoughly": {"aws:CurrentTime": "2020-01-01"}}), "s3:PutObject", "arn:aws:s3:::b/k", {})


def test_public_policy_detection():
    public = policy.parse(json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}))
    narrowed = policy.parse(json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}))
    assert policy.is_public(public) and not policy.is_public(narrowed)


def code(call) -> str:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    return "OK"


def test_policy_denies_are_enforced_through_the_stack(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="guarded")
    s3.put_bucket_policy(Bucket="guarded", Policy=json.dumps({"Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::guarded", "arn:aws:s3:::guarded/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::guarded/*", "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
    ]}))
    plain = boto3.client("s3", endpoint_url=clean_stack.insecure_endpoint_url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    assert code(lambda: s3.put_object(Bucket="guarded", Key="k", Body=b"x")) == "AccessDenied"
    assert code(lambda: s3.put_object(Bucket="guarded", Key="k", Body=b"x", ServerSideEncryption="aws:kms")) == "OK"
    assert code(lambda: plain.get_object(Bucket="guarded", Key="k")) == "AccessDenied"
    assert code(lambda: s3.get_object(Bucket="guarded", Key="k")) == "OK"
    # the owner can always fix a policy that locks them out
    s3.delete_bucket_policy(Bucket="guarded")
    assert code(lambda: s3.put_object(Bucket="guarded", Key="k2", Body=b"x")) == "OK"


def test_block_public_access_is_enforced(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="private-zone")
    public_policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::private-zone/*"}]})
    assert code(lambda: s3.put_bucket_acl(Bucket="private-zone", ACL="public-read")) == "OK"
    s3.put_public_access_block(Bucket="private-zone", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    assert code(lambda: s3.put_bucket_acl(Bucket="private-zone", ACL="public-read")) == "AccessDenied"
    assert code(lambda: s3.put_object(Bucket="private-zone", Key="k", Body=b"x", ACL="public-read")) == "AccessDenied"
    assert code(lambda: s3.put_bucket_policy(Bucket="private-zone", Policy=public_policy)) == "AccessDenied"
    s3.delete_public_access_block(Bucket="private-zone")
    assert code(lambda: s3.put_bucket_policy(Bucket="private-zone", Policy=public_policy)) == "OK"
