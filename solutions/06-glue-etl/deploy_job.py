"""Lab 06, part 1 — put the ETL script in S3 and define the Glue job (reference solution)."""

import json
from pathlib import Path

import boto3

RAW_BUCKET = "dea-etl-raw"
SCRIPTS_BUCKET = "dea-etl-scripts"
CURATED_BUCKET = "dea-etl-curated"
SCRIPT_KEY = "jobs/etl_orders.py"
JOB = "orders-etl"
DATABASE = "sales"
ROLE_NAME = "dea-glue-etl"

s3 = boto3.client("s3")
glue = boto3.client("glue")
iam = boto3.client("iam")
ACCOUNT = boto3.client("sts").get_caller_identity()["Account"]
REGION = glue.meta.region_name


def ensure_bucket(name: str) -> None:
    try:
        s3.create_bucket(Bucket=name)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass


def ensure_job_role() -> str:
    """The job's role: Glue may assume it; it reads the script and the raw orders, writes the curated bucket and
    the sales tables, and logs to /aws-glue/jobs. Created or brought up to date; its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    glue_arn = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="orders-etl", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"arn:aws:s3:::{SCRIPTS_BUCKET}/jobs/*", f"arn:aws:s3:::{RAW_BUCKET}/*"]},
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": [f"arn:aws:s3:::{RAW_BUCKET}", f"arn:aws:s3:::{CURATED_BUCKET}"]},
        # Spark's writers also read back and delete their temporary objects
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": f"arn:aws:s3:::{CURATED_BUCKET}/*"},
        {"Effect": "Allow", "Resource": [f"{glue_arn}:catalog", f"{glue_arn}:database/{DATABASE}", f"{glue_arn}:table/{DATABASE}/*"],
         "Action": ["glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetPartition", "glue:GetPartitions",
                    "glue:BatchGetPartition", "glue:CreatePartition", "glue:BatchCreatePartition", "glue:UpdatePartition"]},
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/jobs*"},
    ]}))
    return arn


def job_definition(role: str) -> dict:
    return {
        "Role": role,
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
    role = ensure_job_role()
    ensure_bucket(SCRIPTS_BUCKET)
    ensure_bucket(CURATED_BUCKET)
    script = Path(__file__).with_name("etl_orders.py")
    s3.upload_file(str(script), SCRIPTS_BUCKET, SCRIPT_KEY)
    try:
        glue.create_database(DatabaseInput={"Name": DATABASE})
    except glue.exceptions.AlreadyExistsException:
        pass
    try:
        glue.create_job(Name=JOB, **job_definition(role))
        print(f"created job {JOB}")
    except glue.exceptions.AlreadyExistsException:
        glue.update_job(JobName=JOB, JobUpdate=job_definition(role))
        print(f"updated job {JOB}")
