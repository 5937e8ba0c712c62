"""Lab 08 checks: the order table answers its access patterns, the loader kept only the newest versions,
sessions expire by TTL (seen in their stream as TTL's deletions), and the order changes landed in S3."""

from __future__ import annotations

import datetime
import json

from botocore.exceptions import ClientError

from dealab.datasets import order_model as model
from grader.core import Fail, LabContext, check

DOCS = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide"
# Moving the clock this far lets TTL act (AWS: "typically within two days of expiration").
TTL_ADVANCE = "3d"
TTL_GRACE = datetime.timedelta(days=2)
TTL_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}


def _table(ctx: LabContext, name: str) -> dict:
    try:
        return ctx.client("dynamodb").describe_table(TableName=name)["Table"]
    except ClientError:
        raise Fail(f"table '{name}' does not exist") from None


def _keys(schema: list[dict]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in schema}


def _query_all(ctx: LabContext, **kwargs) -> list[dict]:
    items, dynamodb = [], ctx.client("dynamodb")
    while True:
        page = dynamodb.query(TableName=model.ORDERS_TABLE, **kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _scan_orders(ctx: LabContext) -> dict[str, dict]:
    dynamodb, held = ctx.client("dynamodb"), {}
    kwargs = {"TableName": model.ORDERS_TABLE}
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            held[item.get("order_id", {}).get("S", "?")] = item
        if "LastEvaluatedKey" not in page:
            return held
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _records(ctx: LabContext, table: dict) -> list[dict]:
    arn = table.get("LatestStreamArn")
    if not arn or not table.get("StreamSpecification", {}).get("StreamEnabled"):
        raise Fail(f"table '{table['TableName']}' has no stream enabled")
    streams = ctx.client("dynamodbstreams")
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += page["Records"]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


@check("L08-01", "Orders are keyed by customer, then date and order", points=2, task="2.4",
       hints=("dea-orders: partition key customer_id (S), sort key order_key (S) holding '<order_date>#<order_id>'; dea-sessions: partition key session_id.",),
       docs=f"{DOCS}/bp-sort-keys.html")
def key_design(ctx: LabContext) -> str:
    orders = _keys(_table(ctx, model.ORDERS_TABLE)["KeySchema"])
    if orders != {"HASH": "customer_id", "RANGE": "order_key"}:
        raise Fail(f"table '{model.ORDERS_TABLE}' keys are {orders}, expected customer_id (HASH) and order_key (RANGE)")
    sessions = _keys(_table(ctx, model.SESSIONS_TABLE)["KeySchema"])
    if sessions != {"HASH": "session_id"}:
        raise Fail(f"table '{model.SESSIONS_TABLE}' keys are {sessions}, expected session_id (HASH)")
    return f"'{model.ORDERS_TABLE}' is keyed customer_id + order_key; '{model.SESSIONS_TABLE}' by session_id"


@check("L08-02", "A customer's orders in a date range come from one Query", points=2, task="2.4",
       hints=("With order_key = '<date>#<order id>', KeyConditionExpression customer_id = :c AND order_key BETWEEN :from AND :to_with_suffix.",),
       docs=f"{DOCS}/Query.KeyConditionExpressions.html")
def orders_by_customer_and_dates(ctx: LabContext) -> str:
    key_design(ctx)
    summary = ctx.dataset
    for query in summary["queries"]:
        items = _query_all(
            ctx, KeyConditionExpression="customer_id = :c AND order_key BETWEEN :low AND :high",
            ExpressionAttributeValues={":c": {"S": query["customer_id"]}, ":low": {"S": query["from"]}, ":high": {"S": query["to"] + "#~"}},
        )
        found = {item.get("order_id", {}).get("S") for item in items}
        expected = model.orders_between(summary, query["customer_id"], query["from"], query["to"])
        if found != expected:
            raise Fail(f"customer {query['customer_id']} {query['from']}..{query['to']}: the query returned {len(found)} orders, "
                       f"expected {len(expected)} (missing {sorted(expected - found)[:3]}, extra {sorted(found - expected)[:3]})")
    return f"{len(summary['queries'])} customer/date-range queries return exactly the seeded orders"


@check("L08-03", "Orders by status come from the status-index GSI", points=2, task="2.4",
       hints=("A global secondary index named status-index with partition key status and sort key order_date, projecting ALL.",),
       docs=f"{DOCS}/GSI.html")
def orders_by_status(ctx: LabContext) -> str:
    indexes = {i["IndexName"]: i for i in _table(ctx, model.ORDERS_TABLE).get("GlobalSecondaryIndexes", [])}
    index = indexes.get(model.STATUS_INDEX)
    if index is None:
        raise Fail(f"table '{model.ORDERS_TABLE}' has no GSI '{model.STATUS_INDEX}' (it has {sorted(indexes) or 'none'})")
    if _keys(index["KeySchema"]) != {"HASH": "status", "RANGE": "order_date"}:
        raise Fail(f"GSI '{model.STATUS_INDEX}' keys are {_keys(index['KeySchema'])}, expected status (HASH) and order_date (RANGE)")
    held = _scan_orders(ctx)
    for status in ctx.dataset["statuses"]:
        items = _query_all(ctx, IndexName=model.STATUS_INDEX, KeyConditionExpression="#s = :s",
                           ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": status}})
        found = {item.get("order_id", {}).get("S") for item in items}
        expected = {order_id for order_id, item in held.items() if item.get("status", {}).get("S") == status}
        if found != expected:
            raise Fail(f"status {status}: the index returned {len(found)} orders, the table holds {len(expected)} in that status")
    return f"'{model.STATUS_INDEX}' answers all {len(ctx.dataset['statuses'])} statuses with exactly the table's orders in them"


@check("L08-04", "The loader never overwrote a newer version", points=3, task="2.1",
       hints=("put_item with ConditionExpression 'attribute_not_exists(order_key) OR #version < :version'; catch ConditionalCheckFailedException.",),
       docs=f"{DOCS}/Expressions.ConditionExpressions.html")
def newest_versions(ctx: LabContext) -> str:
    held = {order_id: int(item.get("version", {}).get("N", "0")) for order_id, item in _scan_orders(ctx).items()}
    latest = ctx.dataset["latest"]
    for order_id, order in sorted(latest.items()):
        if order_id not in held:
            raise Fail(f"order {order_id} is not in '{model.ORDERS_TABLE}'")
        if held[order_id] != order["version"]:
            raise Fail(f"order {order_id} holds version {held[order_id]}, but version {order['version']} arrived too: an older write overwrote it")
    return f"all {len(latest)} orders hold their newest version, though {len(ctx.dataset['accepted'])} of the writes were newer than what they found"


@check("L08-05", "Sessions expire by TTL", points=2, task="2.3",
       hints=("update_time_to_live on dea-sessions with AttributeName expires_at; expires_at is a Number of epoch seconds.",),
       docs=f"{DOCS}/TTL.html")
def sessions_expire(ctx: LabContext) -> str:
    dynamodb = ctx.client("dynamodb")
    ttl = dynamodb.describe_time_to_live(TableName=model.SESSIONS_TABLE)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") != "ENABLED" or ttl.get("AttributeName") != model.SESSION_TTL_ATTRIBUTE:
        raise Fail(f"table '{model.SESSIONS_TABLE}': TTL is {ttl.get('TimeToLiveStatus', 'DISABLED')} on {ttl.get('AttributeName')}, expected ENABLED on {model.SESSION_TTL_ATTRIBUTE}")
    before = {item["session_id"]["S"]: float(item[model.SESSION_TTL_ATTRIBUTE]["N"])
              for item in dynamodb.scan(TableName=model.SESSIONS_TABLE)["Items"] if "N" in item.get(model.SESSION_TTL_ATTRIBUTE, {})}
    moved = ctx.admin("clock", {"action": "advance", "by": TTL_ADVANCE})
    now = datetime.datetime.fromisoformat(moved["now"])
    after = {item["session_id"]["S"] for item in dynamodb.scan(TableName=model.SESSIONS_TABLE)["Items"]}
    for session, expires in before.items():
        expired_long_ago = expires < (now - TTL_GRACE).timestamp()
        if expired_long_ago and session in after:
            raise Fail(f"session {session} expired at {datetime.datetime.fromtimestamp(expires, datetime.timezone.utc):%Y-%m-%d %H:%M} UTC and is still there at {now:%Y-%m-%d %H:%M}")
        if expires > now.timestamp() and session not in after:
            raise Fail(f"session {session} expires at {datetime.datetime.fromtimestamp(expires, datetime.timezone.utc):%Y-%m-%d %H:%M} UTC but is gone at {now:%Y-%m-%d %H:%M}")
    gone = len(set(before) - after)
    return f"after {TTL_ADVANCE} on the lab clock {gone} expired sessions were deleted and {len(after)} live ones kept"


@check("L08-06", "TTL deletions show in the sessions stream as the TTL service's", points=2, task="2.3",
       hints=("Enable a stream on dea-sessions (KEYS_ONLY is enough); TTL deletions arrive as REMOVE records whose userIdentity is the DynamoDB service.",),
       docs=f"{DOCS}/time-to-live-ttl-streams.html")
def ttl_in_stream(ctx: LabContext) -> str:
    table = _table(ctx, model.SESSIONS_TABLE)
    present = {item["session_id"]["S"] for item in ctx.client("dynamodb").scan(TableName=model.SESSIONS_TABLE)["Items"]}
    gone = {s["session_id"] for s in ctx.dataset["sessions"]} - present
    if not gone:
        raise Fail(f"no session has been deleted from '{model.SESSIONS_TABLE}' yet, so there is no TTL deletion to look for")
    removed_by_ttl = {
        r["dynamodb"]["Keys"]["session_id"]["S"] for r in _records(ctx, table)
        if r["eventName"] == "REMOVE" and r.get("userIdentity") == TTL_IDENTITY
    }
    missing = gone - removed_by_ttl
    if missing:
        raise Fail(f"{len(missing)} deleted sessions have no REMOVE record from the TTL service in the stream, e.g. {sorted(missing)[0]}")
    return f"{len(gone)} deleted sessions each have a REMOVE record with userIdentity {TTL_IDENTITY}"


@check("L08-07", "Every change in the orders stream is in the S3 change log once", points=2, task="2.1",
       hints=("Read every shard of the dea-orders stream from TRIM_HORIZON and write the records as JSON lines under s3://dea-orders-changelog/orders/.",),
       docs=f"{DOCS}/Streams.html")
def change_log(ctx: LabContext) -> str:
    streamed = sorted(
        (r["dynamodb"]["NewImage"]["order_id"]["S"], int(r["dynamodb"]["NewImage"]["version"]["N"]))
        for r in _records(ctx, _table(ctx, model.ORDERS_TABLE)) if r["eventName"] in ("INSERT", "MODIFY") and "NewImage" in r["dynamodb"]
    )
    s3 = ctx.client("s3")
    logged: list[tuple[str, int]] = []
    objects = s3.list_objects_v2(Bucket=model.CHANGELOG_BUCKET, Prefix=model.CHANGELOG_PREFIX).get("Contents", [])
    for entry in objects:
        for line in s3.get_object(Bucket=model.CHANGELOG_BUCKET, Key=entry["Key"])["Body"].read().decode().splitlines():
            try:
                image = json.loads(line)["new_image"]
                logged.append((image["order_id"]["S"], int(image["version"]["N"])))
            except (ValueError, KeyError, TypeError):
                raise Fail(f"s3://{model.CHANGELOG_BUCKET}/{entry['Key']}: a line is not a change record with new_image: {line[:80]}") from None
    if sorted(logged) != streamed:
        missing = sorted(set(streamed) - set(logged))[:3]
        raise Fail(f"the change log has {len(logged)} order writes, the stream {len(streamed)} (missing e.g. {missing or 'none'}; the rest repeated or unknown)")
    return f"all {len(streamed)} order writes in the stream are in s3://{model.CHANGELOG_BUCKET}/{model.CHANGELOG_PREFIX}, each once"
