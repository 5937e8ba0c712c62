"""The validating Lambda (EventBridge invokes it for each object landing under landing/).

Valid record: a JSON object with record_id, customer_id, created_at (strings) and amount (a JSON number).
"""

import json
import os

import boto3

s3 = boto3.client("s3")
sqs = boto3.client("sqs")
sns = boto3.client("sns")


def handler(event, context):
    bucket, key = event["detail"]["bucket"]["name"], event["detail"]["object"]["key"]
    # TODO 1: read the object and check it line by line (line numbers start at 1).
    # TODO 2: send each valid record, as JSON, to the records queue (SendMessageBatch: 10 a call).
    # TODO 3: write the rest to s3://dea-ingest-quarantine/<the same key> as JSON lines, each with the
    #         source, its "line" number and a "reason"; publish an alert naming the key to the topic.
    raise NotImplementedError("validator: TODO")
