"""Lambda event source mappings end to end: SQS (partial batch failures, the DLQ), Kinesis (bisect, the
on-failure destination), DynamoDB Streams (INSERT/MODIFY/REMOVE) and a restart that resumes where it left off.

Each function reports what it was given to an observer queue, which the test reads."""

from __future__ import annotations

import base64
import json
import time
import uuid

from dealab.stack import control
from tests.conftest import client
from tests.test_lambda import create, zip_of
from tests.test_role_sessions import allow, role

# The function body shared by the tests: it sends its event to the observer queue, then runs `decide`.
OBSERVED = """
import base64, json, boto3
sqs = boto3.client('sqs')
def handler(event, context):
    sqs.send_message(QueueUrl='{observer}', MessageBody=json.dumps(event))
{decide}
"""


def _queue(settings, name: str | None = None, **attributes) -> tuple[str, str]:
    sqs = client(settings, "sqs")
    url = sqs.create_queue(QueueName=name or f"q-{uuid.uuid4().hex[:8]}", Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _function(settings, observer: str, decide: str = "    return None") -> str:
    name = create(settings, OBSERVED.format(observer=observer, decide=decide))
    return name


def _bodies(settings, url: str, until, timeout: float = 30.0) -> list[dict]:
    """JSON bodies read off a queue (and deleted) until `until(bodies)` holds."""
    sqs = client(settings, "sqs")
    bodies: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if until(bodies):
            return bodies
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError(f"queue never held what was waited for; got {bodies}")


def _records(events: list[dict]) -> list[dict]:
    return [record for event in events for record in event["Records"]]


def test_sqs_mapping_partial_batch_failure_and_dlq(aws_env):
    lam, sqs = client(aws_env, "lambda"), client(aws_env, "sqs")
    observer, _ = _queue(aws_env)
    dlq_url, dlq_arn = _queue(aws_env)
    source_url, source_arn = _queue(aws_env, VisibilityTimeout="2",
                                    RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}))
    decide = ("    return {'batchItemFailures': [{'itemIdentifier': r['messageId']} for r in event['Records'] if r['body'].startswith('bad')]}")
    name = _function(aws_env, observer, decide)
    lam.invoke(FunctionName=name, Payload=json.dumps({"Records": []}).encode())  # warm: a cold start longer than the visibility timeout redelivers
    _bodies(aws_env, observer, lambda got: len(got) == 1)
    for body in ("ok-1", "ok-2", "bad-1"):
        sqs.send_message(QueueUrl=source_url, MessageBody=body, MessageAttributes={"colour": {"DataType": "String", "StringValue": "teal"}})
    mapping = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=source_arn, BatchSize=10,
                                              FunctionResponseTypes=["ReportBatchItemFailures"])
    assert mapping["State"] == "Creating" and mapping["BatchSize"] == 10

    dead: list[dict] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not dead:
        dead = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])
    assert [message["Body"] for message in dead] == ["bad-1"]
    records = _records(_bodies(aws_env, observer, lambda got: sum(len(e["Records"]) for e in got) >= 4))
    seen = [record["body"] for record in records]
    assert sorted(seen) == ["bad-1", "bad-1", "ok-1", "ok-2"]  # the failed item twice (maxReceiveCount), the rest once
    record = records[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == source_arn and record["awsRegion"] == "us-east-1"
    assert record["messageAttributes"]["colour"] == {"stringValue": "teal", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    assert {"ApproximateReceiveCount", "SentTimestamp"} <= set(record["attributes"]) and record["md5OfBody"] and record["receiptHandle"]
    attributes = sqs.get_queue_attributes(QueueUrl=source_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    assert attributes["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Disabled"
    sqs.send_message(QueueUrl=source_url, MessageBody="while-disabled")
    time.sleep(1.5)
    assert sqs.get_queue_attributes(QueueUrl=source_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"] == "1"
    assert lam.delete_event_source_mapping(UUID=mapping["UUID"])["State"] == "Deleting"


def test_sqs_fifo_mapping_keeps_one_group_in_order(aws_env):
    """A FIFO queue's message group reaches the function in the order sent, one batch after the other, though
    the mapping polls with two threads (the group stays in flight until its batch is deleted)."""
    lam, sqs = client(aws_env, "lambda"), client(aws_env, "sqs")
    observer, _ = _queue(aws_env)
    source_url, source_arn = _queue(aws_env, f"fifo-{uuid.uuid4().hex[:8]}.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    name = _function(aws_env, observer)
    sent = [f"m{n:02d}" for n in range(25)]
    for start in range(0, len(sent), 10):
        sqs.send_message_batch(QueueUrl=source_url, Entries=[{"Id": str(n), "MessageBody": body, "MessageGroupId": "one"}
                                                             for n, body in enumerate(sent[start:start + 10])])
    lam.create_event_source_mapping(FunctionName=name, EventSourceArn=source_arn, BatchSize=10)
    events = _bodies(aws_env, observer, lambda got: sum(len(e["Records"]) for e in got) >= len(sent))
    records = _records(events)
    assert [record["body"] for record in records] == sent
    assert all(len(event["Records"]) <= 10 for event in events)
    assert {record["attributes"]["MessageGroupId"] for record in records} == {"one"}
    assert all(record["attributes"]["MessageDeduplicationId"] for record in records)


def test_kinesis_mapping_bisects_and_reports_to_on_failure_destination(aws_env):
    lam, kinesis = client(aws_env, "lambda"), client(aws_env, "kinesis")
    observer, _ = _queue(aws_env)
    failures_url, failures_arn = _queue(aws_env)
    decide = ("    if any(base64.b64decode(r['kinesis']['data']) == b'bad' for r in event['Records']):\n"
              "        raise ValueError('bad record')")
    name = _function(aws_env, observer, decide)
    stream = f"s-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    stream_arn = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
    sequences = {data: kinesis.put_record(StreamName=stream, Data=data.encode(), PartitionKey="k")["SequenceNumber"]
                 for data in ("a", "b", "bad", "c")}
    lam.create_event_source_mapping(FunctionName=name, EventSourceArn=stream_arn, StartingPosition="TRIM_HORIZON", BatchSize=10,
                                    BisectBatchOnFunctionError=True, MaximumRetryAttempts=0,
                                    DestinationConfig={"OnFailure": {"Destination": failures_arn}})
    failure, = _bodies(aws_env, failures_url, lambda got: len(got) >= 1)
    info = failure["KinesisBatchInfo"]
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted" and failure["version"] == "1.0"
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == info["endSequenceNumber"] == sequences["bad"]
    assert info["shardId"] == "shardId-000000000000" and info["streamArn"] == stream_arn
    # c alone is invoked after bad alone was reported, so the failure can arrive before c's last batch is seen
    records = _records(_bodies(aws_env, observer, lambda got: len(_records(got)) >= 10))
    processed = [base64.b64decode(record["kinesis"]["data"]).decode() for record in records]
    # the whole batch, then its halves, then the bad half's halves: a and b together, bad alone, c alone
    assert processed == ["a", "b", "bad", "c", "a", "b", "bad", "c", "bad", "c"]
    record = records[0]
    assert record["eventSource"] == "aws:kinesis" and record["eventName"] == "aws:kinesis:record" and record["eventSourceARN"] == stream_arn
    assert record["kinesis"]["sequenceNumber"] == sequences["a"] and record["eventID"] == f"shardId-000000000000:{sequences['a']}"
    assert record["kinesis"]["partitionKey"] == "k" and isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)


def test_dynamodb_streams_mapping_sees_insert_modify_remove(aws_env):
    lam, dynamodb = client(aws_env, "lambda"), client(aws_env, "dynamodb")
    observer, _ = _queue(aws_env)
    name = _function(aws_env, observer)
    table = f"t-{uuid.uuid4().hex[:8]}"
    stream_arn = dynamodb.create_table(
        TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    lam.create_event_source_mapping(FunctionName=name, EventSourceArn=stream_arn, StartingPosition="LATEST", BatchSize=100)
    time.sleep(1.0)  # LATEST: records from the mapping's first poll on
    dynamodb.put_item(TableName=table, Item={"id": {"S": "1"}, "n": {"N": "1"}})
    dynamodb.update_item(TableName=table, Key={"id": {"S": "1"}}, UpdateExpression="SET n = :two", ExpressionAttributeValues={":two": {"N": "2"}})
    dynamodb.delete_item(TableName=table, Key={"id": {"S": "1"}})
    records = _records(_bodies(aws_env, observer, lambda got: len(_records(got)) >= 3))
    assert [record["eventName"] for record in records] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = records
    assert insert["dynamodb"]["Keys"] == {"id": {"S": "1"}} and insert["dynamodb"]["NewImage"]["n"] == {"N": "1"}
    assert modify["dynamodb"]["OldImage"]["n"] == {"N": "1"} and modify["dynamodb"]["NewImage"]["n"] == {"N": "2"}
    assert remove["dynamodb"]["OldImage"]["n"] == {"N": "2"} and "NewImage" not in remove["dynamodb"]
    assert insert["eventSource"] == "aws:dynamodb" and insert["eventSourceARN"] == stream_arn
    assert isinstance(insert["dynamodb"]["ApproximateCreationDateTime"], int) and "userIdentity" not in remove


def test_stream_mapping_resumes_after_restart(private_stack):
    settings = private_stack
    lam, kinesis = client(settings, "lambda"), client(settings, "kinesis")
    observer, _ = _queue(settings)
    name = _function(settings, observer)
    kinesis.create_stream(StreamName="resume", ShardCount=1)
    stream_arn = kinesis.describe_stream(StreamName="resume")["StreamDescription"]["StreamARN"]
    lam.create_event_source_mapping(FunctionName=name, EventSourceArn=stream_arn, StartingPosition="TRIM_HORIZON", BatchSize=10)

    def data(events):
        return [base64.b64decode(record["kinesis"]["data"]).decode() for record in _records(events)]

    for value in ("one", "two"):
        kinesis.put_record(StreamName="resume", Data=value.encode(), PartitionKey="k")
    assert data(_bodies(settings, observer, lambda got: len(data(got)) >= 2)) == ["one", "two"]
    control.down(settings)
    control.up(settings)
    kinesis = client(settings, "kinesis")
    kinesis.put_record(StreamName="resume", Data=b"three", PartitionKey="k")
    later = _bodies(settings, observer, lambda got: "three" in data(got))
    assert data(later) == ["three"]  # nothing of before the restart again


def test_an_sqs_mapping_polls_as_the_functions_role(aws_env):
    """CreateEventSourceMapping refuses a role that may not read the queue, in Lambda's words; a mapping whose role
    loses the permission shows the PROBLEM and polls again once the role has it back."""
    lam, iam, sqs = client(aws_env, "lambda"), client(aws_env, "iam"), client(aws_env, "sqs")
    observer, _ = _queue(aws_env)
    source_url, source_arn = _queue(aws_env, VisibilityTimeout="2")  # a batch received as the role lost it comes back soon
    name = f"esm-role-{uuid.uuid4().hex[:8]}"
    arn = role(aws_env, name, "lambda.amazonaws.com", allow("sqs:SendMessage"))
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=arn, Handler="app.handler", Timeout=30,
                        Code={"ZipFile": zip_of({"app.py": OBSERVED.format(observer=observer, decide="    return None")})})
    try:
        lam.create_event_source_mapping(FunctionName=name, EventSourceArn=source_arn)
        raise AssertionError("a role that may not read the queue was accepted")
    except lam.exceptions.InvalidParameterValueException as error:
        assert "The provided execution role does not have permissions to call ReceiveMessage on SQS" in str(error)

    reader = {"Version": "2012-10-17", "Statement": [allow("sqs:SendMessage"),
                                                     allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], source_arn)]}
    iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps(reader))
    mapping = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=source_arn)["UUID"]
    sqs.send_message(QueueUrl=source_url, MessageBody="first")
    assert [r["body"] for r in _records(_bodies(aws_env, observer, lambda got: len(got) == 1))] == ["first"]

    iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow("sqs:SendMessage")]}))
    deadline = time.monotonic() + 30
    result = ""
    while time.monotonic() < deadline and not result.startswith("PROBLEM"):
        result = lam.get_event_source_mapping(UUID=mapping).get("LastProcessingResult", "")
        time.sleep(0.3)
    assert result == "PROBLEM: The function's execution role does not have permissions to call ReceiveMessage on SQS"
    sqs.send_message(QueueUrl=source_url, MessageBody="second")

    iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps(reader))
    # a long poll let through before the policy changed may have received it once already (its delete was refused)
    _bodies(aws_env, observer, lambda got: "second" in [r["body"] for r in _records(got)])
    assert not lam.get_event_source_mapping(UUID=mapping).get("LastProcessingResult", "").startswith("PROBLEM")
    lam.delete_event_source_mapping(UUID=mapping)
