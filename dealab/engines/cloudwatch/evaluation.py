"""How a metric alarm decides its state, as AWS documents it ("How alarm state is evaluated when data is
missing", Amazon CloudWatch User Guide).

At a moment T the alarm looks at its evaluation range: the most recent `EvaluationPeriods + EXTRA_RANGE`
periods (AWS retrieves "a higher number of data points than Evaluation Periods"; for 3 periods it takes 5, the
example the guide's table uses). The period in progress at T counts once it has data; before that the range ends
with the period before it, so an alarm never reads a period that has only begun as missing.

- Real datapoints at least EvaluationPeriods (N): the N most recent real ones decide, whatever
  TreatMissingData says: ALARM when DatapointsToAlarm (M) of them breach, else OK.
- Fewer real datapoints than N: the missing ones are filled as TreatMissingData says (`MISSING_DATA` below) and
  every real one in the range is used.

An alarm can change without new data only while real datapoints remain in its range; once the last one has
left, one more evaluation settles it for good. So an alarm costs a few evaluations per datapoint, never one per
minute of a long clock move.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from dealab.engines.cloudwatch.expressions import MetricMath
from dealab.engines.cloudwatch.series import MetricKey, Series, metric_key, statistic

EXTRA_RANGE = 2

COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
ANOMALY_COMPARISONS = ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold")


def _fewer_missing(breaching: int, present: int, filled: int, m: int, current: str) -> str:
    return "INSUFFICIENT_DATA" if present == 0 else ("ALARM" if breaching >= min(m, present) else "OK")


def _fewer_ignore(breaching: int, present: int, filled: int, m: int, current: str) -> str:
    if present == 0:
        return current
    if breaching >= m:
        return "ALARM"
    # OK only when the missing periods could not have made it breach either; else the state is kept
    return "OK" if breaching + filled < m else current


# TreatMissingData → the state when fewer real datapoints than EvaluationPeriods are in range:
# (breaching real ones, real ones, periods filled in, DatapointsToAlarm, current state) → state
MISSING_DATA: dict[str, Callable[[int, int, int, int, str], str]] = {
    "missing": _fewer_missing,
    "ignore": _fewer_ignore,
    "breaching": lambda breaching, present, filled, m, current: "ALARM" if breaching + filled >= m else "OK",
    "notBreaching": lambda breaching, present, filled, m, current: "ALARM" if breaching >= m else "OK",
}
FILLED_AS = {"breaching": "Breaching", "notBreaching": "NonBreaching"}


@dataclass
class Query:
    id: str
    key: MetricKey | None = None
    stat: str = ""
    unit: str | None = None
    expression: MetricMath | None = None
    return_data: bool = True
    label: str = ""


@dataclass
class MetricAlarm:
    name: str
    arn: str
    region: str
    queries: list[Query]
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing: str
    statistic_label: str  # what StateReasonData calls the statistic
    keys: list[MetricKey] = field(default_factory=list)

    @property
    def range_periods(self) -> int:
        return self.evaluation_periods + EXTRA_RANGE


@dataclass
class Verdict:
    state: str
    reason: str
    reason_data: dict
    data_in_range: bool


def alarm_from_params(params: dict, region: str, arn: str) -> MetricAlarm:
    """The evaluable form of a PutMetricAlarm request (already accepted by the backend)."""
    queries: list[Query] = []
    if params.get("Metrics"):
        for item in params["Metrics"]:
            if "Expression" in item:
                queries.append(Query(item["Id"], expression=MetricMath(item["Expression"]), return_data=item.get("ReturnData", True),
                                     label=item.get("Label", "")))
            else:
                stat = item["MetricStat"]
                metric = stat["Metric"]
                queries.append(Query(item["Id"], metric_key(region, metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])),
                                     stat["Stat"], stat.get("Unit"), return_data=item.get("ReturnData", True), label=item.get("Label", "")))
        period = next((int(item["MetricStat"]["Period"]) for item in params["Metrics"] if "MetricStat" in item), 60)
        statistic_label = ""
    else:
        stat = params.get("ExtendedStatistic") or params.get("Statistic") or "Average"
        queries.append(Query("m1", metric_key(region, params["Namespace"], params["MetricName"], params.get("Dimensions", [])),
                             stat, params.get("Unit")))
        period = int(params["Period"])
        statistic_label = stat if params.get("ExtendedStatistic") else stat
    n = int(params["EvaluationPeriods"])
    treat_missing = params.get("TreatMissingData") or "missing"
    if any(q.key and q.key[1] == "AWS/DynamoDB" for q in queries):
        treat_missing = "ignore"  # AWS: alarms on AWS/DynamoDB metrics always ignore missing data
    return MetricAlarm(
        name=params["AlarmName"], arn=arn, region=region, queries=queries, period=period, evaluation_periods=n,
        datapoints_to_alarm=int(params.get("DatapointsToAlarm") or n), threshold=float(params.get("Threshold", 0.0)),
        comparison=params["ComparisonOperator"], treat_missing=treat_missing, statistic_label=statistic_label,
        keys=[q.key for q in queries if q.key],
    )


def period_values(alarm: MetricAlarm, series: Series, starts: list[float]) -> list[float | None]:
    """The alarm's value in each period starting at `starts` (the returned query's, for metric math)."""
    period = alarm.period
    by_id: dict[str, list] = {}
    for query in alarm.queries:
        if query.key:
            by_id[query.id] = [statistic(series.between(query.key, start, start + period), query.stat, query.unit) for start in starts]
    for query in alarm.queries:
        if query.expression:
            result = query.expression.evaluate(by_id, period)
            by_id[query.id] = result if isinstance(result, list) else [result] * len(starts)
    returned = next((q for q in alarm.queries if q.return_data), alarm.queries[-1])
    return by_id[returned.id]


def evaluate(alarm: MetricAlarm, series: Series, moment: float, current: str) -> Verdict:
    period, n, m = alarm.period, alarm.evaluation_periods, alarm.datapoints_to_alarm
    in_progress = math.floor(moment / period) * period
    starts = [in_progress - period * back for back in range(alarm.range_periods, -1, -1)]
    values = period_values(alarm, series, starts)
    if values[-1] is None:  # the period in progress has no data yet: it is not missing, it is not over
        starts, values = starts[:-1], values[:-1]
    else:
        starts, values = starts[1:], values[1:]
    test, words = COMPARISONS[alarm.comparison]
    present = [(start, value) for start, value in zip(starts, values) if value is not None]
    if len(present) >= n:
        considered = present[-n:]
        breaching = [(s, v) for s, v in considered if test(v, alarm.threshold)]
        state = "ALARM" if len(breaching) >= m else "OK"
        filled = 0
    else:
        considered = present
        breaching = [(s, v) for s, v in considered if test(v, alarm.threshold)]
        filled = n - len(present)
        state = MISSING_DATA[alarm.treat_missing](len(breaching), len(present), filled, m, current)
    reason = _reason(alarm, state, current, considered, breaching, filled, words)
    return Verdict(state, reason, _reason_data(alarm, moment, starts, considered), bool(present))


def next_evaluation(alarm: MetricAlarm, moment: float) -> float:
    """The start of the next period: the first moment the range moves on."""
    return (math.floor(moment / alarm.period) + 1) * alarm.period


# ---- how AWS words it ----------------------------------------------------------------------------------------
def _stamp(start: float) -> str:
    return datetime.datetime.fromtimestamp(start, datetime.timezone.utc).strftime("%d/%m/%y %H:%M:%S")


def _iso(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _listed(points: list[tuple[float, float]]) -> str:
    return "[" + ", ".join(f"{value!r} ({_stamp(start)})" for start, value in reversed(points)) + "]"


def _reason(alarm: MetricAlarm, state: str, current: str, considered, breaching, filled: int, words: str) -> str:
    threshold = f"the threshold ({alarm.threshold!r})"
    fill_text = ""
    if filled and alarm.treat_missing in FILLED_AS:
        fill_text = f" and {_plural(filled, 'missing datapoint')} {'was' if filled == 1 else 'were'} treated as [{FILLED_AS[alarm.treat_missing]}]"
    if state == "INSUFFICIENT_DATA":
        return f"Insufficient Data: {_plural(alarm.evaluation_periods, 'datapoint')} {'was' if alarm.evaluation_periods == 1 else 'were'} unknown."
    if not considered:
        return f"Threshold Crossed: no datapoints were received for {_plural(filled, 'period')}{fill_text}."
    transition = f"{current} -> {state}"
    if state == "ALARM":
        shown, verb = breaching, words
        minimum = alarm.datapoints_to_alarm
    else:
        shown, verb = [p for p in considered if p not in breaching], f"not {words}"
        minimum = alarm.evaluation_periods - alarm.datapoints_to_alarm + 1
    if not shown:  # only filled periods made the state: say what decided it
        return f"Threshold Crossed: {_plural(filled, 'missing datapoint')} {'was' if filled == 1 else 'were'} treated as [{FILLED_AS.get(alarm.treat_missing, 'Missing')}]."
    counted = len(shown)
    subject = f"{counted} out of the last {len(considered)} datapoints"
    return (f"Threshold Crossed: {subject} {_listed(shown)} {'was' if counted == 1 else 'were'} {verb} {threshold}"
            f"{fill_text} (minimum {_plural(minimum, 'datapoint')} for {transition} transition).")


def _reason_data(alarm: MetricAlarm, moment: float, starts: list[float], considered) -> dict:
    data = {"version": "1.0", "queryDate": _iso(moment), "startDate": _iso(starts[0]) if starts else _iso(moment)}
    if alarm.statistic_label:
        data["statistic"] = alarm.statistic_label
    data.update({"period": alarm.period, "recentDatapoints": [value for _, value in considered], "threshold": alarm.threshold,
                 "evaluatedDatapoints": [{"timestamp": _iso(start), "value": value} for start, value in reversed(considered)]})
    return data
