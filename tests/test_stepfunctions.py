"""Step Functions executed: integrations answered by dealab's engines through the gateway, control flow on
moto's interpreter, Waits on the lab clock, execution records that survive a restart."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dealab.stack import control
from tests.conftest import client, service_role
from tests.gluekit import upload_script
from tests.test_faults import admin as fault_admin
from tests.test_lifecycle_engine import advance

ROLE = "arn:aws:iam::123456789012:role/states"  # made by service_role in machine(), before any use
BUCKET = "sfn-test"


def machine(settings, name: str, states: dict, start: str | None = None, **options) -> str:
    definition = {"StartAt": start or next(iter(states)), "States": states}
    return client(settings, "stepfunctions").create_state_machine(name=name, definition=json.dumps(definition), roleArn=service_role(settings, "states", ("states", "events")), **options)["stateMachineArn"]


def run(settings, machine_arn: str, payload=None, timeout: float = 120, name: str | None = None) -> dict:
    sfn = client(settings, "stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(payload or {}), **({"name": name} if name else {}))["executionArn"]
    return finished(settings, arn, timeout)


def finished(settings, execution_arn: str, timeout: float = 120) -> dict:
    sfn = client(settings, "stepfunctions")
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{execution_arn} still RUNNING"
        time.sleep(0.1)
    return described


def events(settings, execution_arn: str) -> list[dict]:
    return client(settings, "stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


def until_event(settings, execution_arn: str, kind: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while kind not in [event["type"] for event in events(settings, execution_arn)]:
        assert time.monotonic() < deadline, f"no {kind} in {execution_arn}"
        time.sleep(0.1)


@pytest.fixture
def bucket(clean_stack):
    client(clean_stack, "s3").create_bucket(Bucket=BUCKET)
    return clean_stack


def shell_job(settings, name: str, source: str) -> None:
    client(settings, "glue").create_job(
        Name=name, Role=service_role(settings, "glue", "glue"), MaxCapacity=0.0625,
        Command={"Name": "pythonshell", "ScriptLocation": upload_script(settings, BUCKET, f"scripts/{name}.py", source), "PythonVersion": "3.9"},
    )


def test_glue_job_sync_succeeds_with_the_job_run_and_fails_through_retry_into_catch(bucket):
    shell_job(bucket, "ok", "print('fine')\n")
    shell_job(bucket, "broken", "raise ValueError('bad rows')\n")
    sync = "arn:aws:states:::glue:startJobRun.sync"
    good = machine(bucket, "glue-ok", {"Run": {"Type": "Task", "Resource": sync, "Parameters": {"JobName": "ok"}, "End": True}})
    done = run(bucket, good, timeout=240)
    assert done["status"] == "SUCCEEDED"
    job_run = json.loads(done["output"])
    assert job_run["JobName"] == "ok" and job_run["JobRunState"] == "SUCCEEDED" and job_run["Id"].startswith("jr_")

    bad = machine(bucket, "glue-bad", {
        "Run": {"Type": "Task", "Resource": sync, "Parameters": {"JobName": "broken"},
                "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Handled"}], "End": True},
        "Handled": {"Type": "Pass", "End": True},
    })
    caught = run(bucket, bad, {"day": "mon"}, timeout=240)
    assert caught["status"] == "SUCCEEDED"
    output = json.loads(caught["output"])
    assert output["day"] == "mon" and output["failure"]["Error"] == "States.TaskFailed"
    assert "bad rows" in json.loads(output["failure"]["Cause"])["ErrorMessage"]
    assert sorted(run["JobRunState"] for run in client(bucket, "glue").get_job_runs(JobName="broken")["JobRuns"]) == ["FAILED", "FAILED"]


def test_athena_sync_answers_with_get_query_execution(bucket):
    arn = machine(bucket, "athena", {"Query": {
        "Type": "Task", "Resource": "arn:aws:states:::athena:startQueryExecution.sync",
        "Parameters": {"QueryString": "SELECT 1 AS one", "ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/results/"}}, "End": True}})
    done = run(bucket, arn)
    assert done["status"] == "SUCCEEDED", done
    query = json.loads(done["output"])["QueryExecution"]
    assert query["Status"]["State"] == "SUCCEEDED" and query["Query"] == "SELECT 1 AS one"
    rows = client(bucket, "athena").get_query_results(QueryExecutionId=query["QueryExecutionId"])["ResultSet"]["Rows"]
    assert rows[1]["Data"][0]["VarCharValue"] == "1"


def test_nested_executions_sync_gives_a_string_output_and_sync2_a_json_one(clean_stack):
    child = machine(clean_stack, "child", {"Double": {"Type": "Pass", "Parameters": {"twice.$": "States.MathAdd($.n, $.n)"}, "End": True}})
    start = "arn:aws:states:::states:startExecution"
    parent = machine(clean_stack, "parent", {
        "V1": {"Type": "Task", "Resource": f"{start}.sync", "Parameters": {"StateMachineArn": child, "Input": {"n.$": "$.n"}}, "ResultPath": "$.v1", "Next": "V2"},
        "V2": {"Type": "Task", "Resource": f"{start}.sync:2", "Parameters": {"StateMachineArn": child, "Input": {"n.$": "$.n"}}, "ResultPath": "$.v2", "End": True},
    })
    output = json.loads(run(clean_stack, parent, {"n": 21})["output"])
    assert json.loads(output["v1"]["Output"]) == {"twice": 42}
    assert output["v2"]["Output"] == {"twice": 42} and output["v2"]["Status"] == "SUCCEEDED"
    children = client(clean_stack, "stepfunctions").list_executions(stateMachineArn=child)["executions"]
    assert [execution["status"] for execution in children] == ["SUCCEEDED", "SUCCEEDED"]


def test_wait_for_task_token_ends_with_send_task_success(clean_stack):
    sqs = client(clean_stack, "sqs")
    queue = sqs.create_queue(QueueName="approvals")["QueueUrl"]
    arn = machine(clean_stack, "approval", {"Ask": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token", "order.$": "$.order"}}, "End": True}})
    execution = client(clean_stack, "stepfunctions").start_execution(stateMachineArn=arn, input='{"order": 7}')["executionArn"]
    messages = []
    deadline = time.monotonic() + 30
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    body = json.loads(messages[0]["Body"])
    assert body["order"] == 7
    sfn = client(clean_stack, "stepfunctions")
    with pytest.raises(ClientError, match="InvalidToken"):
        sfn.send_task_success(taskToken="not-a-token", output="{}")
    sfn.send_task_success(taskToken=body["token"], output='{"approved": true}')
    assert json.loads(finished(clean_stack, execution)["output"]) == {"approved": True}
    assert "TaskSubmitted" in [event["type"] for event in events(clean_stack, execution)]


def test_a_crawler_started_by_aws_sdk_and_polled_in_a_loop(bucket):
    s3, glue = client(bucket, "s3"), client(bucket, "glue")
    s3.put_object(Bucket=BUCKET, Key="raw/orders/part-0.json", Body=b'{"id": 1, "amount": 2.5}\n{"id": 2, "amount": 4.0}\n')
    glue.create_database(DatabaseInput={"Name": "raw_db"})
    glue.create_crawler(Name="orders", Role=service_role(bucket, "crawler", "glue"), DatabaseName="raw_db",
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/raw/"}]})
    arn = machine(bucket, "crawl", {
        "Start": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:glue:startCrawler", "Parameters": {"Name": "orders"}, "ResultPath": None, "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Look"},
        "Look": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:glue:getCrawler", "Parameters": {"Name": "orders"}, "ResultSelector": {"state.$": "$.Crawler.State", "last.$": "$.Crawler.LastCrawl.Status"}, "ResultPath": "$.crawler", "Next": "Done?"},
        "Done?": {"Type": "Choice", "Choices": [{"Variable": "$.crawler.state", "StringEquals": "READY", "Next": "Done"}], "Default": "Pause"},
        "Done": {"Type": "Succeed"},
    })
    done = run(bucket, arn, timeout=180)
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["crawler"] == {"state": "READY", "last": "SUCCEEDED"}
    assert [table["Name"] for table in glue.get_tables(DatabaseName="raw_db")["TableList"]] == ["orders"]


def test_aws_sdk_errors_are_named_by_service_and_code(clean_stack):
    arn = machine(clean_stack, "sdk-error", {
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
                "Parameters": {"TableName": "missing", "Key": {"pk": {"S": "a"}}},
                "Catch": [{"ErrorEquals": ["DynamoDb.ResourceNotFoundException"], "Next": "Missing"}], "End": True},
        "Missing": {"Type": "Pass", "Result": "no table", "End": True},
    })
    assert json.loads(run(clean_stack, arn)["output"]) == "no table"


def test_map_parallel_and_jsonata(clean_stack):
    arn = machine(clean_stack, "flow", {
        "Fan": {"Type": "Parallel", "Branches": [
            {"StartAt": "Squares", "States": {"Squares": {"Type": "Map", "ItemsPath": "$.numbers", "MaxConcurrency": 2,
                                                           "ItemProcessor": {"StartAt": "Sq", "States": {"Sq": {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($, 1)"}, "End": True}}},
                                                           "End": True}}},
            {"StartAt": "Count", "States": {"Count": {"Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($.numbers)"}, "End": True}}},
        ], "Next": "Sum"},
        "Sum": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% {'total': $sum($states.input[0].v), 'count': $states.input[1].n} %}", "End": True},
    })
    done = run(clean_stack, arn, {"numbers": [1, 2, 3]})
    assert json.loads(done["output"]) == {"total": 9, "count": 3}
    kinds = [event["type"] for event in events(clean_stack, done["executionArn"])]
    assert {"ParallelStateEntered", "MapStateEntered", "MapIterationSucceeded", "PassStateEntered", "ExecutionSucceeded"} <= set(kinds)


def test_history_names_events_as_aws_does(clean_stack):
    table = client(clean_stack, "dynamodb")
    table.create_table(TableName="seen", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    arn = machine(clean_stack, "history", {
        "Put": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "Parameters": {"TableName": "seen", "Item": {"pk": {"S.$": "$.id"}}}, "ResultPath": None, "Next": "Nap"},
        "Nap": {"Type": "Wait", "Seconds": 0, "Next": "End"},
        "End": {"Type": "Succeed"},
    })
    done = run(clean_stack, arn, {"id": "x"})
    history = events(clean_stack, done["executionArn"])
    assert [event["type"] for event in history] == [
        "ExecutionStarted", "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited",
        "WaitStateEntered", "WaitStateExited", "SucceedStateEntered", "SucceedStateExited", "ExecutionSucceeded"]
    assert [event["id"] for event in history] == list(range(1, len(history) + 1))
    assert history[0]["timestamp"] >= done["startDate"] and history[-1]["timestamp"] <= done["stopDate"]
    assert table.get_item(TableName="seen", Key={"pk": {"S": "x"}})["Item"]
    assert client(clean_stack, "stepfunctions").describe_state_machine_for_execution(executionArn=done["executionArn"])["name"] == "history"


def test_a_one_day_wait_is_released_by_a_clock_advance(clean_stack):
    arn = machine(clean_stack, "nightly", {"Night": {"Type": "Wait", "Seconds": 86400, "Next": "Morning"}, "Morning": {"Type": "Pass", "End": True}})
    execution = client(clean_stack, "stepfunctions").start_execution(stateMachineArn=arn)["executionArn"]
    until_event(clean_stack, execution, "WaitStateEntered")
    advance(clean_stack, "1d")
    done = finished(clean_stack, execution, timeout=10)
    assert done["status"] == "SUCCEEDED"
    assert (done["stopDate"] - done["startDate"]).total_seconds() >= 86400


def test_a_scheduled_execution_ends_within_the_clock_move_and_an_injected_fault_meets_its_retry(bucket):
    shell_job(bucket, "nightly", "print('night done')\n")
    arn = machine(bucket, "scheduled", {
        "Run": {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync", "Parameters": {"JobName": "nightly"},
                "Retry": [{"ErrorEquals": ["Glue.ThrottlingException"], "IntervalSeconds": 600, "MaxAttempts": 2}], "Next": "Rest"},
        "Rest": {"Type": "Wait", "Seconds": 1800, "End": True}})
    client(bucket, "events").put_rule(Name="nightly", ScheduleExpression="cron(0 2 * * ? *)")
    client(bucket, "events").put_targets(Rule="nightly", Targets=[{"Id": "machine", "Arn": arn, "RoleArn": ROLE}])
    # with this seed the rule fails the first StartJobRun it sees and passes the next ones
    fault_admin(bucket, {"action": "set", "rules": ["glue:StartJobRun rate=0.5 seed=night-2"]})
    try:
        advance(bucket, "2d")
    finally:
        fault_admin(bucket, {"action": "clear", "targets": []})
    executions = client(bucket, "stepfunctions").list_executions(stateMachineArn=arn)["executions"]
    # nothing polled: the move went on from each night only once its execution had ended
    assert [execution["status"] for execution in executions] == ["SUCCEEDED", "SUCCEEDED"]
    first = min(executions, key=lambda execution: execution["startDate"])
    assert (first["startDate"].hour, first["startDate"].minute) == (2, 0)
    failures = [event["taskFailedEventDetails"]["error"] for event in events(bucket, first["executionArn"]) if event["type"] == "TaskFailed"]
    assert failures == ["Glue.ThrottlingException"]


def test_start_sync_execution_answers_express_machines_only(clean_stack):
    express = machine(clean_stack, "quick", {"Go": {"Type": "Pass", "Parameters": {"ok.$": "$.x"}, "End": True}}, type="EXPRESS")
    # boto3 sends StartSyncExecution to sync-<host>; an IP endpoint has no such name (docs/stepfunctions.md)
    sfn = boto3.client("stepfunctions", endpoint_url=clean_stack.endpoint_url, region_name=clean_stack.region, aws_access_key_id="test",
                       aws_secret_access_key="test", config=Config(inject_host_prefix=False))
    answer = sfn.start_sync_execution(stateMachineArn=express, input='{"x": 1}')
    assert answer["status"] == "SUCCEEDED" and json.loads(answer["output"]) == {"ok": 1}
    failing = machine(clean_stack, "quick-fail", {"No": {"Type": "Fail", "Error": "Bad", "Cause": "said no"}}, type="EXPRESS")
    failed = sfn.start_sync_execution(stateMachineArn=failing)
    assert (failed["status"], failed["error"], failed["cause"]) == ("FAILED", "Bad", "said no")
    standard = machine(clean_stack, "slow", {"Go": {"Type": "Pass", "End": True}})
    with pytest.raises(ClientError, match="StateMachineTypeNotSupported"):
        sfn.start_sync_execution(stateMachineArn=standard)


def test_redrive_runs_a_failed_execution_again_from_the_failed_state(clean_stack):
    ddb = client(clean_stack, "dynamodb")
    arn = machine(clean_stack, "redrive", {
        "First": {"Type": "Pass", "Result": "once", "ResultPath": "$.first", "Next": "Read"},
        "Read": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem", "Parameters": {"TableName": "late", "Key": {"pk": {"S": "a"}}}, "ResultSelector": {"v.$": "$.Item.v.S"}, "ResultPath": "$.read", "End": True},
    })
    failed = run(clean_stack, arn, {"id": 1})
    assert failed["status"] == "FAILED" and failed["error"] == "DynamoDB.ResourceNotFoundException"
    ddb.create_table(TableName="late", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="late", Item={"pk": {"S": "a"}, "v": {"S": "found"}})
    sfn = client(clean_stack, "stepfunctions")
    sfn.redrive_execution(executionArn=failed["executionArn"])
    done = finished(clean_stack, failed["executionArn"])
    assert done["status"] == "SUCCEEDED" and done["redriveCount"] == 1
    assert json.loads(done["output"]) == {"id": 1, "first": "once", "read": {"v": "found"}}
    kinds = [event["type"] for event in events(clean_stack, failed["executionArn"])]
    assert kinds.count("PassStateEntered") == 1 and kinds.count("ExecutionFailed") == 1
    assert kinds.index("ExecutionRedriven") == kinds.index("ExecutionFailed") + 1 and kinds[-1] == "ExecutionSucceeded"
    with pytest.raises(ClientError, match="ExecutionNotRedrivable"):
        sfn.redrive_execution(executionArn=failed["executionArn"])


@pytest.mark.parametrize("definition, words", [
    ({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}, "MISSING_TRANSITION_TARGET: Missing 'Next' target: Nowhere at /States/A/Next"),
    ({"StartAt": "A", "States": {"A": {"Type": "Sleep", "End": True}}}, "SCHEMA_VALIDATION_FAILED: Value is not one of"),
    ({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "SCHEMA_VALIDATION_FAILED: Exactly one of [Next, End] is required at /States/A"),
    ({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}, "B": {"Type": "Pass", "End": True}}}, "UNREACHABLE_STATE: State 'B' is not reachable."),
    ({"StartAt": "A", "States": {"A": {"Type": "Task", "End": True}}}, "SCHEMA_VALIDATION_FAILED: These fields are required: [Resource] at /States/A"),
])
def test_invalid_definitions_are_refused_in_aws_words(clean_stack, definition, words):
    sfn = client(clean_stack, "stepfunctions")
    with pytest.raises(ClientError) as refused:
        sfn.create_state_machine(name="bad", definition=json.dumps(definition), roleArn=service_role(clean_stack, "states", "states"))
    assert refused.value.response["Error"]["Code"] == "InvalidDefinition"
    assert refused.value.response["Error"]["Message"].startswith("Invalid State Machine Definition: '")
    assert words in refused.value.response["Error"]["Message"]
    good = machine(clean_stack, "good", {"A": {"Type": "Pass", "End": True}})
    with pytest.raises(ClientError, match="InvalidDefinition"):
        sfn.update_state_machine(stateMachineArn=good, definition=json.dumps(definition))


def test_a_waiting_execution_waits_on_after_a_restart_and_one_mid_task_fails(private_stack):
    sfn, sqs = client(private_stack, "stepfunctions"), client(private_stack, "sqs")
    queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    waiting = machine(private_stack, "waits", {
        "Before": {"Type": "Pass", "Result": 1, "ResultPath": "$.before", "Next": "Night"},
        "Night": {"Type": "Wait", "Seconds": 86400, "Next": "After"},
        "After": {"Type": "Pass", "Result": 2, "ResultPath": "$.after", "End": True}})
    tasked = machine(private_stack, "tasks", {"Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                                                      "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}, "End": True}})
    sleeper = sfn.start_execution(stateMachineArn=waiting, name="sleeper", input='{"id": 5}')["executionArn"]
    asker = sfn.start_execution(stateMachineArn=tasked, name="asker")["executionArn"]
    until_event(private_stack, sleeper, "WaitStateEntered")
    until_event(private_stack, asker, "TaskSubmitted")

    control.down(private_stack)
    control.up(private_stack)

    sfn = client(private_stack, "stepfunctions")
    assert sfn.describe_execution(executionArn=sleeper)["status"] == "RUNNING"
    mid_task = sfn.describe_execution(executionArn=asker)
    assert mid_task["status"] == "FAILED" and "stopped while this execution was running in state 'Ask'" in mid_task["cause"]
    advance(private_stack, "1d")
    done = finished(private_stack, sleeper, timeout=10)
    assert json.loads(done["output"]) == {"id": 5, "before": 1, "after": 2}
    kinds = [event["type"] for event in events(private_stack, sleeper)]
    assert kinds == ["ExecutionStarted", "PassStateEntered", "PassStateExited", "WaitStateEntered", "WaitStateExited",
                     "PassStateEntered", "PassStateExited", "ExecutionSucceeded"]


def test_lambda_invoke_gives_the_payload_and_a_function_error_fails_the_task(clean_stack):
    from tests.test_lambda import create

    doubler = create(clean_stack, "def handler(event, context):\n    return {'twice': event['n'] * 2}\n")
    failing = create(clean_stack, "def handler(event, context):\n    raise ValueError('no such order')\n")
    invoke = "arn:aws:states:::lambda:invoke"
    arn = machine(clean_stack, "lambdas", {
        "Double": {"Type": "Task", "Resource": invoke, "Parameters": {"FunctionName": doubler, "Payload.$": "$"}, "ResultSelector": {"v.$": "$.Payload.twice"}, "ResultPath": "$.double", "Next": "Fail"},
        "Fail": {"Type": "Task", "Resource": invoke, "Parameters": {"FunctionName": failing, "Payload": {}}, "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Pass", "End": True},
    })
    output = json.loads(run(clean_stack, arn, {"n": 4})["output"])
    assert output["double"] == {"v": 8}
    assert output["failure"]["Error"] == "ValueError"  # AWS names a function's error by its errorType
    assert json.loads(output["failure"]["Cause"])["errorMessage"] == "no such order"
