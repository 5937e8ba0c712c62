"""Lab 13, part 1 — the lake's people as IAM roles, each with only what its job needs (README, step 1).

Every role but the rotation function's trusts the account (arn:aws:iam::<account>:root): any principal of the
account whose own policy allows sts:AssumeRole on it may assume it. The other scripts import the names below.
"""

import json

import boto3

INGEST, ANALYST, STEWARD, ROTATION = "dea-gov-ingest", "dea-gov-analyst", "dea-gov-steward", "dea-gov-rotation"
LAKE = "dea-gov-lake"
RESULTS = "dea-gov-athena-results"
WORKGROUP = "dea-gov-analysts"
DATABASE = "gov_lake"
SECRET = "dea-gov/warehouse"

iam = boto3.client("iam")
account = boto3.client("sts").get_caller_identity()["Account"]
region = boto3.session.Session().region_name or "us-east-1"


def trust(people: bool = True, services: tuple[str, ...] = ()) -> dict:
    """Who may assume the role: the account's principals (their own policies must allow it), and AWS services."""
    statements = [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}] if people else []
    if services:
        statements.append({"Effect": "Allow", "Principal": {"Service": list(services)}, "Action": "sts:AssumeRole"})
    return {"Version": "2012-10-17", "Statement": statements}


def role(name: str, trust_policy: dict, statements: list[dict]) -> str:
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust_policy))
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="least-privilege",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return arn


if __name__ == "__main__":
    # TODO: role(INGEST, trust(), [...]): land files under raw/ of the lake, read the warehouse secret; nothing more
    # TODO: role(ANALYST, trust(), [...]): Athena in work group WORKGROUP, the catalog of DATABASE, Lake Formation's
    #       GetDataAccess, its query results under s3://RESULTS/analysts/ — and no S3 access to the lake itself
    # TODO: role(STEWARD, trust(services=("lakeformation.amazonaws.com",)), [...]): the lake, its governance, the scans
    # TODO: role(ROTATION, trust(people=False, services=("lambda.amazonaws.com",)), [...]): what a rotation function calls
    print("TODO: no role made yet (README, step 1)")
