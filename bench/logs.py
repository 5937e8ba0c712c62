"""Logs Insights benchmark, in one run: `stats count(*) by bin(5m), level` over `--events` JSON events (1M by
default) in one log group of a stack of its own, timed from StartQuery to a Complete GetQueryResults (polled
every 20 ms), against the same aggregation as plain DuckDB SQL over the same rows as an Arrow table in this
process (the baseline). The events arrive through PutLogEvents (10,000 a call), so the engine holds them as
it does in use.

Run: `.venv/bin/python bench/logs.py [--events 1000000] [--runs 3]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402

from dealab.config import Settings  # noqa: E402
from dealab.stack import control  # noqa: E402

QUERY = "stats count(*) by bin(5m), level"
BASELINE = ("SELECT time_bucket(INTERVAL 5 MINUTE, epoch_ms(ts)) AS bucket, json_extract_string(message, '$.level') AS level, "
            "count(*) FROM events GROUP BY 1, 2")
BATCH = 10_000
LEVELS = ("INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG")


def events(count: int, start_ms: int) -> tuple[list[int], list[str]]:
    # spread over the last ~11 hours, 40 ms apart: PutLogEvents takes events up to 14 days old
    stamps = [start_ms + number * 40 for number in range(count)]
    messages = [json.dumps({"level": LEVELS[number % len(LEVELS)], "latency": number % 997, "path": f"/api/{number % 13}"})
                for number in range(count)]
    return stamps, messages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    port = control.free_port_pair()
    settings = Settings(state_dir=Path(tempfile.mkdtemp()) / "state", port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)
    control.up(settings)
    try:
        logs = boto3.client("logs", endpoint_url=settings.endpoint_url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - arguments.events * 40 - 60_000
        stamps, messages = events(arguments.events, start_ms)
        logs.create_log_group(logGroupName="/bench")
        logs.create_log_stream(logGroupName="/bench", logStreamName="app")
        began = time.perf_counter()
        for first in range(0, arguments.events, BATCH):
            logs.put_log_events(logGroupName="/bench", logStreamName="app", logEvents=[
                {"timestamp": stamps[number], "message": messages[number]} for number in range(first, min(first + BATCH, arguments.events))])
        print(f"PutLogEvents of {arguments.events:,} events: {time.perf_counter() - began:.1f} s")

        timings, rows = [], 0
        for _ in range(arguments.runs):
            began = time.perf_counter()
            query_id = logs.start_query(logGroupName="/bench", startTime=start_ms // 1000, endTime=now_ms // 1000 + 60, queryString=QUERY)["queryId"]
            while (answer := logs.get_query_results(queryId=query_id))["status"] in ("Scheduled", "Running"):
                time.sleep(0.02)
            timings.append(time.perf_counter() - began)
            assert answer["status"] == "Complete", answer["status"]
            rows = len(answer["results"])
            assert answer["statistics"]["recordsScanned"] == arguments.events
        table = pa.table({"ts": pa.array(stamps, pa.int64()), "message": pa.array(messages, pa.string())})
        baseline = []
        for _ in range(arguments.runs):
            began = time.perf_counter()
            connection = duckdb.connect()
            connection.register("events", table)
            expected = len(connection.execute(BASELINE).fetchall())
            connection.close()
            baseline.append(time.perf_counter() - began)
        assert expected == rows, (expected, rows)
        best, best_baseline = min(timings), min(baseline)
        print(f"Logs Insights `{QUERY}` over {arguments.events:,} events: best {best:.2f} s, runs "
              + ", ".join(f"{t:.2f}" for t in timings) + f" ({rows} result rows)")
        print(f"plain DuckDB, same aggregation over the same rows: best {best_baseline:.2f} s")
        print(f"ratio {best / best_baseline:.2f}   goal: ≤ 2 s")
    finally:
        control.down(settings)


if __name__ == "__main__":
    main()
