"""S3 requests AWS refuses that the backend stores: over-long keys, bucket names outside S3's naming rules,
and bodies that do not match their Content-MD5."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from urllib.parse import unquote_to_bytes

from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.s3names import bucket_name_problem

MAX_KEY_BYTES = 1024
# Bodies sent as aws-chunked carry chunk signatures between the data, so their bytes are not the object's.
CHUNKED_PAYLOAD_MARKERS = ("STREAMING-", "aws-chunked")


def bucket_and_key_bytes(request: AwsRequest) -> tuple[bytes, bytes]:
    """The bucket and key as the client sent them, in bytes: WSGI hands the path over as latin-1 text."""
    try:
        raw = request.path.encode("latin-1")
    except UnicodeEncodeError:  # a path built in-process rather than read off the wire
        raw = request.path.encode("utf-8")
    bucket, _, key = unquote_to_bytes(raw).lstrip(b"/").partition(b"/")
    return bucket, key


def bucket_and_key(request: AwsRequest) -> tuple[str, str]:
    bucket, key = bucket_and_key_bytes(request)
    return bucket.decode("utf-8", "replace"), key.decode("utf-8", "replace")


def valid_bucket_name(request: AwsRequest) -> AwsResponse | None:
    bucket, _ = bucket_and_key(request)
    if bucket_name_problem(bucket) is None:
        return None
    # AWS's message names no rule; the learner finds them under "bucket naming rules".
    return AwsResponse.xml_error("InvalidBucketName", "The specified bucket is not valid.", 400, bucket)


def key_not_too_long(request: AwsRequest) -> AwsResponse | None:
    _, key = bucket_and_key_bytes(request)
    if len(key) <= MAX_KEY_BYTES:
        return None
    return AwsResponse.xml_error("KeyTooLongError", "Your key is too long", 400, key[:64].decode("utf-8", "replace") + "...")


def body_matches_content_md5(request: AwsRequest) -> AwsResponse | None:
    declared = request.headers.get("Content-MD5")
    if declared is None or _is_chunked(request):
        return None
    try:
        digest = base64.b64decode(declared, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        return AwsResponse.xml_error("InvalidDigest", "The Content-MD5 you specified is not valid.", 400)
    if digest != hashlib.md5(request.body).digest():
        return AwsResponse.xml_error("BadDigest", "The Content-MD5 you specified did not match what we received.", 400)
    return None


def _is_chunked(request: AwsRequest) -> bool:
    markers = (request.headers.get("x-amz-content-sha256", ""), request.headers.get("Content-Encoding", ""))
    return any(marker in value for value in markers for marker in CHUNKED_PAYLOAD_MARKERS) or "x-amz-decoded-content-length" in request.headers
