"""Lab 12, part 2 — put the gate's script in S3 and define the Glue job (reference solution)."""

import json
from pathlib import Path

import boto3

RAW_BUCKET = "dea-dq-raw"
SCRIPTS_BUCKET = "dea-dq-scripts"
CURATED_BUCKET = "dea-dq-curated"
SCRIPT_KEY = "jobs/dq_gate.py"
JOB = "orders-dq-gate"
DATABASE = "dq_lab"
RULESET = "orders-gate"
ROLE_NAME = "dea-dq-glue"

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
    """The gate's role: Glue may assume it; it reads the script, the landing and reference data through their
    catalog tables and the registered ruleset, writes the curated bucket, publishes its data quality results and
    metrics, and logs to /aws-glue/jobs. Created or brought up to date; its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    glue_arn = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="orders-dq-gate", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject",
         "Resource": [f"arn:aws:s3:::{SCRIPTS_BUCKET}/jobs/*", f"arn:aws:s3:::{RAW_BUCKET}/*"]},
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": [f"arn:aws:s3:::{RAW_BUCKET}", f"arn:aws:s3:::{CURATED_BUCKET}"]},
        # Spark's writers also read back and delete their temporary objects
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": f"arn:aws:s3:::{CURATED_BUCKET}/*"},
        {"Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
         "Resource": [f"{glue_arn}:catalog", f"{glue_arn}:database/{DATABASE}", f"{glue_arn}:table/{DATABASE}/*"]},
        {"Effect": "Allow", "Action": "glue:GetDataQualityRuleset", "Resource": f"{glue_arn}:dataQualityRuleset/{RULESET}"},
        # EvaluateDataQuality hands its result to Glue Data Quality, which names no ruleset in the request
        {"Effect": "Allow", "Action": "glue:PublishDataQuality", "Resource": f"{glue_arn}:dataQualityRuleset/*"},
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},  # it has no resource-level permissions
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
        "DefaultArguments": {
            "--database": DATABASE,
            "--table": "orders_landing",
            "--reference_table": "customers",
            "--ruleset": RULESET,
            "--curated_path": f"s3://{CURATED_BUCKET}/curated/orders/",
            "--quarantine_path": f"s3://{CURATED_BUCKET}/quarantine/orders/",
            "--min_score": "0.9",
        },
    }


if __name__ == "__main__":
    role = ensure_job_role()
    ensure_bucket(SCRIPTS_BUCKET)
    ensure_bucket(CURATED_BUCKET)
    s3.upload_file(str(Path(__file__).with_name("dq_gate.py")), SCRIPTS_BUCKET, SCRIPT_KEY)
    try:
        glue.create_job(Name=JOB, **job_definition(role))
        print(f"created job {JOB}")
    except glue.exceptions.AlreadyExistsException:
        glue.update_job(JobName=JOB, JobUpdate=job_definition(role))
        print(f"updated job {JOB}")
