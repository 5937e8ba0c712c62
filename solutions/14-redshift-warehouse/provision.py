"""Lab 14 — reference solution, step 1: the role Redshift loads and unloads with, and the Serverless warehouse
(namespace and workgroup). Plain AWS code; rerunnable."""

import json
import time

import boto3

from sql import COPY_ROLE, COPY_ROLE_ARN, LAKE, WORKGROUP

NAMESPACE = "dea-wh"
ADMIN_PASSWORD = "Warehouse-Admin-1"

iam = boto3.client("iam")
serverless = boto3.client("redshift-serverless")

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
LAKE_ACCESS = {"Version": "2012-10-17", "Statement": [
    {"Sid": "ReadTheLake", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
     "Resource": [f"arn:aws:s3:::{LAKE}", f"arn:aws:s3:::{LAKE}/*"]},
    {"Sid": "WriteExports", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": f"arn:aws:s3:::{LAKE}/exports/*"},
    {"Sid": "ReadTheCatalog", "Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"],
     "Resource": "*"}]}


def copy_role() -> None:
    try:
        iam.create_role(RoleName=COPY_ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))
    except iam.exceptions.EntityAlreadyExistsException:
        iam.update_assume_role_policy(RoleName=COPY_ROLE, PolicyDocument=json.dumps(TRUST))
    iam.put_role_policy(RoleName=COPY_ROLE, PolicyName="lake-access", PolicyDocument=json.dumps(LAKE_ACCESS))


def warehouse() -> None:
    namespaces = [n["namespaceName"] for n in serverless.list_namespaces()["namespaces"]]
    if NAMESPACE not in namespaces:
        serverless.create_namespace(namespaceName=NAMESPACE, dbName="dev", adminUsername="admin", adminUserPassword=ADMIN_PASSWORD,
                                    iamRoles=[COPY_ROLE_ARN], defaultIamRoleArn=COPY_ROLE_ARN)
    workgroups = [w["workgroupName"] for w in serverless.list_workgroups()["workgroups"]]
    if WORKGROUP not in workgroups:
        serverless.create_workgroup(workgroupName=WORKGROUP, namespaceName=NAMESPACE, baseCapacity=8)
    while serverless.get_workgroup(workgroupName=WORKGROUP)["workgroup"]["status"] != "AVAILABLE":
        time.sleep(0.5)


if __name__ == "__main__":
    copy_role()
    warehouse()
    print(f"lab 14: workgroup {WORKGROUP} is AVAILABLE, loading with {COPY_ROLE_ARN}")
