"""The loading Lambda (an SQS event source mapping invokes it with batches of records)."""

import json
import os

import boto3
from botocore.exceptions import ClientError

dynamodb = boto3.client("dynamodb")


def handler(event, context):
    failures = []
    for message in event["Records"]:
        record = json.loads(message["body"])
        # TODO: put the record into the table (amount as a Number) only if its record_id is not there yet;
        #       "already there" is success. Any other failure: add {"itemIdentifier": message["messageId"]}.
    return {"batchItemFailures": failures}
