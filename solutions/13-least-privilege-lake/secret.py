"""Lab 13, part 4 — the warehouse password as a secret that rotates itself every 30 days, readable only by the
ingest role (which loads the warehouse) and the steward (and the rotation function that changes it)."""

import io
import json
import secrets as random_secrets
import time
import zipfile
from pathlib import Path

import boto3

from roles import INGEST, ROTATION, SECRET, STEWARD, account, region

FUNCTION = "dea-gov-rotate-warehouse"
HERE = Path(__file__).parent
ROOT = f"arn:aws:iam::{account}:root"
READERS = [ROOT] + [f"arn:aws:iam::{account}:role/{name}" for name in (INGEST, STEWARD, ROTATION)]

secretsmanager = boto3.client("secretsmanager")
awslambda = boto3.client("lambda")


def the_secret() -> str:
    value = {"engine": "postgres", "host": "warehouse.internal", "port": 5432, "dbname": "lake", "username": "loader",
             "password": random_secrets.token_urlsafe(24)}
    try:
        return secretsmanager.create_secret(Name=SECRET, SecretString=json.dumps(value), Description="the warehouse loader's password")["ARN"]
    except secretsmanager.exceptions.ResourceExistsException:
        return secretsmanager.describe_secret(SecretId=SECRET)["ARN"]


def only_its_readers(secret_arn: str) -> None:
    secretsmanager.put_resource_policy(SecretId=secret_arn, ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "OnlyItsReaders", "Effect": "Deny", "Principal": "*", "Action": "secretsmanager:*", "Resource": "*",
         "Condition": {"ArnNotEquals": {"aws:PrincipalArn": READERS}}}]}))


def rotation_function() -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(HERE / "rotation_function.py", "rotation_function.py")
    settings = {"Runtime": "python3.12", "Handler": "rotation_function.handler", "Timeout": 60,
                "Role": f"arn:aws:iam::{account}:role/{ROTATION}"}
    for attempt in range(10):  # a new role takes a few seconds to be usable by Lambda on AWS
        try:
            try:
                arn = awslambda.create_function(FunctionName=FUNCTION, Code={"ZipFile": archive.getvalue()}, **settings)["FunctionArn"]
            except awslambda.exceptions.ResourceConflictException:
                awslambda.update_function_code(FunctionName=FUNCTION, ZipFile=archive.getvalue())
                awslambda.get_waiter("function_updated_v2").wait(FunctionName=FUNCTION)
                arn = awslambda.update_function_configuration(FunctionName=FUNCTION, **settings)["FunctionArn"]
            break
        except awslambda.exceptions.InvalidParameterValueException:
            if attempt == 9:
                raise
            time.sleep(3)
    awslambda.get_waiter("function_active_v2").wait(FunctionName=FUNCTION)
    awslambda.get_waiter("function_updated_v2").wait(FunctionName=FUNCTION)
    return arn


def let_secrets_manager_invoke() -> None:
    """Secrets Manager may invoke the function for this secret only (its ARN ends in -<six characters>)."""
    try:
        awslambda.add_permission(FunctionName=FUNCTION, StatementId="secretsmanager-rotates", Action="lambda:InvokeFunction",
                                 Principal="secretsmanager.amazonaws.com", SourceArn=f"arn:aws:secretsmanager:{region}:{account}:secret:{SECRET}-*",
                                 SourceAccount=account)
    except awslambda.exceptions.ResourceConflictException:
        pass


def wait_for_rotation(secret_arn: str, version: str) -> None:
    for _ in range(120):
        stages = secretsmanager.describe_secret(SecretId=secret_arn).get("VersionIdsToStages", {})
        if "AWSCURRENT" in stages.get(version, []):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the rotation of {SECRET} (version {version}) did not finish: see /aws/lambda/{FUNCTION}")


if __name__ == "__main__":
    secret_arn = the_secret()
    only_its_readers(secret_arn)
    function_arn = rotation_function()
    let_secrets_manager_invoke()
    version = secretsmanager.rotate_secret(SecretId=secret_arn, RotationLambdaARN=function_arn,
                                           RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
    wait_for_rotation(secret_arn, version)
    print(f"secret {SECRET} rotates every 30 days with {FUNCTION}; rotated once now (version {version[:8]}…)")
