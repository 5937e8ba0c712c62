"""Helpers for tests that run Glue jobs and crawlers on the stack."""

from __future__ import annotations

import time

from tests.conftest import client, service_role

FINAL_RUN_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR"})


def upload_script(settings, bucket: str, key: str, source: str) -> str:
    s3 = client(settings, "s3")
    s3.put_object(Bucket=bucket, Key=key, Body=source.encode())
    return f"s3://{bucket}/{key}"


def create_job(settings, name: str, script_location: str, **definition) -> None:
    client(settings, "glue").create_job(
        Name=name, Role=service_role(settings, "glue", "glue"), GlueVersion="5.0",
        Command={"Name": "glueetl", "ScriptLocation": script_location, "PythonVersion": "3"}, **definition,
    )


def wait_for_run(settings, job_name: str, run_id: str, timeout: float = 240) -> dict:
    glue = client(settings, "glue")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
        if run["JobRunState"] in FINAL_RUN_STATES:
            return run
        time.sleep(0.25)
    raise AssertionError(f"run {run_id} of {job_name} did not finish within {timeout}s: {run['JobRunState']}")


def run_job(settings, job_name: str, arguments: dict | None = None, timeout: float = 240) -> dict:
    run_id = client(settings, "glue").start_job_run(JobName=job_name, Arguments=arguments or {})["JobRunId"]
    return wait_for_run(settings, job_name, run_id, timeout)


def log_lines(settings, group: str, run_id: str) -> list[str]:
    events = client(settings, "logs").get_log_events(logGroupName=group, logStreamName=run_id, startFromHead=True)["events"]
    return [event["message"] for event in events]


def wait_for_crawler(settings, name: str, timeout: float = 120) -> dict:
    glue = client(settings, "glue")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crawler = glue.get_crawler(Name=name)["Crawler"]
        if crawler["State"] == "READY" and crawler.get("LastCrawl"):
            return crawler
        time.sleep(0.2)
    raise AssertionError(f"crawler {name} did not finish within {timeout}s")
