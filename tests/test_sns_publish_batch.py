"""SNS PublishBatch: each accepted entry reaches the topic's Lambda and SQS subscribers as a Publish of it would,
with its own message id, subject, attributes and MessageStructure, and each subscription's filter policy."""

from __future__ import annotations

import json
import time
import uuid

from tests.conftest import client
from tests.test_lambda import create, queue_arn, receive

# Forwards every SNS record it gets to a queue, so the test sees what the function saw.
FORWARDS = """
import boto3, json
def handler(event, context):
    for record in event["Records"]:
        boto3.client("sqs").send_message(QueueUrl={out!r}, MessageBody=json.dumps(record))
"""


def _attribute(kind: str) -> dict:
    return {"kind": {"DataType": "String", "StringValue": kind}}


def _all_messages(sqs, url: str, count: int, timeout: float = 20.0) -> list[dict]:
    messages, deadline = [], time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        batch = receive(sqs, url, timeout=max(deadline - time.monotonic(), 0.1))
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def test_publish_batch_entries_reach_lambda_and_sqs_subscribers_through_their_filter_policies(aws_env):
    sqs, sns, lam = client(aws_env, "sqs"), client(aws_env, "sns"), client(aws_env, "lambda")
    tag = uuid.uuid4().hex[:6]
    seen_by_function = sqs.create_queue(QueueName=f"batch-seen-{tag}")["QueueUrl"]
    refunds = sqs.create_queue(QueueName=f"batch-refunds-{tag}")["QueueUrl"]
    function = create(aws_env, FORWARDS.format(out=seen_by_function), Timeout=30)
    topic = sns.create_topic(Name=f"batch-{tag}")["TopicArn"]
    sales_subscription = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"],
                                       Attributes={"FilterPolicy": json.dumps({"kind": ["sale"]})})["SubscriptionArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, refunds),
                  Attributes={"FilterPolicy": json.dumps({"kind": ["refund"]}), "RawMessageDelivery": "true"})

    answer = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "first", "Message": "order 1 sold", "Subject": "sales", "MessageAttributes": _attribute("sale")},
        {"Id": "second", "Message": "order 2 refunded", "MessageAttributes": _attribute("refund")},
        {"Id": "third", "Message": json.dumps({"default": "order 3 (default)", "lambda": "order 3 for functions"}),
         "MessageStructure": "json", "MessageAttributes": _attribute("sale")},
        {"Id": "fourth", "Message": "no kind: filtered out everywhere"},
    ])
    assert answer["Failed"] == [] and len(answer["Successful"]) == 4
    ids = {entry["Id"]: entry["MessageId"] for entry in answer["Successful"]}

    records = [json.loads(message["Body"]) for message in _all_messages(sqs, seen_by_function, 2)]
    by_message = {record["Sns"]["Message"]: record["Sns"] for record in records}
    assert set(by_message) == {"order 1 sold", "order 3 for functions"}
    assert by_message["order 1 sold"]["MessageId"] == ids["first"] and by_message["order 1 sold"]["Subject"] == "sales"
    assert by_message["order 3 for functions"]["MessageId"] == ids["third"]
    assert by_message["order 1 sold"]["MessageAttributes"] == {"kind": {"Type": "String", "Value": "sale"}}
    assert all(record["EventSubscriptionArn"] == sales_subscription and record["Sns"]["TopicArn"] == topic for record in records)
    assert [message["Body"] for message in _all_messages(sqs, refunds, 1)] == ["order 2 refunded"]
    time.sleep(1)  # nothing else arrives: the unmatched entries went nowhere
    assert receive(sqs, seen_by_function, timeout=1) == [] and receive(sqs, refunds, timeout=1) == []
