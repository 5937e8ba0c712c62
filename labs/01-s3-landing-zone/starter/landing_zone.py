"""Lab 01 — build the S3 landing zone of a data lake. Work through the TODOs from top to bottom.

Plain AWS code: never pass endpoint_url. Run it from the lab folder with `make run-1`
(or `cd labs/01-s3-landing-zone && python starter/landing_zone.py` in the shell `make shell` opens).
"""

from pathlib import Path

import boto3
from botocore.exceptions import ClientError

PROJECT = "dea-lake"
BUCKETS = {"raw": "dea-lake-raw", "curated": "dea-lake-curated", "quarantine": "dea-lake-quarantine"}
KEY_ALIAS = "alias/dea-lake"
DATA = Path("data")  # the extracts `make lab-1` generated for you
RAW_PREFIX = "sales/"

s3 = boto3.client("s3")
kms = boto3.client("kms")


def lake_key_arn() -> str:
    """Return the ARN of the lake's customer-managed KMS key, creating it (and its alias) if needed."""
    # TODO 1: look the key up by KEY_ALIAS (kms.describe_key); if it does not exist, create_key and create_alias.
    # TODO 2: turn on automatic key rotation for it.
    return ""


def create_zone_bucket(zone: str, bucket: str, key_arn: str) -> None:
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    # TODO 3: block all public access (all four settings of put_public_access_block).
    # TODO 4: default encryption: SSE-KMS with key_arn (put_bucket_encryption).
    # TODO 5: tags project=dea-lake and zone=<zone> (put_bucket_tagging).
    # TODO 6: a bucket policy that denies any request not sent over TLS (aws:SecureTransport)
    #         and any PutObject that does not ask for SSE-KMS (s3:x-amz-server-side-encryption).


def land_extracts(bucket: str, key_arn: str) -> int:
    # TODO 8: upload every file under DATA to RAW_PREFIX + its path relative to DATA (keep the
    #         source=.../dt=.../ folders), asking for SSE-KMS with your key on each upload.
    return 0


def main() -> None:
    key_arn = lake_key_arn()
    for zone, bucket in BUCKETS.items():
        create_zone_bucket(zone, bucket, key_arn)
    # TODO 7: turn on versioning for the raw bucket.
    landed = land_extracts(BUCKETS["raw"], key_arn)
    print(f"{landed} extracts landed in s3://{BUCKETS['raw']}/{RAW_PREFIX}")


if __name__ == "__main__":
    main()
