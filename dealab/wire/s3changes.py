"""What may have changed the objects S3 would list, as the gateway saw requests pass.

A reader that keeps what it listed (the Athena engine keeps its queries' listings) takes a `mark` of the bucket
before it lists, keeps the listing only if the mark is the same after, and uses it again only while the mark stays
the same. The gateway reports every request that may change state, before it is applied and again after its answer
(`changing`), so a listing made across a write is not kept:

- an S3 request moves its bucket's count (the bucket its path names, or its `<bucket>.localhost` host); one whose
  bucket is not plain to see (an access point, a host of another shape) moves every bucket's;
- a request of any other service moves every bucket's, but for the services in OWN_WRITES_ONLY: a backend may
  write S3 itself on another service's behalf (DynamoDB's export to S3, CloudWatch Logs' export task), and what
  the gateway cannot see it cannot rule out;
- an admin call that may change state (a move of the lab clock, a reset) moves every bucket's;
- the lab clock's offset is in the mark too (a move is an admin call, and lifecycle transitions change the storage
  class a listing shows).

Not seen: writes made to a remote backend directly, around the gateway (as for the Glue cache).
"""

from __future__ import annotations

import threading
from urllib.parse import unquote

from dealab.wire import labtime
from dealab.wire.messages import AwsRequest
from dealab.wire.s3names import bucket_name_problem

# Services whose requests change no S3 object but through S3 requests of their own, which pass the gateway and are
# counted as such: dealab's Athena engine (results, CTAS and UNLOAD files are PutObjects) and CloudWatch (metrics,
# alarms; an alarm's action is a call of its own).
OWN_WRITES_ONLY = frozenset({"athena", "cloudwatch"})
# Hosts a path-style request names the stack by (the bucket is the path's first part).
PATH_STYLE_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
VIRTUAL_HOST_SUFFIX = ".localhost"
# (every bucket's count, this bucket's count, the lab clock's offset)
Mark = tuple

_lock = threading.Lock()
_every_bucket = 0
_by_bucket: dict[str, int] = {}


def mark(bucket: str) -> Mark:
    with _lock:
        return _every_bucket, _by_bucket.get(bucket, 0), labtime.offset()


def changing(request: AwsRequest) -> None:
    """The gateway's report of a request that may change state (called before it is applied and after its answer)."""
    if request.service == "s3":
        bucket = _bucket_of(request)
        if bucket is not None:
            with _lock:
                _by_bucket[bucket] = _by_bucket.get(bucket, 0) + 1
            return
    elif request.service in OWN_WRITES_ONLY:
        return
    everything_changing()


def everything_changing() -> None:
    global _every_bucket
    with _lock:
        _every_bucket += 1


def _bucket_of(request: AwsRequest) -> str | None:
    """The bucket an S3 request names, when it is plain to see; None otherwise (an access point's alias or ARN)."""
    host = (request.headers.get("Host") or "").lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name in PATH_STYLE_HOSTS:
        bucket = unquote(request.path.lstrip("/").partition("/")[0])
    elif name.endswith(VIRTUAL_HOST_SUFFIX) and name.count(".") == 1:
        bucket = name.removesuffix(VIRTUAL_HOST_SUFFIX)
    else:
        return None
    if bucket_name_problem(bucket) is not None or bucket.startswith("s3-"):
        return None  # an access point's alias, an ARN, or a name that may be an S3 endpoint's rather than a bucket's
    return bucket
