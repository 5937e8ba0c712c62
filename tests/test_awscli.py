"""The AWS CLI works against the stack unchanged: only AWS_ENDPOINT_URL and friends point it there."""

import json
import os
import subprocess
import sys
from pathlib import Path

AWS = str(Path(sys.executable).with_name("aws"))


def aws(settings, *args: str) -> str:
    env = {**os.environ, **settings.client_env()}
    completed = subprocess.run([AWS, *args], env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_aws_cli_s3_and_kms(clean_stack, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text("order_id,amount\n1,9.99\n")
    aws(clean_stack, "s3", "mb", "s3://cli-bucket")
    aws(clean_stack, "s3", "cp", str(source), "s3://cli-bucket/raw/dt=2024-01-01/orders.csv")
    assert "raw/dt=2024-01-01/orders.csv" in aws(clean_stack, "s3", "ls", "--recursive", "s3://cli-bucket")
    aws(clean_stack, "s3", "cp", "s3://cli-bucket/raw/dt=2024-01-01/orders.csv", str(tmp_path / "back.csv"))
    assert (tmp_path / "back.csv").read_text() == source.read_text()
    key = json.loads(aws(clean_stack, "kms", "create-key", "--description", "cli"))["KeyMetadata"]["KeyId"]
    aws(clean_stack, "kms", "enable-key-rotation", "--key-id", key)
    assert json.loads(aws(clean_stack, "kms", "get-key-rotation-status", "--key-id", key))["KeyRotationEnabled"] is True
