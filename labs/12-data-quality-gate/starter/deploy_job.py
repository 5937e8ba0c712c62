"""Lab 12, part 2 — put the gate's script in S3 and define the Glue job (ready to use)."""

from pathlib import Path

import boto3

SCRIPTS_BUCKET = "dea-dq-scripts"
CURATED_BUCKET = "dea-dq-curated"
SCRIPT_KEY = "jobs/dq_gate.py"
JOB = "orders-dq-gate"
ROLE = "arn:aws:iam::123456789012:role/dea-dq-glue"

s3 = boto3.client("s3")
glue = boto3.client("glue")


def ensure_bucket(name: str) -> None:
    try:
        s3.create_bucket(Bucket=name)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass


def job_definition() -> dict:
    return {
        "Role": ROLE,
        "Command": {"Name": "glueetl", "ScriptLocation": f"s3://{SCRIPTS_BUCKET}/{SCRIPT_KEY}", "PythonVersion": "3"},
        "GlueVersion": "5.0",
        "WorkerType": "G.1X",
        "NumberOfWorkers": 2,
        "MaxRetries": 0,
        "Timeout": 30,
        "DefaultArguments": {
            "--database": "dq_lab",
            "--table": "orders_landing",
            "--reference_table": "customers",
            "--ruleset": "orders-gate",
            "--curated_path": f"s3://{CURATED_BUCKET}/curated/orders/",
            "--quarantine_path": f"s3://{CURATED_BUCKET}/quarantine/orders/",
            "--min_score": "0.9",
        },
    }


if __name__ == "__main__":
    ensure_bucket(SCRIPTS_BUCKET)
    ensure_bucket(CURATED_BUCKET)
    s3.upload_file(str(Path(__file__).with_name("dq_gate.py")), SCRIPTS_BUCKET, SCRIPT_KEY)
    try:
        glue.create_job(Name=JOB, **job_definition())
        print(f"created job {JOB}")
    except glue.exceptions.AlreadyExistsException:
        glue.update_job(JobName=JOB, JobUpdate=job_definition())
        print(f"updated job {JOB}")
