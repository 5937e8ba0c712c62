"""CloudTrail benchmark: what recording costs 1,000 small S3 requests (PutObject + GetObject of 100 bytes, boto3
over HTTP), against the same gateway without the cloudtrail engine, in one run.

One gateway process-local (the stack's engines, embedded moto, werkzeug on a free port); between rounds its engine
list is swapped, so both sides share the backend, the server and the machine's load. Three sides:
- without: every engine but cloudtrail;
- recording: cloudtrail on, no trail (S3 object calls are data events: only checked, not stored);
- trail: a logging trail whose selectors take every S3 data event (each request a record appended to the store).
Rounds alternate; the median per-request time of each side is compared. Run: `.venv/bin/python bench/cloudtrail.py`.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.engines import load_engines  # noqa: E402
from dealab.stack.backend import EmbeddedMoto  # noqa: E402
from dealab.stack.control import free_port_pair  # noqa: E402
from dealab.stack.gateway import Gateway  # noqa: E402
from dealab.stack.journal import Journal  # noqa: E402
from dealab.wire.engine import EngineContext  # noqa: E402

REQUESTS = 1000
ROUNDS = 7
BODY = b"x" * 100


def policy(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}"},
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/*"}]})


def one_round(s3, bucket: str, tag: str) -> float:
    """Seconds per request over REQUESTS requests (half PutObject, half GetObject)."""
    started = time.perf_counter()
    for number in range(REQUESTS // 2):
        key = f"{tag}/{number % 50}.txt"
        s3.put_object(Bucket=bucket, Key=key, Body=BODY)
        s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return (time.perf_counter() - started) / REQUESTS


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request would be measured too
    state = Path(tempfile.mkdtemp(prefix="bench-cloudtrail-"))
    port = free_port_pair()
    endpoint = f"http://127.0.0.1:{port}"
    context = EngineContext(endpoint, "us-east-1", state)
    engines = load_engines(context)
    gateway = Gateway(EmbeddedMoto(Journal(state / "journal")), engines)
    context.loopback.attach(gateway)
    server = make_server("127.0.0.1", port, gateway, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with_cloudtrail = list(engines)
    without = [engine for engine in engines if engine.name != "cloudtrail"]

    def client(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test", config=Config(retries={"max_attempts": 0}))

    s3, cloudtrail = client("s3"), client("cloudtrail")
    s3.create_bucket(Bucket="bench-data")
    s3.create_bucket(Bucket="bench-trail")
    s3.put_bucket_policy(Bucket="bench-trail", Policy=policy("bench-trail"))
    one_round(s3, "bench-data", "warm")  # first calls load botocore models and moto modules
    times: dict[str, list[float]] = {"without": [], "recording": [], "trail": []}
    for number in range(ROUNDS):
        for side in times:
            gateway.engines = without if side == "without" else with_cloudtrail
            if side == "trail":
                cloudtrail.create_trail(Name=f"bench-{number}", S3BucketName="bench-trail")
                cloudtrail.put_event_selectors(TrailName=f"bench-{number}", EventSelectors=[{
                    "ReadWriteType": "All", "IncludeManagementEvents": True,
                    "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}])
                cloudtrail.start_logging(Name=f"bench-{number}")
            times[side].append(one_round(s3, "bench-data", f"{side}{number}"))
            if side == "trail":
                cloudtrail.delete_trail(Name=f"bench-{number}")
    baseline = statistics.median(times["without"])
    print(f"{REQUESTS} small S3 requests (PutObject+GetObject, boto3 over HTTP), median of {ROUNDS} alternating rounds")
    for side, values in times.items():
        median = statistics.median(values)
        print(f"  {side:<10} {median * 1e3:6.3f} ms/request   x{median / baseline:.3f} of without")
    server.shutdown()
    for engine in engines:
        engine.close()


if __name__ == "__main__":
    main()
