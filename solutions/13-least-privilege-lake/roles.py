"""Lab 13, part 1 — the three people of the lake as IAM roles, each with only what its job needs.

- dea-gov-ingest lands extracts in the raw zone and reads the warehouse password; nothing else.
- dea-gov-analyst queries the catalog through Athena (Lake Formation decides which rows and columns); it never
  reads the lake's objects itself.
- dea-gov-steward runs the lake: its data, its key, its Lake Formation grants, the PII scans.
Each role trusts the account (any principal of the account whose own policy allows sts:AssumeRole on it).
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


SECRET_ARN = f"arn:aws:secretsmanager:{region}:{account}:secret:{SECRET}*"  # by name or by ARN (which ends in -<6 characters>)
CATALOG = [f"arn:aws:glue:{region}:{account}:catalog", f"arn:aws:glue:{region}:{account}:database/{DATABASE}",
           f"arn:aws:glue:{region}:{account}:table/{DATABASE}/*"]

if __name__ == "__main__":
    role(INGEST, trust(), [
        {"Sid": "LandExtracts", "Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{LAKE}/raw/*"},
        {"Sid": "WarehousePassword", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
         "Resource": SECRET_ARN},
    ])
    role(ANALYST, trust(), [
        {"Sid": "Query", "Effect": "Allow", "Resource": f"arn:aws:athena:{region}:{account}:workgroup/{WORKGROUP}",
         "Action": ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution",
                    "athena:GetWorkGroup"]},
        {"Sid": "Catalog", "Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables",
                                                           "glue:GetPartitions"], "Resource": CATALOG},
        {"Sid": "LakeFormationReads", "Effect": "Allow", "Action": "lakeformation:GetDataAccess", "Resource": "*"},
        {"Sid": "QueryResults", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{RESULTS}/analysts/*"},
        {"Sid": "ResultsBucket", "Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"], "Resource": f"arn:aws:s3:::{RESULTS}"},
    ])
    role(STEWARD, trust(services=("lakeformation.amazonaws.com",)), [  # Lake Formation reads the lake as the steward
        {"Sid": "Lake", "Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{LAKE}", f"arn:aws:s3:::{LAKE}/*"]},
        {"Sid": "Govern", "Effect": "Allow", "Action": ["lakeformation:*", "glue:*", "macie2:*", "athena:*"], "Resource": "*"},
        {"Sid": "WarehouseSecret", "Effect": "Allow", "Action": "secretsmanager:*", "Resource": SECRET_ARN},
    ])
    role(ROTATION, trust(people=False, services=("lambda.amazonaws.com",)), [
        {"Sid": "Rotate", "Effect": "Allow", "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                                                          "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"],
         "Resource": SECRET_ARN},
        {"Sid": "NewPasswords", "Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
        {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"},
    ])
    print(f"roles {INGEST}, {ANALYST}, {STEWARD} and {ROTATION} are ready in account {account}")
