"""DynamoDB TTL executed on the lab clock, with the TTL service identity on the REMOVE stream records."""

from __future__ import annotations

import time

from tests.conftest import client
from tests.test_lifecycle_engine import admin, advance


def ttl_table(ddb, name):
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})


def stream_records(settings, ddb, table):
    streams = client(settings, "dynamodbstreams")
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return streams.get_records(ShardIterator=iterator)["Records"]


def test_expired_items_go_when_the_clock_passes_them(clean_stack):
    ddb = client(clean_stack, "dynamodb")
    ttl_table(ddb, "sessions")
    now = int(time.time())
    ddb.put_item(TableName="sessions", Item={"pk": {"S": "short"}, "expires_at": {"N": str(now + 1800)}})
    ddb.put_item(TableName="sessions", Item={"pk": {"S": "long"}, "expires_at": {"N": str(now + 3 * 86400)}})
    ddb.put_item(TableName="sessions", Item={"pk": {"S": "text"}, "expires_at": {"S": str(now)}})  # not a Number: kept
    ddb.put_item(TableName="sessions", Item={"pk": {"S": "none"}})
    ddb.delete_item(TableName="sessions", Key={"pk": {"S": "none"}})  # a user's own delete

    summary = advance(clean_stack, "7h")["last_move"]  # TTL sweeps every 6 hours of lab time
    assert summary["ttl_deleted"] == 1
    keys = sorted(item["pk"]["S"] for item in ddb.scan(TableName="sessions")["Items"])
    assert keys == ["long", "text"]
    advance(clean_stack, "3d")
    assert sorted(item["pk"]["S"] for item in ddb.scan(TableName="sessions")["Items"]) == ["text"]

    removes = [r for r in stream_records(clean_stack, ddb, "sessions") if r["eventName"] == "REMOVE"]
    by_key = {r["dynamodb"]["Keys"]["pk"]["S"]: r.get("userIdentity") for r in removes}
    ttl_identity = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
    assert by_key == {"none": None, "short": ttl_identity, "long": ttl_identity}
    # the deletion is dated when the sweep after the expiry ran, on the lab clock
    short = next(r for r in removes if r["dynamodb"]["Keys"]["pk"]["S"] == "short")
    assert 1800 <= short["dynamodb"]["ApproximateCreationDateTime"].timestamp() - now <= 1800 + 6 * 3600 + 60


def test_tables_without_ttl_are_untouched(clean_stack):
    ddb = client(clean_stack, "dynamodb")
    ddb.create_table(
        TableName="plain", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="plain", Item={"pk": {"S": "a"}, "expires_at": {"N": "1"}})
    assert advance(clean_stack, "1d")["last_move"]["ttl_deleted"] == 0
    assert ddb.scan(TableName="plain")["Count"] == 1
    assert admin(clean_stack, "clock")["last_move"]["ttl_deleted"] == 0
