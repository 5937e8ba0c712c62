"""S3 event notifications end to end: to SQS, to SNS (and on to SQS), to Lambda; filters, record shape, the
test event, S3's refusals, and lifecycle expirations raising s3:LifecycleExpiration:*."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import client
from tests.test_lifecycle_engine import advance


def _queue(settings, name: str | None = None) -> tuple[str, str]:
    sqs = client(settings, "sqs")
    url = sqs.create_queue(QueueName=name or f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _bucket(settings, versioned: bool = False) -> str:
    name = f"notify-{uuid.uuid4().hex[:10]}"
    s3 = client(settings, "s3")
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _drain(settings, url: str, expected: int, timeout: float = 10.0) -> list[dict]:
    """The message bodies on a queue (JSON), once `expected` have arrived; then a short look for any extra."""
    sqs = client(settings, "sqs")
    bodies: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait = 1 if len(bodies) < expected else 0
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get("Messages", [])
        if not messages and len(bodies) >= expected:
            break
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _records(bodies: list[dict]) -> list[dict]:
    return [record for body in bodies for record in body.get("Records", [])]


def _filter(prefix: str = "", suffix: str = "") -> dict:
    rules = [{"Name": "prefix", "Value": prefix}] * bool(prefix) + [{"Name": "suffix", "Value": suffix}] * bool(suffix)
    return {"Key": {"FilterRules": rules}}


def test_s3_to_sqs_with_prefix_and_suffix_filters_and_aws_record_shape(aws_env):
    s3 = client(aws_env, "s3")
    url, arn = _queue(aws_env)
    bucket = _bucket(aws_env, versioned=True)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"Id": "csv-landing", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": _filter("landing/", ".csv")},
        {"Id": "removals", "QueueArn": arn, "Events": ["s3:ObjectRemoved:DeleteMarkerCreated"]},
    ]})
    test_event, = _drain(aws_env, url, 1)
    assert test_event["Event"] == "s3:TestEvent" and test_event["Service"] == "Amazon S3" and test_event["Bucket"] == bucket

    put = s3.put_object(Bucket=bucket, Key="landing/day one.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket=bucket, Key="landing/notes.txt", Body=b"no")      # suffix does not match
    s3.put_object(Bucket=bucket, Key="other/x.csv", Body=b"no")            # prefix does not match
    s3.copy_object(Bucket=bucket, Key="landing/copy.csv", CopySource={"Bucket": bucket, "Key": "landing/day one.csv"})
    s3.delete_object(Bucket=bucket, Key="landing/day one.csv")             # a delete marker
    records = _records(_drain(aws_env, url, 3))
    assert [r["eventName"] for r in records] == ["ObjectCreated:Put", "ObjectCreated:Copy", "ObjectRemoved:DeleteMarkerCreated"]
    created = records[0]
    assert created["eventVersion"] == "2.1" and created["eventSource"] == "aws:s3" and created["awsRegion"] == "us-east-1"
    assert created["eventTime"].endswith("Z") and len(created["eventTime"]) == len("2024-01-01T00:00:00.000Z")
    body = created["s3"]
    assert body["configurationId"] == "csv-landing" and body["s3SchemaVersion"] == "1.0"
    assert body["bucket"]["name"] == bucket and body["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert body["object"]["key"] == "landing/day+one.csv"  # URL-encoded as S3 sends it
    assert body["object"]["size"] == 8 and body["object"]["eTag"] == put["ETag"].strip('"')
    assert body["object"]["versionId"] == put["VersionId"]
    assert int(records[1]["s3"]["object"]["sequencer"], 16) > int(body["object"]["sequencer"], 16)
    assert records[2]["s3"]["configurationId"] == "removals" and "versionId" in records[2]["s3"]["object"]


def test_s3_to_sns_fans_out_to_sqs_and_deletions_by_version_are_deletes(aws_env):
    s3, sns = client(aws_env, "s3"), client(aws_env, "sns")
    url, queue_arn = _queue(aws_env)
    topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})
    bucket = _bucket(aws_env)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"TopicConfigurations": [
        {"Id": "all-removed", "TopicArn": topic, "Events": ["s3:ObjectRemoved:*"]},
        {"Id": "json-created", "TopicArn": topic, "Events": ["s3:ObjectCreated:Put"], "Filter": _filter(suffix=".json")},
    ]})
    envelopes = _drain(aws_env, url, 1)
    assert json.loads(envelopes[0]["Message"])["Event"] == "s3:TestEvent"
    s3.put_object(Bucket=bucket, Key="a.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="b.txt", Body=b"x")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a.json"}, {"Key": "b.txt"}]})
    envelopes = _drain(aws_env, url, 3)
    assert all(envelope["Type"] == "Notification" and envelope["Subject"] == "Amazon S3 Notification" for envelope in envelopes)
    records = _records([json.loads(envelope["Message"]) for envelope in envelopes])
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in records] == [
        ("ObjectCreated:Put", "a.json"), ("ObjectRemoved:Delete", "a.json"), ("ObjectRemoved:Delete", "b.txt")]


def test_overlapping_configurations_and_missing_destinations_are_refused(aws_env):
    s3 = client(aws_env, "s3")
    _, arn = _queue(aws_env)
    bucket = _bucket(aws_env)

    def put(configurations):
        with pytest.raises(ClientError) as refused:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configurations})
        return refused.value.response["Error"]

    error = put([{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}, {"QueueArn": arn, "Events": ["s3:ObjectCreated:Put"]}])
    assert error["Code"] == "InvalidArgument" and error["Message"].startswith("Configurations overlap")
    error = put([{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": _filter("logs/")},
                 {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": _filter("logs/2024/")}])
    assert error["Code"] == "InvalidArgument" and "overlapping" in error["Message"]
    error = put([{"QueueArn": arn.replace(arn.rpartition(":")[2], "no-such-queue"), "Events": ["s3:ObjectCreated:*"]}])
    assert error["Code"] == "InvalidArgument" and error["Message"] == "Unable to validate the following destination configurations"
    # disjoint prefixes, or different event types, are fine
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": _filter("logs/")},
        {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": _filter("data/")},
        {"QueueArn": arn, "Events": ["s3:ObjectRemoved:*"]}]})
    assert len(s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]) == 3


def test_s3_to_lambda_invokes_asynchronously_with_the_record(aws_env):
    from tests.test_lambda import create

    s3, sqs = client(aws_env, "s3"), client(aws_env, "sqs")
    url, _ = _queue(aws_env)
    source = ("import boto3, json\n"
              "def handler(event, context):\n"
              f"    boto3.client('sqs').send_message(QueueUrl='{url}', MessageBody=json.dumps(event))\n")
    function_arn = client(aws_env, "lambda").get_function(FunctionName=create(aws_env, source))["Configuration"]["FunctionArn"]
    bucket = _bucket(aws_env)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"LambdaFunctionConfigurations": [
        {"Id": "to-lambda", "LambdaFunctionArn": function_arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket=bucket, Key="in/x.csv", Body=b"1")
    record, = _records(_drain(aws_env, url, 1, timeout=30))  # no s3:TestEvent goes to a function
    assert record["eventName"] == "ObjectCreated:Put" and record["s3"]["configurationId"] == "to-lambda"
    assert record["s3"]["object"]["key"] == "in/x.csv"
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_lifecycle_expiration_raises_lifecycle_events(aws_env):
    s3 = client(aws_env, "s3")
    url, arn = _queue(aws_env)
    bucket = _bucket(aws_env)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"Id": "expired", "QueueArn": arn, "Events": ["s3:LifecycleExpiration:*"]},
        {"Id": "removed", "QueueArn": arn, "Events": ["s3:ObjectRemoved:*"]}]})
    _drain(aws_env, url, 1)  # the test event
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}]})
    s3.put_object(Bucket=bucket, Key="tmp/old.csv", Body=b"1")
    advance(aws_env, "3d")
    record, = _records(_drain(aws_env, url, 1))
    assert record["eventName"] == "LifecycleExpiration:Delete" and record["s3"]["configurationId"] == "expired"
    assert record["userIdentity"]["principalId"] == "s3.amazonaws.com" and record["s3"]["object"]["key"] == "tmp/old.csv"
