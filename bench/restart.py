"""Restart time against state size: how long `up` takes to bring back a learner's state.

States are built in this process (a gateway on the same code the stack runs, its calls handed over without
a socket), then the real stack process is started on them: once from the journal alone (as after `kill -9`
before any snapshot) and once from the snapshot a stop writes. The baseline, in the same run, is `up` on
an empty state folder.
"""

from __future__ import annotations

import random
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.config import Settings  # noqa: E402
from dealab.stack import control  # noqa: E402

MIXED_REQUESTS = int(__import__("os").environ.get("BENCH_MIXED", 50_000))
KINESIS_RECORDS = int(__import__("os").environ.get("BENCH_KINESIS", 165_000))


def free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65000 and control._port_free(port + 1):
            return port


def build_state(state_dir: Path, fill) -> tuple[int, float]:
    """Runs `fill(client)` against an in-process gateway on `state_dir`; returns (journal entries, seconds)."""
    from dealab.stack.server import build_gateway

    port = free_port()
    gateway = build_gateway(state_dir, port, port + 1, "us-east-1", None)
    context = gateway.engines[0].context
    started = time.perf_counter()
    fill(lambda service: context.client(service, engine="bench"))
    seconds = time.perf_counter() - started
    entries = gateway.backend.journal.tail_entries
    gateway.backend.journal.close()  # as a kill would leave it: journal only, no snapshot
    for engine in gateway.engines:
        engine.close()
    return entries, seconds


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
        else:
            sqs.send_message(QueueUrl=queue, MessageBody=str(number))


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
    state_dir = scratch / name
    entries, fill_seconds = build_state(state_dir, fill)
    port = free_port()
    settings = Settings(state_dir, port, port + 1, "us-east-1", None)
    try:
        from_journal, restore = timed_up(settings)
        assert not restore["skipped"], restore["skipped"][:3]
        stop_started = time.perf_counter()
        control.down(settings)  # writes the snapshot
        stop_seconds = time.perf_counter() - stop_started
        from_snapshot, restore = timed_up(settings)
        assert restore["snapshot_seq"] and not restore["replayed"]
    finally:
        control.down(settings)
    snapshot = state_dir / "journal" / "snapshot.bin"
    print(
        f"{name:<22}: {entries:>6} journal entries (built in {fill_seconds:.0f}s) · up from journal {from_journal:5.1f}s "
        f"(ratio {from_journal / baseline:5.1f}) · down with snapshot {stop_seconds:4.1f}s · up from snapshot "
        f"{from_snapshot:4.1f}s (ratio {from_snapshot / baseline:4.1f}, {snapshot.stat().st_size / 1e6:.0f} MB) · goal <= 30s"
    )
    shutil.rmtree(state_dir, ignore_errors=True)


def main() -> None:
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


if __name__ == "__main__":
    main()
