"""The Data API, waited on: every script of the lab runs its SQL through run(). Not an entrypoint."""

import time

import boto3

WORKGROUP = "dea-wh"
DATABASE = "dev"
LAKE = "dea-wh-lake"
COPY_ROLE = "dea-wh-copy"
# Where the statements go: the Serverless workgroup (a provisioned cluster would be {"ClusterIdentifier": ...})
TARGET = {"WorkgroupName": WORKGROUP}

data = boto3.client("redshift-data")
account = boto3.client("sts").get_caller_identity()["Account"]
COPY_ROLE_ARN = f"arn:aws:iam::{account}:role/{COPY_ROLE}"


def run(sql: str, **credentials) -> list[list]:
    """Runs one statement as the admin (or as SecretArn=...'s user), waits for it and returns its rows
    (an empty list for a statement without a result); raises with Redshift's error when it fails."""
    statement_id = data.execute_statement(Sql=sql, Database=DATABASE, **TARGET, **credentials)["Id"]
    while True:
        described = data.describe_statement(Id=statement_id)
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            break
        time.sleep(0.1)
    if described["Status"] != "FINISHED":
        raise RuntimeError(f"{' '.join(sql.split())[:80]}...: {described['Status']}: {described.get('Error')}")
    if not described.get("HasResultSet"):
        return []
    records = data.get_statement_result(Id=statement_id)["Records"]
    return [[None if field.get("isNull") else next(iter(field.values())) for field in record] for record in records]
