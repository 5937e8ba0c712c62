"""Logs Insights on DuckDB: each command and function family over events whose answers are known, JSON field
discovery, several log groups, and MalformedQueryException positions. No stack: the engine's runner over an
Arrow table of events, as the engine builds it."""

from __future__ import annotations

import json

import pytest

from dealab.engines.logs.engine import run_insights
from dealab.engines.logs.events import batch
from dealab.engines.logs.insights import MalformedQuery, compile_query

import pyarrow as pa

from dealab.engines.logs.events import SCHEMA

T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
MINUTE = 60_000


def _events() -> pa.Table:
    app = [{"timestamp": T0 + number * MINUTE,
            "message": json.dumps({"level": "ERROR" if number % 4 == 0 else "INFO", "latency": number * 10,
                                   "user": {"id": f"u{number % 3}"}})} for number in range(20)]
    web = [{"timestamp": T0 + 30 * MINUTE, "message": "user=bob action=login took 15ms"},
           {"timestamp": T0 + 31 * MINUTE, "message": "user=amy action=logout took 7ms"},
           {"timestamp": T0 + 32 * MINUTE, "message": "  padded  "}]
    return pa.Table.from_batches([batch(app, [T0] * len(app), "app-1", "123456789012:/app"),
                                  batch(web, [T0] * len(web), "web-1", "123456789012:/web")], SCHEMA)


EVENTS = _events()


def run(query: str, start: int = T0, end: int = T0 + 3_600_000):
    results, statistics = run_insights(EVENTS, query, start, end)
    return [{cell["field"]: cell["value"] for cell in row if cell["field"] != "@ptr"} for row in results], statistics


def test_fields_sort_limit_and_the_implicit_fields():
    rows, statistics = run("fields @timestamp, @message, @logStream, @log, @ingestionTime | sort @timestamp desc | limit 2")
    assert rows[0] == {"@timestamp": "2023-11-14 22:45:20.000", "@message": "  padded  ", "@logStream": "web-1",
                       "@log": "123456789012:/web", "@ingestionTime": "2023-11-14 22:13:20.000"}
    assert len(rows) == 2 and statistics["recordsScanned"] == 23.0


def test_without_fields_the_timestamp_and_message_are_returned_with_a_pointer():
    results, _ = run_insights(EVENTS, "limit 1", T0, T0 + 3_600_000)
    assert [cell["field"] for cell in results[0]] == ["@timestamp", "@message", "@ptr"]


def test_json_fields_are_discovered_nested_too():
    rows, _ = run("filter user.id = 'u1' and latency >= 100 | fields latency, user.id | sort latency asc")
    assert rows == [{"latency": "100", "user.id": "u1"}, {"latency": "130", "user.id": "u1"},
                    {"latency": "160", "user.id": "u1"}, {"latency": "190", "user.id": "u1"}]


@pytest.mark.parametrize("condition, count", [
    ("level = 'ERROR'", 5),
    ("level != 'ERROR' and ispresent(level)", 15),
    ("latency > 150", 4),
    ("latency < 20 or latency > 180", 3),
    ("not level = 'INFO' and ispresent(level)", 5),
    ("@message like 'action=log'", 2),
    ("@message like /action=log(in|out)/", 2),
    ("@message not like /ERROR/", 18),
    ("@message =~ /took \\d+ms/", 2),
    ("latency in [10, 20, 30]", 3),
    ("level not in ['INFO'] and ispresent(level)", 5),
    ("(latency + 10) * 2 = 40", 1),
    ("latency % 40 = 0", 5),
    ("strlen(@message) < 11", 1),
    ("isblank(level)", 3),
])
def test_filter_comparisons_and_boolean_operators(condition, count):
    rows, statistics = run(f"filter {condition} | stats count(*) as n")
    assert rows == [{"n": str(count)}]
    assert statistics["recordsMatched"] == float(count)


def test_stats_aggregates():
    rows, _ = run("filter ispresent(latency) | stats count(*) as n, count_distinct(user.id) as users, sum(latency) as total, "
                  "avg(latency) as mean, min(latency) as low, max(latency) as high, pct(latency, 50) as median, "
                  "percentile(latency, 90) as p90, stddev(latency) as sd, earliest(level) as first, latest(level) as last")
    assert rows == [{"n": "20", "users": "3", "total": "1900", "mean": "95", "low": "0", "high": "190", "median": "90",
                     "p90": "170", "sd": "59.16079783099616", "first": "ERROR", "last": "INFO"}]


def test_stats_by_several_fields_and_bins():
    rows, _ = run("filter ispresent(level) | stats count(*) by bin(5m), level")
    assert rows[:3] == [{"bin(5m)": "2023-11-14 22:10:00.000", "level": "ERROR", "count(*)": "1"},
                        {"bin(5m)": "2023-11-14 22:10:00.000", "level": "INFO", "count(*)": "1"},
                        {"bin(5m)": "2023-11-14 22:15:00.000", "level": "ERROR", "count(*)": "1"}]
    assert sum(int(row["count(*)"]) for row in rows) == 20


def test_a_second_stats_and_sort_by_an_aggregate():
    rows, _ = run("filter ispresent(level) | stats count(*) as n by level | sort n desc")
    assert rows == [{"level": "INFO", "n": "15"}, {"level": "ERROR", "n": "5"}]
    rows, _ = run("filter ispresent(level) | stats count(*) as n by level, user.id | stats max(n) as most by level | sort level")
    assert rows == [{"level": "ERROR", "most": "2"}, {"level": "INFO", "most": "5"}]


def test_parse_with_a_glob_and_with_named_groups():
    rows, _ = run("parse @message 'user=* action=* took *ms' as who, action, ms | filter ispresent(who) | fields who, action, ms * 2 as doubled | sort who")
    assert rows == [{"who": "amy", "action": "logout", "doubled": "14"}, {"who": "bob", "action": "login", "doubled": "30"}]
    rows, _ = run("parse @message /user=(?<who>\\w+) action=(?<action>\\w+)/ | filter action = 'login' | display who")
    assert rows == [{"who": "bob"}]


def test_dedup_keeps_the_first_of_each_value_in_sort_order():
    rows, _ = run("filter ispresent(user.id) | sort latency desc | dedup user.id | fields user.id, latency")
    assert rows == [{"user.id": "u1", "latency": "190"}, {"user.id": "u0", "latency": "180"}, {"user.id": "u2", "latency": "170"}]


def test_display_chooses_the_fields_returned():
    rows, _ = run("fields latency, level | filter latency = 40 | display level")
    assert rows == [{"level": "ERROR"}]


@pytest.mark.parametrize("expression, value", [
    ("strlen('abcd')", "4"), ("toupper('ab')", "AB"), ("tolower('AB')", "ab"), ("trim(@message)", "padded"),
    ("concat('a', 'b', 'c')", "abc"), ("substr('abcdef', 1, 3)", "bcd"), ("substr('abcdef', 2)", "cdef"),
    ("replace('a-b-c', '-', '+')", "a+b+c"), ("strcontains('abc', 'b')", "1"), ("strcontains('abc', 'z')", "0"),
    ("abs(-3)", "3"), ("ceil(2.1)", "3"), ("floor(2.9)", "2"), ("round(2.567, 2)", "2.57"), ("round(2.5)", "3"),
    ("datefloor(@timestamp, 1h)", "2023-11-14 22:00:00.000"), ("dateceil(@timestamp, 1h)", "2023-11-14 23:00:00.000"),
    ("fromMillis(1700000000000)", "2023-11-14 22:13:20.000"), ("toMillis(@timestamp)", str(T0 + 32 * MINUTE)),
    ("isempty(level)", "1"), ("coalesce(level, 'none')", "none"), ("ispresent(level)", "0"),
])
def test_functions(expression, value):
    rows, _ = run(f"filter @message = '  padded  ' | fields {expression} as out")
    assert rows == [{"out": value}]


def test_the_time_range_is_inclusive_and_counts_only_what_it_holds():
    rows, statistics = run("stats count(*) as n", T0 + 10 * MINUTE, T0 + 19 * MINUTE)
    assert rows == [{"n": "10"}]
    assert statistics["recordsScanned"] == 10.0
    assert statistics["bytesScanned"] > 0


def test_several_log_groups_are_read_together():
    rows, _ = run("stats count(*) as n by @log | sort @log")
    assert rows == [{"@log": "123456789012:/app", "n": "20"}, {"@log": "123456789012:/web", "n": "3"}]


@pytest.mark.parametrize("query, position", [
    ("fields @message |", 17),
    ("fields @message | bogus x", 18),
    ("filter level = ", 15),
    ("stats foo(latency)", 6),
    ("stats count(*) by", 17),
    ("limit 0", 6),
    ("fields strlen()", 7),
    ("parse @message 'a=* b=*' as onlyone", 15),
    ("filter @message like /unclosed", 21),
    ("fields a\n| filter )", 18),
])
def test_malformed_queries_name_the_position(query, position):
    with pytest.raises(MalformedQuery) as raised:
        compile_query(query, "true")
    assert raised.value.start == position
    assert "line" in str(raised.value)


def test_string_constants_never_reach_beyond_the_events():
    rows, _ = run("filter @message = \"x'); COPY (SELECT 1) TO '/tmp/escape.csv'; --\" | stats count(*) as n")
    assert rows == [{"n": "0"}]
