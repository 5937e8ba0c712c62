"""The classroom file parses with a real Compose implementation (there is no Docker engine to run it here)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def compose():
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing; .ci/run installs Debian's docker-compose")
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    return binary


def config(compose) -> dict:
    completed = subprocess.run([compose, "-f", str(REPO / "docker-compose.yml"), "config"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert completed.returncode == 0, completed.stderr
    return yaml.safe_load(completed.stdout)


def test_gateway_is_published_on_loopback_only(compose):
    dealab = config(compose)["services"]["dealab"]
    assert {str(port) for port in dealab["ports"]} == {"127.0.0.1:4566:4566/tcp", "127.0.0.1:4567:4567/tcp"}
    assert "profiles" not in dealab  # the default stack needs no profile


def test_backends_are_opt_in_profiles(compose):
    services = config(compose)["services"]
    assert services["localstack"]["profiles"] == ["localstack"]
    assert services["ministack"]["profiles"] == ["ministack"]
    assert "LOCALSTACK_AUTH_TOKEN" in services["localstack"]["environment"]


def test_classroom_profile_runs_spark_from_dealabs_own_image(compose):
    services = config(compose)["services"]
    master, worker, dealab = services["spark-master"], services["spark-worker"], services["dealab"]
    for spark in (master, worker):
        assert spark["profiles"] == ["classroom"]
        assert spark["image"] == dealab["image"] and spark["build"] == dealab["build"]  # Python 3.11, JDK 17, S3A jars
    assert master["command"][:2] == ["spark-class", "org.apache.spark.deploy.master.Master"]
    assert "org.apache.spark.deploy.worker.Worker spark://spark-master:7077" in " ".join(worker["command"])
    assert {str(port) for port in master["ports"]} == {"127.0.0.1:8080:8080/tcp"}
    assert "ports" not in worker  # scaled with --scale; only the Glue drivers talk to it
    environment = dealab["environment"]
    assert "DEALAB_SPARK_MASTER" in environment
    assert environment["DEALAB_SPARK_S3_ENDPOINT"] == "http://dealab:4566" and environment["DEALAB_ALLOWED_HOSTS"] == "dealab"


def test_dockerfile_serves_the_gateway():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "openjdk-17" in dockerfile and "dealab.stack.server" in dockerfile and "3.11" in dockerfile
