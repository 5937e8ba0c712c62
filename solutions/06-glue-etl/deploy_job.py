"""Lab 06, part 1 — put the ETL script in S3 and define the Glue job (reference solution)."""

from pathlib import Path

import boto3

SCRIPTS_BUCKET = "dea-etl-scripts"
CURATED_BUCKET = "dea-etl-curated"
SCRIPT_KEY = "jobs/etl_orders.py"
JOB = "orders-etl"
DATABASE = "sales"
ROLE = "arn:aws:iam::123456789012:role/dea-glue-etl"

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
        "ExecutionProperty": {"MaxConcurrentRuns": 1},
        "DefaultArguments": {
            "--job-bookmark-option": "job-bookmark-enable",
            "--raw_path": "s3://dea-etl-raw/orders/",
            "--curated_path": f"s3://{CURATED_BUCKET}/curated/orders/",
            "--quarantine_path": f"s3://{CURATED_BUCKET}/quarantine/orders/",
            "--database": DATABASE,
            "--table": "orders_curated",
        },
    }


if __name__ == "__main__":
    ensure_bucket(SCRIPTS_BUCKET)
    ensure_bucket(CURATED_BUCKET)
    script = Path(__file__).with_name("etl_orders.py")
    s3.upload_file(str(script), SCRIPTS_BUCKET, SCRIPT_KEY)
    try:
        glue.create_database(DatabaseInput={"Name": DATABASE})
    except glue.exceptions.AlreadyExistsException:
        pass
    try:
        glue.create_job(Name=JOB, **job_definition())
        print(f"created job {JOB}")
    except glue.exceptions.AlreadyExistsException:
        glue.update_job(JobName=JOB, JobUpdate=job_definition())
        print(f"updated job {JOB}")
