"""Lab 12 — run the gate on the batch in the landing zone and say how it went (not graded: the grader runs the
job on batches of its own)."""

import sys
import time

import boto3

JOB = "orders-dq-gate"

glue = boto3.client("glue")

if __name__ == "__main__":
    arguments = {"--min_score": sys.argv[1]} if len(sys.argv) > 1 else {}
    run_id = glue.start_job_run(JobName=JOB, Arguments=arguments)["JobRunId"]
    while (run := glue.get_job_run(JobName=JOB, RunId=run_id)["JobRun"])["JobRunState"] in ("STARTING", "RUNNING", "STOPPING", "WAITING"):
        time.sleep(1)
    print(f"run {run_id}: {run['JobRunState']} {run.get('ErrorMessage', '')}")
    print(f"its output: aws logs get-log-events --log-group-name /aws-glue/jobs/output --log-stream-name {run_id}")
