"""Lab 08 reference solution, part 2: land the orders table's change stream in S3, one JSON-lines object per shard."""

import json

import boto3

ORDERS, BUCKET, PREFIX = "dea-orders", "dea-orders-changelog", "orders/"
dynamodb = boto3.client("dynamodb")
streams = boto3.client("dynamodbstreams")
s3 = boto3.client("s3")

stream_arn = dynamodb.describe_table(TableName=ORDERS)["Table"]["LatestStreamArn"]
shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
for shard in shards:
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    lines = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        for record in page["Records"]:
            lines.append(json.dumps({
                "event": record["eventName"],
                "sequence": record["dynamodb"]["SequenceNumber"],
                "keys": record["dynamodb"]["Keys"],
                "new_image": record["dynamodb"].get("NewImage"),
                "user_identity": record.get("userIdentity"),
            }))
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    # the whole shard under one key: re-running replaces it, so every change is in S3 exactly once
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{shard['ShardId']}.jsonl", Body="".join(line + "\n" for line in lines).encode())
    print(f"shard {shard['ShardId']}: {len(lines)} changes → s3://{BUCKET}/{PREFIX}{shard['ShardId']}.jsonl")
