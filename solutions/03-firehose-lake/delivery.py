"""Lab 03 (reference solution): a Firehose delivery stream into the lake, and the clickstream sent through it."""

import json
import random
import time
from pathlib import Path

import boto3

DELIVERY_STREAM = "clicks-to-lake"
BUCKET = "dea-firehose-lake"
ROLE = "firehose-delivery"
SOURCE = Path("data/clickstream.jsonl")
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_ATTEMPTS = 10

firehose = boto3.client("firehose")
iam = boto3.client("iam")


def delivery_role() -> str:
    """The role Firehose assumes to write the lake: S3's delivery actions on this bucket only (as Firehose's guide
    lists them); created or brought up to date, its ARN."""
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
    role_arn = delivery_role()
    try:
        firehose.create_delivery_stream(
            DeliveryStreamName=DELIVERY_STREAM,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": role_arn,
                "BucketARN": f"arn:aws:s3:::{BUCKET}",
                "Prefix": "events/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
                "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
                "CompressionFormat": "GZIP",
            },
        )
    except firehose.exceptions.ResourceInUseException:
        pass  # already there from an earlier run
    while firehose.describe_delivery_stream(DeliveryStreamName=DELIVERY_STREAM)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        time.sleep(1)


def batches(lines: list[str]):
    """At most 500 records and 4 MiB per PutRecordBatch; each record ends in a newline, so objects are NDJSON."""
    batch, size = [], 0
    for line in lines:
        record = {"Data": (line + "\n").encode()}
        if batch and (len(batch) == MAX_BATCH_RECORDS or size + len(record["Data"]) > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += len(record["Data"])
    if batch:
        yield batch


def send(batch: list[dict]) -> None:
    """PutRecordBatch answers 200 with FailedPutCount when some records failed: resend exactly those."""
    pending = batch
    for attempt in range(MAX_ATTEMPTS):
        response = firehose.put_record_batch(DeliveryStreamName=DELIVERY_STREAM, Records=pending)
        if response["FailedPutCount"] == 0:
            return
        pending = [record for record, result in zip(pending, response["RequestResponses"]) if "ErrorCode" in result]
        time.sleep(random.uniform(0, min(2.0, 0.02 * 2**attempt)))
    raise RuntimeError(f"{len(pending)} records still failing after {MAX_ATTEMPTS} attempts")


def main() -> None:
    create_delivery_stream()
    lines = SOURCE.read_text().splitlines()
    for batch in batches(lines):
        send(batch)
    print(f"sent {len(lines)} records to {DELIVERY_STREAM}; Firehose delivers them within its buffering hints")


if __name__ == "__main__":
    main()
