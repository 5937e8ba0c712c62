"""The stack answers as AWS does where embedded moto alone would not: form-typed bodies are stored, what AWS
refuses is refused with AWS's error and status, and bucket creation dates survive a restart."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from dealab.engines.validation import bucket_policy
from dealab.stack import control
from tests.conftest import client, make_settings
from tests.test_lifecycle_engine import advance

AWS = str(Path(sys.executable).with_name("aws"))
FORM = "application/x-www-form-urlencoded"
FORM_BODY = b"order_id=1&amount=9.99&note=caf%C3%A9"


def error_of(call) -> tuple[int, str, str]:
    """(HTTP status, error code, message) of a call that must fail."""
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"], error["Error"].get("Message", "")


def signed(settings, method: str, path: str, service: str, body: bytes = b"", headers: dict | None = None) -> requests.Response:
    """A raw SigV4-signed request: for what botocore's own validation would stop before it is sent."""
    url = settings.endpoint_url + path
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials("test", "test"), service, settings.region).add_auth(request)
    return requests.request(method, request.url, data=body, headers=dict(request.headers.items()), timeout=30)


# --- 1. form-typed bodies --------------------------------------------------------------------------------


def test_form_typed_put_object_is_stored_with_its_content_type(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="forms")
    s3.put_object(Bucket="forms", Key="orders.txt", Body=FORM_BODY, ContentType=FORM)
    stored = s3.get_object(Bucket="forms", Key="orders.txt")
    assert stored["Body"].read() == FORM_BODY
    assert stored["ContentType"] == FORM
    assert stored["ContentLength"] == len(FORM_BODY)


def test_form_typed_upload_parts_are_stored(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="forms")

    def form_typed(request, **_):
        request.headers["Content-Type"] = FORM

    s3.meta.events.register("before-sign.s3.UploadPart", form_typed)
    upload = s3.create_multipart_upload(Bucket="forms", Key="big.txt", ContentType=FORM)["UploadId"]
    first, second = b"a=1&" * (5 * 1024 * 1024 // 4), b"b=2"
    parts = [
        {"PartNumber": number, "ETag": s3.upload_part(Bucket="forms", Key="big.txt", UploadId=upload, PartNumber=number, Body=body)["ETag"]}
        for number, body in ((1, first), (2, second))
    ]
    s3.complete_multipart_upload(Bucket="forms", Key="big.txt", UploadId=upload, MultipartUpload={"Parts": parts})
    stored = s3.get_object(Bucket="forms", Key="big.txt")
    assert stored["Body"].read() == first + second
    assert stored["ContentType"] == FORM


def test_form_typed_upload_through_the_aws_cli(clean_stack, tmp_path):
    source = tmp_path / "orders.txt"
    source.write_bytes(FORM_BODY)
    client(clean_stack, "s3").create_bucket(Bucket="forms")
    env = {**os.environ, **clean_stack.client_env()}
    subprocess.run([AWS, "s3", "cp", str(source), "s3://forms/cli.txt", "--content-type", FORM], env=env, check=True, capture_output=True, timeout=120)
    stored = client(clean_stack, "s3").get_object(Bucket="forms", Key="cli.txt")
    assert (stored["Body"].read(), stored["ContentType"]) == (FORM_BODY, FORM)


def test_query_protocol_forms_are_still_read_as_forms(clean_stack):
    sqs = client(clean_stack, "sqs")  # SQS's query protocol POSTs a form; it must still be parsed
    sts = client(clean_stack, "sts")
    assert sts.get_caller_identity()["Account"]
    assert sqs.create_queue(QueueName="still-forms")["QueueUrl"].endswith("still-forms")


# --- 2. what AWS refuses -----------------------------------------------------------------------------------


def test_keys_over_1024_bytes_are_refused(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="keys")
    s3.put_object(Bucket="keys", Key="k" * 1024, Body=b"x")  # the limit itself is allowed
    assert error_of(lambda: s3.put_object(Bucket="keys", Key="k" * 1025, Body=b"x"))[:2] == (400, "KeyTooLongError")
    # the limit is in UTF-8 bytes: 512 two-byte characters are 1,024 bytes, 513 are 1,026
    s3.put_object(Bucket="keys", Key="é" * 512, Body=b"x")
    assert error_of(lambda: s3.put_object(Bucket="keys", Key="é" * 513, Body=b"x"))[:2] == (400, "KeyTooLongError")
    assert error_of(lambda: s3.create_multipart_upload(Bucket="keys", Key="m" * 1100))[:2] == (400, "KeyTooLongError")
    copy = lambda: s3.copy_object(Bucket="keys", Key="c" * 1025, CopySource={"Bucket": "keys", "Key": "k" * 1024})
    assert error_of(copy)[:2] == (400, "KeyTooLongError")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="keys")["Contents"]) == ["k" * 1024, "é" * 512]


@pytest.mark.parametrize(
    "name", ["UpperCase-bucket", "a..b", "192.168.1.1", "-leading-hyphen", "trailing-hyphen-", "under_score", "xn--punycode",
             "sthree-reserved", "alias-s3alias", "ab", "x" * 64],
)
def test_invalid_bucket_names_are_refused(clean_stack, name):
    s3 = client(clean_stack, "s3")
    status, code, message = error_of(lambda: s3.create_bucket(Bucket=name))
    assert (status, code, message) == (400, "InvalidBucketName", "The specified bucket is not valid.")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_non_ascii_bucket_names_are_refused(clean_stack):
    # botocore refuses such a name itself, so the request is signed and sent by hand
    response = signed(clean_stack, "PUT", "/café-bucket", "s3")  # botocore percent-encodes it as it signs
    assert response.status_code == 400
    assert "<Code>InvalidBucketName</Code><Message>The specified bucket is not valid.</Message><Resource>café-bucket</Resource>" in response.text


def test_valid_bucket_names_are_created(clean_stack):
    s3 = client(clean_stack, "s3")
    for name in ("abc", "my.data-lake.2024", "x" * 63):
        s3.create_bucket(Bucket=name)
    assert {"abc", "my.data-lake.2024", "x" * 63} <= {b["Name"] for b in s3.list_buckets()["Buckets"]}


def make_table(ddb, name):
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")


def puts(prefix: str, count: int) -> list:
    return [{"PutRequest": {"Item": {"pk": {"S": f"{prefix}{i}"}}}} for i in range(count)]


def test_batch_write_item_over_25_requests_is_refused(clean_stack):
    ddb = client(clean_stack, "dynamodb")
    make_table(ddb, "orders")
    make_table(ddb, "customers")
    status, code, message = error_of(lambda: ddb.batch_write_item(RequestItems={"orders": puts("o", 26)}))
    assert (status, code) == (400, "ValidationException")
    assert message.startswith("1 validation error detected: Value '{orders=[com.amazonaws.dynamodb.v20120810.WriteRequest@")
    assert message.endswith(
        "]}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"
    )
    both = {"orders": puts("o", 15), "customers": puts("c", 15)}
    assert error_of(lambda: ddb.batch_write_item(RequestItems=both)) == (400, "ValidationException", "Too many items requested for the BatchWriteItem call")
    assert ddb.scan(TableName="orders")["Count"] == 0  # nothing of a refused batch was written
    assert ddb.batch_write_item(RequestItems={"orders": puts("o", 25)})["UnprocessedItems"] == {}
    assert ddb.scan(TableName="orders")["Count"] == 25


def kinesis_call(settings, operation: str, payload: dict) -> requests.Response:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"Kinesis_20131202.{operation}"}
    return signed(settings, "POST", "/", "kinesis", json.dumps(payload).encode(), headers)


def test_kinesis_data_that_is_not_base64_is_refused(clean_stack):
    kinesis = client(clean_stack, "kinesis")
    kinesis.create_stream(StreamName="clicks", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="clicks", WaiterConfig={"Delay": 0.2})
    refused = kinesis_call(clean_stack, "PutRecord", {"StreamName": "clicks", "PartitionKey": "p", "Data": "foobar"})
    assert refused.status_code == 400
    assert refused.json()["__type"] == "SerializationException"
    assert refused.json()["message"] == "'foobar' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 6"
    for data in ("$$$$", 1234, None):
        refused = kinesis_call(clean_stack, "PutRecord", {"StreamName": "clicks", "PartitionKey": "p", "Data": data})
        assert (refused.status_code, refused.json()["__type"]) == (400, "SerializationException"), data
    batch = {"StreamName": "clicks", "Records": [{"PartitionKey": "p", "Data": "b2s="}, {"PartitionKey": "p", "Data": '{"raw": "json"}'}]}
    refused = kinesis_call(clean_stack, "PutRecords", batch)
    assert (refused.status_code, refused.json()["__type"]) == (400, "SerializationException")
    accepted = kinesis_call(clean_stack, "PutRecord", {"StreamName": "clicks", "PartitionKey": "p", "Data": base64.b64encode(b"ok").decode()})
    assert accepted.status_code == 200, accepted.text
    shard = kinesis.describe_stream(StreamName="clicks")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="clicks", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]] == [b"ok"]  # only the valid one


def statement(**fields) -> dict:
    return {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::policies/*", **fields}


def document(*statements, **top) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements), **top})


@pytest.mark.parametrize(
    "policy, message",
    [
        ("Deny everything", "Policies must be valid JSON and the first byte must be '{'"),
        ('{"Version": "2012-10-17", "Statement": [', "This policy contains invalid Json"),
        (document(statement(), Version="2020-01-01"), "The policy must contain a valid version string"),
        (json.dumps({"Version": "2012-10-17"}), "Missing required field Statement"),
        (document(), "Could not parse the policy: Statement is empty!"),
        (document(statement(Effect="Denny")), "Invalid effect: Denny"),
        (document({k: v for k, v in statement().items() if k != "Principal"}), "Missing required field Principal"),
        (document(statement(Principal={"AWS": "alice"})), "Invalid principal in policy"),
        (document(statement(Action="glue:GetTable")), "Policy has invalid action"),
        (document(statement(Resource="arn:aws:s3:::another-bucket/*")), "Policy has invalid resource"),
        (document(statement(Resource="*")), "Policy has invalid resource"),
        (document(statement(Resource="arn:aws:s3:::policies")), "Action does not apply to any resource(s) in statement"),
        (document(statement(Action="s3:ListBucket")), "Action does not apply to any resource(s) in statement"),
        (document(statement(Condtion={"Bool": {"aws:SecureTransport": "false"}})), "Unknown field Condtion"),
        (document(statement(Condition={"BoolEquals": {"aws:SecureTransport": "false"}})), "Invalid Condition type : BoolEquals"),
        (document(statement(Condition={"StringEquals": {"SecureTransport": "false"}})), "Policy has an invalid condition key"),
    ],
)
def test_malformed_bucket_policies_are_refused(clean_stack, policy, message):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="policies")
    assert error_of(lambda: s3.put_bucket_policy(Bucket="policies", Policy=policy)) == (400, "MalformedPolicy", message)
    assert error_of(lambda: s3.get_bucket_policy(Bucket="policies"))[1] == "NoSuchBucketPolicy"


def test_a_deny_dealab_cannot_evaluate_is_refused_at_put_not_later(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="policies")
    s3.put_object(Bucket="policies", Key="still-readable", Body=b"x")
    undecidable = document(statement(Condition={"StringRoughly": {"aws:username": "alice"}}))
    status, code, message = error_of(lambda: s3.put_bucket_policy(Bucket="policies", Policy=undecidable))
    assert (status, code) == (400, "MalformedPolicy") and "StringRoughly" in message
    assert s3.get_object(Bucket="policies", Key="still-readable")["Body"].read() == b"x"


def test_well_formed_policies_are_stored_and_enforced(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="policies")
    s3.put_object(Bucket="policies", Key="secret/a", Body=b"x")
    deny_secret = statement(Sid="NoSecrets", Resource=["arn:aws:s3:::policies/secret/*"])
    allow_listing = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                     "Action": ["s3:ListBucket", "s3:GetObject"], "Resource": ["arn:aws:s3:::policies", "arn:aws:s3:::policies/*"],
                     "Condition": {"StringLike": {"s3:prefix": ["public/*"]}}}
    s3.put_bucket_policy(Bucket="policies", Policy=document(deny_secret, allow_listing))
    assert json.loads(s3.get_bucket_policy(Bucket="policies")["Policy"])["Statement"][0]["Sid"] == "NoSecrets"
    assert error_of(lambda: s3.get_object(Bucket="policies", Key="secret/a"))[:2] == (403, "AccessDenied")


def test_bucket_policy_checks_without_a_stack():
    bucket_policy.check(document(statement(Action="s3:*", Resource="arn:aws:s3:::polic*")), "policies")
    not_action = {k: v for k, v in statement(NotAction="s3:GetObject", Resource="arn:aws:s3:::policies").items() if k != "Action"}
    bucket_policy.check(document(not_action), "policies")  # NotAction reaches the bucket's own actions
    with pytest.raises(bucket_policy.Malformed, match="invalid resource"):
        bucket_policy.check(document(statement(Resource="arn:aws:s3:::other*")), "policies")


def test_content_md5_must_match_the_body(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="digests")
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    assert error_of(lambda: s3.put_object(Bucket="digests", Key="k", Body=b"data", ContentMD5=wrong))[:2] == (400, "BadDigest")
    assert error_of(lambda: s3.put_object(Bucket="digests", Key="k", Body=b"data", ContentMD5="not-md5"))[:2] == (400, "InvalidDigest")
    right = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    s3.put_object(Bucket="digests", Key="k", Body=b"data", ContentMD5=right)
    assert s3.get_object(Bucket="digests", Key="k")["Body"].read() == b"data"


# --- 3. creation dates --------------------------------------------------------------------------------------


def test_bucket_creation_date_is_moto_time_and_survives_a_restart(tmp_path):
    settings = make_settings(tmp_path / "state")
    control.up(settings)
    try:
        # On a lab clock a week ahead, the bucket is created a week ahead, as everything else the backend dates.
        advance(settings, "7d")
        s3 = client(settings, "s3")
        s3.create_bucket(Bucket="dated")
        created = s3.list_buckets()["Buckets"][0]["CreationDate"]
        assert created > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=6)
    finally:
        control.down(settings)
    control.up(settings)
    try:
        assert client(settings, "s3").list_buckets()["Buckets"][0]["CreationDate"] == created
    finally:
        control.down(settings)


def test_metadata_names_with_underscores_are_signed_and_kept(clean_stack):
    """S3 keeps user metadata names as written; WSGI folds '_' into '-', so the stack keeps the original spelling
    (a signature covers it) as moto's own request handler does."""
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="meta-names")
    s3.put_object(Bucket="meta-names", Key="k", Body=b"x", Metadata={"row_count": "3", "source-system": "erp"})
    assert s3.head_object(Bucket="meta-names", Key="k")["Metadata"] == {"row_count": "3", "source-system": "erp"}
