"""Lambda benchmark: warm invoke, cold start, a warm worker's memory, idle reaping, against baselines in one run.

- Warm invoke p50: boto3 Invoke of a tiny handler through the stack, against the same handler called in this
  process, a bare subprocess round trip over pipes (what any worker process costs) and a GetFunctionConfiguration
  through the stack (what any boto3 call costs). Goal <= 15 ms.
- Cold start: the first Invoke after UpdateFunctionConfiguration (a new worker imports the handler), against
  starting a bare `python -c pass`. Goal <= 400 ms.
- PSS of a warm worker whose handler imported boto3 and made one client. Goal <= 90 MB.
- Idle workers reaped: the stack runs with DEALAB_LAMBDA_IDLE_SECONDS=2; a worker is gone 2 s after its last use.

Run: `.venv/bin/python bench/lambda.py [--invokes 200]`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY, Settings  # noqa: E402
from dealab.stack import control  # noqa: E402
from dealab.wire.admintoken import admin_headers  # noqa: E402

TINY = "def handler(event, context):\n    return {'n': event.get('n', 0) + 1}\n"
WITH_BOTO3 = "import boto3\ns3 = boto3.client('s3')\ndef handler(event, context):\n    return len(s3.list_buckets()['Buckets'])\n"
IDLE_SECONDS = 2
ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def zip_of(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def milliseconds(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples) * 1000:.2f} ms, p90 {sorted(samples)[int(len(samples) * 0.9)] * 1000:.2f} ms"


def workers(settings: Settings) -> list[dict]:
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/lambda/workers", headers=admin_headers(settings.state_dir))
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["workers"]


def bare_round_trip(rounds: int) -> list[float]:
    """A subprocess answering one line per line over pipes: the floor of any worker-process design."""
    child = subprocess.Popen([sys.executable, "-c", "import sys\nfor line in sys.stdin: sys.stdout.write(line); sys.stdout.flush()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    samples = []
    for n in range(rounds):
        started = time.perf_counter()
        child.stdin.write(json.dumps({"n": n}) + "\n")
        child.stdin.flush()
        child.stdout.readline()
        samples.append(time.perf_counter() - started)
    child.stdin.close()
    child.wait()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invokes", type=int, default=200)
    arguments = parser.parse_args()
    os.environ["DEALAB_LAMBDA_IDLE_SECONDS"] = str(IDLE_SECONDS)  # the stack process inherits it
    with tempfile.TemporaryDirectory(prefix="dealab-bench-lambda-") as folder:
        port = control.free_port_pair()
        settings = Settings(state_dir=Path(folder), port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)
        control.up(settings)
        try:
            run(settings, arguments.invokes)
        finally:
            control.down(settings)


def run(settings: Settings, invokes: int) -> None:
    def aws(service):
        return boto3.client(service, endpoint_url=settings.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)

    lam = aws("lambda")
    role = aws("iam").create_role(RoleName="bench", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
    lam.create_function(FunctionName="tiny", Runtime="python3.11", Role=role, Handler="app.handler", Code={"ZipFile": zip_of(TINY)})
    lam.invoke(FunctionName="tiny", Payload=b"{}")

    warm = []
    for n in range(invokes):
        started = time.perf_counter()
        lam.invoke(FunctionName="tiny", Payload=json.dumps({"n": n}).encode())["Payload"].read()
        warm.append(time.perf_counter() - started)
    namespace: dict = {}
    exec(TINY, namespace)
    in_process = []
    for n in range(invokes):
        started = time.perf_counter()
        json.dumps(namespace["handler"](json.loads(json.dumps({"n": n})), None))
        in_process.append(time.perf_counter() - started)
    bare = bare_round_trip(invokes)
    api_call = []
    for _ in range(invokes):
        started = time.perf_counter()
        lam.get_function_configuration(FunctionName="tiny")
        api_call.append(time.perf_counter() - started)
    print(f"warm invoke through the stack: {milliseconds(warm)} (goal p50 <= 15 ms)")
    print(f"  handler called in this process: {milliseconds(in_process)}")
    print(f"  bare subprocess round trip over pipes: {milliseconds(bare)}")
    print(f"  GetFunctionConfiguration through the stack (any API call's cost): {milliseconds(api_call)}; "
          f"ratio {statistics.median(warm) / statistics.median(api_call):.2f}")

    cold, bare_start = [], []
    for n in range(5):
        lam.update_function_configuration(FunctionName="tiny", Environment={"Variables": {"ROUND": str(n)}})
        started = time.perf_counter()
        lam.invoke(FunctionName="tiny", Payload=b"{}")["Payload"].read()
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare_start.append(time.perf_counter() - started)
    print(f"cold start (first invoke after a configuration change): {milliseconds(cold)} (goal p50 <= 400 ms)")
    print(f"  bare `python -c pass`: {milliseconds(bare_start)}; ratio {statistics.median(cold) / statistics.median(bare_start):.1f}")

    lam.create_function(FunctionName="with-boto3", Runtime="python3.11", Role=role, Handler="app.handler", Code={"ZipFile": zip_of(WITH_BOTO3)}, Timeout=30)
    lam.invoke(FunctionName="with-boto3", Payload=b"{}")
    pss = [worker["pss_mb"] for worker in workers(settings) if worker["function"] == "with-boto3"]
    print(f"PSS of a warm worker that imported boto3 and made a client: {pss[0]:.1f} MB (goal <= 90 MB)")

    time.sleep(IDLE_SECONDS * 2 + 5.5)
    left = workers(settings)
    print(f"workers left {IDLE_SECONDS * 2 + 5.5:.1f} s after their last use with DEALAB_LAMBDA_IDLE_SECONDS={IDLE_SECONDS}: {len(left)} (reaped: {not left})")


if __name__ == "__main__":
    main()
