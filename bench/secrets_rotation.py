"""Secrets Manager rotation benchmark: a rotation as the secrets engine runs it, against the same four steps run by
hand, in one run of one stack.

- Engine: RotateSecret, then DescribeSecret polled every 20 ms until the new version is AWSCURRENT (what a client
  waiting on AWS sees).
- By hand: what the engine adds nothing to: PutSecretValue of an AWSPENDING version (the function's createSecret then
  finds it and skips its own put), then the same function invoked with the four steps in turn.
Rounds alternate; medians compared. Goal: the engine adds at most half again (ratio <= 1.5).
Run: `.venv/bin/python bench/secrets_rotation.py [--rounds 15]`.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY, Settings  # noqa: E402
from dealab.stack import control  # noqa: E402

# AWS's rotation template, cut to a secret without a database (as in tests/test_secrets_rotation.py)
ROTATION = '''
import boto3
sm = boto3.client("secretsmanager")

def handler(event, context):
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    versions = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    if "AWSCURRENT" in versions[token]:
        return
    if step == "createSecret":
        try:
            sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except sm.exceptions.ResourceNotFoundException:
            sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=sm.get_random_password()["RandomPassword"],
                                VersionStages=["AWSPENDING"])
    elif step == "testSecret":
        sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    elif step == "finishSecret":
        current = next(v for v, stages in versions.items() if "AWSCURRENT" in stages)
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current)
'''
ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
POLL_SECONDS = 0.02  # a waiting client's DescribeSecret calls share the stack's one process with the rotation
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def zip_of(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def run(settings: Settings, rounds: int) -> None:
    def aws(service):
        return boto3.client(service, endpoint_url=settings.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)

    sm, lam = aws("secretsmanager"), aws("lambda")
    role = aws("iam").create_role(RoleName="bench", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
    function = lam.create_function(FunctionName="rotate", Runtime="python3.11", Role=role, Handler="app.handler",
                                   Code={"ZipFile": zip_of(ROTATION)}, Timeout=30)["FunctionArn"]
    lam.add_permission(FunctionName="rotate", StatementId="secrets", Action="lambda:InvokeFunction", Principal="secretsmanager.amazonaws.com")
    engine_arn = sm.create_secret(Name="by-engine", SecretString="v0")["ARN"]
    hand_arn = sm.create_secret(Name="by-hand", SecretString="v0")["ARN"]
    sm.rotate_secret(SecretId=engine_arn, RotationLambdaARN=function)  # warms the worker and enables rotation
    wait_current(sm, engine_arn, None)

    engine, by_hand = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        token = rotate(sm, engine_arn)
        wait_current(sm, engine_arn, token)
        engine.append(time.perf_counter() - started)

        started = time.perf_counter()
        token = str(uuid.uuid4())
        sm.put_secret_value(SecretId=hand_arn, ClientRequestToken=token, SecretString=token, VersionStages=["AWSPENDING"])
        for step in STEPS:
            answer = lam.invoke(FunctionName=function, Payload=json.dumps({"Step": step, "SecretId": hand_arn, "ClientRequestToken": token}).encode())
            assert "FunctionError" not in answer, answer["Payload"].read()
        by_hand.append(time.perf_counter() - started)
    engine_ms, hand_ms = statistics.median(engine) * 1000, statistics.median(by_hand) * 1000
    print(f"rotation, RotateSecret to AWSCURRENT (median of {rounds}): {engine_ms:.1f} ms")
    print(f"  the same four steps by hand: {hand_ms:.1f} ms; ratio {engine_ms / hand_ms:.2f} (goal <= 1.5)")


def rotate(sm, arn: str) -> str:
    """RotateSecret as soon as the last rotation has ended (its label moves a moment before its run ends)."""
    while True:
        try:
            return sm.rotate_secret(SecretId=arn)["VersionId"]
        except sm.exceptions.InvalidRequestException:
            time.sleep(0.005)


def wait_current(sm, arn: str, token: str | None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
        pending = [version for version, labels in stages.items() if "AWSPENDING" in labels and "AWSCURRENT" not in labels]
        if (token is None and not pending) or (token is not None and "AWSCURRENT" in stages.get(token, [])):
            return
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"the rotation of {arn} did not finish in {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dealab-bench-secrets-") as folder:
        port = control.free_port_pair()
        settings = Settings(state_dir=Path(folder), port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)
        control.up(settings)
        try:
            run(settings, arguments.rounds)
        finally:
            control.down(settings)


if __name__ == "__main__":
    main()
