"""Lab time: the one clock every part of the stack reads.

The lab clock is real time plus an offset that `dealab clock advance` moves forward. Engines stamp their
records with it and decide what is due by it; the embedded backend's hooks (`dealab.stack.motohooks`) make
moto read it too, so a remote backend is the only part that keeps real time (its own stamps are its own).
`lab_time_of_backend_stamp` turns what the backend dated (an object's LastModified) into lab time either way:
the embedded backend's hooks declare that it reads this clock; a remote backend's real-time stamp is moved by
the offset that was in force when it was made, from the history of the clock's moves.

While the journal replays a request, the replaying thread freezes "now" at the moment the request was first
applied, so what the backend stamps comes back identical; waits and engines' own records use `live_now`,
which ignores a freeze.
"""

from __future__ import annotations

import bisect
import datetime
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EPOCH = datetime.datetime(1970, 1, 1)

_offset = datetime.timedelta(0)
_frozen = threading.local()
# (real time from which, offset) for every move of the clock, oldest first
_moves: list[tuple[datetime.datetime, datetime.timedelta]] = []
_backend_reads_lab_time = False


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
    # the history only dates a remote backend's stamps; the embedded backend stamps lab time itself
    if not _backend_reads_lab_time and (not _moves or _moves[-1][1] != value):
        _moves.append((real_now(), value))


def moves() -> list[list[float]]:
    """The clock's moves as [real epoch seconds, offset seconds] pairs, for the lab clock to persist."""
    return [[(moment - EPOCH).total_seconds(), value.total_seconds()] for moment, value in _moves]


def restore_moves(saved: list[list[float]]) -> None:
    """Puts back the moves `moves()` gave (an empty list forgets them)."""
    _moves[:] = [(EPOCH + datetime.timedelta(seconds=moment), datetime.timedelta(seconds=value)) for moment, value in saved]


def declare_backend_reads_lab_time() -> None:
    """Declared by the embedded backend's hooks: what it stamps is lab time already."""
    global _backend_reads_lab_time
    _backend_reads_lab_time = True


def backend_reads_lab_time() -> bool:
    """Whether the backend's own stamps are lab time (else real time, and `lab_time_of_backend_stamp` dates them)."""
    return _backend_reads_lab_time


def lab_time_of_backend_stamp(moment: datetime.datetime) -> datetime.datetime:
    """The lab time at which the backend stamped `moment` (naive or aware UTC; the answer keeps its kind)."""
    if _backend_reads_lab_time:
        return moment
    naive = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment
    made_after = bisect.bisect_right(_moves, (naive, datetime.timedelta.max))  # moves made by then
    return moment + (_moves[made_after - 1][1] if made_after else datetime.timedelta(0))


@contextmanager
def frozen_at(moment: datetime.datetime | None) -> Iterator[None]:
    """Freezes this thread's "now" at `moment` (with None, lifts a freeze) for a while, then puts back what was there."""
    before = getattr(_frozen, "moment", None)
    _frozen.moment = moment
    try:
        yield
    finally:
        _frozen.moment = before
