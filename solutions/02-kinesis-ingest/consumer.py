"""Lab 02 consumer (reference solution): every shard into the lake, exactly once, resumable at any point.

For each shard: resume after the checkpointed sequence number (or from the oldest record), read batches,
write valid events to the raw zone and malformed ones to the quarantine zone, then checkpoint the batch's
last sequence number. The object keys are made from the shard and the batch's first sequence number, so a
batch read again after a crash overwrites its own objects instead of adding duplicates. Stops when every
shard is caught up, or after MAX_RECORDS records if that is set (the grader uses it to stop it mid-stream).
"""

import datetime
import json
import os
from collections import defaultdict

import boto3

STREAM = "clickstream"
CHECKPOINTS = "clickstream-checkpoints"
RAW_BUCKET = "dea-stream-raw"
QUARANTINE_BUCKET = "dea-stream-quarantine"
EVENT_TYPES = {"page_view", "click", "add_to_cart", "checkout", "purchase"}
BATCH = 500
MAX_RECORDS = int(os.environ.get("MAX_RECORDS", "0")) or None

kinesis = boto3.client("kinesis")
dynamodb = boto3.client("dynamodb")
s3 = boto3.client("s3")


def create_checkpoint_table() -> None:
    try:
        dynamodb.create_table(
            TableName=CHECKPOINTS,
            AttributeDefinitions=[{"AttributeName": "shard_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "shard_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except dynamodb.exceptions.ResourceInUseException:
        pass
    dynamodb.get_waiter("table_exists").wait(TableName=CHECKPOINTS)


def checkpoint_of(shard_id: str):
    item = dynamodb.get_item(TableName=CHECKPOINTS, Key={"shard_id": {"S": shard_id}}, ConsistentRead=True).get("Item")
    return item["sequence_number"]["S"] if item else None


def save_checkpoint(shard_id: str, sequence_number: str) -> None:
    dynamodb.put_item(TableName=CHECKPOINTS, Item={"shard_id": {"S": shard_id}, "sequence_number": {"S": sequence_number}})


def problem_with(line: str):
    """Why a record is not a valid event, or None if it is one."""
    try:
        event = json.loads(line)
    except ValueError as error:
        return f"not JSON: {error}"
    if not isinstance(event, dict):
        return "not a JSON object"
    for field in ("event_id", "user_id"):
        if not event.get(field):
            return f"missing {field}"
    if event.get("event_type") not in EVENT_TYPES:
        return f"unknown event_type {event.get('event_type')!r}"
    try:
        datetime.datetime.fromisoformat(str(event.get("ts")).replace("Z", "+00:00"))
    except ValueError:
        return f"unreadable ts {event.get('ts')!r}"
    return None


def write_batch(shard_id: str, records: list) -> None:
    first = records[0]["SequenceNumber"]
    by_day, quarantined = defaultdict(list), []
    for record in records:
        line = record["Data"].decode("utf-8", "replace")
        problem = problem_with(line)
        if problem:
            quarantined.append(json.dumps({"reason": problem, "raw": line, "shard_id": shard_id,
                                           "sequence_number": record["SequenceNumber"]}))
        else:
            by_day[json.loads(line)["ts"][:10]].append(line)
    for day, lines in by_day.items():
        s3.put_object(Bucket=RAW_BUCKET, Key=f"events/dt={day}/{shard_id}-{first}.jsonl", Body="\n".join(lines) + "\n")
    if quarantined:
        s3.put_object(Bucket=QUARANTINE_BUCKET, Key=f"events/{shard_id}-{first}.jsonl", Body="\n".join(quarantined) + "\n")


def consume_shard(shard_id: str, budget) -> int:
    """Reads one shard to its end (or until the budget of records is spent); returns how many it read."""
    checkpoint = checkpoint_of(shard_id)
    if checkpoint:
        start = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint}
    else:
        start = {"ShardIteratorType": "TRIM_HORIZON"}
    iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard_id, **start)["ShardIterator"]
    count = 0
    while iterator and (budget is None or count < budget):
        limit = BATCH if budget is None else min(BATCH, budget - count)
        response = kinesis.get_records(ShardIterator=iterator, Limit=limit)
        records = response["Records"]
        if records:
            write_batch(shard_id, records)
            save_checkpoint(shard_id, records[-1]["SequenceNumber"])  # only after the batch is safely written
            count += len(records)
        elif response.get("MillisBehindLatest", 0) == 0:
            break  # caught up
        iterator = response.get("NextShardIterator")
    return count


def main() -> None:
    create_checkpoint_table()
    shards = kinesis.list_shards(StreamName=STREAM)["Shards"]
    total = 0
    for shard in shards:
        budget = None if MAX_RECORDS is None else MAX_RECORDS - total
        if budget == 0:
            break
        total += consume_shard(shard["ShardId"], budget)
    print(f"read {total} records from {len(shards)} shards of {STREAM}")


if __name__ == "__main__":
    main()
