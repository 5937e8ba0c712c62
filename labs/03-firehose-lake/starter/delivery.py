"""Lab 03: a Firehose delivery stream into the lake, and the clickstream sent through it.

Faults are on in this lab: some PutRecordBatch entries fail (the call still answers 200). Work through the TODOs.
"""

import json
import time  # noqa: F401  (you will back off)
from pathlib import Path

import boto3

DELIVERY_STREAM = "clicks-to-lake"
BUCKET = "dea-firehose-lake"
ROLE = "firehose-delivery"
SOURCE = Path("data/clickstream.jsonl")

firehose = boto3.client("firehose")
iam = boto3.client("iam")


def delivery_role() -> str:
    """Given: the role Firehose assumes to write the lake (S3's delivery actions on this bucket only); created or
    brought up to date, its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    iam.put_role_policy(RoleName=ROLE, PolicyName="deliver-to-lake", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
         "Action": ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket",
                    "s3:ListBucketMultipartUploads", "s3:PutObject"]}]}))
    return arn


def create_delivery_stream() -> None:
    # TODO 1: create a DirectPut delivery stream with an ExtendedS3DestinationConfiguration to BUCKET, whose
    #   RoleARN is delivery_role()'s (Firehose writes the bucket as that role), with:
    #   - Prefix with Firehose's timestamp namespaces, Hive style: events/year=.../month=.../day=.../hour=.../
    #   - an ErrorOutputPrefix under errors/ that includes !{firehose:error-output-type}
    #   - BufferingHints of 1 MB or 60 seconds, whichever comes first
    #   - GZIP compression
    # Tolerate it existing already, and wait until it is ACTIVE.
    raise NotImplementedError("TODO 1: create the delivery stream")


def batches(lines: list[str]):
    # TODO 2: yield PutRecordBatch entries ({"Data": bytes}) in batches of at most 500 records and 4 MiB.
    # Firehose concatenates records as they are: end each one with a newline so the objects are NDJSON.
    raise NotImplementedError("TODO 2: batch the records")


def send(batch: list[dict]) -> None:
    response = firehose.put_record_batch(DeliveryStreamName=DELIVERY_STREAM, Records=batch)
    # TODO 3: resend the entries whose result has an ErrorCode (FailedPutCount > 0), with backoff.
    print(f"{response['FailedPutCount']} of {len(batch)} records failed")


def main() -> None:
    create_delivery_stream()
    lines = SOURCE.read_text().splitlines()
    for batch in batches(lines):
        send(batch)


if __name__ == "__main__":
    main()
