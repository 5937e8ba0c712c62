"""The Lambda engine end to end: functions created through the API, invoked in warm workers through the stack."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
import zipfile

import pytest

from tests.conftest import client

ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


# The functions here run as their execution role: it may do anything (tests/test_role_sessions.py tests a role's limits).
ANYTHING = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def role_arn(settings) -> str:
    iam = client(settings, "iam")
    try:
        arn = iam.create_role(RoleName="lambda-test-role", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName="lambda-test-role")["Role"]["Arn"]
    iam.put_role_policy(RoleName="lambda-test-role", PolicyName="anything", PolicyDocument=ANYTHING)
    return arn


def create(settings, source: str, name: str | None = None, **options) -> str:
    name = name or f"fn-{uuid.uuid4().hex[:8]}"
    lam = client(settings, "lambda")
    lam.create_function(FunctionName=name, Runtime=options.pop("Runtime", "python3.11"), Role=role_arn(settings),
                        Handler=options.pop("Handler", "app.handler"), Code=options.pop("Code", {"ZipFile": zip_of({"app.py": source})}), **options)
    return name


def invoke(settings, name: str, event=None, **options) -> tuple[dict, object]:
    response = client(settings, "lambda").invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), **options)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def log_messages(settings, name: str, until, timeout: float = 20.0) -> list[str]:
    logs = client(settings, "logs")
    deadline = time.monotonic() + timeout
    messages: list[str] = []
    while time.monotonic() < deadline:
        try:
            messages = [event["message"] for event in logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]]
        except logs.exceptions.ResourceNotFoundException:
            messages = []
        if until(messages):
            return messages
        time.sleep(0.2)
    raise AssertionError(f"log of {name} never satisfied the wait: {messages[-20:]}")


ECHO = """
import os
def handler(event, context):
    return {"event": event, "request_id": context.aws_request_id, "name": context.function_name,
            "version": context.function_version, "arn": context.invoked_function_arn,
            "memory": context.memory_limit_in_mb, "group": context.log_group_name, "stream": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(), "colour": os.environ.get("COLOUR"),
            "region": os.environ["AWS_REGION"], "fn_env": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "endpoint": os.environ.get("AWS_ENDPOINT_URL"), "pid": os.getpid()}
"""


def test_zip_function_sees_event_env_and_context(aws_env):
    name = create(aws_env, ECHO, Environment={"Variables": {"COLOUR": "teal"}}, MemorySize=256, Timeout=7)
    response, body = invoke(aws_env, name, {"n": 1})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert body["event"] == {"n": 1}
    assert body["name"] == body["fn_env"] == name
    assert body["version"] == "$LATEST"
    assert body["arn"].endswith(f":function:{name}")
    assert body["memory"] == "256"
    assert body["group"] == f"/aws/lambda/{name}"
    assert body["stream"].split("]")[0].endswith("[$LATEST")
    assert 0 < body["remaining"] <= 7000
    assert body["colour"] == "teal" and body["region"] == "us-east-1"
    assert body["endpoint"] in (f"http://127.0.0.1:{aws_env.port}", f"http://127.0.0.1:{aws_env.insecure_port}")
    _, again = invoke(aws_env, name, {"n": 2})
    assert again["pid"] == body["pid"], "the second invocation runs in the same warm worker"
    assert again["request_id"] != body["request_id"]


def test_code_from_s3_and_a_layer_on_the_path(aws_env):
    s3 = client(aws_env, "s3")
    s3.create_bucket(Bucket="lambda-code-test")
    s3.put_object(Bucket="lambda-code-test", Key="fn.zip", Body=zip_of({"app.py": "import helper\ndef handler(e, c):\n    return helper.greet(e['who'])\n"}))
    lam = client(aws_env, "lambda")
    layer = lam.publish_layer_version(LayerName="helpers", Content={"ZipFile": zip_of({"python/helper.py": "def greet(who):\n    return f'hello {who}'\n"})},
                                      CompatibleRuntimes=["python3.12"])
    name = create(aws_env, "", Code={"S3Bucket": "lambda-code-test", "S3Key": "fn.zip"}, Layers=[layer["LayerVersionArn"]], Runtime="python3.12")
    response, body = invoke(aws_env, name, {"who": "layer"}, LogType="Tail")
    assert "FunctionError" not in response, body
    assert body == "hello layer"
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "[WARNING] dealab runs this python3.12 function on the stack's own Python 3.11" in tail


def test_boto3_inside_the_function_reaches_the_stack(aws_env):
    client(aws_env, "s3").create_bucket(Bucket="lambda-writes")
    source = """
import boto3
def handler(event, context):
    boto3.client("s3").put_object(Bucket="lambda-writes", Key=event["key"], Body=b"from lambda")
    return "ok"
"""
    name = create(aws_env, source, Timeout=30)
    response, body = invoke(aws_env, name, {"key": "out.txt"})
    assert "FunctionError" not in response, body
    assert client(aws_env, "s3").get_object(Bucket="lambda-writes", Key="out.txt")["Body"].read() == b"from lambda"


def test_unhandled_error_has_aws_shape_and_logs_have_start_end_report(aws_env):
    source = "def handler(event, context):\n    print('about to fail')\n    raise ValueError('bad input ' + str(event['n']))\n"
    name = create(aws_env, source)
    response, body = invoke(aws_env, name, {"n": 7}, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "bad input 7"
    assert body["stackTrace"] and 'app.py", line 3, in handler' in body["stackTrace"][-1]
    tail = base64.b64decode(response["LogResult"]).decode()
    request_id = response["ResponseMetadata"]["RequestId"]
    assert f"START RequestId: {request_id} Version: $LATEST" in tail and f"END RequestId: {request_id}" in tail
    assert "[ERROR] ValueError: bad input 7" in tail
    messages = log_messages(aws_env, name, lambda lines: any(line.startswith("REPORT") for line in lines))
    report = next(line for line in messages if line.startswith("REPORT"))
    assert f"RequestId: {request_id}" in report and "Billed Duration:" in report and "Memory Size: 128 MB" in report
    assert "Max Memory Used:" in report and "Init Duration:" in report
    assert "about to fail" in messages


def test_timeout_kills_and_recycles_the_worker(aws_env):
    source = "import os, time\ndef handler(event, context):\n    if event.get('hang'):\n        time.sleep(60)\n    return os.getpid()\n"
    name = create(aws_env, source, Timeout=1)
    _, first_pid = invoke(aws_env, name, {})
    response, body = invoke(aws_env, name, {"hang": True})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")
    _, after_pid = invoke(aws_env, name, {})
    assert after_pid != first_pid, "a timed-out worker is replaced"


def test_sys_exit_and_huge_print_are_contained(aws_env):
    source = "import sys\ndef handler(event, context):\n    if event.get('exit'):\n        sys.exit(3)\n    print('x' * 1000 * 1000 * 5)\n    print('y\\n' * 200000)\n    return 'printed'\n"
    name = create(aws_env, source, Timeout=30)
    response, body = invoke(aws_env, name, {"exit": True})
    assert response["FunctionError"] == "Unhandled"
    assert body == {"errorType": "Runtime.ExitError", "errorMessage": body["errorMessage"]}
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 3")
    response, body = invoke(aws_env, name, {}, LogType="Tail")
    assert "FunctionError" not in response and body == "printed"
    assert "bytes of output were left out of this log" in base64.b64decode(response["LogResult"]).decode()


def test_reserved_concurrency_throttles(aws_env):
    name = create(aws_env, "def handler(e, c):\n    return 1\n")
    lam = client(aws_env, "lambda")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException) as raised:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert raised.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    lam.delete_function_concurrency(FunctionName=name)
    assert invoke(aws_env, name)[1] == 1


def test_versions_and_aliases_run_their_own_code(aws_env):
    lam = client(aws_env, "lambda")
    name = create(aws_env, "def handler(e, c):\n    return 'one'\n")
    version_one = lam.publish_version(FunctionName=name)["Version"]
    lam.update_function_code(FunctionName=name, ZipFile=zip_of({"app.py": "def handler(e, c):\n    return 'two'\n"}))
    lam.create_alias(FunctionName=name, Name="stable", FunctionVersion=version_one)
    assert invoke(aws_env, name)[1] == "two"
    assert invoke(aws_env, f"{name}:$LATEST")[1] == "two"
    response, body = invoke(aws_env, name, Qualifier=version_one)
    assert body == "one" and response["ExecutedVersion"] == version_one
    response, body = invoke(aws_env, f"{name}:stable")
    assert body == "one" and response["ExecutedVersion"] == version_one
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"].split(":$")[0]
    assert invoke(aws_env, f"{arn}:stable")[1] == "one"


def test_dry_run_and_image_and_unknown_function(aws_env):
    lam = client(aws_env, "lambda")
    name = create(aws_env, "def handler(e, c):\n    return 1\n")
    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    with pytest.raises(lam.exceptions.InvalidRequestContentException):
        lam.invoke(FunctionName=name, Payload=b"not json")
    lam.create_function(FunctionName="image-fn", Role=role_arn(aws_env), PackageType="Image", Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:latest"})
    with pytest.raises(lam.exceptions.InvalidRuntimeException) as raised:
        lam.invoke(FunctionName="image-fn", Payload=b"{}")
    assert "container image" in str(raised.value)


FAILING = "def handler(event, context):\n    print('attempt for', event.get('order'))\n    raise RuntimeError('cannot process ' + str(event.get('order')))\n"


def queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def receive(sqs, url: str, timeout: float = 20.0, **options) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10, **options).get("Messages", [])
        if messages:
            return messages
    return []


def attempts_logged(settings, name: str, count: int) -> list[str]:
    return log_messages(settings, name, lambda lines: sum(line.startswith("attempt for") for line in lines) >= count)


def test_async_retries_on_the_lab_clock_then_dead_letter_and_on_failure_destination(clean_stack):
    from tests.test_lifecycle_engine import advance

    settings = clean_stack
    sqs = client(settings, "sqs")
    dlq = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    failures = sqs.create_queue(QueueName="orders-failures")["QueueUrl"]
    name = create(settings, FAILING, DeadLetterConfig={"TargetArn": queue_arn(sqs, dlq)})
    lam = client(settings, "lambda")
    assert lam.get_function_configuration(FunctionName=name)["DeadLetterConfig"]["TargetArn"] == queue_arn(sqs, dlq)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=2,
                                         DestinationConfig={"OnFailure": {"Destination": queue_arn(sqs, failures)}})
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"order": 42}).encode())
    assert response["StatusCode"] == 202
    attempts_logged(settings, name, 1)
    time.sleep(1.0)
    assert sum(line.startswith("attempt for") for line in attempts_logged(settings, name, 1)) == 1, "no retry before a minute of lab time"
    advance(settings, "61s")
    attempts_logged(settings, name, 2)
    assert receive(sqs, dlq, timeout=1) == [], "the event is still being retried"
    advance(settings, "121s")
    attempts_logged(settings, name, 3)
    dead = receive(sqs, dlq, MessageAttributeNames=["All"])
    assert json.loads(dead[0]["Body"]) == {"order": 42}
    assert dead[0]["MessageAttributes"]["ErrorMessage"]["StringValue"] == "cannot process 42"
    assert dead[0]["MessageAttributes"]["RequestID"]["StringValue"] == response["ResponseMetadata"]["RequestId"]
    record = json.loads(receive(sqs, failures)[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(f":function:{name}:$LATEST")
    assert record["requestPayload"] == {"order": 42}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "RuntimeError"


def test_async_success_goes_to_the_on_success_destination(aws_env):
    sqs = client(aws_env, "sqs")
    successes = sqs.create_queue(QueueName=f"ok-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    name = create(aws_env, "def handler(e, c):\n    return {'doubled': e['n'] * 2}\n")
    lam = client(aws_env, "lambda")
    lam.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": queue_arn(sqs, successes)}})
    lam.invoke_async(FunctionName=name, InvokeArgs=json.dumps({"n": 21}))
    record = json.loads(receive(sqs, successes)[0]["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["responsePayload"] == {"doubled": 42}


def test_sns_publish_reaches_a_subscribed_function(aws_env):
    sqs, sns = client(aws_env, "sqs"), client(aws_env, "sns")
    out = sqs.create_queue(QueueName=f"sns-out-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    source = f"""
import boto3, json
def handler(event, context):
    record = event["Records"][0]
    boto3.client("sqs").send_message(QueueUrl={out!r}, MessageBody=json.dumps(record))
"""
    name = create(aws_env, source, Timeout=30)
    function_arn = client(aws_env, "lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    topic = sns.create_topic(Name=f"orders-{uuid.uuid4().hex[:6]}")["TopicArn"]
    subscription = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn)["SubscriptionArn"]
    filtered = create(aws_env, FAILING)
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=client(aws_env, "lambda").get_function(FunctionName=filtered)["Configuration"]["FunctionArn"],
                  Attributes={"FilterPolicy": json.dumps({"kind": ["refund"]})})
    message_id = sns.publish(TopicArn=topic, Message="order 7 shipped", Subject="shipping",
                             MessageAttributes={"kind": {"DataType": "String", "StringValue": "sale"}})["MessageId"]
    record = json.loads(receive(sqs, out)[0]["Body"])
    assert record["EventSource"] == "aws:sns" and record["EventSubscriptionArn"] == subscription
    assert record["Sns"]["Message"] == "order 7 shipped" and record["Sns"]["Subject"] == "shipping"
    assert record["Sns"]["MessageId"] == message_id and record["Sns"]["TopicArn"] == topic
    assert record["Sns"]["MessageAttributes"] == {"kind": {"Type": "String", "Value": "sale"}}
    time.sleep(1)
    logs = client(aws_env, "logs")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName=f"/aws/lambda/{filtered}")  # its filter policy kept the message away


def test_a_pending_async_event_survives_a_restart(private_stack):
    from tests.conftest import kill_hard
    from tests.test_lifecycle_engine import advance
    from dealab.stack import control

    settings = private_stack
    sqs = client(settings, "sqs")
    dlq = sqs.create_queue(QueueName="restart-dlq")["QueueUrl"]
    name = create(settings, FAILING, DeadLetterConfig={"TargetArn": queue_arn(sqs, dlq)})
    client(settings, "lambda").put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    client(settings, "lambda").invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"order": 9}).encode())
    attempts_logged(settings, name, 1)
    time.sleep(0.5)  # the retry is scheduled (a minute of lab time away) and written down
    kill_hard(settings)
    control.up(settings)
    advance(settings, "61s")
    attempts_logged(settings, name, 2)
    dead = receive(sqs, dlq)
    assert json.loads(dead[0]["Body"]) == {"order": 9}


def test_memory_beyond_memory_size_ends_the_invocation(aws_env):
    source = "import time\ndef handler(event, context):\n    hog = b'x' * (300 * 1024 * 1024)\n    time.sleep(0.5)\n    return len(hog)\n"
    name = create(aws_env, source, MemorySize=128, Timeout=20)
    response, body = invoke(aws_env, name)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.OutOfMemory"
