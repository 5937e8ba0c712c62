"""The CLI answers bad input in one readable line and wraps the stack, labs and grader."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DEALAB = str(Path(sys.executable).with_name("dealab"))


def dealab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([DEALAB, *args], env={**os.environ, **(env or {}), "COLUMNS": "200"}, capture_output=True, text=True, timeout=300)


@pytest.fixture
def stopped_env(tmp_path):
    from dealab.stack.control import free_port_pair

    port = free_port_pair()
    return {"DEALAB_HOME": str(tmp_path / "state"), "DEALAB_PORT": str(port), "DEALAB_INSECURE_PORT": str(port + 1)}


def test_env_prints_exports(stopped_env):
    out = dealab("env", env=stopped_env).stdout
    assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{stopped_env['DEALAB_PORT']}" in out
    assert "export AWS_DEFAULT_REGION=us-east-1" in out and "AWS_ACCESS_KEY_ID" in out


def test_unknown_lab_lists_the_labs(stopped_env):
    result = dealab("lab", "hint", "99", env=stopped_env)
    assert result.returncode == 2
    assert "there is no lab 99; the labs are: 1 (01-s3-landing-zone)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_grade_while_down_says_to_start_it(stopped_env):
    result = dealab("grade", "1", env=stopped_env)
    assert result.returncode == 2 and "make up" in result.stdout and "Traceback" not in result.stderr


def test_hints_need_the_stack_to_know_what_fails(stopped_env):
    result = dealab("lab", "hint", "1", env=stopped_env)
    assert result.returncode == 2 and "make up" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_labs_and_coverage_come_from_the_manifests(stopped_env):
    listing = dealab("labs", env=stopped_env).stdout
    assert "S3 data-lake landing zone" in listing
    coverage = dealab("labs", "--coverage", env=stopped_env).stdout
    assert "4.3" in coverage and "L01-03" in coverage and "task statements covered" in coverage


def test_full_learner_flow_through_the_cli(stopped_env, tmp_path):
    try:
        assert dealab("lab", "start", "1", env=stopped_env).returncode == 0
        assert dealab("status", env=stopped_env).returncode == 0
        assert dealab("lab", "solve", "1", env=stopped_env).returncode == 0
        graded = dealab("grade", "1", "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"), env=stopped_env)
        assert graded.returncode == 0, graded.stdout
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["score"] == report["total"] > 0
        assert (tmp_path / "r.xml").exists()
        assert report["earned_by"] == "reference solution"
        assert f"{report['total']}/{report['total']} (reference solution)" in dealab("labs", env=stopped_env).stdout
        reset = dealab("lab", "reset", "1", env=stopped_env)
        assert "bucket dea-lake-raw" in reset.stdout
        regraded = dealab("grade", "1", env=stopped_env)
        assert regraded.returncode == 2 and "make lab-1" in regraded.stdout  # a reset lab is a lab not started
    finally:
        dealab("down", env=stopped_env)
