"""Secrets Manager rotation (dealab/engines/secrets): the rotation function's four steps, version stages, schedules on
the lab clock, failures; the rules' arithmetic as unit tests."""

from __future__ import annotations

import datetime
import json
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from dealab.engines.secrets import schedule
from dealab.wire import labtime
from dealab.wire.engine import EngineContext
from dealab.wire.timers import timers
from tests.conftest import admin_headers, client
from tests.test_lambda import create, log_messages

# AWS's rotation template (aws-samples/aws-secrets-manager-rotation-lambdas), cut to what a secret without a
# database needs; FAIL_STEP makes one step raise, as a broken rotation function would.
ROTATION_FUNCTION = '''
import os, boto3
sm = boto3.client("secretsmanager")

def handler(event, context):
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    print("STEP", step, token)
    metadata = sm.describe_secret(SecretId=arn)
    if not metadata["RotationEnabled"]:
        raise ValueError("Secret %s is not enabled for rotation" % arn)
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        raise ValueError("Secret version %s has no stage for rotation of secret %s." % (token, arn))
    if "AWSCURRENT" in versions[token]:
        return
    if "AWSPENDING" not in versions[token]:
        raise ValueError("Secret version %s not set as AWSPENDING for rotation of secret %s." % (token, arn))
    if os.environ.get("FAIL_STEP") == step:
        raise RuntimeError("cannot reach the database")
    if step == "createSecret":
        current = sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
        try:
            sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except sm.exceptions.ResourceNotFoundException:
            sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=current + "+", VersionStages=["AWSPENDING"])
    elif step == "testSecret":
        sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    elif step == "finishSecret":
        current = next(v for v, stages in sm.describe_secret(SecretId=arn)["VersionIdsToStages"].items() if "AWSCURRENT" in stages)
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current)
'''


# ---- the rules, as units --------------------------------------------------------------------------------------------
def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


@pytest.mark.parametrize("rules, last, due", [
    ({"AutomaticallyAfterDays": 7}, "2026-03-01T15:20", "2026-03-08T00:00"),  # day windows start at midnight UTC
    ({"ScheduleExpression": "rate(10 days)"}, "2026-03-01T15:20", "2026-03-11T00:00"),
    ({"ScheduleExpression": "rate(6 hours)"}, "2026-03-01T15:20", "2026-03-01T21:20"),
    ({"ScheduleExpression": "cron(0 4 ? * SUN *)", "Duration": "3h"}, "2026-03-01T15:20", "2026-03-08T04:00"),  # 2026-03-01 is a Sunday
    ({"ScheduleExpression": "cron(0 4 1 * ? *)"}, "2026-03-01T03:00", "2026-03-01T04:00"),
])
def test_next_rotation_is_the_start_of_the_next_window(rules, last, due):
    assert schedule.next_rotation(schedule.check(rules), at(last)) == at(due)


@pytest.mark.parametrize("rules, words", [
    ({"AutomaticallyAfterDays": 0}, "within 1-1000"),
    ({"AutomaticallyAfterDays": 3, "ScheduleExpression": "rate(3 days)"}, "both"),
    ({"ScheduleExpression": "rate(2 hours)"}, "from 4 to 23"),
    ({"ScheduleExpression": "cron(0 4 * * * *)"}, "'?'"),  # AWS cron: one day field must be ?
    ({"ScheduleExpression": "cron(0 * * * ? *)"}, "more often"),
    ({"ScheduleExpression": "rate(1 day)", "Duration": "30h"}, "1h to 24h"),
    ({"Duration": "2h"}, "AutomaticallyAfterDays or ScheduleExpression"),
])
def test_rules_aws_refuses_are_refused_with_a_reason(rules, words):
    with pytest.raises(schedule.RulesError) as refused:
        schedule.check(rules)
    assert words in str(refused.value)


def test_a_scheduled_rotation_is_rescheduled_from_the_state_file_after_a_restart(tmp_path):
    from dealab.engines.secrets import SecretsEngine

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
    state = {arn: {"arn": arn, "name": "db", "region": "us-east-1", "lambda": "arn:aws:lambda:us-east-1:123456789012:function:rot",
                   "rules": {"AutomaticallyAfterDays": 2}, "enabled": True, "last_rotated": 1_800_000_000.0,
                   "started": 1_800_000_000.0, "pending": None}}
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "rotations.json").write_text(json.dumps(state))
    engine = SecretsEngine(EngineContext("http://127.0.0.1:9", "us-east-1", tmp_path))
    try:
        last = labtime.EPOCH + datetime.timedelta(seconds=1_800_000_000)
        assert timers.due_at("secrets", arn) == last.replace(hour=0, minute=0, second=0) + datetime.timedelta(days=2)
    finally:
        engine.close()
    assert timers.due_at("secrets", arn) is None


def test_a_long_clock_move_rotates_in_the_last_window_not_in_every_one(tmp_path):
    from dealab.engines.secrets import SecretsEngine

    engine = SecretsEngine(EngineContext("http://127.0.0.1:9", "us-east-1", tmp_path))
    rules = {"AutomaticallyAfterDays": 1}
    try:
        timers.moving_to(at("2028-03-01T12:00+00:00"))  # a move under way to this moment (the clock engine's: aware)
        assert engine._catch_up("s", rules, at("2026-03-02T00:00")) == at("2028-03-01T00:00")
        assert timers.skipped() == {"secrets:s": 730}
        assert engine._catch_up("s", rules, at("2028-03-02T00:00")) == at("2028-03-02T00:00")  # beyond the move: as due
    finally:
        timers.moving_to(None)
        engine.close()
    assert engine._catch_up("s", rules, at("2026-03-02T00:00")) == at("2026-03-02T00:00")  # time just passing: every window


# ---- end to end -------------------------------------------------------------------------------------------------------
def advance(settings, by: str) -> None:
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/clock", data=json.dumps({"action": "advance", "by": by}).encode(),
                                     method="POST", headers={"Content-Type": "application/json", **admin_headers(settings)})
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()


def rotations(settings) -> dict:
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/secrets/rotations", headers=admin_headers(settings))
    with urllib.request.urlopen(request, timeout=30) as response:
        return {record["name"]: record for record in json.loads(response.read())["rotations"]}


def settled(settings, name: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = rotations(settings).get(name, {})
        if not record.get("running") and (record.get("failure") or not record.get("pending")):
            return record
        time.sleep(0.1)
    raise AssertionError(f"the rotation of {name} never settled: {rotations(settings).get(name)}")


def stages(sm, name: str) -> dict:
    """Each version's labels, as a set (their order is the backend's)."""
    return {version: set(labels) for version, labels in sm.describe_secret(SecretId=name)["VersionIdsToStages"].items()}


@pytest.fixture
def secret_and_function(clean_stack):
    return secret_with_function(clean_stack)


def secret_with_function(settings):
    sm = client(settings, "secretsmanager")
    first = sm.create_secret(Name="db-password", SecretString="v1")["VersionId"]
    function = create(settings, ROTATION_FUNCTION, Environment={"Variables": {"FAIL_STEP": ""}})
    aws_lambda = client(settings, "lambda")
    arn = aws_lambda.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    with pytest.raises(ClientError) as refused:  # AWS: the function's policy must let Secrets Manager invoke it
        sm.rotate_secret(SecretId="db-password", RotationLambdaARN=arn)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException" and "secretsmanager.amazonaws.com" in str(refused.value)
    aws_lambda.add_permission(FunctionName=function, StatementId="secrets", Action="lambda:InvokeFunction", Principal="secretsmanager.amazonaws.com")
    return sm, first, function, arn


def test_rotate_immediately_runs_the_four_steps_and_moves_the_labels(clean_stack, secret_and_function):
    sm, first, function, arn = secret_and_function
    token = sm.rotate_secret(SecretId="db-password", RotationLambdaARN=arn, RotationRules={"AutomaticallyAfterDays": 7})["VersionId"]
    record = settled(clean_stack, "db-password")
    assert record["failure"] is None
    # AWS: "When rotation is successful, the AWSPENDING staging label might be attached to the same version as the
    # AWSCURRENT version": the template's finishSecret moves AWSCURRENT only
    assert stages(sm, "db-password") == {first: {"AWSPREVIOUS"}, token: {"AWSCURRENT", "AWSPENDING"}}
    assert sm.get_secret_value(SecretId="db-password")["SecretString"] == "v1+"
    described = sm.describe_secret(SecretId="db-password")
    assert described["RotationEnabled"] and described["RotationLambdaARN"] == arn
    assert described["RotationRules"] == {"AutomaticallyAfterDays": 7}
    rotated = described["LastRotatedDate"]
    midnight = rotated.replace(hour=0, minute=0, second=0, microsecond=0)
    assert described["NextRotationDate"] == midnight + datetime.timedelta(days=7)

    def steps(messages):
        return [message.split()[1] for message in messages if message.startswith("STEP")]

    messages = log_messages(clean_stack, function, lambda messages: len(steps(messages)) >= 4)
    assert steps(messages) == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert {message.split()[2].strip() for message in messages if message.startswith("STEP")} == {token}

    advance(clean_stack, "8d")  # past NextRotationDate: the schedule rotates on the lab clock
    after = stages(sm, "db-password")
    current = next(version for version, labels in after.items() if "AWSCURRENT" in labels)
    assert current not in (first, token) and after[token] == {"AWSPREVIOUS"} and after[first] == set()
    assert sm.get_secret_value(SecretId="db-password")["SecretString"] == "v1++"
    assert abs(sm.describe_secret(SecretId="db-password")["LastRotatedDate"] - described["NextRotationDate"]) < datetime.timedelta(minutes=1)


def test_a_failing_step_leaves_awspending_and_is_reattempted_once_fixed(clean_stack, secret_and_function):
    sm, first, function, arn = secret_and_function
    aws_lambda = client(clean_stack, "lambda")
    aws_lambda.update_function_configuration(FunctionName=function, Environment={"Variables": {"FAIL_STEP": "testSecret"}})
    token = sm.rotate_secret(SecretId="db-password", RotationLambdaARN=arn, RotationRules={"ScheduleExpression": "rate(10 days)"})["VersionId"]
    record = settled(clean_stack, "db-password")
    assert record["failure"]["step"] == "testSecret" and "cannot reach the database" in record["failure"]["message"]
    assert stages(sm, "db-password") == {first: {"AWSCURRENT"}, token: {"AWSPENDING"}}
    assert sm.get_secret_value(SecretId="db-password")["SecretString"] == "v1"  # readers still get the old value
    assert "LastRotatedDate" not in sm.describe_secret(SecretId="db-password")
    trail = client(clean_stack, "cloudtrail").lookup_events(LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "secretsmanager.amazonaws.com"}])
    service_events = [json.loads(event["CloudTrailEvent"]) for event in trail["Events"] if event["EventName"].startswith("Rotation")]
    failed = next(event for event in service_events if event["eventName"] == "RotationFailed")
    assert failed["eventType"] == "AwsServiceEvent" and ":secret:db-password-" in failed["additionalEventData"]["SecretId"]
    assert "cannot reach the database" in failed["serviceEventDetails"]["failureReason"]
    assert {event["eventName"] for event in service_events} == {"RotationStarted", "RotationFailed"}

    # the window comes, the rotation is reattempted and fails again; the next try is the next window, not at once
    window = sm.describe_secret(SecretId="db-password")["NextRotationDate"]
    advance(clean_stack, "11d")
    assert rotations(clean_stack)["db-password"]["failure"]["at"] >= window.timestamp()
    assert sm.describe_secret(SecretId="db-password")["NextRotationDate"] == window + datetime.timedelta(days=10)
    aws_lambda.update_function_configuration(FunctionName=function, Environment={"Variables": {"FAIL_STEP": ""}})
    again = sm.rotate_secret(SecretId="db-password")["VersionId"]  # the stored configuration, the same version
    assert again == token
    assert settled(clean_stack, "db-password")["failure"] is None
    assert stages(sm, "db-password") == {first: {"AWSPREVIOUS"}, token: {"AWSCURRENT", "AWSPENDING"}}


def test_a_failure_before_createsecret_leaves_an_empty_pending_version(clean_stack, secret_and_function):
    sm, first, function, arn = secret_and_function
    client(clean_stack, "lambda").update_function_configuration(FunctionName=function, Environment={"Variables": {"FAIL_STEP": "createSecret"}})
    token = sm.rotate_secret(SecretId="db-password", RotationLambdaARN=arn)["VersionId"]
    assert settled(clean_stack, "db-password")["failure"]["step"] == "createSecret"
    assert stages(sm, "db-password") == {first: {"AWSCURRENT"}, token: {"AWSPENDING"}}
    with pytest.raises(ClientError) as missing:
        sm.get_secret_value(SecretId="db-password", VersionId=token)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # taking the label off by hand, as AWS's troubleshooting guide says, clears the way
    sm.update_secret_version_stage(SecretId="db-password", VersionStage="AWSPENDING", RemoveFromVersionId=token)
    assert stages(sm, "db-password") == {first: {"AWSCURRENT"}}


def test_a_cron_schedule_tests_first_and_rotates_in_its_window(clean_stack, secret_and_function):
    sm, first, function, arn = secret_and_function
    with pytest.raises(ClientError) as refused:
        sm.rotate_secret(SecretId="db-password", RotationLambdaARN=arn, RotationRules={"ScheduleExpression": "rate(1 hours)"})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as refused:
        sm.rotate_secret(SecretId="db-password", RotationLambdaARN=arn + "-missing", RotationRules={"AutomaticallyAfterDays": 1})
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"

    answer = sm.rotate_secret(SecretId="db-password", RotationLambdaARN=arn, RotateImmediately=False,
                              RotationRules={"ScheduleExpression": "cron(0 4 * * ? *)", "Duration": "2h"})
    assert "VersionId" not in answer
    assert settled(clean_stack, "db-password")["failure"] is None
    assert {version: labels for version, labels in stages(sm, "db-password").items() if labels} == {first: {"AWSCURRENT"}}  # the test version: no label
    assert sm.get_secret_value(SecretId="db-password")["SecretString"] == "v1"
    described = sm.describe_secret(SecretId="db-password")
    due = described["NextRotationDate"]
    assert (due.hour, due.minute) == (4, 0) and described["RotationRules"]["Duration"] == "2h"
    advance(clean_stack, "1d")
    assert sm.get_secret_value(SecretId="db-password")["SecretString"] == "v1+"
    assert abs(sm.describe_secret(SecretId="db-password")["LastRotatedDate"] - due) < datetime.timedelta(minutes=1)


def test_the_schedule_survives_kill_9(private_stack):
    from dealab.stack import control
    from tests.conftest import kill_hard

    sm, first, function, arn = secret_with_function(private_stack)
    token = sm.rotate_secret(SecretId="db-password", RotationLambdaARN=arn, RotationRules={"AutomaticallyAfterDays": 3})["VersionId"]
    assert settled(private_stack, "db-password")["failure"] is None
    due = sm.describe_secret(SecretId="db-password")["NextRotationDate"]
    kill_hard(private_stack)
    control.up(private_stack)
    described = sm.describe_secret(SecretId="db-password")
    assert described["RotationEnabled"] and described["NextRotationDate"] == due and described["RotationRules"] == {"AutomaticallyAfterDays": 3}
    advance(private_stack, "4d")
    assert sm.get_secret_value(SecretId="db-password")["SecretString"] == "v1++"
    assert stages(sm, "db-password")[token] == {"AWSPREVIOUS"}
