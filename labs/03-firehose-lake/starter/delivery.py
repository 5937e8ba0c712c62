"""Lab 03: a Firehose delivery stream into the lake, and the clickstream sent through it.

Faults are on in this lab: some PutRecordBatch entries fail (the call still answers 200). Work through the TODOs.
"""

import time  # noqa: F401  (you will back off)
from pathlib import Path

import boto3

DELIVERY_STREAM = "clicks-to-lake"
BUCKET = "dea-firehose-lake"
ROLE = "arn:aws:iam::123456789012:role/firehose-delivery"
SOURCE = Path("data/clickstream.jsonl")

firehose = boto3.client("firehose")


def create_delivery_stream() -> None:
    # TODO 1: create a DirectPut delivery stream with an ExtendedS3DestinationConfiguration to BUCKET:
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
