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
