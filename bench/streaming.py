"""Streaming benchmarks, measured in one run on this machine:

1. PutRecords throughput (records/s) through the dealab gateway (fault injection, Kinesis engine, journal)
   against the backend alone (moto's own server), same records, same client, rounds interleaved.
   Goal: gateway / backend >= 0.8.
2. End-to-end lag of the Lab 02 solution: from a record's arrival in the stream (ApproximateArrivalTimestamp)
   to the raw-zone object that holds it (LastModified), with the producer running and the consumer polling.

    .venv/bin/python bench/streaming.py [--records 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dealab import labrun  # noqa: E402
from dealab.labs import get_lab  # noqa: E402
from dealab.stack import control  # noqa: E402
from tests.conftest import free_port_pair, make_settings  # noqa: E402

SHARDS = 4
BATCH = 500


def kinesis_at(endpoint: str):
    return boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))


def records(count: int) -> list[dict]:
    return [{"Data": json.dumps({"event_id": f"e-{n:08d}", "user_id": f"u{n % 800:05d}", "event_type": "click",
                                 "page": "/products", "ts": "2026-04-20T12:00:00.000Z"}).encode(), "PartitionKey": f"e-{n:08d}"}
            for n in range(count)]


def put_rate(endpoint: str, stream: str, batch_of_records: list[dict]) -> float:
    kinesis = kinesis_at(endpoint)
    kinesis.create_stream(StreamName=stream, ShardCount=SHARDS)
    started = time.perf_counter()
    for start in range(0, len(batch_of_records), BATCH):
        answer = kinesis.put_records(StreamName=stream, Records=batch_of_records[start:start + BATCH])
        assert answer["FailedRecordCount"] == 0, "a benchmark put failed"
    return len(batch_of_records) / (time.perf_counter() - started)


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def throughput(count: int, rounds: int) -> dict:
    payload = records(count)
    settings = make_settings(Path(tempfile.mkdtemp(prefix="dealab-bench-")))
    moto_port = free_port_pair()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    control.up(settings)
    try:
        wait_for(f"http://127.0.0.1:{moto_port}/moto-api/")
        for endpoint in (f"http://127.0.0.1:{moto_port}", settings.endpoint_url):  # warm-up: lazy imports, first connections
            put_rate(endpoint, "warm-up", payload[:BATCH])
        gateway, backend = [], []
        for round_number in range(rounds):
            backend.append(put_rate(f"http://127.0.0.1:{moto_port}", f"bench-{round_number}", payload))
            gateway.append(put_rate(settings.endpoint_url, f"bench-{round_number}", payload))
    finally:
        control.down(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
        moto.terminate()
        moto.wait(10)
    return {"records": count, "rounds": rounds, "gateway_rps": statistics.median(gateway), "backend_rps": statistics.median(backend),
            "ratio": statistics.median(gateway) / statistics.median(backend),
            "round_ratios": [g / b for g, b in zip(gateway, backend)]}


def end_to_end_lag() -> dict:
    """Lab 02's solution with faults on: the producer runs while the consumer drains again and again."""
    settings = make_settings(Path(tempfile.mkdtemp(prefix="dealab-bench-")))
    control.up(settings)
    try:
        lab = get_lab(2)
        summary = labrun.start(lab, settings)
        env = {**os.environ, **settings.client_env()}

        def run(script: str) -> subprocess.Popen:
            return subprocess.Popen([sys.executable, str(lab.solution_dir / script)], cwd=lab.path, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        kinesis = kinesis_at(settings.endpoint_url)
        producer = run("producer.py")
        while True:  # the consumer needs the stream to exist
            try:
                kinesis.describe_stream_summary(StreamName="clickstream")
                break
            except kinesis.exceptions.ResourceNotFoundException:
                time.sleep(0.1)
        started = time.perf_counter()
        while producer.poll() is None:
            run("consumer.py").wait()
        run("consumer.py").wait()
        elapsed = time.perf_counter() - started
        assert producer.returncode == 0, producer.stderr.read()

        arrival = {}
        for shard in kinesis.list_shards(StreamName="clickstream")["Shards"]:
            iterator = kinesis.get_shard_iterator(StreamName="clickstream", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while iterator:
                answer = kinesis.get_records(ShardIterator=iterator, Limit=10000)
                for record in answer["Records"]:
                    try:
                        arrival[json.loads(record["Data"])["event_id"]] = record["ApproximateArrivalTimestamp"]
                    except (ValueError, KeyError, TypeError):
                        pass
                if not answer["Records"]:
                    break
                iterator = answer["NextShardIterator"]
        s3 = boto3.client("s3", **{"endpoint_url": settings.endpoint_url, "region_name": "us-east-1",
                                   "aws_access_key_id": "test", "aws_secret_access_key": "test"})
        lags = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="dea-stream-raw", Prefix="events/"):
            for item in page.get("Contents", []):
                for line in s3.get_object(Bucket="dea-stream-raw", Key=item["Key"])["Body"].read().splitlines():
                    event_id = json.loads(line)["event_id"]
                    lags.append((item["LastModified"] - arrival[event_id]).total_seconds())
        lags.sort()
        return {"events": len(lags), "expected": len(summary["valid_events"]), "seconds": elapsed,
                "lag_p50": lags[len(lags) // 2], "lag_p95": lags[int(len(lags) * 0.95)], "lag_max": lags[-1]}
    finally:
        control.down(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    put = throughput(args.records, args.rounds)
    print(f"PutRecords, {put['records']} records x {put['rounds']} rounds (median), {SHARDS} shards, batches of {BATCH}:")
    print(f"  backend alone (moto server): {put['backend_rps']:8.0f} records/s")
    print(f"  through the dealab gateway:  {put['gateway_rps']:8.0f} records/s")
    print(f"  ratio gateway/backend:       {put['ratio']:8.2f}  (goal >= 0.8; per round: {', '.join(f'{r:.2f}' for r in put['round_ratios'])})")
    lag = end_to_end_lag()
    print(f"Lab 02 solution, faults on: {lag['events']} of {lag['expected']} valid events in the raw zone after {lag['seconds']:.1f}s")
    print(f"  put -> S3 object lag: p50 {lag['lag_p50']:.2f}s, p95 {lag['lag_p95']:.2f}s, max {lag['lag_max']:.2f}s")


if __name__ == "__main__":
    main()
