"""Shared fixtures: a real stack process on free ports with its own state folder, stopped after the tests."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import time
from pathlib import Path

import boto3
import pytest

from dealab.config import Settings
from dealab.stack import control

REPO = Path(__file__).resolve().parents[1]
# Starting a lab writes its data into labs/NN-slug/data/, where the learner finds it, so test modules that start
# the same lab must not run at once. `make test` runs modules whole on two pytest-xdist workers (--dist loadfile);
# a module that starts a lab holds that lab's lock for its whole run, so another worker's module waits.
# The CLI and learner-path tests start lab 1; the conformance tests interrupt a run of lab 2.
LAB_OF_TEST_FILE = {"test_cli.py": "01", "test_learner_path.py": "01", "test_conformance.py": "02"}


def _lab_started_by(module_file: str) -> str | None:
    name = Path(module_file).name
    lab_test = re.match(r"test_lab(\d\d)\.py$", name)
    return LAB_OF_TEST_FILE.get(name) or (lab_test.group(1) if lab_test else None)


@pytest.fixture(scope="module", autouse=True)
def lab_data_lock(request, tmp_path_factory):
    lab = _lab_started_by(str(request.path))
    if lab is None:
        yield
        return
    # the folder every worker of this run (and any other pytest run of this user) shares
    lock_file = tmp_path_factory.getbasetemp().parent / f"dealab-lab{lab}.lock"
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def make_settings(state_dir: Path) -> Settings:
    port = control.free_port_pair()
    return Settings(state_dir=state_dir, port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)


@pytest.fixture
def private_stack(tmp_path) -> Settings:
    """A started stack of the test's own (state folder and ports), for tests that restart or kill it."""
    settings = make_settings(tmp_path / "state")
    control.up(settings)
    yield settings
    control.down(settings)


def kill_hard(settings: Settings) -> None:
    """`kill -9` of the stack: nothing it had not yet written survives, as after a crash or a power cut."""
    pid = control.running_pid(settings)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while control._alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Settings:
    """One running stack for the session; tests that need a clean one call `control.reset(stack)`."""
    settings = make_settings(tmp_path_factory.mktemp("dealab-state"))
    control.up(settings)
    yield settings
    control.down(settings)


@pytest.fixture
def aws_env(stack, monkeypatch) -> Settings:
    """Points every boto3 client made in the test at the stack, as `dealab env` would."""
    for key, value in stack.client_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DEALAB_HOME", str(stack.state_dir))
    monkeypatch.setenv("DEALAB_PORT", str(stack.port))
    monkeypatch.setenv("DEALAB_INSECURE_PORT", str(stack.insecure_port))
    return stack


@pytest.fixture
def clean_stack(aws_env) -> Settings:
    control.reset(aws_env)
    return aws_env


def admin_headers(settings: Settings) -> dict[str, str]:
    """The header carrying the state folder's admin token, which every /_dealab/ endpoint but health wants."""
    from dealab.wire.admintoken import admin_headers as token_headers

    return token_headers(settings.state_dir)


def client(settings: Settings, service: str):
    return boto3.client(
        service,
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def service_role(stack_or_client, name: str, service: str | tuple[str, ...], actions: tuple[str, ...] = ("*",)) -> str:
    """The ARN of role `name`, created if missing, trusted by `service` ("glue", "states", ... or several: their
    `<service>.amazonaws.com` principals) and allowed `actions` on every resource. An engine acts with the role it
    is given and, as AWS, refuses a role that does not exist, so a test that passes a role creates it here.
    `stack_or_client`: the stack's Settings, or any client of it."""
    if isinstance(stack_or_client, Settings):
        iam = client(stack_or_client, "iam")
    else:
        meta = stack_or_client.meta
        iam = boto3.client("iam", endpoint_url=meta.endpoint_url, region_name=meta.region_name,
                           aws_access_key_id="test", aws_secret_access_key="test")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": [
            f"{each}.amazonaws.com" for each in ((service,) if isinstance(service, str) else service)]}}]}
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}))
    return arn
