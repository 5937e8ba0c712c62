"""Lab 13, part 2 — the lake's key and bucket admit only the lake's people (and the account's administrator).

- The key's policy names who may use it; it does not delegate to IAM, so an identity policy with kms:* on * is not
  enough for anyone else.
- The bucket encrypts with that key by default, its policy refuses every principal but the listed ones, and the
  extract that arrived before encryption was set is encrypted again in place.
- Analysts' query results go to a bucket of their own, through a work group.
"""

import json

import boto3
from botocore.exceptions import ClientError

from roles import ANALYST, INGEST, LAKE, RESULTS, STEWARD, WORKGROUP, account, region

KEY_ALIAS = "alias/dea-gov-lake"
ROOT = f"arn:aws:iam::{account}:root"
ROLE = {name: f"arn:aws:iam::{account}:role/{name}" for name in (INGEST, ANALYST, STEWARD)}

s3 = boto3.client("s3")
kms = boto3.client("kms")
athena = boto3.client("athena")


def key_policy() -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AdministratorOnly", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*",
         # the account's root user itself, not every principal the account's IAM policies would let in
         "Condition": {"ArnEquals": {"aws:PrincipalArn": ROOT}}},
        {"Sid": "StewardManagesAndUses", "Effect": "Allow", "Principal": {"AWS": ROLE[STEWARD]}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "IngestEncryptsThroughS3", "Effect": "Allow", "Principal": {"AWS": ROLE[INGEST]},
         "Action": ["kms:GenerateDataKey", "kms:Encrypt"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
    ]}


def lake_key() -> str:
    try:
        key_arn = kms.describe_key(KeyId=KEY_ALIAS)["KeyMetadata"]["Arn"]
        kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=json.dumps(key_policy()))
    except kms.exceptions.NotFoundException:
        key_arn = kms.create_key(Description="dea-gov-lake data key", Policy=json.dumps(key_policy()))["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=key_arn)
    kms.enable_key_rotation(KeyId=key_arn)
    return key_arn


def bucket_policy() -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "OnlyTheLakesPeople", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{LAKE}", f"arn:aws:s3:::{LAKE}/*"],
         "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [ROOT, *ROLE.values()]}}},
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{LAKE}", f"arn:aws:s3:::{LAKE}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}


def bucket(name: str) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as error:
        if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})


def encrypt_existing(key_arn: str) -> int:
    """Default encryption applies to new objects only: what is already there is copied onto itself under the key."""
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE):
        for item in page.get("Contents", []):
            head = s3.head_object(Bucket=LAKE, Key=item["Key"])
            if head.get("SSEKMSKeyId") != key_arn:
                s3.copy_object(Bucket=LAKE, Key=item["Key"], CopySource={"Bucket": LAKE, "Key": item["Key"]},
                               ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn, MetadataDirective="COPY")
                count += 1
    return count


if __name__ == "__main__":
    key_arn = lake_key()
    bucket(LAKE)
    s3.put_bucket_encryption(Bucket=LAKE, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}, "BucketKeyEnabled": True}]})
    s3.put_bucket_policy(Bucket=LAKE, Policy=json.dumps(bucket_policy()))
    encrypted = encrypt_existing(key_arn)
    bucket(RESULTS)
    configuration = {"ResultConfiguration": {"OutputLocation": f"s3://{RESULTS}/analysts/"}, "EnforceWorkGroupConfiguration": True}
    try:
        athena.create_work_group(Name=WORKGROUP, Configuration=configuration)
    except athena.exceptions.InvalidRequestException:
        athena.update_work_group(WorkGroup=WORKGROUP, ConfigurationUpdates={
            "ResultConfigurationUpdates": configuration["ResultConfiguration"], "EnforceWorkGroupConfiguration": True})
    print(f"key {KEY_ALIAS} and bucket {LAKE} admit only {', '.join(ROLE)}; {encrypted} object(s) encrypted again")
