"""Classroom benchmark (issue 19): a class through one front door, against a single stack in the same run.

Starts one single stack (the baseline) and one class of BENCH_LEARNERS learners (default 30), then:
1. one learner's small S3 calls (Lab 01's kind) through the front door and the same calls on the single stack,
   in alternating rounds: p50/p95 of the best round of each and the front door's overhead as a ratio (goal ≤ 1.1);
2. every learner's Lab 01 flow at once (a bucket, puts, gets, lists; each learner's stack starts on their first
   call): p50/p95 and errors, then the PSS of each idle learner stack;
3. every learner's Lab 07 flow at once (a table over their CSV orders, Athena queries over it), with
   BENCH_GLUE_RUNS (default 5) of them also running a Glue job (CSV to Parquet) on their stack's local Spark
   worker: p50/p95 and errors, the total PSS of the whole class (front door, zygote, stacks, Spark and Athena
   children) sampled while it runs (goal ≤ 8 GB with 5 Spark jobs), then each idle stack's PSS again.
PSS is read from /proc/<pid>/smaps_rollup: a page shared by n processes counts 1/n in each, so the figures
add up to the memory the class really takes. Run: `.venv/bin/python bench/classroom.py`; a smaller class
with BENCH_LEARNERS=N (the per-learner figures shrink less than the shared part grows).
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
from tests.conftest import service_role  # noqa: E402

LEARNERS = int(os.environ.get("BENCH_LEARNERS", 30))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 150))
OVERHEAD_REQUESTS = int(os.environ.get("BENCH_OVERHEAD_REQUESTS", 300))
OVERHEAD_ROUNDS = int(os.environ.get("BENCH_OVERHEAD_ROUNDS", 4))
QUERIES = int(os.environ.get("BENCH_QUERIES", 5))
GLUE_RUNS = int(os.environ.get("BENCH_GLUE_RUNS", 5))
DEALAB = str(Path(sys.executable).with_name("dealab"))
ORDERS_CSV = "order_id,category,amount\n" + "".join(f"{n},{('books', 'games', 'garden')[n % 3]},{n % 97 + 0.5}\n" for n in range(2000))
GLUE_SCRIPT = '''
import sys
from awsglue.context import GlueContext
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "source", "target"])
glue_context = GlueContext(SparkContext.getOrCreate())
orders = glue_context.create_dynamic_frame.from_options(connection_type="s3", connection_options={"paths": [args["source"]]},
                                                        format="csv", format_options={"withHeader": True})
glue_context.write_dynamic_frame.from_options(frame=orders, connection_type="s3", connection_options={"path": args["target"]}, format="parquet")
'''


def client(service: str, endpoint: str, key: str, secret: str):
    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
                                          config=Config(retries={"max_attempts": 0}, max_pool_connections=4))


def timed(timings: list[float], call) -> bool:
    started = time.perf_counter()
    try:
        call()
        return True
    except Exception:
        return False
    finally:
        timings.append(time.perf_counter() - started)


def lab01_flow(s3, bucket: str, count: int) -> tuple[list[float], int]:
    """Lab 01's kind of traffic: a bucket, then puts, gets and lists of small objects; each call's seconds."""
    timings: list[float] = []
    errors = not timed(timings, lambda: s3.create_bucket(Bucket=bucket))
    for number in range(count):
        key = f"raw/orders/part-{number % 50:03d}.json"
        call = (lambda: s3.put_object(Bucket=bucket, Key=key, Body=b'{"order": 1}\n' * 20),
                lambda: s3.get_object(Bucket=bucket, Key=key)["Body"].read(),
                lambda: s3.list_objects_v2(Bucket=bucket, Prefix="raw/orders/", MaxKeys=20))[0 if number < 50 else number % 3]
        errors += not timed(timings, call)
    return timings, errors


def athena_query(athena, sql: str, bucket: str) -> None:
    execution = athena.start_query_execution(QueryString=sql, ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena/"})["QueryExecutionId"]
    while (status := athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]["Status"])["State"] in ("QUEUED", "RUNNING"):
        time.sleep(0.05)
    if status["State"] != "SUCCEEDED":
        raise RuntimeError(status.get("StateChangeReason", status["State"]))


def lab07_flow(s3, athena, bucket: str, count: int) -> tuple[list[float], int]:
    """Lab 07's kind of work: the learner's orders as CSV, a table over them, queries polled until they end;
    each query's seconds from start to SUCCEEDED."""
    s3.put_object(Bucket=bucket, Key="lake/orders/orders.csv", Body=ORDERS_CSV.encode())
    timings: list[float] = []
    statements = ["CREATE DATABASE IF NOT EXISTS shop",
                  "CREATE EXTERNAL TABLE IF NOT EXISTS shop.orders (order_id int, category string, amount double) ROW FORMAT DELIMITED "
                  f"FIELDS TERMINATED BY ',' LOCATION 's3://{bucket}/lake/orders/' TBLPROPERTIES ('skip.header.line.count'='1')"]
    queries = ["SELECT category, sum(amount) AS revenue, count(*) AS orders FROM shop.orders GROUP BY category ORDER BY revenue DESC",
               "SELECT count(*) FROM shop.orders WHERE amount > 50", "SELECT 1"]
    errors = sum(not timed(timings, lambda sql=sql: athena_query(athena, sql, bucket)) for sql in statements)
    errors += sum(not timed(timings, lambda n=n: athena_query(athena, queries[n % len(queries)], bucket)) for n in range(count))
    return timings, errors


def glue_run(s3, glue, bucket: str) -> tuple[str, float]:
    s3.put_object(Bucket=bucket, Key="scripts/to_parquet.py", Body=GLUE_SCRIPT.encode())
    glue.create_job(Name="orders-to-parquet", Role=service_role(glue, "glue", "glue"), GlueVersion="5.0",
                    Command={"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/scripts/to_parquet.py", "PythonVersion": "3"})
    started = time.perf_counter()
    run_id = glue.start_job_run(JobName="orders-to-parquet", Arguments={"--source": f"s3://{bucket}/lake/orders/", "--target": f"s3://{bucket}/curated/"})["JobRunId"]
    while (run := glue.get_job_run(JobName="orders-to-parquet", RunId=run_id)["JobRun"])["JobRunState"] in ("STARTING", "RUNNING", "WAITING", "STOPPING"):
        time.sleep(1)
    return run["JobRunState"] + (f" ({run.get('ErrorMessage', '')[:80]})" if run["JobRunState"] != "SUCCEEDED" else ""), time.perf_counter() - started


def percentile(timings: list[float], fraction: float) -> float:
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:  # gone meanwhile
        pass
    return 0.0


def tree(root: int) -> list[int]:
    """`root` and every process under it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, waiting = [], [root]
    while waiting:
        pid = waiting.pop()
        found.append(pid)
        waiting += children.get(pid, [])
    return found


def cli(home: Path, *arguments: str) -> str:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DEALAB_", "AWS_"))}
    completed = subprocess.run([DEALAB, *arguments], capture_output=True, text=True, env={**env, "DEALAB_HOME": str(home)}, timeout=600, check=True)
    return completed.stdout


def at_once(rows: list[dict], work) -> tuple[dict, float]:
    results: dict[str, object] = {}

    def one(row: dict) -> None:
        results[row["learner"]] = work(row)

    started = time.perf_counter()
    workers = [threading.Thread(target=one, args=(row,)) for row in rows]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results, time.perf_counter() - started


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

    def status() -> dict:
        request = urllib.request.Request(f"{front}/_dealab/class/status", headers={TOKEN_HEADER: token})
        return json.loads(urllib.request.urlopen(request, timeout=30).read())

    def stack_pss() -> list[float]:
        return [pss_mb(entry["pid"]) for entry in status()["learners"] if entry["pid"]]

    def learner_client(row: dict, service: str):
        return client(service, front, row["access_key_id"], row["secret_access_key"])

    try:
        # 1. the front door's overhead: one learner's calls through it and the same calls on the single stack, in
        # alternating rounds (which goes first swaps), the best round of each: both see the same machine
        first = keys[0]
        started = time.perf_counter()
        learner_client(first, "s3").list_buckets()
        cold_start = time.perf_counter() - started
        sides = {"single stack": client("s3", single.endpoint_url, "test", "test"), "front door": learner_client(first, "s3")}
        best: dict[str, tuple[list[float], int]] = {}
        for round_number in range(OVERHEAD_ROUNDS):
            for side in sorted(sides, reverse=round_number % 2 == 1):
                timings, errors = lab01_flow(sides[side], f"bench-overhead-{round_number}", OVERHEAD_REQUESTS)
                if side not in best or percentile(timings, .5) < percentile(best[side][0], .5):
                    best[side] = timings, errors
        (direct, direct_errors), (through, through_errors) = best["single stack"], best["front door"]
        print(f"front door up in {front_start:.2f}s; a learner's first request (forks their stack) {cold_start:.2f}s")
        print(f"one learner, {OVERHEAD_REQUESTS} S3 calls, best of {OVERHEAD_ROUNDS} alternating rounds: single stack p50 {percentile(direct, .5):.2f} ms "
              f"p95 {percentile(direct, .95):.2f} ms ({direct_errors} errors); through the front door p50 {percentile(through, .5):.2f} ms "
              f"p95 {percentile(through, .95):.2f} ms ({through_errors} errors)")
        print(f"front door overhead: p50 ×{percentile(through, .5) / percentile(direct, .5):.2f}, "
              f"p95 ×{percentile(through, .95) / percentile(direct, .95):.2f} (goal ≤ 1.1)")

        # 2. every learner's Lab 01 flow at once
        results, wall = at_once(keys, lambda row: lab01_flow(learner_client(row, "s3"), f"bench-{row['learner']}", REQUESTS))
        together = [timing for timings, _ in results.values() for timing in timings]
        print(f"{LEARNERS} learners' Lab 01 flows at once ({len(together)} S3 calls, stacks forked as learners came, {wall:.1f}s): "
              f"p50 {percentile(together, .5):.2f} ms p95 {percentile(together, .95):.2f} ms, {sum(errors for _, errors in results.values())} errors")
        time.sleep(3)  # idle
        after_lab01 = stack_pss()
        door_pid = status()["pid"]
        zygote = next((pid for pid in tree(door_pid) if b"dealab.classroom.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes()), None)
        single_pss = pss_mb(control.running_pid(single))
        print(f"PSS per idle learner stack after Lab 01: mean {statistics.mean(after_lab01):.0f} MB (min {min(after_lab01):.0f}, max {max(after_lab01):.0f}; "
              f"goal ≤ 100); a single stack after the same calls {single_pss:.0f} MB (×{statistics.mean(after_lab01) / single_pss:.2f}); "
              f"front door {pss_mb(door_pid):.0f} MB, zygote {pss_mb(zygote) if zygote else 0:.0f} MB")
        print(f"  the whole class: {sum(pss_mb(pid) for pid in tree(door_pid)):.0f} MB")

        # 3. every learner's Lab 07 flow at once, GLUE_RUNS of them running a Glue job too
        peak = {"total": 0.0}
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(2):
                peak["total"] = max(peak["total"], sum(pss_mb(pid) for pid in tree(door_pid)))

        glue_rows = keys[:GLUE_RUNS]

        def lab07(row: dict) -> tuple:
            bucket = f"bench-{row['learner']}"
            outcome = lab07_flow(learner_client(row, "s3"), learner_client(row, "athena"), bucket, QUERIES)
            if row in glue_rows:
                return outcome, glue_run(learner_client(row, "s3"), learner_client(row, "glue"), bucket)
            return outcome, None

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        results, wall = at_once(keys, lab07)
        sampling.set()
        sampler.join()
        query_timings = [timing for (timings, _), _ in results.values() for timing in timings]
        glue = [run for _, run in results.values() if run]
        print(f"{LEARNERS} learners' Lab 07 flows at once ({len(query_timings)} Athena statements, each polled to its end, {wall:.1f}s): "
              f"p50 {percentile(query_timings, .5):.0f} ms p95 {percentile(query_timings, .95):.0f} ms, "
              f"{sum(errors for (_, errors), _ in results.values())} errors")
        print(f"  {len(glue)} Glue job runs on their stacks' local Spark workers: " + ", ".join(f"{state} in {seconds:.0f}s" for state, seconds in glue))
        time.sleep(3)  # idle
        after_lab07 = stack_pss()
        print(f"PSS per idle learner stack after Athena (stack processes only): mean {statistics.mean(after_lab07):.0f} MB "
              f"(min {min(after_lab07):.0f}, max {max(after_lab07):.0f}; goal ≤ 100)")
        total = sum(pss_mb(pid) for pid in tree(door_pid))
        print(f"  the whole class idle after it: {total:.0f} MB, of which the Spark workers (kept warm) and other children of the stacks "
              f"{total - sum(after_lab07) - pss_mb(door_pid) - (pss_mb(zygote) if zygote else 0):.0f} MB")
        print(f"the whole class at its largest (front door, zygote, stacks, Spark workers; sampled every 2 s during Lab 07 and once after): "
              f"{max(peak['total'], total) / 1024:.2f} GB (goal ≤ 8 GB with 5 Spark jobs)")
    finally:
        cli(home, "class", "down")
        control.down(single)


if __name__ == "__main__":
    main()
