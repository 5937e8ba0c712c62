"""Lab time: the one clock every part of the stack reads.

The lab clock is real time plus an offset that `dealab clock advance` moves forward. Engines stamp their
records with it and decide what is due by it; the embedded backend's hooks (`dealab.stack.motohooks`) make
moto read it too, so a remote backend is the only part that keeps real time (its own stamps are its own).

While the journal replays a request, the replaying thread freezes "now" at the moment the request was first
applied, so what the backend stamps comes back identical; waits and engines' own records use `live_now`,
which ignores a freeze.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EPOCH = datetime.datetime(1970, 1, 1)

_offset = datetime.timedelta(0)
_frozen = threading.local()


def real_now() -> datetime.datetime:
    """Wall-clock UTC, naive (as moto keeps its times)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def now() -> datetime.datetime:
    """Lab time now (naive UTC): the frozen replay moment if this thread has one, else the live lab time."""
    moment = getattr(_frozen, "moment", None)
    return moment if moment is not None else live_now()


def live_now() -> datetime.datetime:
    """Lab time now, ignoring a frozen replay moment (for waits, which run in real time)."""
    return real_now() + _offset


def unix_time() -> float:
    """time.time() on the lab clock, ignoring a frozen replay moment: what engines stamp their records with."""
    return (live_now() - EPOCH).total_seconds()


def offset() -> datetime.timedelta:
    """How far the lab clock is ahead of real time."""
    return _offset


def set_offset(value: datetime.timedelta) -> None:
    global _offset
    _offset = value


@contextmanager
def frozen_at(moment: datetime.datetime | None) -> Iterator[None]:
    """Freezes this thread's "now" at `moment` (with None, lifts a freeze) for a while, then puts back what was there."""
    before = getattr(_frozen, "moment", None)
    _frozen.moment = moment
    try:
        yield
    finally:
        _frozen.moment = before
