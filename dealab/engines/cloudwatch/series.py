"""Datapoints as PutMetricData delivered them, indexed by metric, and the statistics of one period.

A metric is (region, namespace, name, dimensions as a sorted tuple). Each datapoint keeps what its statistics
need: sample count, sum, minimum, maximum, and the samples themselves (value, count) for percentiles (a
StatisticValues set has none: AWS cannot give percentiles of statistic sets either).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

MetricKey = tuple[str, str, str, tuple[tuple[str, str], ...]]

PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?|100)$")


def metric_key(region: str, namespace: str, name: str, dimensions: Iterable[dict]) -> MetricKey:
    return region, namespace, name, tuple(sorted((d["Name"], d["Value"]) for d in dimensions or ()))


@dataclass(frozen=True)
class Point:
    at: float  # epoch seconds, lab time
    unit: str
    count: float
    total: float
    low: float
    high: float
    samples: tuple[tuple[float, float], ...] | None


def points_of_datum(datum: dict, now: float) -> list[Point]:
    """The points one MetricData entry (request shape) adds: Value, Values/Counts or StatisticValues."""
    at = datum.get("Timestamp", now)
    at = float(at) if not isinstance(at, str) else now
    unit = datum.get("Unit") or "None"
    if "StatisticValues" in datum:
        s = datum["StatisticValues"]
        return [Point(at, unit, float(s["SampleCount"]), float(s["Sum"]), float(s["Minimum"]), float(s["Maximum"]), None)]
    if "Values" in datum:
        values = [float(v) for v in datum["Values"]]
        counts = [float(c) for c in datum.get("Counts") or [1.0] * len(values)]
        samples = tuple(zip(values, counts))
        return [Point(at, unit, sum(counts), sum(v * c for v, c in samples), min(values), max(values), samples)] if values else []
    value = float(datum.get("Value", 0.0))
    return [Point(at, unit, 1.0, value, value, value, ((value, 1.0),))]


class Series:
    """All metrics' points, each metric's sorted by time."""

    def __init__(self):
        self._times: dict[MetricKey, list[float]] = {}
        self._points: dict[MetricKey, list[Point]] = {}

    def add(self, key: MetricKey, point: Point) -> None:
        times = self._times.setdefault(key, [])
        points = self._points.setdefault(key, [])
        if not times or point.at >= times[-1]:
            times.append(point.at)
            points.append(point)
            return
        index = bisect.bisect_right(times, point.at)
        times.insert(index, point.at)
        points.insert(index, point)

    def between(self, key: MetricKey, start: float, end: float) -> list[Point]:
        """Points with start <= at < end."""
        times = self._times.get(key)
        if not times:
            return []
        return self._points[key][bisect.bisect_left(times, start):bisect.bisect_left(times, end)]

    def has_any(self, key: MetricKey, start: float, end: float) -> bool:
        times = self._times.get(key)
        return bool(times) and bisect.bisect_left(times, start) < bisect.bisect_left(times, end)

    def clear(self) -> None:
        self._times.clear()
        self._points.clear()


def statistic(points: list[Point], stat: str, unit: str | None = None) -> float | None:
    """One period's value of `stat` (SampleCount, Sum, Average, Minimum, Maximum, pNN); None when it has no data."""
    if unit:
        points = [p for p in points if p.unit == unit]
    if not points:
        return None
    if stat == "SampleCount":
        return sum(p.count for p in points)
    if stat == "Sum":
        return sum(p.total for p in points)
    if stat == "Average":
        count = sum(p.count for p in points)
        return sum(p.total for p in points) / count if count else None
    if stat == "Minimum":
        return min(p.low for p in points)
    if stat == "Maximum":
        return max(p.high for p in points)
    match = PERCENTILE.match(stat)
    if match:
        return percentile([s for p in points for s in (p.samples or ())], float(match.group(1)))
    raise ValueError(f"statistic {stat} is not supported")


def percentile(samples: list[tuple[float, float]], rank: float) -> float | None:
    """The nearest-rank percentile of weighted samples: the smallest value with at least rank% of the weight at
    or below it."""
    if not samples:
        return None
    ordered = sorted(samples)
    total = sum(count for _, count in ordered)
    needed = max(math.ceil(total * rank / 100.0 - 1e-9), 1)
    seen = 0.0
    for value, count in ordered:
        seen += count
        if seen >= needed:
            return value
    return ordered[-1][0]


def is_supported_statistic(stat: str) -> bool:
    return stat in ("SampleCount", "Sum", "Average", "Minimum", "Maximum") or bool(PERCENTILE.match(stat))
