"""Other backends by URL go through the same gateway and engines; labs' moto switches are on."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from dealab.config import Settings
from dealab.datasets import landing_zone
from dealab.stack import control
from dealab.stack.control import free_port_pair
from tests.conftest import client, service_role


@pytest.fixture
def remote_backed_stack(tmp_path):
    backend_port = free_port_pair()
    backend = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(backend_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port_pair()
    settings = Settings(tmp_path / "state", port, port + 1, "us-east-1", f"http://127.0.0.1:{backend_port}")
    try:
        direct = client(Settings(tmp_path, backend_port, backend_port + 1, "us-east-1", None), "s3")
        for _ in range(100):
            try:
                direct.list_buckets()
                break
            except Exception:
                time.sleep(0.1)
        control.up(settings)
        yield settings, backend_port
    finally:
        control.down(settings)
        backend.terminate()
        backend.wait(10)


def test_remote_backend_sits_behind_the_gateway_and_engines(remote_backed_stack):
    settings, backend_port = remote_backed_stack
    assert control.health(settings)["backend"] == f"http://127.0.0.1:{backend_port}"
    s3 = client(settings, "s3")
    s3.create_bucket(Bucket="remote-bucket")
    payload = bytes(range(256)) * 4096
    s3.put_object(Bucket="remote-bucket", Key="k.bin", Body=payload)
    assert s3.get_object(Bucket="remote-bucket", Key="k.bin")["Body"].read() == payload
    direct = Settings(settings.state_dir, backend_port, backend_port + 1, "us-east-1", None)
    assert [b["Name"] for b in client(direct, "s3").list_buckets()["Buckets"]] == ["remote-bucket"]
    # the s3access engine still enforces a policy the remote backend only stores
    s3.put_bucket_policy(Bucket="remote-bucket", Policy=json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::remote-bucket/*", "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}]}))
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.put_object(Bucket="remote-bucket", Key="plain", Body=b"x")
    with pytest.raises(control.StackError, match="keeps its own state"):
        control.reset(settings)


def test_step_functions_run_their_states(clean_stack):
    sfn = client(clean_stack, "stepfunctions")
    definition = {"StartAt": "Hello", "States": {"Hello": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}
    machine = sfn.create_state_machine(name="hello", definition=json.dumps(definition), roleArn=service_role(clean_stack, "sfn", "states"))
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")
    for _ in range(100):
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            break
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED" and json.loads(described["output"]) == {"ok": True}


def test_datasets_differ_between_learners_and_repeat_for_one(tmp_path):
    params = {"sources": ["pos", "web"], "days": 2, "rows_per_file": 50}
    alice = landing_zone.generate("alice", tmp_path / "a", **params)
    alice_again = landing_zone.generate("alice", tmp_path / "a2", **params)
    bob = landing_zone.generate("bob", tmp_path / "b", **params)
    assert alice == alice_again
    assert alice["files"] != bob["files"]
    first = next(iter(alice["files"]))
    assert (tmp_path / "a" / first).read_bytes() == (tmp_path / "a2" / first).read_bytes()
