"""Alarm evaluation without a stack: AWS's missing-data table, M of N, statistics, metric math, composite rules,
and StateReason worded as AWS words it."""

from __future__ import annotations

import datetime
import json

import pytest

from dealab.engines.cloudwatch.evaluation import alarm_from_params, evaluate
from dealab.engines.cloudwatch.expressions import AlarmRule, ExpressionError, MetricMath
from dealab.engines.cloudwatch.series import Series, metric_key, points_of_datum, statistic

PERIOD = 60
START = datetime.datetime(2026, 6, 12, 10, 0, tzinfo=datetime.timezone.utc).timestamp()
DIMENSIONS = [{"Name": "FunctionName", "Value": "f"}]


def alarm(n=3, m=3, treat="missing", stat="Maximum", threshold=5.0, **extra):
    params = {"AlarmName": "a", "Namespace": "Lab", "MetricName": "errors", "Dimensions": DIMENSIONS, "Period": PERIOD,
              "EvaluationPeriods": n, "DatapointsToAlarm": m, "Threshold": threshold, "ComparisonOperator": "GreaterThanThreshold",
              "TreatMissingData": treat, **({"ExtendedStatistic": stat} if stat.startswith("p") else {"Statistic": stat}), **extra}
    return alarm_from_params(params, "us-east-1", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a")


def series_of(pattern: str) -> tuple[Series, float]:
    """`pattern` as AWS's table writes it, oldest first: X breaching (10), 0 not breaching (1), - missing. Returns
    the series and an evaluation moment inside the next period (which has no data yet)."""
    series = Series()
    key = metric_key("us-east-1", "Lab", "errors", DIMENSIONS)
    for index, mark in enumerate(pattern.split()):
        if mark != "-":
            series.add(key, points_of_datum({"MetricName": "errors", "Value": 10.0 if mark == "X" else 1.0,
                                             "Timestamp": START + index * PERIOD + 5}, 0)[0])
    return series, START + len(pattern.split()) * PERIOD + 30


# AWS's table ("How alarm state is evaluated when data is missing"): Datapoints to Alarm and Evaluation Periods
# both 3, evaluation range 5. "retain" keeps the state the alarm had.
AWS_TABLE = [
    ("0 - X - X", {"missing": "OK", "ignore": "OK", "breaching": "OK", "notBreaching": "OK"}),
    ("0 - - - -", {"missing": "OK", "ignore": "OK", "breaching": "OK", "notBreaching": "OK"}),
    ("- - - - -", {"missing": "INSUFFICIENT_DATA", "ignore": "retain", "breaching": "ALARM", "notBreaching": "OK"}),
    ("0 X X - X", {"missing": "ALARM", "ignore": "ALARM", "breaching": "ALARM", "notBreaching": "ALARM"}),
    ("- - X - -", {"missing": "ALARM", "ignore": "retain", "breaching": "ALARM", "notBreaching": "OK"}),
]
CASES = [(pattern, treat, expected) for pattern, row in AWS_TABLE for treat, expected in row.items()]


@pytest.mark.parametrize("pattern,treat,expected", CASES)
@pytest.mark.parametrize("current", ["OK", "ALARM"])
def test_aws_missing_data_table_three_of_three(pattern, treat, expected, current):
    series, moment = series_of(pattern)
    verdict = evaluate(alarm(3, 3, treat), series, moment, current)
    assert verdict.state == (current if expected == "retain" else expected)


# M of N: DatapointsToAlarm 2 of EvaluationPeriods 3 (the N most recent real datapoints decide when there are N).
M_OF_N = [
    ("0 - X - X", "missing", "ALARM"),
    ("0 0 X 0 X", "missing", "ALARM"),
    ("X X 0 0 X", "missing", "OK"),
    ("- - - 0 X", "breaching", "ALARM"),
    ("- - - 0 X", "notBreaching", "OK"),
    ("- - - 0 X", "missing", "OK"),
    ("- - - X X", "missing", "ALARM"),
]


@pytest.mark.parametrize("pattern,treat,expected", M_OF_N)
def test_m_out_of_n(pattern, treat, expected):
    series, moment = series_of(pattern)
    assert evaluate(alarm(3, 2, treat), series, moment, "OK").state == expected


def test_the_period_in_progress_counts_once_it_has_data():
    series, moment = series_of("0 0 0 0 0")
    key = metric_key("us-east-1", "Lab", "errors", DIMENSIONS)
    assert evaluate(alarm(1, 1), series, moment, "OK").state == "OK"
    series.add(key, points_of_datum({"MetricName": "errors", "Value": 9.0, "Timestamp": moment}, 0)[0])
    assert evaluate(alarm(1, 1), series, moment, "OK").state == "ALARM"


def test_state_reason_is_worded_as_aws_words_it():
    series = Series()
    series.add(metric_key("us-east-1", "Lab", "errors", DIMENSIONS), points_of_datum({"MetricName": "errors", "Value": 5.0, "Timestamp": START + 1}, 0)[0])
    verdict = evaluate(alarm(1, 1, threshold=1.0), series, START + 30, "OK")
    assert verdict.reason == ("Threshold Crossed: 1 out of the last 1 datapoints [5.0 (12/06/26 10:00:00)] was greater than the threshold (1.0) "
                              "(minimum 1 datapoint for OK -> ALARM transition).")
    assert verdict.reason_data["statistic"] == "Maximum" and verdict.reason_data["recentDatapoints"] == [5.0]
    assert verdict.reason_data["evaluatedDatapoints"] == [{"timestamp": "2026-06-12T10:00:00.000+0000", "value": 5.0}]
    json.dumps(verdict.reason_data)
    quiet, moment = series_of("- - - - -")
    assert evaluate(alarm(2, 2), quiet, moment, "OK").reason == "Insufficient Data: 2 datapoints were unknown."
    assert evaluate(alarm(2, 2, "breaching"), quiet, moment, "OK").reason == \
        "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as [Breaching]."


def test_statistics_and_percentiles():
    points = [points_of_datum({"MetricName": "m", "Value": float(v)}, 0)[0] for v in range(1, 101)]
    assert statistic(points, "p90") == 90.0
    assert statistic(points, "p99.5") == 100.0
    assert statistic(points, "Average") == 50.5
    assert statistic(points, "SampleCount") == 100
    weighted = points_of_datum({"MetricName": "m", "Values": [1.0, 100.0], "Counts": [9.0, 1.0]}, 0)
    assert statistic(weighted, "p50") == 1.0 and statistic(weighted, "p95") == 100.0 and statistic(weighted, "Sum") == 109.0
    statistic_set = points_of_datum({"MetricName": "m", "StatisticValues": {"SampleCount": 4, "Sum": 20, "Minimum": 1, "Maximum": 9}}, 0)
    assert statistic(statistic_set, "Average") == 5.0 and statistic(statistic_set, "p90") is None


def test_a_percentile_alarm():
    series = Series()
    key = metric_key("us-east-1", "Lab", "errors", DIMENSIONS)
    for value in range(1, 11):
        series.add(key, points_of_datum({"MetricName": "errors", "Value": float(value), "Timestamp": START + value}, 0)[0])
    assert evaluate(alarm(1, 1, stat="p90", threshold=8.5), series, START + 30, "OK").state == "ALARM"
    assert evaluate(alarm(1, 1, stat="p50", threshold=8.5), series, START + 30, "OK").state == "OK"


def test_metric_math():
    m1, m2 = [1.0, None, 4.0], [1.0, 2.0, None]
    assert MetricMath("m1 + m2").evaluate({"m1": m1, "m2": m2}, 60) == [2.0, None, None]
    assert MetricMath("SUM([m1, m2])").evaluate({"m1": m1, "m2": m2}, 60) == [2.0, 2.0, 4.0]
    assert MetricMath("100 * FILL(m1, 0) / 2").evaluate({"m1": m1}, 60) == [50.0, 0.0, 200.0]
    assert MetricMath("FILL(m1, REPEAT)").evaluate({"m1": m1}, 60) == [1.0, 1.0, 4.0]
    assert MetricMath("IF(m1 > 2, 1, 0)").evaluate({"m1": m1}, 60) == [0.0, None, 1.0]
    assert MetricMath("MAX(m1)").evaluate({"m1": m1}, 60) == 4.0
    assert MetricMath("m1 / m2").evaluate({"m1": [1.0], "m2": [0.0]}, 60) == [None]
    with pytest.raises(ExpressionError, match="Unsupported function ANOMALY_DETECTION_BAND"):
        MetricMath("ANOMALY_DETECTION_BAND(m1, 2)")


def test_a_metric_math_alarm():
    params = {"AlarmName": "ratio", "EvaluationPeriods": 1, "Threshold": 10.0, "ComparisonOperator": "GreaterThanThreshold", "Metrics": [
        {"Id": "errors", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": "Lab", "MetricName": "errors", "Dimensions": DIMENSIONS}, "Period": 60, "Stat": "Sum"}},
        {"Id": "calls", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": "Lab", "MetricName": "calls", "Dimensions": DIMENSIONS}, "Period": 60, "Stat": "Sum"}},
        {"Id": "rate", "Expression": "100 * errors / calls", "ReturnData": True}]}
    math_alarm = alarm_from_params(params, "us-east-1", "arn")
    series = Series()
    for name, value in (("errors", 3.0), ("calls", 20.0)):
        series.add(metric_key("us-east-1", "Lab", name, DIMENSIONS), points_of_datum({"MetricName": name, "Value": value, "Timestamp": START + 1}, 0)[0])
    verdict = evaluate(math_alarm, series, START + 30, "OK")
    assert verdict.state == "ALARM" and "[15.0 (12/06/26 10:00:00)]" in verdict.reason


def test_composite_rules():
    states = {"cpu": "ALARM", "disk": "OK", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:net": "INSUFFICIENT_DATA"}
    holds = lambda text: AlarmRule(text).holds(lambda name: states.get(name, "INSUFFICIENT_DATA"))
    assert holds('ALARM("cpu") AND OK(disk)')
    assert not holds("ALARM(cpu) AND ALARM(disk)")
    assert holds("ALARM(disk) OR NOT OK(cpu)")
    assert holds("(ALARM(disk) OR ALARM(cpu)) AND INSUFFICIENT_DATA(arn:aws:cloudwatch:us-east-1:123456789012:alarm:net)")
    assert holds("TRUE") and not holds("NOT TRUE")
    assert AlarmRule('ALARM("cpu") OR OK(disk)').alarms == ["cpu", "disk"]
    with pytest.raises(ExpressionError):
        AlarmRule("ALARM(cpu) AND")


def test_dynamodb_alarms_always_ignore_missing_data():
    params = {"AlarmName": "t", "Namespace": "AWS/DynamoDB", "MetricName": "ThrottledRequests", "Dimensions": [], "Period": 60,
              "EvaluationPeriods": 1, "Threshold": 0.0, "ComparisonOperator": "GreaterThanThreshold", "Statistic": "Sum", "TreatMissingData": "breaching"}
    assert alarm_from_params(params, "us-east-1", "arn").treat_missing == "ignore"
