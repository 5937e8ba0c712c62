"""Lab 06, part 2 — run the job, let a second batch of raw files arrive, run it again (given: no TODOs here)."""

import time
from pathlib import Path

import boto3

JOB = "orders-etl"
RAW_BUCKET = "dea-etl-raw"

glue = boto3.client("glue")
s3 = boto3.client("s3")


def run_and_wait(job_name: str) -> dict:
    run_id = glue.start_job_run(JobName=job_name)["JobRunId"]
    while True:
        run = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
        if run["JobRunState"] not in ("STARTING", "RUNNING", "STOPPING", "WAITING"):
            print(f"run {run_id[:12]}…: {run['JobRunState']} in {run.get('ExecutionTime', 0)}s {run.get('ErrorMessage', '')}")
            if run["JobRunState"] != "SUCCEEDED":
                raise SystemExit(f"job run failed: {run.get('ErrorMessage')}; see /aws-glue/jobs/error, stream {run_id}")
            return run
        time.sleep(1)


def upload_second_batch() -> None:
    for path in sorted(Path("data/raw/batch-2").glob("*.json")):
        s3.upload_file(str(path), RAW_BUCKET, f"orders/{path.name}")
        print(f"new raw file s3://{RAW_BUCKET}/orders/{path.name}")


if __name__ == "__main__":
    run_and_wait(JOB)
    upload_second_batch()
    run_and_wait(JOB)
