"""Where embedded moto is bent to dealab's needs: time, randomness, and S3 access decisions.

moto stamps resources with `moto.core.utils.utcnow()` and draws ids from one seedable random generator.
Replaying the journal under each request's recorded time and seed brings back identical ids and dates, and
the lab clock's offset moves moto's idea of "now" for every service at once.

moto also half-evaluates bucket policies on object requests (a condition that does not match counts as a
deny), which would refuse compliant uploads; the s3access engine evaluates them properly, so moto's verdict
is neutralised.
"""

from __future__ import annotations

import datetime
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import moto.core.utils as moto_utils
from moto.moto_api._internal import mock_random

_original_utcnow = moto_utils.utcnow
_state = threading.local()
_patched: set[str] = set()
_modules_seen = 0
_offset = datetime.timedelta(0)


def now() -> datetime.datetime:
    """moto's current time (naive UTC): a frozen replay time if one is set, else the clock."""
    frozen = getattr(_state, "frozen", None)
    return frozen if frozen is not None else _original_utcnow() + _offset


def set_offset(offset: datetime.timedelta) -> None:
    global _offset
    _offset = offset


def install() -> None:
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    from dealab.stack import motofast

    FakeBucket.get_permission = lambda self, action, resource: PermissionResult.NEUTRAL
    moto_utils.utcnow = now
    motofast.install()
    patch_new_modules()
    _stamp_buckets_with_moto_time(FakeBucket)
    _keep_put_bodies_raw()


def _stamp_buckets_with_moto_time(bucket_class) -> None:
    """FakeBucket reads the wall clock (datetime.now), not utcnow, so a replayed CreateBucket would carry the
    restart's time as its CreationDate; it takes moto's "now" instead (frozen per journal entry on replay)."""
    if getattr(bucket_class.__init__, "dealab_stamped", False):
        return
    original_init = bucket_class.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.creation_date = now().replace(tzinfo=datetime.timezone.utc)

    init.dealab_stamped = True
    bucket_class.__init__ = init


def _keep_put_bodies_raw() -> None:
    """werkzeug parses a body sent as application/x-www-form-urlencoded into a form and leaves moto an empty
    body, so a PutObject or UploadPart of that type stored 0 bytes. No AWS protocol sends a form by PUT
    (query-protocol forms are POSTs), so moto's requests leave PUT bodies as they came."""
    from moto.core.request import Request

    Request.want_form_data_parsed = property(lambda request: request.method != "PUT" and bool(request.environ.get("CONTENT_TYPE")))


def patch_new_modules() -> None:
    """Points every moto module that imported `utcnow` by name at ours; modules load lazily, so this runs
    after every backend call, and walks sys.modules only when it has grown."""
    global _modules_seen
    if len(sys.modules) == _modules_seen:
        return
    _modules_seen = len(sys.modules)
    for name, module in list(sys.modules.items()):
        if name in _patched or not name.startswith("moto") or module is None:
            continue
        if getattr(module, "utcnow", None) is _original_utcnow:
            module.utcnow = now
        _patched.add(name)


@contextmanager
def frozen_at(moment: datetime.datetime) -> Iterator[None]:
    _state.frozen = moment
    try:
        yield
    finally:
        _state.frozen = None


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    mock_random.seed(seed)
    yield


# Draws the backend makes that no seed can bring back (os.urandom, key generation in OpenSSL) are recorded
# on a per-request tape while a live request runs, stored with its journal entry, and played back in order
# when that entry is replayed. `tape_draw` is the one way a patched draw takes part.


@contextmanager
def recording() -> Iterator[list]:
    """While a live request runs: every taped draw is appended to the yielded list (JSON-safe values)."""
    _state.tape, _state.replaying = [], False
    try:
        yield _state.tape
    finally:
        _state.tape = None


@contextmanager
def replaying(tape: list) -> Iterator[None]:
    """While a journal entry is replayed: taped draws come back from `tape` in order, and waits return at once."""
    _state.tape, _state.replaying = list(tape), True
    try:
        yield
    finally:
        _state.tape, _state.replaying = None, False


def is_replaying() -> bool:
    """True while a journal entry is being replayed: a wait must not block (the original already waited)."""
    return getattr(_state, "replaying", False)


def tape_draw(kind: str, draw, encode=lambda value: value, decode=lambda value: value):
    """Calls `draw()` live and records `encode(result)`; on replay returns `decode` of the recorded value of
    the same kind instead (or draws afresh when the tape has none, as for entries journaled before taping)."""
    tape = getattr(_state, "tape", None)
    if tape is None:
        return draw()
    if getattr(_state, "replaying", False):
        for index, (recorded_kind, value) in enumerate(tape):
            if recorded_kind == kind:
                del tape[index]
                return decode(value)
        return draw()
    result = draw()
    tape.append((kind, encode(result)))
    return result
