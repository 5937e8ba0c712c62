"""Lab 13, part 2 — the lake's key and bucket admit only the lake's people (and the account's administrator)
(README, step 2)."""

import json

import boto3

from roles import ANALYST, INGEST, LAKE, RESULTS, STEWARD, WORKGROUP, account, region

KEY_ALIAS = "alias/dea-gov-lake"
ROOT = f"arn:aws:iam::{account}:root"
ROLE = {name: f"arn:aws:iam::{account}:role/{name}" for name in (INGEST, ANALYST, STEWARD)}

s3 = boto3.client("s3")
kms = boto3.client("kms")
athena = boto3.client("athena")


def key_policy() -> dict:
    # TODO: who may administer the key, and who may use it for what. The usual first statement (the account root
    #       with kms:*) lets every principal whose IAM policy allows kms:* use the key: is that "only them"?
    return {"Version": "2012-10-17", "Statement": []}


def bucket_policy() -> dict:
    # TODO: refuse every principal but the account's administrator and the lake's roles
    return {"Version": "2012-10-17", "Statement": []}


if __name__ == "__main__":
    # TODO: the key (CreateKey with key_policy(), alias KEY_ALIAS, rotation on)
    # TODO: the bucket's default encryption with that key, its policy, and the extract already in raw/ encrypted again
    # TODO: the results bucket RESULTS and the work group WORKGROUP writing to s3://RESULTS/analysts/
    print("TODO: the key and the bucket are not protected yet (README, step 2)")
