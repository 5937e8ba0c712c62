"""Lab timers: work due at a moment of lab time (a schedule's next run, a state machine's Wait, a retry's
backoff), fired in due order whether time passes or the clock is moved.

An engine schedules `(owner, key) → at, fire`; scheduling the same key again replaces it. Two things fire
timers, never at once:
- as real time passes, a ticker thread fires what has come due;
- a clock move (`dealab clock advance`) steps the lab clock to each due moment on the way, in order, and fires
  what is due there, so a nightly schedule over a three-night move runs three times, each at its night.
`fire(at)` should start work rather than do it, and may return a "settled" check (a callable answering
True once the work is done); a clock move waits for it, up to `SETTLE_SECONDS` of real time, before it moves
past that moment, so a run fired at night one finishes at night one.

Timers live in memory: each engine schedules its own again from its persisted state when it starts, so
nothing here needs saving. Firing counts only moments; a schedule that would fire a million times over a
two-year move bounds its own catch-up (see `move_target`) and says what it skipped with `note_skipped`.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dealab.wire import labtime

log = logging.getLogger("dealab.timers")

Settled = Callable[[], bool]
Fire = Callable[[datetime.datetime], Settled | None]

# How long a clock move waits for the work a timer started before it moves on (real seconds).
SETTLE_SECONDS = 120.0
SETTLE_POLL_SECONDS = 0.05
# The ticker looks again at least this often, so a clock move or a new timer is never waited out.
TICK_SECONDS = 0.5


@dataclass(order=True)
class _Timer:
    at: datetime.datetime
    order: int
    owner: str = field(compare=False)
    key: str = field(compare=False)
    fire: Fire = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Timers:
    def __init__(self):
        self._heap: list[_Timer] = []
        self._by_key: dict[tuple[str, str], _Timer] = {}
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # held while timers fire, so the ticker and a clock move never fire at the same time
        self._firing = threading.RLock()
        self._move_target: datetime.datetime | None = None
        # per thread: the work other engines start while a timer fires on it (see note_started)
        self._local = threading.local()
        self._skipped: dict[tuple[str, str], int] = {}
        self._ticker: threading.Thread | None = None
        self._closed = False

    # ---- what engines call ---------------------------------------------------------------------------
    def schedule(self, owner: str, key: str, at: datetime.datetime, fire: Fire) -> None:
        """Fires `fire(at)` once lab time reaches `at` (naive UTC); replaces what (owner, key) had."""
        with self._lock:
            self._drop(owner, key)
            timer = _Timer(at, next(self._order), owner, key, fire)
            self._by_key[(owner, key)] = timer
            heapq.heappush(self._heap, timer)
            self._changed.notify_all()
            if self._ticker is None and not self._closed:
                self._ticker = threading.Thread(target=self._tick, name="lab-timers", daemon=True)
                self._ticker.start()

    def cancel(self, owner: str, key: str) -> None:
        with self._lock:
            self._drop(owner, key)

    def cancel_owner(self, owner: str) -> None:
        """Forgets every timer of `owner` (its engine was reset or closed)."""
        with self._lock:
            for timer_owner, key in [pair for pair in self._by_key if pair[0] == owner]:
                self._drop(timer_owner, key)

    def due_at(self, owner: str, key: str) -> datetime.datetime | None:
        with self._lock:
            timer = self._by_key.get((owner, key))
            return timer.at if timer else None

    def move_target(self) -> datetime.datetime | None:
        """Where the clock move under way is going (None when time just passes): a schedule that would fire
        more than it should catches up only to near there."""
        return self._move_target

    def note_skipped(self, owner: str, key: str, occurrences: int) -> None:
        """Says that a schedule left out `occurrences` runs of the move under way; the move's summary lists it."""
        with self._lock:
            self._skipped[(owner, key)] = self._skipped.get((owner, key), 0) + occurrences

    def note_started(self, settled: Settled) -> None:
        """Work an engine starts on the thread of a timer that is firing (a schedule's StartExecution reaches the
        Step Functions engine through the loopback, on the firing thread): a clock move waits for it as for the
        timer's own work, so a nightly run ends on its night. Elsewhere it is nobody's to wait for."""
        started = getattr(self._local, "started", None)
        if started is not None:
            started.append(settled)

    # ---- what the lab clock calls --------------------------------------------------------------------
    def next_due(self) -> datetime.datetime | None:
        with self._lock:
            self._pop_cancelled()
            return self._heap[0].at if self._heap else None

    def moving_to(self, target: datetime.datetime | None) -> None:
        """Marks a clock move under way (None: it has ended) and clears the last move's skipped runs."""
        with self._lock:
            self._move_target = target
            if target is not None:
                self._skipped = {}

    def skipped(self) -> dict[str, int]:
        """What the last or current move left out, "owner:key" → occurrences."""
        with self._lock:
            return {f"{owner}:{key}": count for (owner, key), count in sorted(self._skipped.items())}

    def fire_due(self, moment: datetime.datetime, settle: bool = False) -> int:
        """Fires every timer due at or before `moment`, in due order (what they schedule on the way too);
        with `settle`, waits for each one's work. Returns how many fired."""
        fired = 0
        with self._firing:
            while True:
                with self._lock:
                    self._pop_cancelled()
                    if not self._heap or self._heap[0].at > moment:
                        return fired
                    timer = heapq.heappop(self._heap)
                    del self._by_key[(timer.owner, timer.key)]
                outer, self._local.started = getattr(self._local, "started", None), []
                try:
                    settled = timer.fire(timer.at)
                except Exception:  # one engine's failure never stops the others' timers
                    log.exception("timer %s:%s due %s failed", timer.owner, timer.key, timer.at)
                    settled = None
                finally:
                    started, self._local.started = self._local.started, outer
                fired += 1
                if settle:
                    for check in ([settled] if settled is not None else []) + started:
                        _wait_settled(check, f"{timer.owner}:{timer.key}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify_all()

    # ---- inside ---------------------------------------------------------------------------------------
    def _drop(self, owner: str, key: str) -> None:
        timer = self._by_key.pop((owner, key), None)
        if timer is not None:
            timer.cancelled = True

    def _pop_cancelled(self) -> None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)

    def _tick(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                self._pop_cancelled()
                wait = TICK_SECONDS
                if self._heap:
                    wait = min(wait, max(0.0, (self._heap[0].at - labtime.live_now()).total_seconds()))
                if wait > 0:
                    self._changed.wait(wait)
                    continue
            if self._move_target is None:  # a move fires what is due on its own way
                self.fire_due(labtime.live_now())


def _wait_settled(settled: Settled, name: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        try:
            if settled():
                return
        except Exception:
            log.exception("timer %s: its settled check failed", name)
            return
        time.sleep(SETTLE_POLL_SECONDS)
    log.warning("timer %s: its work had not settled after %.0f s; the clock moved on", name, SETTLE_SECONDS)


# The stack's one set of timers, as labtime is its one clock.
timers = Timers()
