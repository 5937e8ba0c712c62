"""CloudTrail: records of every call (root and IAM users, errors, data events by selectors), LookupEvents,
trail files and digests on the lab clock, EventBridge events, S3 server access logs, Athena over the trail."""

from __future__ import annotations

import gzip
import hashlib
import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

import threading

from werkzeug.serving import make_server

from dealab.engines.cloudtrail import CloudTrailEngine
from dealab.stack.backend import EmbeddedMoto
from dealab.stack.control import free_port_pair
from dealab.stack.gateway import Gateway
from dealab.stack.journal import Journal
from dealab.wire.engine import EngineContext
from tests.conftest import admin_headers, client
from tests.test_lifecycle_engine import advance

ACCOUNT = "123456789012"


def trail_policy(bucket: str, prefix: str = "") -> str:
    """The bucket policy AWS documents for CloudTrail delivery."""
    path = f"{prefix}/" if prefix else ""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}"},
        {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/{path}AWSLogs/{ACCOUNT}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}},
    ]})


def lookup(cloudtrail, key: str, value: str) -> list[dict]:
    return cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])["Events"]


def make_trail(clean_stack, name="audit", bucket="audit-logs", prefix="", validation=False) -> tuple:
    s3, cloudtrail = client(clean_stack, "s3"), client(clean_stack, "cloudtrail")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=trail_policy(bucket, prefix))
    cloudtrail.create_trail(Name=name, S3BucketName=bucket, **({"S3KeyPrefix": prefix} if prefix else {}),
                            EnableLogFileValidation=validation)
    cloudtrail.start_logging(Name=name)
    return s3, cloudtrail


def trail_records(s3, bucket: str, prefix: str = "") -> tuple[list[str], list[dict]]:
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "AWSLogs/").get("Contents", [])
            if "/CloudTrail/" in item["Key"]]
    records = []
    for key in keys:
        records += json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))["Records"]
    return keys, records


def test_management_event_as_root(clean_stack):
    s3, cloudtrail = client(clean_stack, "s3"), client(clean_stack, "cloudtrail")
    s3.create_bucket(Bucket="ct-root-bucket")
    events = lookup(cloudtrail, "EventName", "CreateBucket")
    assert len(events) == 1
    event = events[0]
    assert event["Username"] == "root" and event["AccessKeyId"] == "test" and event["ReadOnly"] == "false"
    assert event["Resources"] == [{"ResourceType": "AWS::S3::Bucket", "ResourceName": "ct-root-bucket"}]
    record = json.loads(event["CloudTrailEvent"])
    assert record["eventVersion"] == "1.09"
    assert record["userIdentity"] == {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root",
                                      "accountId": ACCOUNT, "accessKeyId": "test"}
    assert record["eventSource"] == "s3.amazonaws.com" and record["eventName"] == "CreateBucket"
    assert record["awsRegion"] == "us-east-1" and record["sourceIPAddress"] == "127.0.0.1"
    assert record["userAgent"].startswith("Boto3/")
    assert record["requestParameters"]["bucketName"] == "ct-root-bucket"
    assert record["responseElements"] is None
    assert record["eventCategory"] == "Management" and record["managementEvent"] is True and record["readOnly"] is False
    assert record["recipientAccountId"] == ACCOUNT and record["eventType"] == "AwsApiCall"
    assert record["requestID"] and record["eventID"] == event["EventId"]
    # JSON services: members in lowerCamelCase, the answer of a mutating call kept
    dynamodb = client(clean_stack, "dynamodb")
    dynamodb.create_table(TableName="ct-orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    record = json.loads(lookup(cloudtrail, "EventName", "CreateTable")[0]["CloudTrailEvent"])
    assert record["eventSource"] == "dynamodb.amazonaws.com"
    assert record["requestParameters"]["tableName"] == "ct-orders"
    assert record["responseElements"]["tableDescription"]["tableName"] == "ct-orders"
    dynamodb.describe_table(TableName="ct-orders")
    described = lookup(cloudtrail, "EventName", "DescribeTable")[0]
    assert described["ReadOnly"] == "true" and json.loads(described["CloudTrailEvent"])["responseElements"] is None


@pytest.fixture(scope="module")
def bare_gateway(tmp_path_factory):
    """A gateway without the door (which knows only the stack's own keys) in front of the CloudTrail engine:
    an IAM user's key reaches the engine as it will once IAM keys are admitted."""
    port = free_port_pair()
    state = tmp_path_factory.mktemp("cloudtrail-gateway")
    context = EngineContext(f"http://127.0.0.1:{port}", "us-east-1", state)
    engine = CloudTrailEngine(context)
    gateway = Gateway(EmbeddedMoto(Journal(state / "journal")), [engine])
    context.loopback.attach(gateway)
    server = make_server("127.0.0.1", port, gateway, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    engine.close()
    server.shutdown()
    thread.join(5)


def test_iam_user_key_is_the_user(bare_gateway):
    def make(service, key="test", secret="test"):
        return boto3.client(service, endpoint_url=bare_gateway, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret)

    iam = make("iam")
    user = iam.create_user(UserName="ct-alice")["User"]
    key = iam.create_access_key(UserName="ct-alice")["AccessKey"]
    alice = make("glue", key["AccessKeyId"], key["SecretAccessKey"])
    alice.create_database(DatabaseInput={"Name": "ct_alice_db"})
    events = make("cloudtrail").lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "ct-alice"}])["Events"]
    assert [event["EventName"] for event in events] == ["CreateDatabase"]
    assert events[0]["AccessKeyId"] == key["AccessKeyId"]
    assert events[0]["Resources"] == [{"ResourceType": "AWS::Glue::Database", "ResourceName": "ct_alice_db"}]
    record = json.loads(events[0]["CloudTrailEvent"])
    assert record["userIdentity"] == {"type": "IAMUser", "principalId": user["UserId"], "arn": user["Arn"], "accountId": ACCOUNT,
                                      "accessKeyId": key["AccessKeyId"], "userName": "ct-alice"}
    assert record["eventSource"] == "glue.amazonaws.com" and record["requestParameters"] == {"databaseInput": {"name": "ct_alice_db"}}
    by_key = make("cloudtrail").lookup_events(LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": key["AccessKeyId"]}])
    assert [event["EventId"] for event in by_key["Events"]] == [events[0]["EventId"]]
    # the engine's own IAM lookups are not the learner's activity
    assert not make("cloudtrail").lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GetAccessKeyLastUsed"}])["Events"]
