"""Bench: advance the lab clock 400 days over 100,000 S3 objects with 10 lifecycle rules (in an unversioned
and in a versioned bucket), and over 100,000 DynamoDB items with TTL. Goal (issue 6): each ≤ 30 s on
2 cores, RSS growth ≤ 300 MB.

Each scenario runs in its own process holding a real stack: the gateway with every engine and the embedded
backend, listening on a free 127.0.0.1 port; the engines' calls reach the gateway as under `dealab up`.
Objects and items are seeded straight into the embedded backend, with creation times spread over the past
year (100,000 PutObject calls through the gateway take about ten minutes and cannot be back-dated); the
tags of the tag-filtered prefix are set through the gateway, as the engine learns tags from the traffic it
sees. The measured part is
exactly what `dealab clock advance 400d` does: POST /_dealab/clock. Peak RSS growth is the process's VmHWM
after the advance minus its VmRSS before (the high-water mark is reset first). The process's CPU time over the
advance is printed beside the wall time: the whole stack runs in this one process, so on a machine shared
with other work it is the steadier figure.

    python bench/clock.py [--objects 100000] [--items 100000] [--days 400]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import logging
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BUCKET = "bench-lifecycle"
SCENARIOS = ("s3-unversioned", "s3-versioned", "ttl")
TABLE = "bench-sessions"
ACCOUNT = "123456789012"
PREFIXES = 10
# Ten rules over ten prefixes, covering every kind of action. Object bodies are 1 KiB, so transition rules
# carry a size filter (S3 would otherwise leave objects under 128 KiB where they are).
RULES = [
    {"ID": "p0-tiers", "Filter": {"And": {"Prefix": "p0/", "ObjectSizeGreaterThan": 0}},
     "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER_IR"}], "Expiration": {"Days": 365}},
    {"ID": "p1-tmp", "Filter": {"Prefix": "p1/"}, "Expiration": {"Days": 7}},
    {"ID": "p2-expire", "Filter": {"Prefix": "p2/"}, "Expiration": {"Days": 60}, "NoncurrentVersionExpiration": {"NoncurrentDays": 30}},
    {"ID": "p3-glacier", "Filter": {"And": {"Prefix": "p3/", "ObjectSizeGreaterThan": 0}}, "Transitions": [{"Days": 0, "StorageClass": "GLACIER"}]},
    {"ID": "p4-deep", "Filter": {"And": {"Prefix": "p4/", "ObjectSizeGreaterThan": 0}}, "Transitions": [{"Days": 180, "StorageClass": "DEEP_ARCHIVE"}]},
    {"ID": "p5-onezone", "Filter": {"And": {"Prefix": "p5/", "ObjectSizeGreaterThan": 0}},
     "Transitions": [{"Days": 30, "StorageClass": "ONEZONE_IA"}], "Expiration": {"Days": 200}},
    {"ID": "p6-it", "Filter": {"And": {"Prefix": "p6/", "ObjectSizeGreaterThan": 0}}, "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}]},
    {"ID": "p7-tagged", "Filter": {"And": {"Prefix": "p7/", "Tags": [{"Key": "tier", "Value": "cold"}], "ObjectSizeGreaterThan": 0}},
     "Transitions": [{"Days": 10, "StorageClass": "GLACIER"}]},
    {"ID": "p8-markers", "Filter": {"Prefix": "p8/"}, "Expiration": {"Days": 100}, "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
    {"ID": "p9-uploads", "Filter": {"Prefix": "p9/"}, "Expiration": {"Days": 300}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _start_stack(state_dir: Path):
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from dealab.stack.server import build_gateway

    port = _free_port()
    gateway = build_gateway(state_dir, port, _free_port(), "us-east-1", None)
    server = make_server("127.0.0.1", port, gateway, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


def _client(endpoint: str, service: str):
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def _seed_s3(endpoint: str, objects: int, rng: random.Random, versioned: bool) -> None:
    from moto.s3.models import s3_backends

    from dealab.wire import labtime

    s3 = _client(endpoint, "s3")
    s3.create_bucket(Bucket=BUCKET)
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    backend = s3_backends[ACCOUNT]["aws"]
    now = labtime.now()
    body = b"x" * 1024
    tagged = []
    for index in range(objects):
        key = f"p{index % PREFIXES}/{index:07d}.dat"
        with labtime.frozen_at(now - datetime.timedelta(seconds=rng.uniform(0, 365 * 86400))):
            backend.put_object(BUCKET, key, body)
        if key.startswith("p7/"):
            tagged.append((key, "cold" if index % 2 else "warm"))
    for key, tier in tagged:
        s3.put_object_tagging(Bucket=BUCKET, Key=key, Tagging={"TagSet": [{"Key": "tier", "Value": tier}]})
    for index in range(100):
        s3.create_multipart_upload(Bucket=BUCKET, Key=f"p9/upload-{index}")
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [{"Status": "Enabled", **r} for r in RULES]})


def _seed_ttl(endpoint: str, items: int, days: int, rng: random.Random) -> None:
    from moto.dynamodb.models import dynamodb_backends

    ddb = _client(endpoint, "dynamodb")
    ddb.create_table(
        TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )
    ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    backend = dynamodb_backends[ACCOUNT]["us-east-1"]
    now = time.time()
    for index in range(items):
        expires = now + rng.uniform(0, days * 86400 * 1.1)  # about a tenth outlive the advance
        backend.put_item(TABLE, {"pk": {"S": f"session-{index:07d}"}, "expires_at": {"N": str(int(expires))}})


def run_scenario(name: str, objects: int, items: int, days: int) -> dict:
    state_dir = Path(tempfile.mkdtemp(prefix="dealab-bench-clock-"))
    endpoint, server = _start_stack(state_dir)
    rng = random.Random(6)
    seed_started = time.monotonic()
    if name.startswith("s3"):
        _seed_s3(endpoint, objects, rng, versioned=name == "s3-versioned")
    else:
        _seed_ttl(endpoint, items, days, rng)
    seeded = time.monotonic() - seed_started
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    rss_before = _status("VmRSS")
    started, cpu_started = time.monotonic(), time.process_time()
    request = urllib.request.Request(
        f"{endpoint}/_dealab/clock", data=json.dumps({"action": "advance", "by": f"{days}d"}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=3600) as response:
        move = json.loads(response.read())["last_move"]
    wall, cpu = time.monotonic() - started, time.process_time() - cpu_started
    peak_growth = _status("VmHWM") - rss_before
    server.shutdown()
    shutil.rmtree(state_dir, ignore_errors=True)
    return {"scenario": name, "seed_seconds": round(seeded, 1), "advance_seconds": round(wall, 2), "advance_cpu_seconds": round(cpu, 2),
            "peak_rss_growth_mb": round(peak_growth / 1e6, 1), "rss_before_mb": round(rss_before / 1e6, 1), "move": move}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only these scenarios")
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.objects, args.items, args.days)))
        return 0
    results = []
    for scenario in args.only or SCENARIOS:
        command = [sys.executable, __file__, "--scenario", scenario, "--objects", str(args.objects), "--items", str(args.items), "--days", str(args.days)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    for result in results:
        move = result["move"]
        what = (f"{args.objects:,} objects ({result['scenario']}), {len(RULES)} rules: {move['lifecycle']}" if result["scenario"].startswith("s3")
                else f"{args.items:,} TTL items: {move['ttl_deleted']:,} deleted")
        print(f"advance {args.days}d over {what}")
        print(f"  wall {result['advance_seconds']:.1f} s (goal ≤ 30; CPU {result['advance_cpu_seconds']:.1f} s), "
              f"peak RSS growth {result['peak_rss_growth_mb']:.0f} MB "
              f"(goal ≤ 300), {move['moments']} due moments; seeding took {result['seed_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
