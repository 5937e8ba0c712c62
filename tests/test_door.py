"""The door: no cross-site request, no foreign Host, each protocol's Content-Type, signatures verified,
admin endpoints behind the state folder's token, and S3 reads policy-checked on every path."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import json
import os
import stat
import urllib.error
import urllib.request
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from dealab.wire.admintoken import TOKEN_HEADER, token_path
from tests.conftest import admin_headers

BUCKET = "door-bucket"
NO_RETRIES = Config(retries={"max_attempts": 0})


def client(settings, service, key="test", secret="test", endpoint=None, headers=None, **config):
    made = boto3.client(service, endpoint_url=endpoint or settings.endpoint_url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 0}, **config))
    if headers:
        def add(request, **_):
            for name, value in headers.items():
                request.headers[name] = value

        made.meta.events.register("before-sign", add)
    return made


def error_of(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]


def raw(settings, method, path, headers=None, body=b"", port=None):
    """One HTTP request exactly as given (Host included), answered as (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port or settings.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": f"127.0.0.1:{port or settings.port}", **(headers or {})}.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture
def bucket(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/a.csv", Body=b"id,name\n1,ann\n")
    return s3


# ---- cross-site, Host, Content-Type --------------------------------------------------------------------
@pytest.mark.parametrize("which", ["endpoint_url", "insecure_endpoint_url"])
def test_a_foreign_origin_is_refused_on_both_ports(bucket, clean_stack, which):
    endpoint = getattr(clean_stack, which)
    for service, call in (("s3", lambda c: c.list_objects_v2(Bucket=BUCKET)), ("glue", lambda c: c.get_databases())):
        assert error_of(lambda: call(client(clean_stack, service, endpoint=endpoint, headers={"Origin": "https://evil.example"}))) == ("AccessDenied" if service == "glue" else "AccessForbidden", 403)
    assert client(clean_stack, "s3", endpoint=endpoint).list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_sec_fetch_site_from_another_site_is_refused(bucket, clean_stack, site):
    assert error_of(lambda: client(clean_stack, "glue", headers={"Sec-Fetch-Site": site}).get_databases())[1] == 403
    client(clean_stack, "glue", headers={"Sec-Fetch-Site": "same-origin"}).get_databases()


def test_a_dns_rebinding_host_is_refused(clean_stack):
    status, _, body = raw(clean_stack, "GET", "/_dealab/health", {"Host": f"attacker.example:{clean_stack.port}"})
    assert status == 403 and b"Host" in body
    for host in (f"localhost:{clean_stack.port}", f"127.0.0.1:{clean_stack.port}"):
        assert raw(clean_stack, "GET", "/_dealab/health", {"Host": host})[0] == 200
    assert raw(clean_stack, "GET", "/_dealab/health", {"Host": "127.0.0.1:1"})[0] == 403  # not the stack's port


def test_each_protocol_wants_its_content_type(clean_stack):
    def with_type(media_type):
        def replace(request, **_):
            request.headers["Content-Type"] = media_type
        return replace

    glue = client(clean_stack, "glue")
    glue.meta.events.register("before-sign", with_type("text/plain"))
    assert error_of(glue.get_databases) == ("UnsupportedMediaType", 415)
    sts = client(clean_stack, "sts")
    sts.meta.events.register("before-sign", with_type("text/plain"))
    assert error_of(sts.get_caller_identity) == ("UnsupportedMediaType", 415)
    assert client(clean_stack, "sts").get_caller_identity()["Account"]


# ---- admin endpoints ------------------------------------------------------------------------------------
def test_admin_endpoints_want_the_token(clean_stack):
    path = token_path(clean_stack.state_dir)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text_plain = {"Content-Type": "text/plain"}
    for endpoint, body in (("reset", b""), ("clock", b'{"action": "advance", "by": "400d"}'), ("faults", b'{"action": "set", "rules": ["*:* rate=1"]}')):
        status, _, answer = raw(clean_stack, "POST", f"/_dealab/{endpoint}", text_plain, body)
        assert status == 403 and TOKEN_HEADER.encode() in answer, endpoint
        status, _, _ = raw(clean_stack, "POST", f"/_dealab/{endpoint}", {**text_plain, TOKEN_HEADER: "guessed"}, body)
        assert status == 403
    token = admin_headers(clean_stack)
    assert raw(clean_stack, "GET", "/_dealab/clock", token)[0] == 200
    # a page cannot use it even if it had it: the cross-site refusal comes first
    assert raw(clean_stack, "GET", "/_dealab/clock", {**token, "Origin": "https://evil.example"})[0] == 403
    # health stays readable without it (status needs the pid), but not cross-site
    status, _, answer = raw(clean_stack, "GET", "/_dealab/health")
    assert status == 200 and json.loads(answer)["pid"]
    assert raw(clean_stack, "GET", "/_dealab/health", {"Origin": "https://evil.example"})[0] == 403
    assert raw(clean_stack, "GET", "/moto-api/reset")[0] == 403  # the backend's own admin API is not reachable


# ---- signatures ----------------------------------------------------------------------------------------
def test_wrong_secret_unknown_key_and_no_signature(bucket, clean_stack):
    assert error_of(lambda: client(clean_stack, "s3", secret="wrong").list_buckets()) == ("SignatureDoesNotMatch", 403)
    assert error_of(lambda: client(clean_stack, "glue", secret="wrong").get_databases()) == ("InvalidSignatureException", 403)
    assert error_of(lambda: client(clean_stack, "sts", secret="wrong").get_caller_identity()) == ("SignatureDoesNotMatch", 403)
    assert error_of(lambda: client(clean_stack, "s3", key="nobody").list_buckets()) == ("InvalidAccessKeyId", 403)
    assert error_of(lambda: client(clean_stack, "s3", signature_version="s3", secret="wrong").list_buckets()) == ("SignatureDoesNotMatch", 403)
    assert error_of(lambda: client(clean_stack, "glue", signature_version=UNSIGNED).get_databases()) == ("MissingAuthenticationTokenException", 403)
    assert error_of(lambda: client(clean_stack, "s3", signature_version=UNSIGNED).get_object(Bucket=BUCKET, Key="data/a.csv")) == ("AccessDenied", 403)
    assert client(clean_stack, "s3", signature_version="s3").get_object(Bucket=BUCKET, Key="data/a.csv")["Body"].read()


def test_a_public_read_policy_opens_reads_only(bucket, clean_stack):
    bucket.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/data/*"}]}))
    anonymous = client(clean_stack, "s3", signature_version=UNSIGNED)
    assert anonymous.get_object(Bucket=BUCKET, Key="data/a.csv")["Body"].read().startswith(b"id,name")
    bucket.put_object(Bucket=BUCKET, Key="private/p.csv", Body=b"secret")
    assert error_of(lambda: anonymous.get_object(Bucket=BUCKET, Key="private/p.csv")) == ("AccessDenied", 403)
    assert error_of(lambda: anonymous.put_object(Bucket=BUCKET, Key="data/b.csv", Body=b"x")) == ("AccessDenied", 403)
    assert error_of(lambda: anonymous.list_objects_v2(Bucket=BUCKET)) == ("AccessDenied", 403)


def test_requests_signed_too_long_ago_are_refused_whatever_the_lab_clock_says(bucket, clean_stack):
    two_hours_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
    with mock.patch("botocore.auth.get_current_datetime", return_value=two_hours_ago):
        assert error_of(lambda: client(clean_stack, "s3").list_buckets()) == ("RequestTimeTooSkewed", 403)


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_presigned_urls_work_and_refuse_tampering_and_expiry(bucket, clean_stack, version):
    s3 = client(clean_stack, "s3", signature_version=version)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "data/a.csv"}, ExpiresIn=600)
    assert requests.get(url, timeout=30).content.startswith(b"id,name")
    tampered = requests.get(url.replace("data/a.csv", "data/b.csv"), timeout=30)
    assert tampered.status_code == 403 and b"SignatureDoesNotMatch" in tampered.content
    if version == "s3":
        expired_url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "data/a.csv"}, ExpiresIn=-60)
    else:
        signed_earlier = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
        with mock.patch("botocore.auth.get_current_datetime", return_value=signed_earlier):
            expired_url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "data/a.csv"}, ExpiresIn=3600)
    expired = requests.get(expired_url, timeout=30)
    assert expired.status_code == 403 and b"AccessDenied" in expired.content and b"expired" in expired.content


def test_presigned_put_uploads(bucket, clean_stack):
    url = bucket.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "data/put.csv"}, ExpiresIn=600)
    assert requests.put(url, data=b"a,b\n", timeout=30).status_code == 200
    assert bucket.get_object(Bucket=BUCKET, Key="data/put.csv")["Body"].read() == b"a,b\n"


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_post_policy_uploads_only_as_signed(bucket, clean_stack, version):
    s3 = client(clean_stack, "s3", signature_version=version)
    post = s3.generate_presigned_post(BUCKET, "uploads/${filename}", Conditions=[["starts-with", "$key", "uploads/"], ["content-length-range", 1, 100]], ExpiresIn=600)
    answer = requests.post(post["url"], data=post["fields"], files={"file": ("form.csv", b"x,y\n")}, timeout=30)
    assert answer.status_code in (200, 204), answer.content
    assert bucket.get_object(Bucket=BUCKET, Key="uploads/form.csv")["Body"].read() == b"x,y\n"
    too_big = requests.post(post["url"], data=post["fields"], files={"file": ("big.csv", b"x" * 101)}, timeout=30)
    assert too_big.status_code == 403 and b"content-length-range" in too_big.content
    elsewhere = requests.post(post["url"], data={**post["fields"], "key": "other/${filename}"}, files={"file": ("f.csv", b"1")}, timeout=30)
    assert elsewhere.status_code == 403 and b"Policy Condition failed" in elsewhere.content
    forged = requests.post(post["url"], data={**post["fields"], "policy": post["fields"]["policy"][:-4] + "AAAA"}, files={"file": ("f.csv", b"1")}, timeout=30)
    assert forged.status_code == 403 and b"SignatureDoesNotMatch" in forged.content
    old = s3.generate_presigned_post(BUCKET, "uploads/${filename}", ExpiresIn=-60)
    expired = requests.post(old["url"], data=old["fields"], files={"file": ("f.csv", b"1")}, timeout=30)
    assert expired.status_code == 403 and b"Policy expired" in expired.content


def _streaming_put(settings, key: str, chunks: list[bytes], secret="test", break_chunk: bool = False):
    """A PUT as the Java SDK (Spark's s3a) sends it: aws-chunked, each chunk signed after the seed signature."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    encoded_length = sum(len(f"{len(c):x};chunk-signature=".encode()) + 64 + 2 + len(c) + 2 for c in [*chunks, b""])
    url = f"{settings.endpoint_url}/{BUCKET}/{key}"
    request = AWSRequest("PUT", url, headers={
        "Host": urlsplit(url).netloc, "X-Amz-Date": amz_date, "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(sum(map(len, chunks))), "Content-Length": str(encoded_length)})
    signer = SigV4Auth(Credentials("test", secret), "s3", "us-east-1")
    request.context["timestamp"] = amz_date
    canonical = signer.canonical_request(request)
    seed = signer.signature(signer.string_to_sign(request, canonical), request)
    request.headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential=test/{date}/us-east-1/s3/aws4_request, "
                                        f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, Signature={seed}")
    key_bytes = b"AWS4" + secret.encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    body, previous = b"", seed
    for number, chunk in enumerate([*chunks, b""]):
        to_sign = f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{date}/us-east-1/s3/aws4_request\n{previous}\n{hashlib.sha256(b'').hexdigest()}\n{hashlib.sha256(chunk).hexdigest()}"
        previous = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
        sent = chunk.upper() if break_chunk and number == 1 else chunk
        body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
    headers = {k: v for k, v in request.headers.items() if k != "Host"}
    return raw(settings, "PUT", f"/{BUCKET}/{key}", headers, body)


def test_streaming_payloads_are_verified_chunk_by_chunk(bucket, clean_stack):
    chunks = [b"first chunk of rows\n" * 10, b"second chunk\n"]
    status, _, answer = _streaming_put(clean_stack, "data/streamed.txt", chunks)
    assert status == 200, answer
    assert bucket.get_object(Bucket=BUCKET, Key="data/streamed.txt")["Body"].read() == b"".join(chunks)
    status, _, answer = _streaming_put(clean_stack, "data/broken.txt", chunks, break_chunk=True)
    assert status == 403 and b"SignatureDoesNotMatch" in answer
    assert _streaming_put(clean_stack, "data/wrong.txt", chunks, secret="wrong")[0] == 403


# ---- CORS, only as the bucket's configuration says -----------------------------------------------------
def test_cors_is_answered_from_the_bucket_configuration_only(bucket, clean_stack):
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,x-amz-date"}
    status, headers, _ = raw(clean_stack, "OPTIONS", f"/{BUCKET}/data/a.csv", preflight)
    assert status == 403 and not any(name.lower().startswith("access-control") for name in headers)
    bucket.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET"], "AllowedHeaders": ["*"], "MaxAgeSeconds": 60}]})
    status, headers, _ = raw(clean_stack, "OPTIONS", f"/{BUCKET}/data/a.csv", preflight)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "GET" in headers["Access-Control-Allow-Methods"] and headers["Access-Control-Max-Age"] == "60"
    for refused in ({**preflight, "Origin": "https://evil.example"}, {**preflight, "Access-Control-Request-Method": "PUT"}):
        status, headers, _ = raw(clean_stack, "OPTIONS", f"/{BUCKET}/data/a.csv", refused)
        assert status == 403 and "Access-Control-Allow-Origin" not in headers
    # the actual request: signed, from the allowed origin, with the bucket's CORS headers and no others
    from_app = client(clean_stack, "s3", headers={"Origin": "https://app.example"})
    answer = from_app.get_object(Bucket=BUCKET, Key="data/a.csv")
    assert answer["ResponseMetadata"]["HTTPHeaders"]["access-control-allow-origin"] == "https://app.example"
    assert error_of(lambda: from_app.put_object(Bucket=BUCKET, Key="data/x.csv", Body=b"x"))[1] == 403  # PUT is not allowed
    assert error_of(lambda: client(clean_stack, "s3", headers={"Origin": "https://evil.example"}).get_object(Bucket=BUCKET, Key="data/a.csv"))[1] == 403
    plain = client(clean_stack, "s3").get_object(Bucket=BUCKET, Key="data/a.csv")
    assert not any(name.startswith("access-control") for name in plain["ResponseMetadata"]["HTTPHeaders"])


# ---- engine calls and every S3 read path ----------------------------------------------------------------
DENY_READS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/data/*"}]}


def test_a_client_cannot_pass_itself_off_as_an_engine(bucket, clean_stack):
    bucket.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(DENY_READS))
    for engine in ("s3access", "glue", "athena"):
        forged = client(clean_stack, "s3", headers={"X-Dealab-Engine": engine})
        assert error_of(lambda: forged.get_object(Bucket=BUCKET, Key="data/a.csv")) == ("AccessDenied", 403)


def test_copy_and_select_cannot_read_around_a_deny(bucket, clean_stack):
    bucket.create_bucket(Bucket="door-target")
    bucket.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(DENY_READS))
    source = {"Bucket": BUCKET, "Key": "data/a.csv"}
    assert error_of(lambda: bucket.copy_object(Bucket="door-target", Key="copy.csv", CopySource=source)) == ("AccessDenied", 403)
    upload = bucket.create_multipart_upload(Bucket="door-target", Key="part.csv")["UploadId"]
    assert error_of(lambda: bucket.upload_part_copy(Bucket="door-target", Key="part.csv", UploadId=upload, PartNumber=1, CopySource=source)) == ("AccessDenied", 403)
    assert error_of(lambda: bucket.select_object_content(
        Bucket=BUCKET, Key="data/a.csv", Expression="select * from s3object", ExpressionType="SQL",
        InputSerialization={"CSV": {}}, OutputSerialization={"CSV": {}})) == ("AccessDenied", 403)
    bucket.put_object(Bucket=BUCKET, Key="open/b.csv", Body=b"1")  # outside the deny, copying works
    bucket.copy_object(Bucket="door-target", Key="copy.csv", CopySource={"Bucket": BUCKET, "Key": "open/b.csv"})


def test_a_public_read_object_acl_opens_that_object_only(bucket, clean_stack):
    bucket.put_object(Bucket=BUCKET, Key="data/public.csv", Body=b"open", ACL="public-read")
    anonymous = client(clean_stack, "s3", signature_version=UNSIGNED)
    assert anonymous.get_object(Bucket=BUCKET, Key="data/public.csv")["Body"].read() == b"open"
    assert error_of(lambda: anonymous.get_object(Bucket=BUCKET, Key="data/a.csv")) == ("AccessDenied", 403)


def test_aws_s3_presign_urls_are_verified(bucket, clean_stack):
    from tests.test_awscli import aws

    url = aws(clean_stack, "s3", "presign", f"s3://{BUCKET}/data/a.csv", "--expires-in", "300").strip()
    assert requests.get(url, timeout=30).content.startswith(b"id,name")
    assert requests.get(url.replace("Signature=", "Signature=x"), timeout=30).status_code == 403


def test_rest_paths_with_encoded_characters_verify(clean_stack):
    """botocore signs non-S3 REST paths encoded twice; the door accepts that form from the raw path."""
    arn = "arn:aws:lambda:us-east-1:123456789012:function:no-such-function"
    assert error_of(lambda: client(clean_stack, "lambda").get_function(FunctionName=arn))[0] == "ResourceNotFoundException"
    assert error_of(lambda: client(clean_stack, "lambda", secret="wrong").get_function(FunctionName=arn))[0] == "InvalidSignatureException"
