"""Engines' calls reach the gateway of their own process without a socket, and get the answers HTTP gives."""

import json
import threading
from urllib.parse import quote

import boto3
import botocore.exceptions
import pytest
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from dealab.wire.loopback import ENGINE_HEADER_NAME, Loopback, sign
from dealab.stack.server import build_gateway
from dealab.stack.control import free_port_pair

KEYS = ["plain.txt", "dir/with space+plus.csv", "encoded%2Fslash.json", "ünï/çødé?.parquet", "tilde~and=equals&amp.txt"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A gateway built as `dealab up` builds it, on a port nothing listens on (yet)."""
    port = free_port_pair()
    gateway = build_gateway(tmp_path_factory.mktemp("loopback"), port, port + 1, "us-east-1", None)
    context = gateway.engines[0].context
    yield gateway, context, context.endpoint_url
    for engine in gateway.engines:
        engine.close()


@pytest.fixture()
def serving(stack):
    """The same gateway served over HTTP, for comparing answers."""
    gateway, _, endpoint = stack
    server = make_server("127.0.0.1", int(endpoint.rsplit(":", 1)[1]), gateway, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield endpoint
    server.shutdown()
    thread.join(5)


def plain_client(endpoint, service):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def test_engine_calls_need_no_socket(stack):
    _, context, endpoint = stack
    s3 = context.client("s3", engine="test")
    s3.create_bucket(Bucket="loop-no-socket")
    s3.put_object(Bucket="loop-no-socket", Key="a.txt", Body=b"hello")
    assert s3.get_object(Bucket="loop-no-socket", Key="a.txt")["Body"].read() == b"hello"
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        plain_client(endpoint, "s3").list_buckets()


def test_objects_and_listings_match_http(stack, serving):
    _, context, _ = stack
    engine_s3, http_s3 = context.client("s3", engine="test"), plain_client(serving, "s3")
    engine_s3.create_bucket(Bucket="loop-keys")
    for index, key in enumerate(KEYS):
        engine_s3.put_object(Bucket="loop-keys", Key=key, Body=f"body {index}".encode(), ContentType="text/csv", Metadata={"row_count": str(index)})
    for index, key in enumerate(KEYS):
        seen_by_engine, seen_over_http = engine_s3.get_object(Bucket="loop-keys", Key=key), http_s3.get_object(Bucket="loop-keys", Key=key)
        assert seen_by_engine["Body"].read() == seen_over_http["Body"].read() == f"body {index}".encode()
        for field in ("ContentType", "Metadata", "ETag", "LastModified", "ContentLength"):
            assert seen_by_engine[field] == seen_over_http[field], (key, field)
    listed = [page["Contents"] for page in (engine_s3.list_objects_v2(Bucket="loop-keys"), http_s3.list_objects_v2(Bucket="loop-keys"))]
    assert listed[0] == listed[1]
    assert sorted(item["Key"] for item in listed[0]) == sorted(KEYS)


def test_errors_match_http(stack, serving):
    _, context, _ = stack
    for service, call in (
        ("s3", lambda client: client.get_object(Bucket="loop-missing-bucket", Key="k")),
        ("dynamodb", lambda client: client.describe_table(TableName="loop-missing-table")),
        ("glue", lambda client: client.get_table(DatabaseName="nowhere", Name="nothing")),
    ):
        errors = []
        for client in (context.client(service, engine="test"), plain_client(serving, service)):
            with pytest.raises(botocore.exceptions.ClientError) as raised:
                call(client)
            errors.append((raised.value.response["Error"]["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]))
        assert errors[0] == errors[1], service


def test_unattached_loopback_leaves_the_call_to_the_network():
    assert Loopback().send(request=object()) is None
    with pytest.raises(RuntimeError, match="no gateway attached"):
        Loopback().dispatch("GET", "http://127.0.0.1:9/b/k", {})


def raw(context, method: str, bucket: str, key: str, headers: dict | None = None, body: bytes = b""):
    """A signed request through the raw seam, as the Athena engine makes its S3 calls."""
    url = f"{context.endpoint_url}/{bucket}/{quote(key, safe='/~')}"
    return context.loopback.dispatch(method, url, sign(method, url, headers or {}, body, "s3", "us-east-1"), body)


def test_dispatch_is_the_callers_request_through_the_door_and_engines(stack, serving):
    """A signed raw request passes the door's signature check and answers as botocore's call over HTTP does; a
    bucket policy binds it (no engine mark), an engine-marked one passes, a tampered signature is refused."""
    _, context, _ = stack
    http_s3 = plain_client(serving, "s3")
    http_s3.create_bucket(Bucket="loop-raw")
    for index, key in enumerate(KEYS):
        assert raw(context, "PUT", "loop-raw", key, {"x-amz-meta-row-count": str(index)}, f"body {index}".encode()).status == 200
        answer = raw(context, "GET", "loop-raw", key, {"Range": "bytes=1-3"})
        over_http = http_s3.get_object(Bucket="loop-raw", Key=key, Range="bytes=1-3")
        assert (answer.status, answer.body) == (206, over_http["Body"].read()) == (206, b"ody")
        assert answer.headers["etag"] == over_http["ETag"] and answer.headers["x-amz-meta-row-count"] == str(index)
        assert raw(context, "GET", "loop-raw", key, {"If-None-Match": over_http["ETag"]}).status == 304
    http_s3.put_bucket_policy(Bucket="loop-raw", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::loop-raw/*"}]}))
    try:
        denied = raw(context, "GET", "loop-raw", KEYS[0])
        assert denied.status == 403 and b"<Code>AccessDenied</Code>" in denied.body
        assert raw(context, "GET", "loop-raw", KEYS[0], {ENGINE_HEADER_NAME: "athena"}).status == 200  # engines pass policies
    finally:
        http_s3.delete_bucket_policy(Bucket="loop-raw")
    url = f"{context.endpoint_url}/loop-raw/{KEYS[0]}"
    forged = sign("GET", url, {}, b"", "s3", "us-east-1")
    forged["authorization"] = forged["authorization"][:-4] + "0000"
    refused = context.loopback.dispatch("GET", url, forged)
    assert refused.status == 403 and b"SignatureDoesNotMatch" in refused.body


def test_environ_matches_werkzeugs_server(tmp_path):
    """The WSGI environ a loopback call builds carries what werkzeug's server would put there."""
    seen = []

    def recorder(environ, start_response):
        seen.append({**environ, "body": environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))})
        start_response("200 OK", [("Content-Type", "application/xml")])
        return [b""]

    port = free_port_pair()
    endpoint = f"http://127.0.0.1:{port}"
    server = make_server("127.0.0.1", port, recorder, threaded=True, request_handler=MotoRequestHandler)  # as dealab.stack.server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    loopback = Loopback()
    loopback.attach(recorder)
    try:
        for through_loopback in (False, True):
            client = plain_client(endpoint, "s3")
            if through_loopback:
                client.meta.events.register("before-send", loopback.send)
            for key in KEYS:
                client.put_object(Bucket="b", Key=key, Body=b"x,y\n", ContentType="text/csv", Metadata={"row_count": "1"})
    finally:
        server.shutdown()
        thread.join(5)
    fields = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "RAW_URI", "REQUEST_URI", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_HOST",
              "HTTP_X_AMZ_META_ROW_COUNT", "moto.preserved_header_names", "body")
    over_http, over_loopback = seen[: len(KEYS)], seen[len(KEYS):]
    for served, looped in zip(over_http, over_loopback):
        assert {f: served.get(f) for f in fields} == {f: looped.get(f) for f in fields}
