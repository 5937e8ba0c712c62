"""The direct read path: a query's DuckDB reads s3:// objects through the gateway in this process, as ranged
GetObject calls handed over by the loopback's raw seam (dealab.wire.loopback.dispatch: no botocore, no HTTP),
not over HTTP from a DuckDB extension.

Each read it sends is an ordinary S3 GetObject signed with the account's keys and carrying no engine mark, so it
passes the door and every engine on the way (bucket policies and Block Public Access in s3access, lifecycle
expiry in clock, faults) exactly as a learner's own read would, and fails where theirs would. The bytes of
every answer are counted here: DataScannedInBytes and the work group's bytes-scanned cutoff read this counter.
DuckDB asks for what it needs (a Parquet footer, then the column chunks of the columns and row groups it
reads; a CSV file in large blocks), so the count is what the query read, not whole objects.

Reads up to CACHED_READ_BYTES (footers, Parquet metadata, column chunks, CSV blocks) are kept across queries in
an ObjectCache keyed by the object's ETag. A query opens an object without any call to S3 when the listing this
query made of its table (GlueCatalog.list_files records it in ListedObjects) shows the ETag whose bytes are cached, and the IAM
engine's evaluator, asked in this process (dealab.wire.access), lets the caller's GetObject of it pass: the
listing is the freshness check (an object replaced since shows another ETag), the evaluator the authorization (a
bucket policy's Deny fails the query as a GetObject would). Otherwise (first read, another ETag, an archived
storage class, SSE-KMS whose key IAM checks on S3's answer, no IAM engine in the stack) the query asks S3 for
the object's last bytes, conditional on the cached ETag (If-None-Match): 304 means the cached bytes are the
object's, 206 brings the new tail. Bytes not cached are read with If-Match on the ETag the query opened, so an
object replaced mid-query is refused rather than read half old, half new. A byte served from the cache is
counted as if it had been read, so DataScannedInBytes does not change. A read served from the cache is not a
request: faults do not strike it; CloudTrail is told of it (wire.trailevents.served) as the GetObject it stands for
(the tail read an opening sends; a range an earlier query fetched, once per query), so a trail logging the
bucket's data events records what an uncached query's reads would have recorded.

One file system serves every query of the database the queries share (execution.py), and each query reads
through its own QueryReads: its paths are s3://<token>/bucket/key, the token random, made when the query starts
and forgotten when it ends, so each read is authorized and counted for exactly one query, and a path naming no
live query's token is refused. The planner writes the token into the file lists of the tables a query reads;
SQL itself cannot name a path (sandbox.py). The file system is read-only: opening for writing, listing and
globbing are refused, so SQL cannot use it to reach anything but the objects it may read."""

from __future__ import annotations

import ctypes
import datetime
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from fsspec.spec import AbstractFileSystem
from werkzeug.datastructures import Headers

from dealab.config import TEST_ACCESS_KEY
from dealab.wire import access, trailevents
from dealab.wire.loopback import Loopback, RawAnswer, sign
from dealab.wire.messages import AwsRequest, AwsResponse

READ_ONLY_REASON = "queries in dealab read S3 objects only; results are written by the engine"
NO_QUERY_REASON = "queries in dealab read S3 only through the tables they name"
# Reads up to this size are kept for the rest of the query: DuckDB reads a Parquet footer when it binds the table
# and again when it scans it, and the second read must neither cost a call nor count twice (its external file
# cache does this for httpfs, not for a Python file system). Larger reads are data, read once by a query.
KEPT_READ_BYTES = 1 << 20
# Reads up to this size are kept across queries in the ObjectCache, so the next query over the same objects reads
# them from memory: footers, column chunks, and a CSV file's blocks (DuckDB reads a 7.5 MB CSV file whole; its
# GetObject through the gateway cost 3.8 ms, 75 of a 245 ms count(*) over 20 such files).
CACHED_READ_BYTES = 16 << 20
# What the ObjectCache holds at most (least recently used objects go first).
CACHE_LIMIT_BYTES = 256 << 20
# A file's size comes with its last bytes: one GetObject of this suffix instead of a HeadObject, and it is the
# Parquet footer DuckDB reads next (its first read of a Parquet file is the last 16 KiB). Kept bytes are
# counted only when DuckDB reads them, so a CSV file's prefetched tail costs nothing in DataScannedInBytes.
TAIL_BYTES = 16_384
# Storage classes whose objects GetObject always serves (no restore needed): only these are read from the cache on
# the strength of a listing; an archived object's read goes to S3, where the clock engine decides if it can be.
READABLE_STORAGE_CLASSES = frozenset({"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "GLACIER_IR"})
# How many listed objects ListedObjects remembers (the oldest listed go first).
LISTED_LIMIT = 200_000


_KEPT_THREAD_STATES: set[int] = set()  # threads (by ident) whose Python thread state is kept (_keep_thread_state)


def _keep_thread_state() -> None:
    """Keeps the calling thread's Python thread state for good. DuckDB calls this file system from its own worker
    threads, which Python does not know: each call made a thread state (pybind11's gil_scoped_acquire) and deleted
    it on return, ~14 times a file, and a second DuckDB thread doubled a footer-only count(*) over 20 files (4 -> 8
    ms in DuckDB, load 0.4). One more PyGILState_Ensure, never released, keeps the state alive between calls, as a
    thread Python made keeps its own (whose state only counts one more). A thread that ends leaves its state
    behind, so only the file system of a database that lives as long as the stack keeps them (the queries' shared
    database, whose worker threads live as long)."""
    ident = threading.get_ident()
    if ident not in _KEPT_THREAD_STATES:
        _KEPT_THREAD_STATES.add(ident)
        ctypes.pythonapi.PyGILState_Ensure()


class ScanCounter:
    """Bytes and requests this query's reads received; calls `on_exceed` once when the bytes pass `cutoff`."""

    def __init__(self, cutoff: int | None = None, on_exceed: Callable[[], None] | None = None):
        self.bytes = 0
        self.requests = 0
        self._cutoff, self._on_exceed = cutoff, on_exceed
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        with self._lock:
            before = self.bytes
            self.bytes += count
            self.requests += 1
        if self._cutoff and self._on_exceed and before <= self._cutoff < before + count:
            self._on_exceed()


def _split(path: str) -> tuple[str, str]:
    bucket, _, key = path.removeprefix("s3://").partition("/")
    return bucket, key


class S3Error(Exception):
    """An S3 error answer: its code (from the XML body, or the status for bodiless answers) and message."""

    CODES_BY_STATUS = {403: "AccessDenied", 404: "NoSuchKey", 412: "PreconditionFailed", 416: "InvalidRange"}

    def __init__(self, answer: RawAnswer):
        text = answer.body[:2048].decode("utf-8", "replace")
        code, message = (re.search(f"<{tag}>(.*?)</{tag}>", text, re.S) for tag in ("Code", "Message"))
        self.status = answer.status
        self.code = code.group(1) if code else self.CODES_BY_STATUS.get(answer.status, str(answer.status))
        self.message = message.group(1) if message else ""
        super().__init__(f"{self.code}: {self.message}")


class CallerS3:
    """S3 as the query's caller: requests signed with the account's keys (or, given `credentials`, with the keys it
    answers at each request: a role session's, as a Glue Data Quality run reads as its role), no engine mark,
    handed to the gateway by the loopback's raw seam (the same door and engines as the learner's own calls,
    without botocore)."""

    def __init__(self, loopback: Loopback, endpoint_url: str, region: str,
                 credentials: Callable[[], tuple[str, str, str | None]] | None = None):
        self._loopback, self._endpoint, self._region = loopback, endpoint_url.rstrip("/"), region
        self._credentials = credentials

    def request(self, method: str, bucket: str, key: str, headers: dict[str, str] | None = None, body: bytes = b"") -> RawAnswer:
        url = f"{self._endpoint}/{bucket}/{quote(key, safe='/~')}"
        keys = self._credentials() if self._credentials is not None else None
        answer = self._loopback.dispatch(method, url, sign(method, url, headers or {}, body, "s3", self._region, keys), body)
        if answer.status >= 400:
            raise S3Error(answer)
        return answer

    def put_object(self, bucket: str, key: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.request("PUT", bucket, key, headers, body)

    def served(self, bucket: str, key: str, known: CachedObject, start: int, data: bytes) -> None:
        """Tells CloudTrail of the ranged GetObject a read from the cache stands for (wire.trailevents), with the
        answer S3 would have given: a trail logging the bucket's data events records it as if it had been sent."""
        if not trailevents.would_record("s3", "GetObject", self._region, bucket):
            return
        path = f"/{bucket}/{quote(key, safe='/~')}"
        keys = self._credentials() if self._credentials is not None else None
        headers = sign("GET", f"{self._endpoint}{path}", {"Range": f"bytes={start}-{start + len(data) - 1}"}, b"", "s3", self._region, keys)
        request = AwsRequest("GET", path, "", Headers(headers), b"", service="s3", operation="GetObject", region=self._region,
                             caller_key=keys[0] if keys else TEST_ACCESS_KEY)
        answer = [("Content-Range", f"bytes {start}-{start + len(data) - 1}/{known.size}"), ("Content-Length", str(len(data))),
                  ("ETag", known.etag), ("Last-Modified", known.modified.strftime("%a, %d %b %Y %H:%M:%S GMT"))]
        trailevents.served(request, AwsResponse(206, answer, data))

    def may_read(self, bucket: str, key: str) -> bool:
        """Whether IAM lets the caller's GetObject of this object pass, decided in this process by the IAM engine's
        evaluator (dealab.wire.access) without sending it; raises S3Error with IAM's refusal. False when the stack
        has no IAM engine to ask: the caller then sends the request itself."""
        judge = access.judge(self._loopback)
        if judge is None:
            return False
        caller_key = self._credentials()[0] if self._credentials is not None else TEST_ACCESS_KEY
        request = AwsRequest("GET", f"/{bucket}/{quote(key, safe='/~')}", "", Headers(), b"", service="s3",
                             operation="GetObject", region=self._region, caller_key=caller_key)
        refusal = judge(request)
        if refusal is not None:
            raise S3Error(RawAnswer(refusal.status, {}, refusal.read()))
        return True


def _denied(path: str, error: S3Error) -> OSError:
    if error.code in ("AccessDenied", "KMS.AccessDeniedException"):
        return PermissionError(f"Permission denied on S3 path: s3://{path} ({error.code}: {error.message})")
    if error.code in ("NoSuchKey", "NoSuchBucket"):
        return FileNotFoundError(f"s3://{path} does not exist ({error.code})")
    if error.code == "PreconditionFailed":
        return OSError(f"s3://{path} was replaced while the query read it; run the query again")
    return OSError(f"S3 GetObject s3://{path} failed ({error.code}: {error.message})")


@dataclass
class CachedObject:
    """What is known of one version of an object: its size, and small reads of it as (start, bytes)."""

    etag: str
    size: int
    modified: datetime.datetime
    ranges: list[tuple[int, bytes]] = field(default_factory=list)
    # SSE-KMS: reading it also needs the caller's use of the key, which IAM checks on the GetObject's answer only
    kms_encrypted: bool = False
    # how many of `ranges` a query found in the ObjectCache when it opened the object (fetched by earlier queries)
    inherited: int = 0

    @property
    def weight(self) -> int:
        return sum(len(data) for _, data in self.ranges)


class ObjectCache:
    """Reads of objects across queries, by s3 path, each valid for the ETag it was read under; bounded by
    CACHE_LIMIT_BYTES, least recently used first out. It never authorizes anything: each query asks IAM or S3."""

    def __init__(self, limit_bytes: int = CACHE_LIMIT_BYTES):
        self._limit = limit_bytes
        self._objects: OrderedDict[str, CachedObject] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, path: str) -> CachedObject | None:
        with self._lock:
            known = self._objects.get(path)
            if known is not None:
                self._objects.move_to_end(path)
            return known

    def put(self, path: str, known: CachedObject) -> None:
        with self._lock:
            previous = self._objects.pop(path, None)
            self._weight += known.weight - (previous.weight if previous else 0)
            self._objects[path] = known
            self._shrink()

    def keep(self, path: str, etag: str, start: int, data: bytes) -> None:
        """Adds a small read to the cached version `etag` of `path` (nothing if another version is cached now)."""
        with self._lock:
            known = self._objects.get(path)
            if known is None or known.etag != etag:
                return
            known.ranges = [*known.ranges, (start, data)]  # a new list: queries iterate the one they were given
            self._weight += len(data)
            self._shrink()

    def _shrink(self) -> None:
        while self._weight > self._limit and self._objects:
            _, dropped = self._objects.popitem(last=False)
            self._weight -= dropped.weight


@dataclass(frozen=True)
class ListedObject:
    """One object as a listing showed it, and when (time.monotonic())."""

    etag: str
    size: int
    storage_class: str
    listed_at: float


class ListedObjects:
    """What the latest listing of each object showed: the catalog records every listing of a table's files here
    (GlueCatalog.list_files), which every query makes before it reads. A query that opens an object listed after it
    began, whose listed ETag is the one the ObjectCache holds bytes for, needs no call to S3 to know it has the
    object's current bytes (an object replaced since shows another ETag, and is read anew)."""

    def __init__(self, limit: int = LISTED_LIMIT):
        self._limit = limit
        self._objects: OrderedDict[str, ListedObject] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, bucket: str, items: list[dict]) -> None:
        """Items of a ListObjectsV2 answer (boto3's Contents) of `bucket`."""
        now = time.monotonic()
        with self._lock:
            for item in items:
                path = f"{bucket}/{item['Key']}"
                self._objects.pop(path, None)
                self._objects[path] = ListedObject(item.get("ETag", ""), item["Size"], item.get("StorageClass", "STANDARD"), now)
            while len(self._objects) > self._limit:
                self._objects.popitem(last=False)

    def since(self, path: str, moment: float) -> ListedObject | None:
        """How `path` (bucket/key) was listed, if it was listed at or after `moment`."""
        with self._lock:
            listed = self._objects.get(path)
        return listed if listed is not None and listed.listed_at >= moment else None


class ObjectReader:
    """One open object. DuckDB reads it two ways: positional reads (seek, then read) from several threads on one
    handle, and sequential reads (read after read). A thread's seek is kept for that thread's next read, so
    another thread's seek in between cannot move it; a read with no seek of its own goes on from the handle's
    position, as a file's would."""

    def __init__(self, reads: QueryReads, path: str, size: int, keep_thread_states: bool = False):
        self._reads, self.path, self.size = reads, path, size
        self._keep_thread_states = keep_thread_states
        self.position = 0
        self._sought: dict[int, int] = {}  # thread → where its last seek put it, until its next read
        self.closed = False

    def seek(self, offset: int, whence: int = 0) -> int:
        if self._keep_thread_states:
            _keep_thread_state()
        base = {0: 0, 1: self.tell(), 2: self.size}[whence]
        self.position = self._sought[threading.get_ident()] = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        if self._keep_thread_states:
            _keep_thread_state()
        return self._sought.get(threading.get_ident(), self.position)

    def read(self, length: int = -1) -> bytes:
        if self._keep_thread_states:
            _keep_thread_state()
        start = self._sought.pop(threading.get_ident(), self.position)
        end = self.size if length is None or length < 0 else min(self.size, start + length)
        data = self._reads.read_range(self.path, start, end)
        self.position = start + len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class QueryReads:
    """One query's reads: one conditional GetObject of each object's last bytes when the query first opens it
    (size, authorization, freshness of the cache), ranged GetObject for its other bytes, each range counted once.
    `prefix` is what this query's paths start with (s3://<token>/)."""

    def __init__(self, s3: CallerS3, cache: ObjectCache, listed: ListedObjects, token: str):
        self._s3, self._cache, self._listed, self.counter = s3, cache, listed, ScanCounter()
        self.prefix = f"s3://{token}/"
        self._started = time.monotonic()  # listings made since are this query's own
        self._objects: dict[str, CachedObject] = {}  # what this query opened, with its kept reads
        self._counted: dict[str, list[tuple[int, int]]] = {}  # per path, the disjoint byte ranges already counted
        self._served: set[tuple[str, int]] = set()  # (path, index) of inherited ranges CloudTrail was told of
        self._lock = threading.Lock()

    def head(self, path: str) -> CachedObject:
        with self._lock:
            known = self._objects.get(path)
        if known is None:
            known = self._open_object(path)
            with self._lock:
                known = self._objects.setdefault(path, known)
        return known

    def _open_object(self, path: str) -> CachedObject:
        bucket, key = _split(path)
        cached = self._cache.get(path)
        if cached is not None and self._listed_as(path, cached):
            try:
                judged = self._s3.may_read(bucket, key)
            except S3Error as error:
                raise _denied(path, error) from None
            if judged:  # this query's listing shows the version whose bytes are cached, and IAM lets the caller read it
                if cached.ranges:  # the tail read an opening sends, not sent
                    self._s3.served(bucket, key, cached, *cached.ranges[0])
                return replace(cached, ranges=list(cached.ranges), inherited=len(cached.ranges))
        headers = {"Range": f"bytes=-{TAIL_BYTES}"}
        if cached is not None:
            headers["If-None-Match"] = cached.etag
        try:
            answer = self._s3.request("GET", bucket, key, headers)
        except S3Error as error:
            if error.code != "InvalidRange":
                raise _denied(path, error) from None
            answer = self._s3.request("HEAD", bucket, key)  # an empty object has no last bytes
            answer.headers["content-range"] = f"bytes */{answer.headers['content-length']}"
        if answer.status == 304:  # the cached version is the object's: its bytes serve this query
            return replace(cached, ranges=list(cached.ranges), inherited=len(cached.ranges))
        size = int(answer.headers["content-range"].rpartition("/")[2])
        known = CachedObject(answer.headers.get("etag", ""), size, parsedate_to_datetime(answer.headers["last-modified"]),
                             kms_encrypted=answer.headers.get("x-amz-server-side-encryption") == "aws:kms")
        if answer.body:
            known.ranges.append((size - len(answer.body), answer.body))
        if known.etag:
            self._cache.put(path, replace(known, ranges=list(known.ranges)))
        return known

    def _listed_as(self, path: str, cached: CachedObject) -> bool:
        """Whether this query's listing of `path` shows the cached version, in a storage class any GetObject reads,
        and IAM's evaluator can judge its read alone (not SSE-KMS, whose key use IAM checks on S3's answer)."""
        listed = self._listed.since(path, self._started)
        return (listed is not None and listed.etag == cached.etag and listed.size == cached.size
                and listed.storage_class in READABLE_STORAGE_CLASSES and not cached.kms_encrypted)

    def _count_once(self, path: str, start: int, end: int) -> None:
        """Counts the bytes of [start, end) this query has not counted yet: DuckDB's first read of a Parquet file is
        its last 16 KiB, which may hold the last column chunks it then reads again, and a byte scanned is one byte."""
        with self._lock:
            new, low, high, merged = end - start, start, end, []
            for at, until in self._counted.get(path, ()):
                if until < start or end < at:
                    merged.append((at, until))
                    continue
                new -= max(0, min(end, until) - max(start, at))
                low, high = min(low, at), max(high, until)
            merged.append((low, high))
            self._counted[path] = merged
        if new:
            self.counter.add(new)

    def read_range(self, path: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        known = self.head(path)
        with self._lock:
            index, kept = next(((i, data[start - at : end - at]) for i, (at, data) in enumerate(known.ranges)
                                if at <= start and end <= at + len(data)), (None, None))
            # a range an earlier query fetched (not the tail, which came with the opening) stands for a GetObject
            tell = index is not None and 0 < index < known.inherited and (path, index) not in self._served
            if tell:
                self._served.add((path, index))
        if tell:
            self._s3.served(*_split(path), known, *known.ranges[index])
        if kept is not None:
            self._count_once(path, start, end)
            return kept
        bucket, key = _split(path)
        headers = {"Range": f"bytes={start}-{end - 1}"}
        if known.etag:  # the bytes of the version this query opened, not of one written since
            headers["If-Match"] = known.etag
        try:
            data = self._s3.request("GET", bucket, key, headers).body
        except S3Error as error:
            raise _denied(path, error) from None
        self._count_once(path, start, start + len(data))
        if len(data) <= KEPT_READ_BYTES:
            with self._lock:
                known.ranges.append((start, data))
        if len(data) <= CACHED_READ_BYTES:
            self._cache.keep(path, known.etag, start, data)
        return data


class S3ReadFileSystem(AbstractFileSystem):
    """s3:// for the database queries share: a path's first part is the token of the query reading it, whose
    QueryReads authorizes, fetches and counts the read; a token no live query holds is refused."""

    protocol = "s3"
    cachable = False  # fsspec would otherwise hand every database the first one's instance (and its queries)

    def __init__(self, s3: CallerS3, cache: ObjectCache, listed: ListedObjects, keep_thread_states: bool = False):
        super().__init__()
        self._s3, self._cache, self._listed = s3, cache, listed
        self.keep_thread_states = keep_thread_states  # _keep_thread_state for the threads that call it
        self._queries: dict[str, QueryReads] = {}
        self._lock = threading.Lock()

    def open_reads(self) -> QueryReads:
        """A query's reads, under a token of its own until close_reads."""
        token = secrets.token_hex(16)
        reads = QueryReads(self._s3, self._cache, self._listed, token)
        with self._lock:
            self._queries[token] = reads
        return reads

    def close_reads(self, reads: QueryReads) -> None:
        with self._lock:
            self._queries.pop(reads.prefix.removeprefix("s3://").rstrip("/"), None)

    def _route(self, path: str) -> tuple[QueryReads, str]:
        if self.keep_thread_states:
            _keep_thread_state()
        token, _, rest = self._strip_protocol(path).partition("/")
        with self._lock:
            reads = self._queries.get(token)
        if reads is None or not rest:
            raise PermissionError(f"Cannot read s3://{self._strip_protocol(path)}: {NO_QUERY_REASON}")
        return reads, rest

    # ---- what DuckDB's Python file system calls ---------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path):
        # DuckDB hands a plain s3:// string to each of its ~7 calls per file per query (glob, size, modified, open...);
        # fsspec's general form (lists, path objects, chained protocols) costs several times this on every one
        if type(path) is str and not path.startswith("s3::"):
            return path.removeprefix("s3://").rstrip("/")
        return super()._strip_protocol(path)

    def size(self, path) -> int:
        reads, rest = self._route(path)
        return reads.head(rest).size

    def info(self, path, **kwargs) -> dict:
        reads, rest = self._route(path)
        return {"name": self._strip_protocol(path), "size": reads.head(rest).size, "type": "file"}

    def modified(self, path) -> datetime.datetime:
        reads, rest = self._route(path)
        return reads.head(rest).modified

    def open(self, path, mode="rb", **kwargs):
        """DuckDB opens each file twice a query (to bind, to scan): fsspec's general open (text modes, compression,
        transactions) is skipped, as a file here is only ever read as bytes."""
        if mode != "rb":
            raise PermissionError(f"Cannot write s3://{self._strip_protocol(path)}: {READ_ONLY_REASON}")
        reads, rest = self._route(path)
        return ObjectReader(reads, rest, reads.head(rest).size, self.keep_thread_states)

    def ls(self, path, detail=True, **kwargs):
        raise PermissionError(f"Cannot list s3://{self._strip_protocol(path)}: {READ_ONLY_REASON}")

    def glob(self, path, maxdepth=None, **kwargs):
        """DuckDB globs every path it is given; a name without wildcards is the object itself (if it exists).
        Wildcards would list a bucket, which a query's own read path never does."""
        if any(char in path for char in "*?["):
            raise PermissionError(f"Cannot list s3://{self._strip_protocol(path)}: {READ_ONLY_REASON}")
        reads, rest = self._route(path)
        try:
            reads.head(rest)
        except FileNotFoundError:
            return []
        return [self._strip_protocol(path)]

    def rm(self, path, recursive=False, maxdepth=None):
        raise PermissionError(f"Cannot delete s3://{self._strip_protocol(path)}: {READ_ONLY_REASON}")
