"""Lab 13, part 4 — the warehouse password as a secret that rotates itself at least every 30 days, readable only
by the ingest role and the steward (and the rotation function) (README, step 4)."""

import json

import boto3

from roles import INGEST, ROTATION, SECRET, STEWARD, account

FUNCTION = "dea-gov-rotate-warehouse"

secretsmanager = boto3.client("secretsmanager")
awslambda = boto3.client("lambda")

if __name__ == "__main__":
    # TODO: the secret (a JSON document: engine, host, port, dbname, username, password)
    # TODO: its resource policy
    # TODO: the rotation function (rotation_function.py, role ROTATION) and Secrets Manager's permission to invoke it
    # TODO: RotateSecret with the function and a schedule of 30 days or fewer
    print(f"TODO: secret {SECRET} is not made yet (README, step 4)")
