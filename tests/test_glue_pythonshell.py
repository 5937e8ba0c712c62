"""pythonshell job runs: plain Python processes of their own, started at once, never the Spark worker."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.conftest import admin_headers, client, service_role
from tests.gluekit import log_lines, run_job, upload_script, wait_for_run

BUCKET = "glue-pythonshell-test"

SUMMARY_SCRIPT = '''
import json
import os
import sys

import boto3
from awsglue.utils import getResolvedOptions

args = getResolvedOptions(sys.argv, ["JOB_NAME", "JOB_RUN_ID", "bucket"])
s3 = boto3.client("s3")
body = s3.get_object(Bucket=args["bucket"], Key="in/orders.json")["Body"].read()
orders = [json.loads(line) for line in body.splitlines()]
s3.put_object(Bucket=args["bucket"], Key="out/summary.json", Body=json.dumps({"orders": len(orders), "job": args["JOB_NAME"]}).encode())
print(f"summed {len(orders)} orders")
print("cwd is", os.getcwd())
print("argv", sys.argv[1:])
'''


@pytest.fixture
def bucket(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def _create_shell_job(settings, name: str, source: str, **definition) -> None:
    client(settings, "glue").create_job(
        Name=name, Role=service_role(settings, "glue", "glue"), MaxCapacity=0.0625,
        Command={"Name": "pythonshell", "ScriptLocation": upload_script(settings, BUCKET, f"scripts/{name}.py", source), "PythonVersion": "3.9"},
        **definition,
    )


def _glue_status(settings) -> dict:
    with urllib.request.urlopen(urllib.request.Request(f"{settings.endpoint_url}/_dealab/glue", headers=admin_headers(settings))) as response:
        return json.loads(response.read())


def test_a_python_shell_run_uses_boto3_and_glue_options_logs_and_never_starts_spark(clean_stack, bucket):
    bucket.put_object(Bucket=BUCKET, Key="in/orders.json", Body=b'{"id": 1}\n{"id": 2}\n{"id": 3}\n')
    _create_shell_job(clean_stack, "summarise", SUMMARY_SCRIPT, DefaultArguments={"--bucket": "wrong"})
    glue = client(clean_stack, "glue")

    spark_worker = _glue_status(clean_stack)
    asked = time.monotonic()
    run_id = glue.start_job_run(JobName="summarise", Arguments={"--bucket": BUCKET})["JobRunId"]
    run = wait_for_run(clean_stack, "summarise", run_id, timeout=30)
    took = time.monotonic() - asked

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert took < 5, f"a pythonshell run took {took:.1f}s from StartJobRun to SUCCEEDED"
    assert json.loads(bucket.get_object(Bucket=BUCKET, Key="out/summary.json")["Body"].read()) == {"orders": 3, "job": "summarise"}
    output = log_lines(clean_stack, "/aws-glue/jobs/output", run_id)
    assert output[0] == "summed 3 orders"
    assert "dealab-pythonshell-" in output[1]
    assert output[2] == f"argv ['--bucket', '{BUCKET}', '--JOB_NAME', 'summarise', '--JOB_RUN_ID', '{run_id}']"
    after = _glue_status(clean_stack)
    assert (after["worker_pid"], after["runs_served"]) == (spark_worker["worker_pid"], spark_worker["runs_served"])


def test_a_failing_python_shell_script_reports_its_exception_and_retries(clean_stack, bucket):
    script = 'import sys\nprint("starting")\nraise KeyError("customer_id")\n'
    _create_shell_job(clean_stack, "broken-shell", script, MaxRetries=1)

    first = run_job(clean_stack, "broken-shell", timeout=30)
    retry = wait_for_run(clean_stack, "broken-shell", f"{first['Id']}_attempt_1", timeout=30)

    assert first["JobRunState"] == "FAILED" and first["ErrorMessage"] == "KeyError: 'customer_id'"
    assert retry["JobRunState"] == "FAILED" and retry["Attempt"] == 1 and retry["PreviousRunId"] == first["Id"]
    errors = log_lines(clean_stack, "/aws-glue/jobs/error", first["Id"])
    assert errors[0] == "Traceback (most recent call last):" and errors[-1] == "KeyError: 'customer_id'"
    assert not any("pyshell" in line or "runpy" in line for line in errors), errors
    assert log_lines(clean_stack, "/aws-glue/jobs/output", first["Id"]) == ["starting"]
    runs = client(clean_stack, "glue").get_job_runs(JobName="broken-shell", MaxResults=1)
    assert [r["Id"] for r in runs["JobRuns"]] == [retry["Id"]] and runs["NextToken"]


def test_a_python_shell_has_no_spark_and_a_bad_exit_status_fails_the_run(clean_stack, bucket):
    _create_shell_job(clean_stack, "wants-spark", "from awsglue.context import GlueContext\n")
    _create_shell_job(clean_stack, "exits", "import sys\nsys.exit(4)\n")

    spark = run_job(clean_stack, "wants-spark", timeout=30)
    exits = run_job(clean_stack, "exits", timeout=30)

    assert spark["JobRunState"] == "FAILED" and spark["ErrorMessage"].startswith("ModuleNotFoundError: No module named 'pyspark'")
    assert exits["JobRunState"] == "FAILED" and exits["ErrorMessage"] == "SystemExit: the script exited with status 4"


def test_a_missing_script_fails_the_run(clean_stack, bucket):
    client(clean_stack, "glue").create_job(
        Name="no-script", Role=service_role(clean_stack, "glue", "glue"), Command={"Name": "pythonshell", "ScriptLocation": f"s3://{BUCKET}/scripts/none.py", "PythonVersion": "3.9"})

    run = run_job(clean_stack, "no-script", timeout=30)

    assert run["JobRunState"] == "FAILED" and "NoSuchKey" in run["ErrorMessage"]


def test_python_shell_runs_run_side_by_side_and_stop_ends_the_process(clean_stack, bucket):
    _create_shell_job(clean_stack, "sleeper", "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n",
                      ExecutionProperty={"MaxConcurrentRuns": 2})
    glue = client(clean_stack, "glue")
    first = glue.start_job_run(JobName="sleeper")["JobRunId"]
    second = glue.start_job_run(JobName="sleeper")["JobRunId"]
    deadline = time.monotonic() + 20
    while not all(glue.get_job_run(JobName="sleeper", RunId=r)["JobRun"]["JobRunState"] == "RUNNING" for r in (first, second)):
        assert time.monotonic() < deadline, "two pythonshell runs of one job did not run together"
        time.sleep(0.1)
    with pytest.raises(glue.exceptions.ConcurrentRunsExceededException):
        glue.start_job_run(JobName="sleeper")
    while log_lines(clean_stack, "/aws-glue/jobs/output", first) != ["sleeping"]:  # the output arrives while it runs
        assert time.monotonic() < deadline + 10
        time.sleep(0.2)

    glue.batch_stop_job_run(JobName="sleeper", JobRunIds=[first, second])
    stopped = [wait_for_run(clean_stack, "sleeper", run_id, timeout=30) for run_id in (first, second)]

    assert [run["JobRunState"] for run in stopped] == ["STOPPED", "STOPPED"]
    assert all(run["ExecutionTime"] < 60 for run in stopped)


@pytest.mark.slow
def test_a_python_shell_run_past_its_timeout_ends_as_timeout(clean_stack, bucket):
    _create_shell_job(clean_stack, "too-slow-shell", "import time\ntime.sleep(600)\n", Timeout=1)

    run = run_job(clean_stack, "too-slow-shell", timeout=120)

    assert run["JobRunState"] == "TIMEOUT" and run["ErrorMessage"] == "Job run timed out after 1 minutes"
    assert 60 <= run["ExecutionTime"] < 90
