"""The gateway names service and operation the way AWS's front door does, for every protocol."""

import pytest
from werkzeug.datastructures import Headers

from dealab.wire.operations import identify


def signed(service: str, region: str = "eu-west-1", **extra) -> Headers:
    headers = Headers({"Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=x"})
    for key, value in extra.items():
        headers[key.replace("_", "-")] = value
    return headers


@pytest.mark.parametrize(
    "method, path, query, expected",
    [
        ("PUT", "/bucket-a", {}, "CreateBucket"),
        ("PUT", "/bucket-a", {"versioning": [""]}, "PutBucketVersioning"),
        ("PUT", "/bucket-a/dir/file.csv", {}, "PutObject"),
        ("GET", "/bucket-a", {"list-type": ["2"]}, "ListObjectsV2"),
        ("GET", "/bucket-a", {}, "ListObjects"),
        ("HEAD", "/bucket-a/k", {}, "HeadObject"),
        ("POST", "/bucket-a/k", {"uploads": [""]}, "CreateMultipartUpload"),
        ("PUT", "/bucket-a/k", {"partNumber": ["1"], "uploadId": ["u"]}, "UploadPart"),
        ("POST", "/bucket-a", {"delete": [""]}, "DeleteObjects"),
        ("GET", "/", {}, "ListBuckets"),
        ("PUT", "/bucket-a", {"lifecycle": [""]}, "PutBucketLifecycleConfiguration"),
    ],
)
def test_s3_rest_operations(method, path, query, expected):
    assert identify(method, path, query, signed("s3"), {}).name == expected


def test_copy_object_is_told_from_put_object_by_its_required_header():
    headers = signed("s3", x_amz_copy_source="src/key")
    assert identify("PUT", "/bucket-a/k", {}, headers, {}).name == "CopyObject"


def test_json_protocol_uses_target_and_region_from_scope():
    operation = identify("POST", "/", {}, signed("glue", X_Amz_Target="AWSGlue.StartJobRun"), {})
    assert (operation.service, operation.name, operation.region) == ("glue", "StartJobRun", "eu-west-1")


def test_services_sharing_a_signing_name_are_told_apart_by_target():
    streams = identify("POST", "/", {}, signed("dynamodb", X_Amz_Target="DynamoDBStreams_20120810.GetRecords"), {})
    assert (streams.service, streams.name) == ("dynamodbstreams", "GetRecords")


def test_query_protocol_action_in_form_body():
    operation = identify("POST", "/", {}, signed("monitoring"), {"Action": ["PutMetricAlarm"]})
    assert (operation.service, operation.name) == ("cloudwatch", "PutMetricAlarm")


def test_rest_json_service():
    operation = identify("POST", "/GrantPermissions", {}, signed("lakeformation"), {})
    assert (operation.service, operation.name) == ("lakeformation", "GrantPermissions")


def test_presigned_url_scope_from_query():
    query = {"X-Amz-Credential": ["test/20260101/us-west-2/s3/aws4_request"]}
    operation = identify("GET", "/bucket-a/k", query, Headers(), {})
    assert (operation.service, operation.name, operation.region) == ("s3", "GetObject", "us-west-2")
