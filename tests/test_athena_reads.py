"""How Athena's direct read path decides, without a stack: an object this query's listing shows at the ETag whose
bytes are cached is opened with no request to S3 once IAM's evaluator lets the caller read it; anything else (not
listed by this query, another ETag, an archived storage class, no IAM engine to ask) is asked of S3 as before; a
refusal fails the read; an SSE-KMS object is always asked of S3 (IAM checks its key on the answer); bytes read from an object replaced since it was opened are refused by S3 (If-Match)."""

from __future__ import annotations

import gc
import time
import weakref

import pytest

from dealab.config import TEST_ACCESS_KEY
from dealab.engines.athena.s3reads import TAIL_BYTES, CallerS3, ListedObjects, ObjectCache, QueryReads, S3Error
from dealab.wire import access
from dealab.wire.loopback import Loopback, RawAnswer
from dealab.wire.messages import AwsResponse

OBJECT = bytes(range(256)) * 200  # 51,200 bytes: larger than the tail the first open fetches
ETAG = '"v1"'
DENIED = (b'<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>User: root is not authorized to perform: '
          b's3:GetObject with an explicit deny in a resource-based policy</Message></Error>')


class FakeS3(CallerS3):
    """S3 holding one object (bucket b, key k) at ETag v1; every request is recorded."""

    def __init__(self, loopback: Loopback):
        super().__init__(loopback, "http://127.0.0.1:9", "us-east-1")
        self.requests: list[tuple[str, dict]] = []
        self.etag = ETAG
        self.encryption = "AES256"

    def request(self, method, bucket, key, headers=None, body=b""):
        headers = headers or {}
        self.requests.append((method, headers))
        if headers.get("If-Match") not in (None, self.etag):
            raise S3Error(RawAnswer(412, {}, b"<Error><Code>PreconditionFailed</Code></Error>"))
        if headers.get("If-None-Match") == self.etag:
            return RawAnswer(304, {"etag": self.etag}, b"")
        first, _, last = headers["Range"].removeprefix("bytes=").partition("-")
        start, end = (len(OBJECT) - int(last), len(OBJECT)) if not first else (int(first), int(last) + 1)
        return RawAnswer(206, {"etag": self.etag, "content-range": f"bytes {start}-{end - 1}/{len(OBJECT)}",
                               "last-modified": "Sun, 06 Dec 2026 12:00:00 GMT", "x-amz-server-side-encryption": self.encryption},
                         OBJECT[start:end])


@pytest.fixture
def stack():
    """A loopback (one stack's engines share it) whose IAM judge allows all until `refuse` is set."""
    loopback = Loopback()
    judged = {"refuse": False, "asked": []}

    def judge(request):
        judged["asked"].append((request.operation, request.path, request.caller_key))
        return AwsResponse(403, [], DENIED) if judged["refuse"] else None

    access.offer(loopback, judge)
    return FakeS3(loopback), judged


def listing(etag: str = ETAG, storage_class: str = "STANDARD") -> list[dict]:
    return [{"Key": "k", "Size": len(OBJECT), "ETag": etag, "StorageClass": storage_class}]


def open_twice(s3: FakeS3, cache: ObjectCache, listed: ListedObjects, second_listing: list[dict] | None) -> QueryReads:
    """A first query opens b/k (filling the cache); a second begins, lists `second_listing` (None: no listing), and
    opens it; returns the second query's reads with the requests of the first forgotten."""
    first = QueryReads(s3, cache, listed, "first")
    listed.record("b", listing())
    first.read_range("b/k", len(OBJECT) - 100, len(OBJECT))
    s3.requests.clear()
    second = QueryReads(s3, cache, listed, "second")
    if second_listing is not None:
        listed.record("b", second_listing)
    second.read_range("b/k", len(OBJECT) - 100, len(OBJECT))
    return second


def test_a_listed_cached_object_is_opened_without_a_request_once_iam_allows(stack):
    s3, judged = stack
    second = open_twice(s3, ObjectCache(), ListedObjects(), listing())
    assert s3.requests == []
    assert judged["asked"][-1] == ("GetObject", "/b/k", TEST_ACCESS_KEY)  # as the account's own key, as the reads are signed
    assert second.counter.bytes == 100  # a byte from the cache is counted as read


@pytest.mark.parametrize("second_listing", [
    None,  # the object was listed only by an earlier query: that says nothing of now
    listing(etag='"v2"'),  # replaced since the bytes were cached
    listing(storage_class="GLACIER"),  # archived: S3 (the clock engine) decides whether it can be read
], ids=["not listed by this query", "another etag", "archived"])
def test_anything_else_is_asked_of_s3(stack, second_listing):
    s3, _ = stack
    open_twice(s3, ObjectCache(), ListedObjects(), second_listing)
    assert [(method, headers.get("If-None-Match")) for method, headers in s3.requests] == [("GET", ETAG)]


def test_an_sse_kms_object_is_asked_of_s3(stack):
    """IAM checks the caller's use of an object's KMS key on S3's answer, which the evaluator alone cannot see."""
    s3, _ = stack
    s3.encryption = "aws:kms"
    open_twice(s3, ObjectCache(), ListedObjects(), listing())
    assert [(method, headers.get("If-None-Match")) for method, headers in s3.requests] == [("GET", ETAG)]


def test_without_an_iam_engine_the_read_is_asked_of_s3(stack):
    s3, _ = stack
    s3 = FakeS3(Loopback())  # a loopback no IAM engine offered a judge for
    open_twice(s3, ObjectCache(), ListedObjects(), listing())
    assert [method for method, _ in s3.requests] == ["GET"]


def test_iams_refusal_fails_the_read_even_from_the_cache(stack):
    s3, judged = stack
    cache, listed = ObjectCache(), ListedObjects()
    open_twice(s3, cache, listed, listing())
    judged["refuse"] = True
    third = QueryReads(s3, cache, listed, "third")
    listed.record("b", listing())
    with pytest.raises(PermissionError, match="Permission denied on S3 path: s3://b/k .*explicit deny"):
        third.read_range("b/k", 0, 10)


def test_bytes_of_an_object_replaced_while_the_query_reads_are_refused(stack):
    s3, _ = stack
    reads = QueryReads(s3, ObjectCache(), ListedObjects(), "only")
    reads.read_range("b/k", len(OBJECT) - 10, len(OBJECT))  # opened at v1
    s3.etag = '"v2"'
    with pytest.raises(OSError, match="replaced while the query read it"):
        reads.read_range("b/k", 0, len(OBJECT) - TAIL_BYTES)
    assert s3.requests[-1][1]["If-Match"] == ETAG


def test_listings_remember_the_latest_and_drop_the_oldest():
    listed = ListedObjects(limit=2)
    before = time.monotonic()
    listed.record("b", [{"Key": name, "Size": 1, "ETag": f'"{name}"'} for name in ("x", "y", "z")])
    assert listed.since("b/x", before) is None  # over the limit: the oldest went
    assert listed.since("b/z", before).etag == '"z"' and listed.since("b/z", before).storage_class == "STANDARD"
    assert listed.since("b/z", time.monotonic() + 1) is None  # listed before that moment


def test_a_judge_decides_for_its_own_stack_only():
    one, other = Loopback(), Loopback()
    access.offer(one, lambda request: None)
    assert access.judge(one) is not None and access.judge(other) is None


def test_an_engines_judge_does_not_keep_its_stack_alive():
    class Engine:
        def __init__(self, loopback):
            self.loopback = loopback  # as an engine holds its context, and the context its loopback
            access.offer(loopback, self.refusal)

        def refusal(self, request):
            return None

    loopback = Loopback()
    engine = Engine(loopback)
    assert access.judge(loopback) == engine.refusal
    alive = weakref.ref(loopback)
    del engine, loopback
    gc.collect()
    assert alive() is None
