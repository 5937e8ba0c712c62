"""Stack benchmark: start-up, gateway overhead, lab 01 grading time and memory, against moto_server in one run.

Prints absolute figures and ratios (dealab / moto_server alone; restarts / an empty start). Run: `make bench` or
`.venv/bin/python bench/stack.py [--start | --door | --restart]`.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab import labrun  # noqa: E402
from dealab.config import Settings  # noqa: E402
from dealab.datasets import learner_seed  # noqa: E402
from dealab.labs import get_lab  # noqa: E402
from dealab.stack import control  # noqa: E402
from grader.runner import grade  # noqa: E402

REQUESTS = 1000
MIXED_REQUESTS = int(os.environ.get("BENCH_MIXED", 50_000))
KINESIS_RECORDS = int(os.environ.get("BENCH_KINESIS", 165_000))


def free_port() -> int:
    return control.free_port_pair()


def s3_at(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"max_attempts": 0}))


def first_answer(endpoint: str, started: float) -> float:
    client = s3_at(endpoint)
    while True:
        try:
            client.list_buckets()
            return time.perf_counter() - started
        except Exception:
            time.sleep(0.01)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def put_get_seconds(endpoint: str, bucket: str = "bench-bucket") -> float:
    client = s3_at(endpoint)
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="warm", Body=b"x")
    started = time.perf_counter()
    for number in range(REQUESTS // 2):
        client.put_object(Bucket=bucket, Key=f"k/{number}", Body=b"small object body")
        client.get_object(Bucket=bucket, Key=f"k/{number}")["Body"].read()
    return time.perf_counter() - started


def door_overhead(scratch: str, rounds: int = 6) -> tuple[float, float]:
    """Seconds for REQUESTS small S3 requests with the door's signature checking off and on: two stacks
    side by side, measured in alternating rounds that swap which goes first (the best round of each), so
    both see the same machine; on this VM single rounds differ by ±10 % either way."""
    stacks = {}
    try:
        for verify in ("0", "1"):
            port = free_port()
            settings = Settings(Path(scratch) / f"door-{verify}", port, port + 1, "us-east-1", None)
            os.environ["DEALAB_VERIFY_SIGNATURES"] = verify  # read by the stack process at start
            control.up(settings)
            stacks[verify] = settings
        os.environ.pop("DEALAB_VERIFY_SIGNATURES", None)
        best = {verify: float("inf") for verify in stacks}
        for round_number in range(rounds):
            for verify, settings in sorted(stacks.items(), reverse=round_number % 2 == 1):
                best[verify] = min(best[verify], put_get_seconds(settings.endpoint_url, f"door-bench-{round_number}"))
        return best["0"], best["1"]
    finally:
        os.environ.pop("DEALAB_VERIFY_SIGNATURES", None)
        for settings in stacks.values():
            control.down(settings)


def print_door_overhead(scratch: str) -> None:
    unchecked, checked = door_overhead(scratch)
    print(f"door: {REQUESTS} small S3 PUT/GETs : signatures checked {checked:.2f}s · unchecked {unchecked:.2f}s · "
          f"overhead {(checked / unchecked - 1) * 100:+.1f}% (goal <= 5%)")


def build_state(state_dir: Path, fill) -> tuple[int, int, float]:
    """Runs `fill(client)` against an in-process gateway on `state_dir`, taking snapshots as the stack does,
    then stops it the way `kill -9` would (no last snapshot). Returns (requests journaled, tail left, seconds)."""
    import threading

    from dealab.stack.server import build_gateway

    port = free_port()
    gateway = build_gateway(state_dir, port, port + 1, "us-east-1", None)
    backend, context = gateway.backend, gateway.engines[0].context
    stop = threading.Event()
    snapshots = threading.Thread(target=backend.keep_snapshots, args=(stop,), daemon=True)
    snapshots.start()
    started = time.perf_counter()
    fill(lambda service: context.client(service, engine="bench"))
    seconds = time.perf_counter() - started
    stop.set()
    snapshots.join()
    journaled, tail = backend.journal.last_seq, backend.journal.tail_entries
    backend.journal.close()
    for engine in gateway.engines:
        engine.close()
    return journaled, tail, seconds


def mixed(client) -> None:
    rng = random.Random(7)
    s3, ddb, sqs = client("s3"), client("dynamodb"), client("sqs")
    s3.create_bucket(Bucket="bench-mixed")
    ddb.create_table(TableName="bench", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    queue = sqs.create_queue(QueueName="bench")["QueueUrl"]
    for number in range(MIXED_REQUESTS - 3):
        kind = number % 3
        if kind == 0:
            s3.put_object(Bucket="bench-mixed", Key=f"k/{number % 5000}", Body=rng.randbytes(rng.choice([100, 2000])))
        elif kind == 1:
            ddb.put_item(TableName="bench", Item={"pk": {"S": str(number % 10000)}, "n": {"N": str(number)}})
        elif number % 6 == 2:
            sqs.send_message(QueueUrl=queue, MessageBody=str(number))
        else:  # a consumer keeps the queue short: moto's SendMessage costs time in proportion to the queue's depth
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", []):
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def kinesis(client) -> None:
    stream = client("kinesis")
    stream.create_stream(StreamName="bench", ShardCount=2)
    for start in range(0, KINESIS_RECORDS, 500):
        stream.put_records(StreamName="bench", Records=[{"Data": b"r" * 60, "PartitionKey": str(n)} for n in range(start, start + 500)])


def timed_up(settings: Settings) -> tuple[float, dict]:
    started = time.perf_counter()
    document = control.up(settings)
    return time.perf_counter() - started, document["restore"]


def measure(name: str, fill, scratch: Path, baseline: float) -> None:
    state_dir = scratch / name.replace(" ", "-")
    journaled, tail, fill_seconds = build_state(state_dir, fill)
    port = free_port()
    settings = Settings(state_dir, port, port + 1, "us-east-1", None)
    try:
        after_kill, restore = timed_up(settings)
        assert not restore["skipped"], restore["skipped"][:3]
        replayed = restore["replayed"]
        stop_started = time.perf_counter()
        control.down(settings)  # writes the snapshot
        stop_seconds = time.perf_counter() - stop_started
        after_stop, restore = timed_up(settings)
        assert restore["snapshot_seq"] and not restore["replayed"]
    finally:
        control.down(settings)
    snapshot = state_dir / "journal" / "snapshot.bin"
    print(
        f"{name:<22}: {journaled:>6} requests journaled in {fill_seconds:.0f}s · up after kill -9 {after_kill:5.1f}s "
        f"(snapshot + {replayed} replayed; ratio {after_kill / baseline:4.1f}) · down {stop_seconds:4.1f}s · up after down "
        f"{after_stop:4.1f}s (ratio {after_stop / baseline:4.1f}; snapshot {snapshot.stat().st_size / 1e6:.0f} MB) · goal <= 30s"
    )
    shutil.rmtree(state_dir, ignore_errors=True)


def print_restart_times() -> None:
    """Restart time against state size: `up` from the journal alone (as after `kill -9` before any snapshot) and
    from the snapshot a stop writes; the baseline is `up` on an empty state folder, in the same run."""
    with tempfile.TemporaryDirectory(prefix="dealab-bench-restart-") as scratch:
        port = free_port()
        empty = Settings(Path(scratch) / "empty", port, port + 1, "us-east-1", None)
        try:
            baseline, _ = timed_up(empty)
        finally:
            control.down(empty)
        print(f"{'empty state':<22}: up {baseline:.2f}s (the baseline of the ratios below)")
        measure(f"{MIXED_REQUESTS // 1000}k mixed requests", mixed, Path(scratch), baseline)
        measure(f"{KINESIS_RECORDS // 1000}k Kinesis records", kinesis, Path(scratch), baseline)


def main() -> None:
    if "--restart" in sys.argv[1:]:  # only restart times (a few minutes: the states are built first)
        print_restart_times()
        return
    if "--door" in sys.argv[1:]:  # only the door's overhead (about 20 s)
        with tempfile.TemporaryDirectory(prefix="dealab-bench-") as scratch:
            print_door_overhead(scratch)
        return
    with tempfile.TemporaryDirectory(prefix="dealab-bench-") as scratch:
        moto_port = free_port()
        started = time.perf_counter()
        moto = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(moto_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            moto_start = first_answer(f"http://127.0.0.1:{moto_port}", started)
            moto_requests = put_get_seconds(f"http://127.0.0.1:{moto_port}")
        finally:
            moto.terminate()
            moto.wait(10)

        port = free_port()
        settings = Settings(Path(scratch) / "state", port, port + 1, "us-east-1", None)
        started = time.perf_counter()
        document = control.up(settings)
        try:
            stack_start = first_answer(settings.endpoint_url, started)
            idle = rss_mb(document["pid"])
            stack_requests = put_get_seconds(settings.endpoint_url)
            os.environ["DEALAB_LEARNER"] = "bench"
            control.reset(settings)
            lab = get_lab(1)
            labrun.start(lab, settings)
            labrun.solve(lab, settings)
            started = time.perf_counter()
            report = grade(lab, settings, learner_seed(settings))
            grading = time.perf_counter() - started
            after_lab = rss_mb(document["pid"])
        finally:
            control.down(settings)

    print(f"start to first S3 answer : dealab {stack_start:.2f}s · moto_server {moto_start:.2f}s · ratio {stack_start / moto_start:.2f} (goal: dealab <= 1.5s, ratio <= 1.5)")
    print(f"{REQUESTS} small S3 PUT/GETs : dealab {stack_requests:.2f}s · moto_server {moto_requests:.2f}s · ratio {stack_requests / moto_requests:.2f} (goal <= 1.2)")
    print(f"per request              : dealab {stack_requests / REQUESTS * 1000:.2f}ms · moto_server {moto_requests / REQUESTS * 1000:.2f}ms")
    print(f"grading lab 01           : {grading:.2f}s for {len(report.results)} checks, score {report.score}/{report.total} (goal <= 2s)")
    print(f"server RSS               : idle {idle:.0f} MB · after lab 01 {after_lab:.0f} MB (goal idle <= 150 MB)")
    if "--start" in sys.argv[1:]:  # only the figures above (about a minute)
        return
    with tempfile.TemporaryDirectory(prefix="dealab-bench-") as scratch:
        print_door_overhead(scratch)
    print_restart_times()


if __name__ == "__main__":
    main()
