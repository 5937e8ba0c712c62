"""The direct read path: a query's DuckDB reads s3:// objects through the gateway in this process, as ranged
GetObject calls handed over by the loopback (dealab.wire.loopback), not over HTTP from a DuckDB extension.

Each read is an ordinary S3 GetObject signed with the account's keys and carrying no engine mark, so it
passes the door and every engine on the way (bucket policies and Block Public Access in s3access, faults,
CloudTrail) exactly as a learner's own read would, and fails where theirs would. The bytes of every answer
are counted here: DataScannedInBytes and the work group's bytes-scanned cutoff read this counter. DuckDB asks
for what it needs (a Parquet footer, then the column chunks of the columns and row groups it reads; a CSV
file in large blocks), so the count is what the query read, not whole objects.

The file system is registered on one query's database only, and is read-only: opening for writing, listing
and globbing are refused, so SQL cannot use it to reach anything but the objects it may read."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable

from botocore.exceptions import ClientError
from fsspec.spec import AbstractFileSystem

READ_ONLY_REASON = "queries in dealab read S3 objects only; results are written by the engine"
# Reads up to this size are kept for the rest of the query: DuckDB reads a Parquet footer when it binds the
# table and again when it scans it, and the second read must neither cost a call nor count twice (its
# external file cache does this for httpfs, not for a Python file system). Larger reads are data, read once.
KEPT_READ_BYTES = 1 << 20
# A file's size comes with its last bytes: one GetObject of this suffix instead of a HeadObject, and it is the
# Parquet footer DuckDB reads next (its first read of a Parquet file is the last 16 KiB). Kept bytes are
# counted only when DuckDB reads them, so a CSV file's prefetched tail costs nothing in DataScannedInBytes.
TAIL_BYTES = 16_384


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


def _denied(path: str, error: ClientError) -> OSError:
    detail = error.response.get("Error", {})
    code = detail.get("Code") or str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    if code in ("AccessDenied", "403", "KMS.AccessDeniedException"):
        return PermissionError(f"Permission denied on S3 path: s3://{path} ({code}: {detail.get('Message', '')})")
    if code in ("NoSuchKey", "NoSuchBucket", "404"):
        return FileNotFoundError(f"s3://{path} does not exist ({code})")
    return OSError(f"S3 GetObject s3://{path} failed ({code}: {detail.get('Message', '')})")


class ObjectReader:
    """One open object. DuckDB reads it two ways: positional reads (seek, then read) from several threads on one
    handle, and sequential reads (read after read). A thread's seek is kept for that thread's next read, so
    another thread's seek in between cannot move it; a read with no seek of its own goes on from the handle's
    position, as a file's would."""

    def __init__(self, files: S3ReadFileSystem, path: str, size: int):
        self._files, self.path, self.size = files, path, size
        self.position = 0
        self._sought: dict[int, int] = {}  # thread → where its last seek put it, until its next read
        self.closed = False

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.tell(), 2: self.size}[whence]
        self.position = self._sought[threading.get_ident()] = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self._sought.get(threading.get_ident(), self.position)

    def read(self, length: int = -1) -> bytes:
        start = self._sought.pop(threading.get_ident(), self.position)
        end = self.size if length is None or length < 0 else min(self.size, start + length)
        data = self._files.read_range(self.path, start, end)
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


class S3ReadFileSystem(AbstractFileSystem):
    """s3:// for one query's database: a GetObject of a file's last bytes for its size (once per file), ranged
    GetObject for its bytes, through `s3` (a client whose calls go through the gateway's authorization)."""

    protocol = "s3"
    cachable = False  # fsspec would otherwise hand every query the first query's instance (and counter)

    def __init__(self, s3, counter: ScanCounter):
        super().__init__()
        self._s3, self.counter = s3, counter
        self._heads: dict[str, dict] = {}
        self._kept: dict[str, list[tuple[int, bytes]]] = {}  # path → (start, bytes) of small reads and tails
        self._counted: set[tuple[str, int, int]] = set()  # (path, start, end) of reads already counted
        self._lock = threading.Lock()

    def _head(self, path: str) -> dict:
        path = self._strip_protocol(path)
        with self._lock:
            known = self._heads.get(path)
        if known is None:
            bucket, key = _split(path)
            try:
                answer = self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{TAIL_BYTES}")
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "InvalidRange":
                    raise _denied(path, error) from None
                answer = self._s3.head_object(Bucket=bucket, Key=key)  # an empty object has no last bytes
                answer["ContentRange"] = f"bytes */{answer['ContentLength']}"
            size = int(answer["ContentRange"].rpartition("/")[2]) if answer.get("ContentRange") else answer["ContentLength"]
            known = {"name": path, "size": size, "type": "file", "LastModified": answer["LastModified"]}
            tail = answer["Body"].read() if "Body" in answer else b""
            with self._lock:
                self._heads[path] = known
                if tail:
                    self._kept.setdefault(path, []).append((size - len(tail), tail))
        return known

    def _count_once(self, path: str, start: int, end: int) -> None:
        with self._lock:
            if (path, start, end) in self._counted:
                return
            self._counted.add((path, start, end))
        self.counter.add(end - start)

    def read_range(self, path: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        with self._lock:
            kept = next((data[start - at : end - at] for at, data in self._kept.get(path, ()) if at <= start and end <= at + len(data)), None)
        if kept is not None:
            self._count_once(path, start, end)
            return kept
        bucket, key = _split(path)
        try:
            answer = self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        except ClientError as error:
            raise _denied(path, error) from None
        data = answer["Body"].read()
        self._count_once(path, start, start + len(data))
        if len(data) <= KEPT_READ_BYTES:
            with self._lock:
                self._kept.setdefault(path, []).append((start, data))
        return data

    # ---- what DuckDB's Python file system calls ---------------------------------------------------------
    def info(self, path, **kwargs) -> dict:
        return dict(self._head(path))

    def modified(self, path) -> datetime.datetime:
        return self._head(path)["LastModified"]

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, **kwargs):
        if mode != "rb":
            raise PermissionError(f"Cannot write s3://{self._strip_protocol(path)}: {READ_ONLY_REASON}")
        path = self._strip_protocol(path)
        return ObjectReader(self, path, self._head(path)["size"])

    def ls(self, path, detail=True, **kwargs):
        raise PermissionError(f"Cannot list s3://{self._strip_protocol(path)}: {READ_ONLY_REASON}")

    def glob(self, path, maxdepth=None, **kwargs):
        """DuckDB globs every path it is given; a name without wildcards is the object itself (if it exists).
        Wildcards would list a bucket, which a query's own read path never does."""
        path = self._strip_protocol(path)
        if any(char in path for char in "*?["):
            raise PermissionError(f"Cannot list s3://{path}: {READ_ONLY_REASON}")
        try:
            self._head(path)
        except FileNotFoundError:
            return []
        return [path]

    def rm(self, path, recursive=False, maxdepth=None):
        raise PermissionError(f"Cannot delete s3://{self._strip_protocol(path)}: {READ_ONLY_REASON}")
