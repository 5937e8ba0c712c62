"""Secrets Manager rotation rules: what RotateSecret accepts, and when the next rotation is due.

RotationRules holds AutomaticallyAfterDays (1-1000) or ScheduleExpression (`rate(N hours)`, `rate(N days)` or an
AWS `cron(...)`), and optionally Duration (`Nh`, the rotation window, 1-24 hours). AWS rotates at a random moment
inside the window; dealab rotates at the window's start, so a clock move past NextRotationDate always rotates.
Windows of day schedules (AutomaticallyAfterDays, `rate(N days)`) start at midnight UTC, as AWS's do.
Pure functions of the rules and a moment: the engine and the tests share them.
"""

from __future__ import annotations

import datetime
import re

from dealab.wire.awscron import Cron, CronError

UTC = datetime.timezone.utc
_RATE = re.compile(r"^\s*rate\(\s*(\d+)\s+(hour|hours|day|days)\s*\)\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^(\d{1,2})h$")
MIN_RATE_HOURS = 4  # Secrets Manager: rotation at most every four hours
MAX_DAYS = 1000


class RulesError(ValueError):
    """Rotation rules Secrets Manager refuses: InvalidParameterException with this message."""


def check(rules: dict) -> dict:
    """The rules as stored, or RulesError naming what AWS refuses."""
    days, expression, duration = rules.get("AutomaticallyAfterDays"), rules.get("ScheduleExpression"), rules.get("Duration")
    if days is not None and expression is not None:
        raise RulesError("You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules.")
    if days is None and expression is None:
        raise RulesError("RotationRules must contain AutomaticallyAfterDays or ScheduleExpression.")
    if days is not None and not (isinstance(days, int) and 1 <= days <= MAX_DAYS):
        raise RulesError(f"RotationRules.AutomaticallyAfterDays must be within 1-{MAX_DAYS}.")
    if expression is not None:
        _window_kind(expression)
    if duration is not None:
        match = _DURATION.match(str(duration))
        if not match or not 1 <= int(match.group(1)) <= 24:
            raise RulesError(f"RotationRules.Duration {duration!r} is not valid: write the rotation window as 1h to 24h.")
    return {name: value for name, value in (("AutomaticallyAfterDays", days), ("ScheduleExpression", expression),
                                            ("Duration", duration)) if value is not None}


def _window_kind(expression: str) -> tuple[str, int | Cron]:
    """("hours", n), ("days", n) or ("cron", Cron)."""
    rate = _RATE.match(expression)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2).lower().rstrip("s")
        if unit == "hour" and not MIN_RATE_HOURS <= count <= 23:
            raise RulesError(f"The schedule expression {expression!r} is not valid: rate(N hours) takes N from {MIN_RATE_HOURS} to 23.")
        if unit == "day" and not 1 <= count <= MAX_DAYS:
            raise RulesError(f"The schedule expression {expression!r} is not valid: rate(N days) takes N from 1 to {MAX_DAYS}.")
        return unit + "s", count
    try:
        cron = Cron.parse(expression, minimum_interval_minutes=MIN_RATE_HOURS * 60)
    except CronError as error:
        raise RulesError(f"The schedule expression {expression!r} is not valid: {error}") from None
    hours = list(cron.hours)
    gaps = [later - earlier for earlier, later in zip(hours, hours[1:])] + ([hours[0] + 24 - hours[-1]] if len(hours) > 1 else [])
    if len(cron.minutes) > 1 or any(gap < MIN_RATE_HOURS for gap in gaps):
        raise RulesError(f"The schedule expression {expression!r} is not valid: it rotates more often than every {MIN_RATE_HOURS} hours.")
    return "cron", cron


def next_rotation(rules: dict, last: datetime.datetime) -> datetime.datetime | None:
    """The start of the first rotation window after `last` (naive UTC), None if the schedule never fires again."""
    last = last.replace(tzinfo=UTC) if last.tzinfo is None else last
    if "AutomaticallyAfterDays" in rules:
        kind, value = "days", rules["AutomaticallyAfterDays"]
    else:
        kind, value = _window_kind(rules["ScheduleExpression"])
    if kind == "hours":
        due = last + datetime.timedelta(hours=value)
    elif kind == "days":
        midnight = last.replace(hour=0, minute=0, second=0, microsecond=0)
        due = midnight + datetime.timedelta(days=value)
    else:
        due = value.first_time_between(last, last + datetime.timedelta(days=800))
    return due.replace(tzinfo=None) if due is not None else None
