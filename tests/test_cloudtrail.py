"""CloudTrail: records of every call (root and IAM users, errors, data events by selectors), LookupEvents,
trail files and digests on the lab clock, EventBridge events, S3 server access logs, Athena over the trail."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
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


def faults(settings, payload: dict) -> dict:
    import urllib.request

    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/faults", data=json.dumps(payload).encode(), method="POST",
                                     headers=admin_headers(settings))
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_errors_are_recorded_as_the_caller_saw_them(clean_stack):
    from botocore.config import Config

    s3, cloudtrail = client(clean_stack, "s3"), client(clean_stack, "cloudtrail")
    with pytest.raises(ClientError):
        s3.delete_bucket(Bucket="ct-no-such-bucket")
    record = json.loads(lookup(cloudtrail, "EventName", "DeleteBucket")[0]["CloudTrailEvent"])
    assert record["errorCode"] == "NoSuchBucket" and "does not exist" in record["errorMessage"]
    assert record["responseElements"] is None
    # an injected fault is recorded as the error the caller got
    faults(clean_stack, {"action": "set", "rules": ["glue:GetDatabases rate=1 error=throttling"]})
    try:
        glue = boto3.client("glue", endpoint_url=clean_stack.endpoint_url, region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test", config=Config(retries={"max_attempts": 1, "mode": "standard"}))
        with pytest.raises(ClientError) as refused:
            glue.get_databases()
    finally:
        faults(clean_stack, {"action": "clear", "targets": ["glue:GetDatabases"]})
    record = json.loads(lookup(cloudtrail, "EventName", "GetDatabases")[0]["CloudTrailEvent"])
    assert record["errorCode"] == refused.value.response["Error"]["Code"]
    assert record["readOnly"] is True


def test_lookup_events_by_every_attribute_and_page(clean_stack):
    s3, cloudtrail = client(clean_stack, "s3"), client(clean_stack, "cloudtrail")
    for number in range(3):
        s3.create_bucket(Bucket=f"ct-page-{number}")
    s3.list_buckets()
    created = lookup(cloudtrail, "EventName", "CreateBucket")
    assert [json.loads(e["CloudTrailEvent"])["requestParameters"]["bucketName"] for e in created] == ["ct-page-2", "ct-page-1", "ct-page-0"]
    event = created[1]
    assert [e["EventId"] for e in lookup(cloudtrail, "EventId", event["EventId"])] == [event["EventId"]]
    assert {e["EventName"] for e in lookup(cloudtrail, "ReadOnly", "true")} >= {"ListBuckets"}
    assert "CreateBucket" not in {e["EventName"] for e in lookup(cloudtrail, "ReadOnly", "true")}
    assert len(lookup(cloudtrail, "Username", "root")) >= 4
    assert [e["EventName"] for e in lookup(cloudtrail, "ResourceName", "ct-page-1")] == ["CreateBucket"]
    assert len(lookup(cloudtrail, "ResourceType", "AWS::S3::Bucket")) == 3
    assert {e["EventSource"] for e in lookup(cloudtrail, "EventSource", "s3.amazonaws.com")} == {"s3.amazonaws.com"}
    assert len(lookup(cloudtrail, "AccessKeyId", "test")) >= 4
    # pages of one, newest first, and nothing after the end time
    pages, token = [], None
    while True:
        answer = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateBucket"}],
                                          MaxResults=1, **({"NextToken": token} if token else {}))
        pages += [e["EventId"] for e in answer["Events"]]
        token = answer.get("NextToken")
        if not token:
            break
    assert pages == [e["EventId"] for e in created]
    assert not cloudtrail.lookup_events(EndTime=created[-1]["EventTime"].timestamp() - 1)["Events"]
    with pytest.raises(ClientError, match="InvalidLookupAttributes"):
        cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "x"},
                                                   {"AttributeKey": "ReadOnly", "AttributeValue": "true"}])
    # 90 days of lab time: older events are pruned as the clock moves
    advance(clean_stack, "91d")
    assert not lookup(cloudtrail, "EventName", "CreateBucket")


def test_data_events_only_as_selectors_say_and_files_in_the_key_layout(clean_stack):
    s3, cloudtrail = make_trail(clean_stack, prefix="org")
    s3.create_bucket(Bucket="ct-data")
    s3.put_object(Bucket="ct-data", Key="off/a.csv", Body=b"1")  # no data events by default
    cloudtrail.put_event_selectors(TrailName="audit", EventSelectors=[{
        "ReadWriteType": "All", "IncludeManagementEvents": True,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::ct-data/basic/"]}]}])
    s3.put_object(Bucket="ct-data", Key="basic/b.csv", Body=b"2")
    s3.put_object(Bucket="ct-data", Key="elsewhere/c.csv", Body=b"3")  # outside the selector's prefix
    cloudtrail.put_event_selectors(TrailName="audit", AdvancedEventSelectors=[
        {"Name": "management", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
        {"Name": "deletes", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                               {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                                               {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::ct-data/"]},
                                               {"Field": "eventName", "NotEquals": ["GetObject"]},
                                               {"Field": "readOnly", "Equals": ["false"]}]}])
    assert "EventSelectors" not in cloudtrail.get_event_selectors(TrailName="audit")
    s3.get_object(Bucket="ct-data", Key="basic/b.csv")  # GetObject is not selected
    s3.delete_object(Bucket="ct-data", Key="elsewhere/c.csv")
    assert not lookup(cloudtrail, "EventName", "PutObject")  # data events never reach the event history
    assert "LatestDeliveryTime" not in cloudtrail.get_trail_status(Name="audit")
    advance(clean_stack, "10m")
    keys, records = trail_records(s3, "audit-logs", "org/")
    assert keys and all(key.startswith(f"org/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/") and key.endswith(".json.gz") for key in keys)
    name = keys[0].rsplit("/", 1)[1]
    assert name.startswith(f"{ACCOUNT}_CloudTrail_us-east-1_") and len(name.split("_")) == 5
    data = [(r["eventName"], r["requestParameters"]["key"]) for r in records if r["eventCategory"] == "Data"]
    assert data == [("PutObject", "basic/b.csv"), ("DeleteObject", "elsewhere/c.csv")]
    put = next(r for r in records if r["eventName"] == "PutObject")
    assert put["managementEvent"] is False and put["readOnly"] is False
    assert put["resources"][0] == {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::ct-data/basic/b.csv"}
    assert {"CreateBucket", "PutEventSelectors"} <= {r["eventName"] for r in records}
    status = cloudtrail.get_trail_status(Name="audit")
    assert status["IsLogging"] and status["LatestDeliveryTime"] and "LatestDeliveryError" not in status


def test_digest_files_chain_and_verify(clean_stack):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    s3, cloudtrail = make_trail(clean_stack, name="validated", bucket="ct-validated", validation=True)
    s3.create_bucket(Bucket="ct-digest-one")
    advance(clean_stack, "10m")
    s3.create_bucket(Bucket="ct-digest-two")
    advance(clean_stack, "70m")
    listing = s3.list_objects_v2(Bucket="ct-validated", Prefix=f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/")["Contents"]
    assert len(listing) == 1
    key = listing[0]["Key"]
    assert key.rsplit("/", 1)[1].startswith(f"{ACCOUNT}_CloudTrail-Digest_us-east-1_validated_us-east-1_")
    stored = s3.get_object(Bucket="ct-validated", Key=key)
    content = gzip.decompress(stored["Body"].read())
    digest = json.loads(content)
    log_keys, _ = trail_records(s3, "ct-validated")
    assert sorted(item["s3Object"] for item in digest["logFiles"]) == sorted(log_keys)
    for item in digest["logFiles"]:
        body = gzip.decompress(s3.get_object(Bucket="ct-validated", Key=item["s3Object"])["Body"].read())
        assert item["hashValue"] == hashlib.sha256(body).hexdigest()
    public = cloudtrail.list_public_keys()["PublicKeyList"][0]
    assert public["Fingerprint"] == digest["digestPublicKeyFingerprint"]
    key_object = serialization.load_der_public_key(public["Value"])
    signed = f"{digest['digestEndTime']}\nct-validated/{key}\n{hashlib.sha256(content).hexdigest()}\nnull".encode()
    key_object.verify(bytes.fromhex(stored["Metadata"]["signature"]), signed, padding.PKCS1v15(), hashes.SHA256())
    assert stored["Metadata"]["signature-algorithm"] == "SHA256withRSA"
    assert cloudtrail.get_trail_status(Name="validated")["LatestDigestDeliveryTime"]


def test_bucket_without_the_cloudtrail_policy(clean_stack):
    s3, cloudtrail = client(clean_stack, "s3"), client(clean_stack, "cloudtrail")
    s3.create_bucket(Bucket="ct-unwritable")
    with pytest.raises(ClientError, match="InsufficientS3BucketPolicyException"):
        cloudtrail.create_trail(Name="refused", S3BucketName="ct-unwritable")
    # a policy taken away after the trail was made: delivery fails with AccessDenied in the trail's status
    s3, cloudtrail = make_trail(clean_stack, name="later", bucket="ct-later")
    s3.delete_bucket_policy(Bucket="ct-later")
    advance(clean_stack, "10m")
    assert cloudtrail.get_trail_status(Name="later")["LatestDeliveryError"] == "AccessDenied"
    assert not trail_records(s3, "ct-later")[0]


def wait_for_messages(sqs, queue_url: str, count: int, seconds: float = 15) -> list[dict]:
    found, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline and len(found) < count:
        found += [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])]
    return found


def test_eventbridge_gets_mutating_events_and_read_only_ones_only_when_asked(clean_stack):
    events, sqs = client(clean_stack, "events"), client(clean_stack, "sqs")
    mutating = sqs.create_queue(QueueName="ct-mutating")["QueueUrl"]
    everything = sqs.create_queue(QueueName="ct-everything")["QueueUrl"]
    arn = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # noqa: E731
    pattern = json.dumps({"source": ["aws.glue"], "detail-type": ["AWS API Call via CloudTrail"]})
    events.put_rule(Name="ct-writes", EventPattern=pattern)
    events.put_targets(Rule="ct-writes", Targets=[{"Id": "q", "Arn": arn(mutating)}])
    events.put_rule(Name="ct-all", EventPattern=pattern, State="ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS")
    events.put_targets(Rule="ct-all", Targets=[{"Id": "q", "Arn": arn(everything)}])
    glue = client(clean_stack, "glue")
    glue.create_database(DatabaseInput={"Name": "ct_events_db"})
    glue.get_database(Name="ct_events_db")
    seen_all = wait_for_messages(sqs, everything, 2)
    assert sorted(e["detail"]["eventName"] for e in seen_all) == ["CreateDatabase", "GetDatabase"]
    seen_writes = wait_for_messages(sqs, mutating, 1)
    time.sleep(1)
    seen_writes += wait_for_messages(sqs, mutating, 1, seconds=1)
    assert [e["detail"]["eventName"] for e in seen_writes] == ["CreateDatabase"]
    event = seen_writes[0]
    assert event["source"] == "aws.glue" and event["detail-type"] == "AWS API Call via CloudTrail"
    assert event["detail"]["eventSource"] == "glue.amazonaws.com" and event["detail"]["userIdentity"]["type"] == "Root"


def test_s3_server_access_logs(clean_stack):
    s3 = client(clean_stack, "s3")
    for bucket in ("ct-site", "ct-site-logs", "ct-parted"):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_acl(Bucket="ct-site-logs", GrantWrite="uri=http://acs.amazonaws.com/groups/s3/LogDelivery",
                      GrantReadACP="uri=http://acs.amazonaws.com/groups/s3/LogDelivery")
    s3.put_bucket_logging(Bucket="ct-site", BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": "ct-site-logs", "TargetPrefix": "simple/"}})
    s3.put_bucket_logging(Bucket="ct-parted", BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": "ct-site-logs", "TargetPrefix": "parted/",
        "TargetObjectKeyFormat": {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}}})
    assert s3.get_bucket_logging(Bucket="ct-parted")["LoggingEnabled"]["TargetObjectKeyFormat"] == {"PartitionedPrefix": {"PartitionDateSource": "EventTime"}}
    s3.put_object(Bucket="ct-site", Key="index.html", Body=b"<html/>")
    with pytest.raises(ClientError):
        s3.get_object(Bucket="ct-site", Key="missing.html")
    s3.put_object(Bucket="ct-parted", Key="x.txt", Body=b"x")
    advance(clean_stack, "10m")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="ct-site-logs")["Contents"]]
    simple = [key for key in keys if key.startswith("simple/")]
    assert len(simple) == 1 and len(simple[0].split("/", 1)[1]) == len("2024-01-01-00-00-00-") + 16
    parted = [key for key in keys if key.startswith("parted/")]
    assert len(parted) == 1 and parted[0].startswith(f"parted/{ACCOUNT}/us-east-1/ct-parted/")
    lines = s3.get_object(Bucket="ct-site-logs", Key=simple[0])["Body"].read().decode().splitlines()
    put = next(line for line in lines if "REST.PUT.OBJECT" in line)
    fields = re.findall(r'"[^"]*"|\[[^\]]*\]|\S+', put)
    assert len(fields) == 26
    assert fields[1] == "ct-site" and re.fullmatch(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\]", fields[2])
    assert fields[3] == "127.0.0.1" and fields[6] == "REST.PUT.OBJECT" and fields[7] == "index.html"
    assert fields[8] == '"PUT /ct-site/index.html HTTP/1.1"' and fields[9] == "200" and fields[10] == "-"
    assert fields[12] == "7" and fields[19] == "SigV4" and fields[21] == "AuthHeader"
    missing = next(line for line in lines if "missing.html" in line)
    assert " REST.GET.OBJECT missing.html " in missing and " 404 NoSuchKey " in missing


# "Querying AWS CloudTrail logs" (Athena user guide): the table, and its partition-projection variant
CLOUDTRAIL_COLUMNS = """
eventversion STRING,
useridentity STRUCT<
               type:STRING,
               principalid:STRING,
               arn:STRING,
               accountid:STRING,
               invokedby:STRING,
               accesskeyid:STRING,
               username:STRING,
               onbehalfof: STRUCT<
                    userid: STRING,
                    identitystorearn: STRING>,
  sessioncontext:STRUCT<
    attributes:STRUCT<
               mfaauthenticated:STRING,
               creationdate:STRING>,
    sessionissuer:STRUCT<
               type:STRING,
               principalid:STRING,
               arn:STRING,
               accountid:STRING,
               username:STRING>,
    ec2roledelivery:string,
    webidfederationdata: STRUCT<
               federatedprovider: STRING,
               attributes: map<string,string>>
  >
>,
eventtime STRING,
eventsource STRING,
eventname STRING,
awsregion STRING,
sourceipaddress STRING,
useragent STRING,
errorcode STRING,
errormessage STRING,
requestparameters STRING,
responseelements STRING,
additionaleventdata STRING,
requestid STRING,
eventid STRING,
resources ARRAY<STRUCT<
               arn:STRING,
               accountid:STRING,
               type:STRING>>,
eventtype STRING,
apiversion STRING,
readonly STRING,
recipientaccountid STRING,
serviceeventdetails STRING,
sharedeventid STRING,
vpcendpointid STRING,
vpcendpointaccountid STRING,
eventcategory STRING,
addendum STRUCT<
  reason:STRING,
  updatedfields:STRING,
  originalrequestid:STRING,
  originaleventid:STRING>,
sessioncredentialfromconsole STRING,
edgedevicedetails STRING,
tlsdetails STRUCT<
  tlsversion:STRING,
  ciphersuite:STRING,
  clientprovidedhostheader:STRING>
"""


def test_athena_answers_who_deleted_the_object_and_when(clean_stack):
    from tests.test_athena import Athena

    s3, cloudtrail = make_trail(clean_stack, name="athena-audit", bucket="ct-athena-trail")
    cloudtrail.put_event_selectors(TrailName="athena-audit", AdvancedEventSelectors=[
        {"Name": "management", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
        {"Name": "s3 writes", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                                 {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                                                 {"Field": "readOnly", "Equals": ["false"]}]}])
    s3.create_bucket(Bucket="ct-athena-data")
    s3.put_object(Bucket="ct-athena-data", Key="reports/q1.csv", Body=b"a,b\n")
    s3.delete_object(Bucket="ct-athena-data", Key="reports/q1.csv")
    advance(clean_stack, "10m")
    s3.create_bucket(Bucket="ct-athena-results")
    client(clean_stack, "glue").create_database(DatabaseInput={"Name": "audit"})
    athena = Athena(clean_stack, "s3://ct-athena-results/out/")
    athena.run(f"""CREATE EXTERNAL TABLE cloudtrail_logs ({CLOUDTRAIL_COLUMNS})
COMMENT 'CloudTrail table for ct-athena-trail bucket'
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://ct-athena-trail/AWSLogs/{ACCOUNT}/CloudTrail/'
TBLPROPERTIES ('classification'='cloudtrail')""", "audit")
    who = """SELECT useridentity.arn, useridentity.type, eventtime, json_extract_scalar(requestparameters, '$.key') AS object_key
FROM {table} WHERE eventname = 'DeleteObject' AND json_extract_scalar(requestparameters, '$.bucketName') = 'ct-athena-data'{extra}"""
    rows = athena.rows(athena.run(who.format(table="cloudtrail_logs", extra=""), "audit"))
    assert rows[0] == ["arn", "type", "eventtime", "object_key"]
    assert len(rows) == 2 and rows[1][:2] == [f"arn:aws:iam::{ACCOUNT}:root", "Root"] and rows[1][3] == "reports/q1.csv"
    deleted_at = rows[1][2]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", deleted_at)
    counted = athena.rows(athena.run("SELECT eventcategory, readonly, count(*) FROM cloudtrail_logs "
                                     "WHERE eventsource = 's3.amazonaws.com' GROUP BY 1, 2 ORDER BY 1, 2", "audit"))
    assert ["Data", "false", "2"] in counted  # PutObject and DeleteObject
    # the partition-projection variant: a date range up to NOW (the lab clock)
    athena.run(f"""CREATE EXTERNAL TABLE cloudtrail_projected ({CLOUDTRAIL_COLUMNS})
PARTITIONED BY (`timestamp` string)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://ct-athena-trail/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.timestamp.format'='yyyy/MM/dd',
  'projection.timestamp.interval'='1',
  'projection.timestamp.interval.unit'='DAYS',
  'projection.timestamp.range'='2024/01/01,NOW',
  'projection.timestamp.type'='date',
  'storage.location.template'='s3://ct-athena-trail/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/${{timestamp}}')""", "audit")
    day = deleted_at[:10].replace("-", "/")
    rows = athena.rows(athena.run(who.format(table="cloudtrail_projected", extra=f" AND \"timestamp\" = '{day}'"), "audit"))
    assert [row[3] for row in rows[1:]] == ["reports/q1.csv"] and rows[1][2] == deleted_at
