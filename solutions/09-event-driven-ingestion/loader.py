"""The loading Lambda: an SQS event source mapping hands it batches of records; each is written to DynamoDB
once (a conditional put on record_id, so a redelivered message changes nothing), and the records it could not
write are reported back as batch item failures, so only they are retried and, in the end, dead-lettered."""

import json
import os

import boto3
from botocore.exceptions import ClientError

dynamodb = boto3.client("dynamodb")
TABLE = os.environ["TABLE"]


def handler(event, context):
    failures = []
    for message in event["Records"]:
        record = json.loads(message["body"])
        item = {
            "record_id": {"S": record["record_id"]},
            "customer_id": {"S": record["customer_id"]},
            "amount": {"N": str(record["amount"])},
            "created_at": {"S": record["created_at"]},
        }
        try:
            dynamodb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(record_id)")
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                continue  # an earlier delivery loaded it: done
            print(f"record {record['record_id']} not loaded: {error}")
            failures.append({"itemIdentifier": message["messageId"]})
    return {"batchItemFailures": failures}
