"""Lab 14, step 1 — the warehouse and the role it loads with. Work through the TODOs from top to bottom.

Plain AWS code: never pass endpoint_url (AWS_ENDPOINT_URL does it). `make run-14` runs the four scripts in order.
Statements go through sql.run() (sql.py: the Data API, waited on), which the later steps use."""

import json
import time

import boto3

from sql import COPY_ROLE, COPY_ROLE_ARN, LAKE, WORKGROUP

NAMESPACE = "dea-wh"

iam = boto3.client("iam")
serverless = boto3.client("redshift-serverless")


def copy_role() -> None:
    # TODO 1: COPY, UNLOAD and Spectrum reach S3 (and the catalog) as an IAM role the warehouse assumes.
    #         Make role COPY_ROLE: who must its trust policy let assume it? What must it read, and where may it
    #         write (UNLOAD writes under exports/ of the lake)? A second run must not fail on a role that exists.
    pass


def warehouse() -> None:
    # TODO 2: a Redshift Serverless namespace NAMESPACE (database dev, an admin user and password) that may use
    #         the role, and a workgroup WORKGROUP on it. Which CreateNamespace parameter associates a role?
    #         The workgroup starts CREATING: wait until it is AVAILABLE before any SQL. Rerunnable.
    pass


if __name__ == "__main__":
    copy_role()
    warehouse()
