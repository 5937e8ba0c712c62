"""Lab 02 producer: send data/clickstream.jsonl into the Kinesis stream `clickstream`.

Faults are on in this lab: about a tenth of the entries of every PutRecords call fail with
ProvisionedThroughputExceededException, as they do on AWS when a shard is busy. Work through the TODOs.
"""

import json  # noqa: F401  (you will parse events)
import time  # noqa: F401  (you will back off)
from pathlib import Path

import boto3

STREAM = "clickstream"
SHARDS = 4
SOURCE = Path("data/clickstream.jsonl")

kinesis = boto3.client("kinesis")


def create_stream() -> None:
    # TODO 1: create the stream with 4 PROVISIONED shards (tolerate it existing already), then wait until it is ACTIVE.
    raise NotImplementedError("TODO 1: create the stream")


def partition_key(line: str) -> str:
    # TODO 2: choose a partition key that spreads records evenly over the shards.
    # Careful: three bot users send about a third of all events. Malformed lines need a key too.
    raise NotImplementedError("TODO 2: choose a partition key")


def batches(lines: list[str]):
    # TODO 3: yield lists of PutRecords entries ({"Data": bytes, "PartitionKey": str}) of at most 500 records
    # and 5 MB (data plus partition keys). The source repeats some events: send each event id only once.
    raise NotImplementedError("TODO 3: batch the records")


def put_with_retries(batch: list[dict]) -> None:
    response = kinesis.put_records(StreamName=STREAM, Records=batch)
    # TODO 4: PutRecords returns 200 even when entries fail. Check FailedRecordCount and resend only the
    # failed entries (those whose result has an ErrorCode), with exponential backoff (time.sleep), until none is left.
    print(f"{response['FailedRecordCount']} of {len(batch)} records failed")


def main() -> None:
    create_stream()
    lines = SOURCE.read_text().splitlines()
    for batch in batches(lines):
        put_with_retries(batch)
    print(f"sent the lines of {SOURCE} to {STREAM}")


if __name__ == "__main__":
    main()
