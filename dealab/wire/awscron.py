"""AWS cron expressions, as Glue crawlers and triggers (and EventBridge rules) read them: pure functions of
the expression and a moment, no clock and no engine state, so engines and the grader share one evaluator.

`cron(Minutes Hours Day-of-month Month Day-of-week Year)` in UTC, with the wildcards of AWS's documentation
(`, - * /` everywhere, `?` `L` `W` in Day-of-month, `?` `L` `#` in Day-of-week, names JAN-DEC and SUN-SAT),
one of the two day fields `?`, and (for Glue) no rate faster than every 5 minutes; EventBridge allows every minute. Day-of-week counts 1 = SUN ... 7 = SAT,
and the sixth field is the year: other cron dialects (croniter, Unix cron) read both differently.
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass

UTC = datetime.timezone.utc
MINIMUM_INTERVAL_MINUTES = 5
MONTH_NAMES = {name: number for number, name in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}
DAY_NAMES = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
_CRON = re.compile(r"^\s*cron\((.*)\)\s*$", re.IGNORECASE)


class CronError(ValueError):
    """A schedule expression Glue would refuse; the message says which part and why."""


def _aws_weekday(day: datetime.date) -> int:
    """1 = Sunday ... 7 = Saturday, as in cron's Day-of-week."""
    return (day.weekday() + 1) % 7 + 1


def _number(token: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(token.upper()) if not token.isdigit() else int(token)
    if value is None or not low <= value <= high:
        raise CronError(f"{field} value {token!r} is not in {low}-{high}")
    return value


def _values(spec: str, field: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """The values a field list (`1,5-9,*/15,JAN-MAR`) stands for."""
    names = names or {}
    values: set[int] = set()
    for part in spec.split(","):
        body, slash, step_text = part.partition("/")
        if slash and not step_text.isdigit():
            raise CronError(f"{field}: the increment in {part!r} is not a number")
        step = int(step_text) if slash else 1
        if step < 1:
            raise CronError(f"{field}: the increment in {part!r} must be at least 1")
        if body == "*":
            first, last = low, high
        elif "-" in body:
            start, _, end = body.partition("-")
            first, last = _number(start, field, low, high, names), _number(end, field, low, high, names)
            if first > last:
                raise CronError(f"{field}: the range {body!r} runs backwards")
        else:
            first = _number(body, field, low, high, names)
            last = high if slash else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: str
    months: frozenset[int]
    day_of_week: str
    years: frozenset[int]

    @classmethod
    def parse(cls, expression: str, minimum_interval_minutes: int = MINIMUM_INTERVAL_MINUTES) -> Cron:
        """The expression read, or CronError; `minimum_interval_minutes` is the service's limit (Glue 5, EventBridge 1)."""
        match = _CRON.match(expression or "")
        if not match:
            raise CronError(f"schedule {expression!r} is not a cron expression: write cron(Minutes Hours Day-of-month Month Day-of-week Year)")
        fields = match.group(1).split()
        if len(fields) != 6:
            raise CronError(f"schedule {expression!r} has {len(fields)} fields; a cron expression has 6: Minutes Hours Day-of-month Month Day-of-week Year")
        minute, hour, day_of_month, month, day_of_week, year = fields
        if (day_of_month == "?") == (day_of_week == "?"):
            raise CronError(f"schedule {expression!r}: exactly one of Day-of-month and Day-of-week must be '?'")
        cron = cls(
            expression=expression.strip(),
            minutes=tuple(sorted(_values(minute, "Minutes", 0, 59))),
            hours=tuple(sorted(_values(hour, "Hours", 0, 23))),
            day_of_month=day_of_month.upper(),
            months=_values(month, "Month", 1, 12, MONTH_NAMES),
            day_of_week=day_of_week.upper(),
            years=_values(year, "Year", 1970, 2199),
        )
        probe = datetime.date(2024, 1, 1)  # reads both day fields once, so a bad one is refused now, not when due
        cron._day_matches(probe)
        cron._check_minimum_interval(minimum_interval_minutes)
        return cron

    def _check_minimum_interval(self, minimum_interval_minutes: int) -> None:
        if len(self.minutes) < 2:
            return
        gaps = [later - earlier for earlier, later in zip(self.minutes, self.minutes[1:])]
        if any(hour + 1 in self.hours for hour in self.hours):  # from the last minute of one hour to the first of the next
            gaps.append(self.minutes[0] + 60 - self.minutes[-1])
        if min(gaps) < minimum_interval_minutes:
            raise CronError(f"schedule {self.expression!r} runs more often than every {minimum_interval_minutes} minutes, which Glue does not support")

    # ---- days ----------------------------------------------------------------------------------------
    def _day_matches(self, day: datetime.date) -> bool:
        if self.day_of_month != "?":
            return self._day_of_month_matches(day)
        return self._day_of_week_matches(day)

    def _day_of_month_matches(self, day: datetime.date) -> bool:
        spec = self.day_of_month
        last = calendar.monthrange(day.year, day.month)[1]
        if spec == "L":
            return day.day == last
        if spec == "LW":
            return day.day == _nearest_weekday(day.year, day.month, last)
        if spec.endswith("W"):
            target = _number(spec[:-1], "Day-of-month", 1, 31, {})
            return target <= last and day.day == _nearest_weekday(day.year, day.month, target)
        return day.day in _values(spec, "Day-of-month", 1, 31)

    def _day_of_week_matches(self, day: datetime.date) -> bool:
        spec = self.day_of_week
        weekday = _aws_weekday(day)
        if spec == "L":  # the last day of the week
            return weekday == 7
        if spec.endswith("L"):  # the last such weekday of the month
            wanted = _number(spec[:-1], "Day-of-week", 1, 7, DAY_NAMES)
            return weekday == wanted and day.day + 7 > calendar.monthrange(day.year, day.month)[1]
        if "#" in spec:  # the n-th such weekday of the month
            name, _, nth = spec.partition("#")
            wanted = _number(name, "Day-of-week", 1, 7, DAY_NAMES)
            return weekday == wanted and (day.day - 1) // 7 + 1 == _number(nth, "Day-of-week", 1, 5, {})
        return weekday in _values(spec, "Day-of-week", 1, 7, DAY_NAMES)

    # ---- firing times --------------------------------------------------------------------------------
    def fires_on(self, day: datetime.date) -> bool:
        return day.year in self.years and day.month in self.months and self._day_matches(day)

    @property
    def moments_per_day(self) -> int:
        return len(self.hours) * len(self.minutes)

    def moments_on(self, day: datetime.date) -> list[datetime.datetime]:
        """Every moment the schedule fires on `day` (UTC), in order: how a long stretch is counted a day at a time."""
        if not self.fires_on(day):
            return []
        return [datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) for hour in self.hours for minute in self.minutes]

    def first_time_between(self, after: datetime.datetime, until: datetime.datetime) -> datetime.datetime | None:
        """The first moment the schedule fires that is later than `after` and not later than `until`."""
        start = after.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
        day = start.date()
        while day <= until.date():
            if day.year not in self.years:
                day = datetime.date(day.year + 1, 1, 1)
                continue
            if day.month not in self.months:
                day = (datetime.date(day.year, day.month, 28) + datetime.timedelta(days=4)).replace(day=1)
                continue
            if self._day_matches(day):
                earliest = start.hour * 60 + start.minute if day == start.date() else 0
                for hour in self.hours:
                    for minute in self.minutes:
                        if hour * 60 + minute >= earliest:
                            moment = datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                            return moment if moment <= until else None
            day += datetime.timedelta(days=1)
        return None


def _nearest_weekday(year: int, month: int, day: int) -> int:
    """The weekday (Monday-Friday) nearest to `day` within its month, as cron's `W` means."""
    weekday = calendar.weekday(year, month, day)  # Monday = 0
    if weekday < 5:
        return day
    last = calendar.monthrange(year, month)[1]
    if weekday == 5:  # Saturday: the Friday before, unless that is in the previous month
        return day - 1 if day > 1 else day + 2
    return day + 1 if day < last else day - 2  # Sunday: the Monday after, unless that is in the next month


def next_times(expression: str, after: datetime.datetime, count: int, horizon_days: int = 800) -> list[datetime.datetime]:
    """The next `count` moments (UTC) at which `expression` fires after `after`, fewer if it stops firing within
    `horizon_days`: two expressions that give the same list from the same moment behave alike there."""
    cron = Cron.parse(expression)
    moment = after if after.tzinfo else after.replace(tzinfo=UTC)
    until = moment + datetime.timedelta(days=horizon_days)
    times: list[datetime.datetime] = []
    while len(times) < count:
        found = cron.first_time_between(moment, until)
        if found is None:
            break
        times.append(found)
        moment = found
    return times
