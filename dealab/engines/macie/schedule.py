"""When a SCHEDULED classification job runs next: its scheduleFrequency (dailySchedule, weeklySchedule with
dayOfWeek, monthlySchedule with dayOfMonth) read as runs at the start of the day, UTC. A dayOfMonth past the month's
last day runs on the last day, as Macie does for 31 in a 30-day month. Pure functions of the frequency and a moment
(naive UTC, as lab time is kept)."""

from __future__ import annotations

import calendar
import datetime

DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


class FrequencyError(ValueError):
    """A scheduleFrequency Macie refuses (ValidationException with this message)."""


def _midnight(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _daily(spec: dict, after: datetime.datetime) -> datetime.datetime:
    return _midnight(after) + datetime.timedelta(days=1)


def _weekly(spec: dict, after: datetime.datetime) -> datetime.datetime:
    day = DAYS.index(spec["dayOfWeek"])
    ahead = (day - after.weekday()) % 7 or 7
    return _midnight(after) + datetime.timedelta(days=ahead)


def _monthly(spec: dict, after: datetime.datetime) -> datetime.datetime:
    year, month = after.year, after.month
    while True:
        day = min(int(spec["dayOfMonth"]), calendar.monthrange(year, month)[1])
        candidate = datetime.datetime(year, month, day)
        if candidate > after:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


NEXT_RUN = {"dailySchedule": _daily, "weeklySchedule": _weekly, "monthlySchedule": _monthly}


def check(frequency: dict | None) -> dict:
    """The frequency as stored, or FrequencyError naming what Macie refuses."""
    members = [name for name in (frequency or {}) if name in NEXT_RUN]
    if len(members) != 1:
        raise FrequencyError("A SCHEDULED job needs scheduleFrequency with one of dailySchedule, weeklySchedule or monthlySchedule.")
    spec = frequency[members[0]] or {}
    if members[0] == "weeklySchedule" and spec.get("dayOfWeek") not in DAYS:
        raise FrequencyError(f"weeklySchedule.dayOfWeek must be one of {', '.join(DAYS)}.")
    if members[0] == "monthlySchedule" and not (isinstance(spec.get("dayOfMonth"), int) and 1 <= spec["dayOfMonth"] <= 31):
        raise FrequencyError("monthlySchedule.dayOfMonth must be 1-31.")
    return {members[0]: spec}


def next_run(frequency: dict, after: datetime.datetime) -> datetime.datetime:
    [(name, spec)] = frequency.items()
    return NEXT_RUN[name](spec, after)
