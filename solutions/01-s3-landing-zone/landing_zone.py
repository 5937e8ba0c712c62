"""Reference solution for Lab 01: an S3 landing zone with SSE-KMS, TLS-only access and the seeded extracts.

Plain AWS code: run it from the lab folder (labs/01-s3-landing-zone); AWS_ENDPOINT_URL decides where it goes.
"""

import json
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

PROJECT = "dea-lake"
BUCKETS = {"raw": "dea-lake-raw", "curated": "dea-lake-curated", "quarantine": "dea-lake-quarantine"}
KEY_ALIAS = "alias/dea-lake"
DATA = Path("data")
RAW_PREFIX = "sales/"

s3 = boto3.client("s3")
kms = boto3.client("kms")


def lake_key_arn() -> str:
    """The lake's customer-managed key, created once, with yearly rotation."""
    try:
        key_arn = kms.describe_key(KeyId=KEY_ALIAS)["KeyMetadata"]["Arn"]
    except kms.exceptions.NotFoundException:
        key_arn = kms.create_key(
            Description="dea-lake data-lake encryption key",
            Tags=[{"TagKey": "project", "TagValue": PROJECT}],
        )["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=key_arn)
    kms.enable_key_rotation(KeyId=key_arn)
    return key_arn


def tls_and_kms_only_policy(bucket: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyUploadsWithoutKms",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            },
        ],
    })


def create_zone_bucket(zone: str, bucket: str, key_arn: str) -> None:
    region = s3.meta.region_name
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as error:
        if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                "BucketKeyEnabled": True,
            }]
        },
    )
    s3.put_bucket_tagging(
        Bucket=bucket,
        Tagging={"TagSet": [{"Key": "project", "Value": PROJECT}, {"Key": "zone", "Value": zone}]},
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=tls_and_kms_only_policy(bucket))


def land_extracts(bucket: str, key_arn: str) -> int:
    count = 0
    for path in sorted(DATA.rglob("*.csv")):
        key = RAW_PREFIX + path.relative_to(DATA).as_posix()
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
        count += 1
    return count


def main() -> None:
    key_arn = lake_key_arn()
    for zone, bucket in BUCKETS.items():
        create_zone_bucket(zone, bucket, key_arn)
    s3.put_bucket_versioning(Bucket=BUCKETS["raw"], VersioningConfiguration={"Status": "Enabled"})
    landed = land_extracts(BUCKETS["raw"], key_arn)
    print(f"landing zone ready: {len(BUCKETS)} buckets, key {KEY_ALIAS}, {landed} extracts in s3://{BUCKETS['raw']}/{RAW_PREFIX}")


if __name__ == "__main__":
    main()
