"""Lab 06, part 1 — put the ETL script in S3 and define the Glue job. Work through the TODOs.

Plain AWS code: never pass endpoint_url. `make run-6` runs this, then run_job.py, from the lab folder.
"""

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
    # TODO 1: a Spark job ("glueetl") whose script is s3://dea-etl-scripts/jobs/etl_orders.py, on Glue 5.0,
    #         2 G.1X workers, no retries, a 30-minute timeout, one run at a time, and job bookmarks enabled.
    #         Its DefaultArguments also carry the script's parameters:
    #           --raw_path s3://dea-etl-raw/orders/              --curated_path s3://dea-etl-curated/curated/orders/
    #           --quarantine_path s3://dea-etl-curated/quarantine/orders/   --database sales   --table orders_curated
    return {
        "Role": ROLE,
        "Command": {"Name": "glueetl", "ScriptLocation": f"s3://{SCRIPTS_BUCKET}/{SCRIPT_KEY}", "PythonVersion": "3"},
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
