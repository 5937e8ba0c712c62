"""Lab 02 producer (reference solution): the clickstream into Kinesis, every event once, surviving throttling."""

import hashlib
import json
import random
import time
from pathlib import Path

import boto3

STREAM = "clickstream"
SHARDS = 4
SOURCE = Path("data/clickstream.jsonl")
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_ATTEMPTS = 10

kinesis = boto3.client("kinesis")


def create_stream() -> None:
    try:
        kinesis.create_stream(StreamName=STREAM, ShardCount=SHARDS, StreamModeDetails={"StreamMode": "PROVISIONED"})
    except kinesis.exceptions.ResourceInUseException:
        pass  # already there from an earlier run
    kinesis.get_waiter("stream_exists").wait(StreamName=STREAM)


def field_of(line: str, name: str):
    """A field of the event on this line, or None when the line is not a JSON object or lacks it."""
    try:
        return json.loads(line).get(name)
    except (ValueError, AttributeError):
        return None


def event_id_of(line: str) -> str:
    """The event id; malformed lines go to the stream too (the consumer quarantines them), named by their hash."""
    return field_of(line, "event_id") or hashlib.sha256(line.encode()).hexdigest()


def partition_key(line: str) -> str:
    """The event id: unique per event, so records spread evenly over the shards (a user id would not:
    a few bot users send a third of the traffic and would make hot shards)."""
    return event_id_of(line)


def unique_records(lines: list[str]) -> list[dict]:
    """One record per event id: the source repeats some events a client resent."""
    seen, records = set(), []
    for line in lines:
        event_id = event_id_of(line)
        if event_id in seen:
            continue
        seen.add(event_id)
        records.append({"Data": line.encode(), "PartitionKey": partition_key(line)})
    return records


def batches(records: list[dict]):
    """Groups of at most 500 records and 5 MB (data plus partition keys), as PutRecords allows."""
    batch, size = [], 0
    for record in records:
        record_size = len(record["Data"]) + len(record["PartitionKey"])
        if batch and (len(batch) == MAX_BATCH_RECORDS or size + record_size > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record_size
    if batch:
        yield batch


def put_with_retries(batch: list[dict]) -> None:
    """Sends a batch; resends only the entries that failed, with exponential backoff and jitter."""
    pending = batch
    for attempt in range(MAX_ATTEMPTS):
        response = kinesis.put_records(StreamName=STREAM, Records=pending)
        if response["FailedRecordCount"] == 0:
            return
        pending = [record for record, result in zip(pending, response["Records"]) if "ErrorCode" in result]
        time.sleep(random.uniform(0, min(2.0, 0.02 * 2**attempt)))
    raise RuntimeError(f"{len(pending)} records still failing after {MAX_ATTEMPTS} attempts")


def main() -> None:
    create_stream()
    records = unique_records(SOURCE.read_text().splitlines())
    for batch in batches(records):
        put_with_retries(batch)
    print(f"sent {len(records)} records to {STREAM}")


if __name__ == "__main__":
    main()
