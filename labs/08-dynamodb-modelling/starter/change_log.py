"""Lab 08, part 2 — land the orders table's change stream in S3.

For every shard of the dea-orders stream, read the records from the start (TRIM_HORIZON) until a page
comes back empty, and write them to s3://dea-orders-changelog/orders/<shard id>.jsonl, one JSON object
per line with at least "event" (eventName), "keys" and "new_image" (the record's NewImage).
"""

import boto3

ORDERS, BUCKET, PREFIX = "dea-orders", "dea-orders-changelog", "orders/"
dynamodb = boto3.client("dynamodb")
streams = boto3.client("dynamodbstreams")
s3 = boto3.client("s3")

# TODO 5: find the stream (describe_table → LatestStreamArn), its shards (describe_stream), read each
#         shard (get_shard_iterator + get_records) and write one JSON-lines object per shard.
