"""When schedules fire: rate(), cron() and at() expressions on the lab clock, and how a long move catches up.

Every time here is naive UTC, as the lab clock keeps it. A recurrence answers three questions: the next
occurrence after a moment, how many fall in a stretch, and which is the k-th after a moment; the last two
are arithmetic for rates and a day at a time for cron, so a two-year move costs days walked, never runs.

- `rate(N unit)` fires at anchor + N units, + 2N units, ... where the anchor is when the rule was put (or
  the schedule's StartDate, else its creation).
- `cron(...)` is AWS's six-field cron (dealab.wire.awscron), evaluated in the schedule's time zone: a
  zone's local wall times, turned into UTC at each occurrence (a wall time a DST change skips is moved by
  zoneinfo's fold rules rather than dropped, unlike AWS).
- `at(yyyy-mm-ddThh:mm:ss)` fires once, in its time zone.

Catch-up: a clock move fires at most `CATCH_UP_LIMIT` occurrences per schedule: the last ones before the
move's target. The others are skipped and reported, so `rate(1 minute)` over two years fires 100 runs, not
a million.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dealab.wire.awscron import UTC, Cron, CronError

CATCH_UP_LIMIT = 100
ONE_MINUTE = datetime.timedelta(minutes=1)
CRON_HORIZON = datetime.timedelta(days=366 * 5)  # a cron that does not fire within five years has ended
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    """An expression the service refuses."""


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"Invalid time zone: {name}") from None


@dataclass(frozen=True)
class Rate:
    anchor: datetime.datetime
    period: datetime.timedelta

    def _passed(self, moment: datetime.datetime) -> int:
        """How many occurrences (k ≥ 1) are at or before `moment`."""
        return max(0, (moment - self.anchor) // self.period)

    def next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        return self.anchor + (self._passed(moment) + 1) * self.period

    def count_between(self, after: datetime.datetime, until: datetime.datetime) -> int:
        return max(0, self._passed(until) - self._passed(after))

    def kth_after(self, after: datetime.datetime, k: int) -> datetime.datetime:
        return self.anchor + (self._passed(after) + k) * self.period


@dataclass(frozen=True)
class CronRecurrence:
    cron: Cron
    zone: ZoneInfo

    def _local(self, moment: datetime.datetime) -> datetime.datetime:
        return moment.replace(tzinfo=UTC).astimezone(self.zone).replace(tzinfo=None)

    def _utc(self, local: datetime.datetime) -> datetime.datetime:
        return local.replace(tzinfo=self.zone).astimezone(UTC).replace(tzinfo=None)

    def next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        local = self._local(moment)
        found = self.cron.first_time_between(local.replace(tzinfo=UTC), (local + CRON_HORIZON).replace(tzinfo=UTC))
        return self._utc(found.replace(tzinfo=None)) if found else None

    def _walk(self, after: datetime.datetime, until: datetime.datetime | None, stop_at: int | None):
        """Counts occurrences in (after, until] a day at a time; with `stop_at`, returns the stop_at-th one."""
        start, end = self._local(after), self._local(until) if until else None
        count, day = 0, start.date()
        last_day = end.date() if end else start.date() + CRON_HORIZON
        while day <= last_day:
            if self.cron.fires_on(day):
                whole_day = day != start.date() and (end is None or day != end.date())
                if whole_day and (stop_at is None or count + self.cron.moments_per_day < stop_at):
                    count += self.cron.moments_per_day
                else:
                    for moment in self.cron.moments_on(day):
                        local = moment.replace(tzinfo=None)
                        if local <= start or (end is not None and local > end):
                            continue
                        count += 1
                        if count == stop_at:
                            return self._utc(local)
            day += datetime.timedelta(days=1)
        return count

    def count_between(self, after: datetime.datetime, until: datetime.datetime) -> int:
        return self._walk(after, until, None)

    def kth_after(self, after: datetime.datetime, k: int) -> datetime.datetime:
        return self._walk(after, None, k)


@dataclass(frozen=True)
class At:
    moment: datetime.datetime

    def next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        return self.moment if self.moment > moment else None

    def count_between(self, after: datetime.datetime, until: datetime.datetime) -> int:
        return int(after < self.moment <= until)

    def kth_after(self, after: datetime.datetime, k: int) -> datetime.datetime:
        return self.moment


@dataclass(frozen=True)
class Window:
    """A recurrence kept within [start, end] (a schedule's StartDate and EndDate)."""

    inner: Rate | CronRecurrence | At
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None

    def _from(self, moment: datetime.datetime) -> datetime.datetime:
        return max(moment, self.start - datetime.timedelta(microseconds=1)) if self.start else moment

    def next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        found = self.inner.next_after(self._from(moment))
        return None if found is None or (self.end and found > self.end) else found

    def count_between(self, after: datetime.datetime, until: datetime.datetime) -> int:
        until = min(until, self.end) if self.end else until
        after = self._from(after)
        return self.inner.count_between(after, until) if until > after else 0

    def kth_after(self, after: datetime.datetime, k: int) -> datetime.datetime:
        return self.inner.kth_after(self._from(after), k)


def parse_rate(expression: str, anchor: datetime.datetime) -> Rate | None:
    match = _RATE.match(expression.strip())
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    if value < 1 or (value == 1) == unit.endswith("s"):
        raise ScheduleError(f"{expression}: a rate of 1 takes a singular unit (minute, hour, day), any other a plural one")
    return Rate(anchor.replace(second=0, microsecond=0), datetime.timedelta(seconds=value * UNIT_SECONDS[unit.rstrip("s")]))


def recurrence(expression: str, anchor: datetime.datetime, timezone: str | None = None, one_time: bool = False) -> Rate | CronRecurrence | At:
    """The recurrence an expression names; `one_time` admits at() (Scheduler only)."""
    text = (expression or "").strip()
    rate = parse_rate(text, anchor)
    if rate:
        return rate
    if text.startswith("cron("):
        try:
            return CronRecurrence(Cron.parse(text, minimum_interval_minutes=1), _zone(timezone))
        except CronError as error:
            raise ScheduleError(str(error)) from None
    at = _AT.match(text)
    if at and one_time:
        local = datetime.datetime.fromisoformat(at.group(1))
        return At(local.replace(tzinfo=_zone(timezone)).astimezone(UTC).replace(tzinfo=None))
    raise ScheduleError(f"{expression!r} is not a schedule expression")


def catch_up(schedule, due: datetime.datetime, target: datetime.datetime) -> tuple[int, datetime.datetime | None]:
    """At an occurrence `due` with the clock heading to `target`: how many occurrences from `due` on to
    skip so that at most CATCH_UP_LIMIT fire before `target`, and the next one to fire after the skipped
    (None: the schedule has ended). (0, due) when `due` itself fires."""
    waiting = 1 + schedule.count_between(due, target)
    if waiting <= CATCH_UP_LIMIT:
        return 0, due
    skipped = waiting - CATCH_UP_LIMIT
    last_skipped = due if skipped == 1 else schedule.kth_after(due, skipped - 1)
    return skipped, schedule.next_after(last_skipped)
