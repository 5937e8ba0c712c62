"""Glue Data Quality benchmark: a DQDL ruleset of 20 rules over 1M rows evaluated by dealab's evaluator
(dealab/engines/dataquality/rules.py) against the same checks written as plain DuckDB SQL, one query per
rule, over the same in-memory table, in one run. Prints the medians and the ratio (goal <= 1.5).

Run: `.venv/bin/python bench/dataquality.py [--rows 1000000] [--repeat 3]`."""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.engines.dataquality.dqdl import parse  # noqa: E402
from dealab.engines.dataquality.rules import Datasets, evaluate  # noqa: E402

RULESET = """Rules = [
  RowCount > 0, IsComplete "id", IsUnique "id", Completeness "name" > 0.9, ColumnValues "cat" in ["a", "b", "c", "d"],
  ColumnValues "amount" between -1 and 1001, Mean "amount" between 400 and 600, Sum "amount" > 0,
  StandardDeviation "amount" > 100, Variance "amount" > 10000, DistinctValuesCount "cat" = 4, Entropy "cat" > 1,
  ColumnLength "name" <= 12, ColumnValues "name" matches "name[0-9]+", IsComplete "cat" where "amount > 500",
  Uniqueness "cat" < 0.1, UniqueValueRatio "cat" < 1, ColumnCorrelation "id" "amount" < 0.5,
  CustomSql "select count(*) from primary where amount < 0" = 0, ColumnValues "day" > "2020-01-01"
]"""
# the same 20 checks as plain SQL over t
PLAIN = [
    "SELECT count(*) > 0 FROM t", "SELECT count(id) = count(*) FROM t",
    "SELECT count(*) FILTER (WHERE n = 1) = (SELECT count(*) FROM t) FROM (SELECT count(*) n FROM t GROUP BY id)",
    "SELECT count(name) / count(*) > 0.9 FROM t", "SELECT bool_and(cat IN ('a','b','c','d')) FROM t",
    "SELECT bool_and(amount > -1 AND amount < 1001) FROM t", "SELECT avg(amount) BETWEEN 400 AND 600 FROM t",
    "SELECT sum(amount) > 0 FROM t", "SELECT stddev_pop(amount) > 100 FROM t", "SELECT var_pop(amount) > 10000 FROM t",
    "SELECT count(DISTINCT cat) = 4 FROM t",
    "SELECT -sum(n / total * ln(n / total)) > 1 FROM (SELECT count(*)::DOUBLE n, (SELECT count(*) FROM t) total FROM t GROUP BY cat)",
    "SELECT bool_and(length(name) <= 12) FROM t", "SELECT bool_and(regexp_full_match(name, 'name[0-9]+')) FROM t",
    "SELECT count(cat) = count(*) FROM t WHERE amount > 500",
    "SELECT count(*) FILTER (WHERE n = 1) / (SELECT count(*) FROM t) < 0.1 FROM (SELECT count(*) n FROM t GROUP BY cat)",
    "SELECT count(*) FILTER (WHERE n = 1) / count(*) < 1 FROM (SELECT count(*) n FROM t GROUP BY cat)",
    "SELECT corr(id, amount) < 0.5 FROM t", "SELECT count(*) = 0 FROM t WHERE amount < 0",
    "SELECT bool_and(day > TIMESTAMP '2020-01-01') FROM t",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    assert len(PLAIN) == len(parse(RULESET).rules) == 20
    connection = duckdb.connect()
    connection.execute(f"""CREATE TABLE t AS SELECT i AS id, 'name' || (i % 1000) AS name, ['a','b','c','d'][1 + i % 4] AS cat,
        (hash(i) % 100000) / 100.0 AS amount, DATE '2024-01-01' + INTERVAL (i % 365) DAY AS day FROM range({args.rows}) r(i)""")
    ruleset = parse(RULESET)
    dq, plain = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        evaluation = evaluate(ruleset, Datasets(connection, {"primary": "SELECT * FROM t"}, datetime.datetime(2026, 1, 1)))
        dq.append(time.perf_counter() - started)
        started = time.perf_counter()
        for sql in PLAIN:
            connection.execute(sql).fetchall()
        plain.append(time.perf_counter() - started)
    assert all(r.outcome != "Error" for r in evaluation.rules), [r for r in evaluation.rules if r.outcome == "Error"]
    dq_median, plain_median = statistics.median(dq), statistics.median(plain)
    print(f"{args.rows:,} rows, 20 rules: dealab DQ {dq_median:.3f} s, plain DuckDB SQL (20 queries) {plain_median:.3f} s, "
          f"ratio {dq_median / plain_median:.2f} (goal <= 1.5); score {evaluation.score:.2f}")


if __name__ == "__main__":
    main()
