"""The lab clock: real time plus an offset the learner moves forward, shared with the backend's "now".

The offset is persisted with the stack's state. In the embedded backend, moto stamps everything it creates
with `labtime.now()`, which includes the same offset, so an object put after `advance 30d` is dated 30
days on, and an object put before it is 30 days old.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from dealab.wire.store import JsonFile
from dealab.wire import labtime

UTC = datetime.timezone.utc
DAY = datetime.timedelta(days=1)
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


class ClockError(ValueError):
    """A clock request that cannot be carried out, in words for the learner."""


def parse_duration(text: str) -> datetime.timedelta:
    """'30d', '12h', '90m', '2w', '45s' → timedelta."""
    match = _DURATION.match(str(text))
    if not match:
        raise ClockError(f"cannot read the duration {text!r}; write a number and a unit, e.g. 30d, 12h, 90m, 2w")
    return datetime.timedelta(seconds=float(match.group(1)) * DURATION_UNITS[match.group(2)])


def parse_moment(text: str) -> datetime.datetime:
    """'2027-01-01' or an ISO timestamp (UTC unless it names a zone) → aware UTC datetime."""
    try:
        moment = datetime.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ClockError(f"cannot read the date {text!r}; write e.g. 2027-01-01 or 2027-01-01T12:00:00") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def next_midnight(moment: datetime.datetime) -> datetime.datetime:
    """The first midnight UTC strictly after `moment`."""
    return datetime.datetime.combine(moment.date(), datetime.time(), UTC) + DAY


def midnight_on_or_after(moment: datetime.datetime) -> datetime.datetime:
    """S3 lifecycle rounds a due time up to the next midnight UTC (a time at midnight stays)."""
    midnight = datetime.datetime.combine(moment.date(), datetime.time(), UTC)
    return midnight if midnight == moment else midnight + DAY


class LabClock:
    def __init__(self, state_dir: Path):
        self._file = JsonFile(state_dir / "clock.json")
        saved = self._file.load({})
        self.offset = datetime.timedelta(seconds=saved.get("offset_seconds", 0.0))
        labtime.restore_moves(saved.get("moves", []))  # a remote backend's stamps are dated by them
        labtime.set_offset(self.offset)

    @staticmethod
    def real_now() -> datetime.datetime:
        return datetime.datetime.now(UTC)

    def now(self) -> datetime.datetime:
        return self.real_now() + self.offset

    def move_to(self, moment: datetime.datetime, persist: bool = True) -> None:
        """Points the clock (and the backend's notion of now) at `moment`; time keeps running from there."""
        self.offset = moment - self.real_now()
        labtime.set_offset(self.offset)
        if persist:
            self.save()

    def reset(self) -> None:
        self.offset = datetime.timedelta(0)
        labtime.set_offset(self.offset)
        self._file.remove()

    def save(self) -> None:
        self._file.save({"offset_seconds": self.offset.total_seconds(), "moves": labtime.moves()})

    def describe(self) -> dict:
        now = self.now()
        return {
            "now": now.isoformat(timespec="seconds"),
            "real_now": self.real_now().isoformat(timespec="seconds"),
            "offset_seconds": round(self.offset.total_seconds(), 3),
            "offset_days": round(self.offset.total_seconds() / 86400, 3),
        }
