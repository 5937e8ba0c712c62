"""Lab 08 reference solution, part 1: the tables, and an idempotent loader that never overwrites newer data."""

import json
import time
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

ORDERS, SESSIONS, STATUS_INDEX = "dea-orders", "dea-sessions", "status-index"
dynamodb = boto3.client("dynamodb")


def create_table(name: str, **definition) -> None:
    try:
        dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **definition)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(TableName=name)


create_table(
    ORDERS,
    KeySchema=[{"AttributeName": "customer_id", "KeyType": "HASH"}, {"AttributeName": "order_key", "KeyType": "RANGE"}],
    AttributeDefinitions=[
        {"AttributeName": "customer_id", "AttributeType": "S"},
        {"AttributeName": "order_key", "AttributeType": "S"},
        {"AttributeName": "status", "AttributeType": "S"},
        {"AttributeName": "order_date", "AttributeType": "S"},
    ],
    GlobalSecondaryIndexes=[{
        "IndexName": STATUS_INDEX,
        "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}, {"AttributeName": "order_date", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }],
    StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
)
create_table(
    SESSIONS,
    KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "session_id", "AttributeType": "S"}],
    StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
)
if dynamodb.describe_time_to_live(TableName=SESSIONS)["TimeToLiveDescription"]["TimeToLiveStatus"] != "ENABLED":
    dynamodb.update_time_to_live(TableName=SESSIONS, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})

written = stale = 0
for line in Path("data/orders.jsonl").read_text().splitlines():
    order = json.loads(line)
    item = {
        "customer_id": {"S": order["customer_id"]},
        "order_key": {"S": f"{order['order_date']}#{order['order_id']}"},
        "order_id": {"S": order["order_id"]},
        "order_date": {"S": order["order_date"]},
        "status": {"S": order["status"]},
        "amount": {"N": order["amount"]},
        "version": {"N": str(order["version"])},
    }
    try:
        dynamodb.put_item(
            TableName=ORDERS, Item=item,
            ConditionExpression="attribute_not_exists(order_key) OR #version < :version",
            ExpressionAttributeNames={"#version": "version"},
            ExpressionAttributeValues={":version": {"N": str(order["version"])}},
        )
        written += 1
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        stale += 1
print(f"orders: {written} written, {stale} older versions skipped")

now = int(time.time())
for line in Path("data/sessions.jsonl").read_text().splitlines():
    session = json.loads(line)
    dynamodb.put_item(TableName=SESSIONS, Item={
        "session_id": {"S": session["session_id"]},
        "customer_id": {"S": session["customer_id"]},
        "expires_at": {"N": str(now + int(session["ttl_hours"] * 3600))},
    })
print("sessions loaded")
