"""Lab 09: land the batches in data/ under landing/ and watch them flow into the table."""

import time
from pathlib import Path

import boto3

RAW, TABLE = "dea-ingest-raw", "dea-ingest-records"
s3, dynamodb = boto3.client("s3"), boto3.client("dynamodb")

for path in sorted(Path("data").glob("batch-*.jsonl")):
    s3.upload_file(str(path), RAW, f"landing/{path.name}")
    print(f"landed s3://{RAW}/landing/{path.name}")

# The pipeline runs on its own from here; give it a few seconds, then say what the table holds.
time.sleep(5)
print(f"{TABLE} holds {dynamodb.scan(TableName=TABLE, Select='COUNT')['Count']} records")
