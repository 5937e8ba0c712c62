"""Lab 02 consumer: read every shard of `clickstream` into the lake, exactly once, resumable at any point.

Valid events go to s3://dea-stream-raw/events/dt=YYYY-MM-DD/ as newline-delimited JSON; malformed records
go to s3://dea-stream-quarantine/ as {"reason": ..., "raw": ...} lines. Progress is checkpointed per shard
in the DynamoDB table clickstream-checkpoints. When the environment variable MAX_RECORDS is set, stop
after reading that many records (the grader does this to stop your consumer mid-stream and restart it).
The grader also crashes it, once while every S3 write fails and once while every checkpoint write fails,
then runs it again: a restart must neither skip nor duplicate the batch it was in the middle of.
The consumer ends when every shard is caught up.
"""

import datetime  # noqa: F401  (you will check timestamps)
import json  # noqa: F401  (you will parse events)
import os

import boto3

STREAM = "clickstream"
CHECKPOINTS = "clickstream-checkpoints"
RAW_BUCKET = "dea-stream-raw"
QUARANTINE_BUCKET = "dea-stream-quarantine"
EVENT_TYPES = {"page_view", "click", "add_to_cart", "checkout", "purchase"}
MAX_RECORDS = int(os.environ.get("MAX_RECORDS", "0")) or None

kinesis = boto3.client("kinesis")
dynamodb = boto3.client("dynamodb")
s3 = boto3.client("s3")


def create_checkpoint_table() -> None:
    # TODO 5: create table clickstream-checkpoints with partition key shard_id (string), on-demand billing;
    # tolerate it existing, and wait until it is active.
    raise NotImplementedError("TODO 5: the checkpoint table")


def problem_with(line: str):
    # TODO 6: return why a record is not a valid event (not JSON, no event_id or user_id, an event_type not in
    # EVENT_TYPES, a ts that is not ISO-8601), or None when it is valid.
    raise NotImplementedError("TODO 6: validate a record")


def consume_shard(shard_id: str, budget) -> int:
    # TODO 7: resume after the checkpointed sequence number (AFTER_SEQUENCE_NUMBER), or from TRIM_HORIZON when
    # there is none; read batches with get_records; write the valid events by day and the quarantined ones with
    # deterministic object keys; checkpoint the batch's last sequence number after the writes; stop when caught
    # up (no records and MillisBehindLatest == 0) or when `budget` records are read. Return how many were read.
    raise NotImplementedError("TODO 7: consume a shard")


def main() -> None:
    create_checkpoint_table()
    total = 0
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        budget = None if MAX_RECORDS is None else MAX_RECORDS - total
        if budget == 0:
            break
        total += consume_shard(shard["ShardId"], budget)
    print(f"read {total} records from {STREAM}")


if __name__ == "__main__":
    main()
