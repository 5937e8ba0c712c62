"""Classroom benchmark (issue 19): latency through the front door against a single stack, and memory per learner.

Starts one single stack and one class of BENCH_LEARNERS learners (default 4; the issue's class is 30, which
needs ~30 stack processes' memory), then:
- the same S3 flow (Lab 01's kind: bucket, puts, gets, lists) BENCH_REQUESTS times against the single stack,
  then through the front door, one learner at a time: p50/p95 and the front door's overhead as a ratio;
- every learner's flow at once through the front door, then Athena queries (Lab 07's kind): p50/p95 and errors;
- PSS (from /proc/<pid>/smaps_rollup) of each idle learner stack and of the front door, and their total.
Glue job runs among the learners are not part of this bench yet. Run: `.venv/bin/python bench/classroom.py`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.config import Settings  # noqa: E402
from dealab.stack import control  # noqa: E402
from dealab.wire.admintoken import TOKEN_HEADER  # noqa: E402

LEARNERS = int(os.environ.get("BENCH_LEARNERS", 4))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 400))
QUERIES = int(os.environ.get("BENCH_QUERIES", 10))
DEALAB = str(Path(sys.executable).with_name("dealab"))


def s3(endpoint: str, key: str, secret: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 0}, max_pool_connections=4))


def flow(client, bucket: str, count: int) -> tuple[list[float], int]:
    """Lab 01's kind of traffic: a bucket, then puts, gets and lists of small objects; each call's seconds."""
    client.create_bucket(Bucket=bucket)
    timings, errors = [], 0
    for number in range(count):
        key = f"raw/orders/part-{number % 50:03d}.json"
        call = (lambda: client.put_object(Bucket=bucket, Key=key, Body=b'{"order": 1}\n' * 20),
                lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read(),
                lambda: client.list_objects_v2(Bucket=bucket, Prefix="raw/orders/", MaxKeys=20))[0 if number < 50 else number % 3]
        started = time.perf_counter()
        try:
            call()
        except Exception:
            errors += 1
        timings.append(time.perf_counter() - started)
    return timings, errors


def queries(endpoint: str, key: str, secret: str, bucket: str, count: int) -> tuple[list[float], int]:
    """Lab 07's kind of traffic: Athena queries over the learner's own objects, each polled until it ends."""
    athena = boto3.client("athena", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
                          config=Config(retries={"max_attempts": 0}))
    athena.start_query_execution(QueryString="CREATE DATABASE IF NOT EXISTS bench",
                                 ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena/"})
    timings, errors = [], 0
    for _ in range(count):
        started = time.perf_counter()
        execution_id = athena.start_query_execution(QueryString="SELECT 1", ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena/"})["QueryExecutionId"]
        while (state := athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]["State"]) in ("QUEUED", "RUNNING"):
            time.sleep(0.01)
        errors += state != "SUCCEEDED"
        timings.append(time.perf_counter() - started)
    return timings, errors


def percentile(timings: list[float], fraction: float) -> float:
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cli(home: Path, *arguments: str) -> str:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DEALAB_", "AWS_"))}
    completed = subprocess.run([DEALAB, *arguments], capture_output=True, text=True, env={**env, "DEALAB_HOME": str(home)}, timeout=600, check=True)
    return completed.stdout


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-classroom-"))
    port = control.free_port_pair()
    single = Settings(work / "single", port, port + 1, "us-east-1", None)
    control.up(single)
    roster = work / "roster.csv"
    roster.write_text("learner\n" + "".join(f"learner{number:02d}\n" for number in range(LEARNERS)))
    home = work / "class"
    class_port = control.free_port_pair()
    started = time.perf_counter()
    token = cli(home, "class", "up", "--roster", str(roster), "--port", str(class_port)).split("instructor token: ")[1].split()[0]
    front_start = time.perf_counter() - started
    keys = list(csv.DictReader(io.StringIO(cli(home, "class", "credentials", "--csv"))))
    front = f"http://127.0.0.1:{class_port}"
    try:
        direct, direct_errors = flow(s3(single.endpoint_url, "test", "test"), "bench-single", REQUESTS)
        first = keys[0]
        started = time.perf_counter()
        s3(front, first["access_key_id"], first["secret_access_key"]).list_buckets()
        cold_start = time.perf_counter() - started
        through, through_errors = flow(s3(front, first["access_key_id"], first["secret_access_key"]), "bench-front", REQUESTS)
        print(f"front door up in {front_start:.2f}s; a learner's first request (starts their stack) {cold_start:.2f}s")
        print(f"one learner, {REQUESTS} S3 calls: single stack p50 {percentile(direct, .5):.2f} ms p95 {percentile(direct, .95):.2f} ms "
              f"({direct_errors} errors); through the front door p50 {percentile(through, .5):.2f} ms p95 {percentile(through, .95):.2f} ms "
              f"({through_errors} errors)")
        print(f"front door overhead: p50 ×{percentile(through, .5) / percentile(direct, .5):.2f}, "
              f"p95 ×{percentile(through, .95) / percentile(direct, .95):.2f} (goal ≤ 1.1)")

        results: dict[str, tuple[list[float], int]] = {}
        athena_results: dict[str, tuple[list[float], int]] = {}

        def learner_flow(row: dict) -> None:
            bucket = f"bench-{row['learner']}"
            results[row["learner"]] = flow(s3(front, row["access_key_id"], row["secret_access_key"]), bucket, REQUESTS)
            athena_results[row["learner"]] = queries(front, row["access_key_id"], row["secret_access_key"], bucket, QUERIES)

        started = time.perf_counter()
        workers = [threading.Thread(target=learner_flow, args=(row,)) for row in keys]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - started
        together = [timing for timings, _ in results.values() for timing in timings]
        errors = sum(errors for _, errors in results.values())
        print(f"{LEARNERS} learners at once ({LEARNERS * REQUESTS} S3 calls then {QUERIES} Athena queries each, stacks started as they came, "
              f"{wall:.1f}s): S3 p50 {percentile(together, .5):.2f} ms p95 {percentile(together, .95):.2f} ms, {errors} errors")
        query_timings = [timing for timings, _ in athena_results.values() for timing in timings]
        print(f"  Athena SELECT 1, start to SUCCEEDED: p50 {percentile(query_timings, .5):.1f} ms p95 {percentile(query_timings, .95):.1f} ms, "
              f"{sum(errors for _, errors in athena_results.values())} errors")

        time.sleep(2)  # idle
        request = urllib.request.Request(f"{front}/_dealab/class/status", headers={TOKEN_HEADER: token})
        status = json.loads(urllib.request.urlopen(request, timeout=30).read())
        stacks = [pss_mb(entry["pid"]) for entry in status["learners"] if entry["pid"]]
        door = pss_mb(status["pid"])
        single_pss = pss_mb(control.running_pid(single))
        print(f"PSS per idle learner stack: mean {statistics.mean(stacks):.0f} MB (min {min(stacks):.0f}, max {max(stacks):.0f}; goal ≤ 100); "
              f"a single stack after its flow {single_pss:.0f} MB; front door {door:.0f} MB")
        print(f"total for {len(stacks)} learners: {sum(stacks) + door:.0f} MB; projected for 30: {30 * statistics.mean(stacks) + door:.0f} MB")
    finally:
        cli(home, "class", "down")
        control.down(single)


if __name__ == "__main__":
    main()
