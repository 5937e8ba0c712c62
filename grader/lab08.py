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
# A loader stamps every session from one "now"; the load times implied by expires_at - ttl_hours may differ
# by this much (a loader that reads the clock per item, a slow machine) and still be one load.
LOAD_TIME_SPREAD = datetime.timedelta(minutes=10)
# Epoch seconds stay below this until the year 5138; an epoch in milliseconds is far above it.
LARGEST_EPOCH_SECONDS = 1e11


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


def _scan_all(ctx: LabContext, table: str) -> list[dict]:
    _table(ctx, table)  # a missing table is a FAIL that names it
    items, dynamodb, kwargs = [], ctx.client("dynamodb"), {"TableName": table}
    while True:
        page = dynamodb.scan(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _scan_orders(ctx: LabContext) -> dict[str, dict]:
    _table(ctx, model.ORDERS_TABLE)
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
       hints=("Keys come from the access patterns: the partition key is what a Query names exactly, the sort key what it ranges over.",
              "CreateTable KeySchema: dea-orders HASH customer_id + RANGE order_key (both S, order_key = '<order_date>#<order_id>'); dea-sessions HASH session_id.",
              "dynamodb.create_table(TableName='dea-orders', BillingMode='PAY_PER_REQUEST', KeySchema=[{'AttributeName': 'customer_id', 'KeyType': 'HASH'}, "
              "{'AttributeName': 'order_key', 'KeyType': 'RANGE'}], AttributeDefinitions=[...], ...)"),
       docs=f"{DOCS}/bp-sort-keys.html")
def key_design(ctx: LabContext) -> str:
    orders = _keys(_table(ctx, model.ORDERS_TABLE)["KeySchema"])
    if orders != {"HASH": "customer_id", "RANGE": "order_key"}:
        raise Fail(f"table '{model.ORDERS_TABLE}' is keyed {orders}: a customer's orders in a date range need customer_id (HASH) and order_key (RANGE)")
    sessions = _keys(_table(ctx, model.SESSIONS_TABLE)["KeySchema"])
    if sessions != {"HASH": "session_id"}:
        raise Fail(f"table '{model.SESSIONS_TABLE}' is keyed {sessions}: a session is looked up by session_id (HASH) alone")
    return f"'{model.ORDERS_TABLE}' is keyed customer_id + order_key; '{model.SESSIONS_TABLE}' by session_id"


@check("L08-02", "A customer's orders in a date range come from one Query", points=2, task="2.4",
       hints=("A Query reads one partition and a range of its sort key: a sort key that starts with the date turns a date range into a key range.",
              "Write order_key as '<order_date>#<order_id>' on every item; the grader queries customer_id = :c AND order_key BETWEEN :from AND :to#~.",
              "item['order_key'] = {'S': f\"{order['order_date']}#{order['order_id']}\"}, and keep order_id and order_date as attributes of their own"),
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
       hints=("'Orders in a status' has another partition key than the table: that needs a global secondary index.",
              "CreateTable GlobalSecondaryIndexes: status-index keyed status (HASH) + order_date (RANGE), Projection ALL so a Query on it returns whole orders.",
              "GlobalSecondaryIndexes=[{'IndexName': 'status-index', 'KeySchema': [{'AttributeName': 'status', 'KeyType': 'HASH'}, "
              "{'AttributeName': 'order_date', 'KeyType': 'RANGE'}], 'Projection': {'ProjectionType': 'ALL'}}]"),
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
        for item in items:
            missing = sorted(set(held[item["order_id"]["S"]]) - set(item))
            if missing:
                raise Fail(f"status {status}: '{model.STATUS_INDEX}' returns order {item['order_id']['S']} without {missing}: "
                           f"the index does not carry whole orders, so its readers need a second read per order")
    return f"'{model.STATUS_INDEX}' answers all {len(ctx.dataset['statuses'])} statuses with exactly the table's orders in them"


@check("L08-04", "The loader never overwrote a newer version", points=3, task="2.1",
       hints=("Versions arrive late and out of order: a write must only land if the table holds no newer version, which makes the loader idempotent too.",
              "PutItem with a ConditionExpression on the item's version; a ConditionalCheckFailedException means 'older, skip it', not an error.",
              "dynamodb.put_item(TableName='dea-orders', Item=item, ConditionExpression='attribute_not_exists(order_key) OR #version < :version', "
              "ExpressionAttributeNames={'#version': 'version'}, ExpressionAttributeValues={':version': {'N': str(order['version'])}})"),
       docs=f"{DOCS}/Expressions.ConditionExpressions.html")
def newest_versions(ctx: LabContext) -> str:
    items = _scan_orders(ctx)
    held = {order_id: int(item.get("version", {}).get("N", "0")) for order_id, item in items.items()}
    latest = ctx.dataset["latest"]
    for order_id, order in sorted(latest.items()):
        if order_id not in held:
            raise Fail(f"order {order_id} is not in '{model.ORDERS_TABLE}': the loader lost it")
        if held[order_id] != order["version"]:
            raise Fail(f"order {order_id} holds version {held[order_id]} though version {order['version']} arrived: a late older write overwrote newer data")
        item = items[order_id]
        if item.get("status", {}).get("S") != order["status"]:
            raise Fail(f"order {order_id} holds status {item.get('status')} though its newest version says {order['status']}")
        amount = item.get("amount", {})
        if "N" not in amount or abs(float(amount["N"]) - float(order["amount"])) > 0.005:
            raise Fail(f"order {order_id} holds amount {amount or 'nothing'}, its newest version says {order['amount']} "
                       f"as a Number: amounts stored otherwise cannot be summed or compared as numbers")
    return f"all {len(latest)} orders hold their newest version, though {len(ctx.dataset['accepted'])} of the writes were newer than what they found"


def _ttl_sweep(ctx: LabContext) -> tuple[list[dict], datetime.datetime, set[str]]:
    """The sessions before grading moved the lab clock TTL_ADVANCE, the clock's new time, and the session ids
    left after it. Done once per grading, whichever of L08-05 and L08-06 asks first, so neither depends on
    the other having passed."""
    cached = getattr(ctx, "_lab08_ttl_sweep", None)
    if cached is None:
        before = _scan_all(ctx, model.SESSIONS_TABLE)
        now = datetime.datetime.fromisoformat(ctx.admin("clock", {"action": "advance", "by": TTL_ADVANCE})["now"])
        after = {item["session_id"]["S"] for item in _scan_all(ctx, model.SESSIONS_TABLE) if "S" in item.get("session_id", {})}
        cached = ctx._lab08_ttl_sweep = (before, now, after)
    return cached


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"


def _utc(epoch: float) -> str:
    return f"{datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"


def _session_expiries(ctx: LabContext, items: list[dict]) -> dict[str, float]:
    """Each loaded session's expires_at in epoch seconds, judged against the seed's ttl_hours: TTL only
    deletes items whose attribute is a Number of epoch seconds, and the exercise asks for load time +
    ttl_hours hours, so every session must imply the same load time."""
    ttl_hours = {s["session_id"]: float(s["ttl_hours"]) for s in ctx.dataset["sessions"]}
    attribute = model.SESSION_TTL_ATTRIBUTE
    expiries: dict[str, float] = {}
    for item in items:
        session = item.get("session_id", {}).get("S")
        if session not in ttl_hours:
            continue
        value = item.get(attribute)
        if value is None:
            raise Fail(f"session {session} in '{model.SESSIONS_TABLE}' has no {attribute}, so TTL never deletes it")
        if "N" not in value:
            kind = next(iter(value), "?")
            raise Fail(f"session {session}: {attribute} is of type {kind} ({next(iter(value.values()), '')!s:.30}); "
                       f"TTL reads only a Number of epoch seconds, so this session never expires")
        expires = float(value["N"])
        if expires > LARGEST_EPOCH_SECONDS:
            raise Fail(f"session {session}: {attribute} {value['N']} lies thousands of years ahead (milliseconds?); "
                       f"TTL reads epoch seconds, so this session never expires")
        expiries[session] = expires
    if not expiries:
        raise Fail(f"table '{model.SESSIONS_TABLE}' holds none of your {len(ttl_hours)} sessions "
                   f"(never loaded, or all expired by earlier grading: load them again)")
    load_times = sorted((expires - ttl_hours[session] * 3600, session) for session, expires in expiries.items())
    load_time, reference = load_times[len(load_times) // 2]
    for implied, session in load_times:
        if abs(implied - load_time) > LOAD_TIME_SPREAD.total_seconds():
            apart = expiries[session] - expiries[reference]
            should = (ttl_hours[session] - ttl_hours[reference]) * 3600
            raise Fail(f"sessions {reference} (ttl_hours {ttl_hours[reference]:g}) and {session} (ttl_hours {ttl_hours[session]:g}) "
                       f"expire {_duration(apart)} apart, but their ttl_hours put them {_duration(should)} apart: "
                       f"expires_at does not hold load time + ttl_hours, so sessions live the wrong time")
    return expiries


@check("L08-05", "Sessions expire by TTL", points=2, task="2.3",
       hints=("DynamoDB Time to Live deletes an item once the time in its TTL attribute has passed; the attribute must hold epoch seconds, and each session should live its ttl_hours.",
              "UpdateTimeToLive on dea-sessions names the attribute (expires_at); write expires_at as a Number (type N) of epoch seconds: load time + ttl_hours * 3600.",
              "dynamodb.update_time_to_live(TableName='dea-sessions', TimeToLiveSpecification={'Enabled': True, 'AttributeName': 'expires_at'}); "
              "'expires_at': {'N': str(now + int(session['ttl_hours'] * 3600))} with now = int(time.time())"),
       docs=f"{DOCS}/TTL.html")
def sessions_expire(ctx: LabContext) -> str:
    _table(ctx, model.SESSIONS_TABLE)
    dynamodb = ctx.client("dynamodb")
    ttl = dynamodb.describe_time_to_live(TableName=model.SESSIONS_TABLE)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") != "ENABLED" or ttl.get("AttributeName") != model.SESSION_TTL_ATTRIBUTE:
        raise Fail(f"table '{model.SESSIONS_TABLE}': TTL is {ttl.get('TimeToLiveStatus', 'DISABLED')} on {ttl.get('AttributeName')}, "
                   f"but the sessions carry their expiry in {model.SESSION_TTL_ATTRIBUTE}: nothing will expire")
    items, now, after = _ttl_sweep(ctx)
    before = _session_expiries(ctx, items)
    for session, expires in sorted(before.items()):
        if expires < (now - TTL_GRACE).timestamp() and session in after:
            raise Fail(f"session {session} expired at {_utc(expires)} and is still there at {now:%Y-%m-%d %H:%M}")
        if expires > now.timestamp() and session not in after:
            raise Fail(f"session {session} expires at {_utc(expires)} but is gone at {now:%Y-%m-%d %H:%M}")
    gone = len(set(before) - after)
    return f"each session lives its ttl_hours; after {TTL_ADVANCE} on the lab clock {gone} expired sessions were deleted and {len(after)} live ones kept"


@check("L08-06", "TTL deletions show in the sessions stream as the TTL service's", points=2, task="2.3",
       hints=("TTL deletions appear in the table's stream as REMOVE records whose userIdentity is the DynamoDB service; without a stream they leave no trace.",
              "CreateTable (or UpdateTable) StreamSpecification on dea-sessions: StreamEnabled with any view type, KEYS_ONLY is enough.",
              "create_table(TableName='dea-sessions', ..., StreamSpecification={'StreamEnabled': True, 'StreamViewType': 'KEYS_ONLY'})"),
       docs=f"{DOCS}/time-to-live-ttl-streams.html")
def ttl_in_stream(ctx: LabContext) -> str:
    table = _table(ctx, model.SESSIONS_TABLE)
    _, _, present = _ttl_sweep(ctx)
    gone = {s["session_id"] for s in ctx.dataset["sessions"]} - present
    if not gone:
        raise Fail(f"TTL has deleted no session from '{model.SESSIONS_TABLE}' even after the clock moved, so its stream shows no TTL deletion (see L08-05)")
    removed_by_ttl = {
        r["dynamodb"]["Keys"]["session_id"]["S"] for r in _records(ctx, table)
        if r["eventName"] == "REMOVE" and r.get("userIdentity") == TTL_IDENTITY
    }
    missing = gone - removed_by_ttl
    if missing:
        raise Fail(f"{len(missing)} deleted sessions have no REMOVE record from the TTL service in the '{model.SESSIONS_TABLE}' stream "
                   f"(e.g. {sorted(missing)[0]}): a consumer could not tell expiries from user deletes")
    return f"{len(gone)} deleted sessions each have a REMOVE record with userIdentity {TTL_IDENTITY}"


@check("L08-07", "Every change in the orders stream is in the S3 change log once", points=2, task="2.1",
       hints=("A stream keeps 24 hours of changes per shard; a consumer reads every shard from its start and lands each change once (INSERTs and MODIFYs alike).",
              "DescribeTable LatestStreamArn → DescribeStream shards → GetShardIterator TRIM_HORIZON → GetRecords until a page is empty; PutObject one JSON-lines object per shard.",
              "for each shard: iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard['ShardId'], ShardIteratorType='TRIM_HORIZON')['ShardIterator']; "
              "page = streams.get_records(ShardIterator=iterator); s3.put_object(Bucket='dea-orders-changelog', Key=f\"orders/{shard['ShardId']}.jsonl\", Body=...)"),
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
