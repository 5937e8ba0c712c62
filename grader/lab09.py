"""Lab 09 checks: the grader lands its own copies of the seed's batches (under record ids of this grading), a
file the pipeline must ignore under another prefix and one with another suffix, records already loaded once,
and a file no validator can read; it lets the pipeline run (moving the lab clock past the queue's visibility
timeout while messages wait for a retry), then judges every record by what its seed says it is: loaded once,
quarantined with its line, or dead-lettered; and every alert by the object it names."""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from dealab.datasets import ingest_events as model
from grader.core import Fail, LabContext, check

DOCS = "https://docs.aws.amazon.com"
LAMBDA_SQS_DOCS = f"{DOCS}/lambda/latest/dg/services-sqs-errorhandling.html"
# A pipeline is quiet when nothing it shows has changed for this long (real seconds) ...
QUIET_SECONDS = 1.5
# ... and a round of waiting for it ends after this long even if it is not.
ROUND_SECONDS = 20
# Rounds of retries beyond the queue's maxReceiveCount: the receive that moves a message, and one to spare.
EXTRA_ROUNDS = 2
ROUNDS_WITHOUT_REDRIVE = 3
MAX_ROUNDS = 12
# Lambda's SQS guide: visibility timeout at least six times the function timeout, maxReceiveCount at least 5.
VISIBILITY_PER_TIMEOUT = 6
LEAST_RECEIVE_COUNT = 5
MARKER = {"loaded_by": {"S": "an earlier delivery"}}
# Lambda retries a failed asynchronous event after one minute, then two more (MaximumRetryAttempts 2 by default)
ASYNC_RETRY_GAPS = ("61s", "121s")


@dataclass
class Landing:
    """One grading's files, the ids its records carry, and what the pipeline made of them."""
    token: str
    batch_keys: list[str]
    redelivered_key: str
    decoy_keys: list[str]
    unreadable_key: str
    table_problem: str = ""
    loaded: dict[str, dict] = field(default_factory=dict)
    quarantined: dict[str, list[dict]] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)  # record id → times received before it was dead-lettered
    queue_left: int = 0
    rounds: int = 0
    alerts: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{self.token}-"


def _queue_url(ctx: LabContext, name: str) -> str | None:
    try:
        return ctx.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError:
        return None


def _queue_attributes(ctx: LabContext, name: str) -> dict:
    url = _queue_url(ctx, name)
    if url is None:
        raise Fail(f"queue '{name}' does not exist")
    return ctx.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def _redrive(attributes: dict) -> dict:
    try:
        return json.loads(attributes.get("RedrivePolicy") or "{}")
    except ValueError:
        return {}


def _in_queue(ctx: LabContext, name: str) -> int:
    url = _queue_url(ctx, name)
    if url is None:
        return 0
    attributes = ctx.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))


def _drain(ctx: LabContext, name: str, token: str) -> list[dict]:
    """Every message of this grading in the queue (received and deleted); the learner's own are left alone."""
    url = _queue_url(ctx, name)
    if url is None:
        return []
    sqs, mine, seen = ctx.client("sqs"), [], set()
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=30).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return mine
        seen.update(m["MessageId"] for m in fresh)
        ours = [m for m in fresh if token in m["Body"]]
        mine += ours
        if ours:
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(ours)])


def _ids(landing: Landing, ctx: LabContext) -> list[str]:
    lines = [line for batch in ctx.dataset["batches"] for line in batch["lines"]]
    ids = {model.record_of(line, landing.prefix).get("record_id") for line in lines}
    ids |= {landing.prefix + record["record_id"] for record in ctx.dataset["redelivered"]}
    ids |= {f"{_decoy_prefix(landing, index)}{line['record']['record_id']}" for index in range(len(landing.decoy_keys)) for line in _decoy_lines(ctx)}
    return sorted(i for i in ids if isinstance(i, str) and i.startswith(landing.token))


def _loaded(ctx: LabContext, ids: list[str]) -> dict[str, dict]:
    dynamodb, held = ctx.client("dynamodb"), {}
    for start in range(0, len(ids), 100):
        request = {model.TABLE: {"Keys": [{"record_id": {"S": i}} for i in ids[start:start + 100]]}}
        while request:
            answer = dynamodb.batch_get_item(RequestItems=request)
            for item in answer["Responses"].get(model.TABLE, []):
                held[item["record_id"]["S"]] = item
            request = answer.get("UnprocessedKeys") or None
    return held


def _quarantine_objects(ctx: LabContext, token: str) -> int:
    pages = ctx.client("s3").get_paginator("list_objects_v2").paginate(Bucket=model.QUARANTINE_BUCKET)
    try:
        return sum(token in entry["Key"] for page in pages for entry in page.get("Contents", []))
    except ClientError:
        return 0


def _decoy_prefix(landing: Landing, index: int) -> str:
    return f"{landing.prefix}decoy{index}-"


def _decoy_lines(ctx: LabContext) -> list[dict]:
    return [line for line in ctx.dataset["batches"][0]["lines"] if line["kind"] == model.GOOD][:3]


def _snapshot(ctx: LabContext, landing: Landing, ids: list[str]) -> tuple:
    loaded = len(_loaded(ctx, ids)) if not landing.table_problem else 0
    return (_in_queue(ctx, model.QUEUE), loaded, _in_queue(ctx, model.DLQ), _in_queue(ctx, model.OPS_QUEUE),
            _quarantine_objects(ctx, landing.token))


def _wait_quiet(ctx: LabContext, landing: Landing, ids: list[str], started_from: tuple | None = None) -> tuple:
    """Waits until nothing the pipeline shows changes for QUIET_SECONDS (at most ROUND_SECONDS); with
    `started_from`, quiet counts only once the pipeline has shown something else (the files were just landed)."""
    deadline, last, since = time.monotonic() + ROUND_SECONDS, None, time.monotonic()
    while True:
        now = _snapshot(ctx, landing, ids)
        if now == started_from and time.monotonic() < deadline:
            time.sleep(0.3)
            continue
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= QUIET_SECONDS or time.monotonic() > deadline:
            return now
        time.sleep(0.3)


def _visibility_and_rounds(ctx: LabContext) -> tuple[int, int]:
    try:
        attributes = _queue_attributes(ctx, model.QUEUE)
    except Fail:
        return 30, 1
    receives = _redrive(attributes).get("maxReceiveCount")
    rounds = int(receives) + EXTRA_ROUNDS if receives else ROUNDS_WITHOUT_REDRIVE
    return int(attributes.get("VisibilityTimeout", 30)), min(rounds, MAX_ROUNDS)


def _put(ctx: LabContext, key: str, body: bytes) -> None:
    try:
        ctx.client("s3").put_object(Bucket=model.RAW_BUCKET, Key=key, Body=body)
    except ClientError as error:
        raise Fail(f"the grader cannot land s3://{model.RAW_BUCKET}/{key}: {error.response['Error']['Code']} (run `make lab-9` again?)") from None


def _landing(ctx: LabContext) -> Landing:
    """Lands this grading's files once per grading, runs the pipeline to rest, and records what it did."""
    cached = getattr(ctx, "_lab09_landing", None)
    if isinstance(cached, Fail):
        raise cached
    if cached is not None:
        return cached
    try:
        ctx._lab09_landing = _land_and_settle(ctx)
    except Fail as failure:
        ctx._lab09_landing = failure
        raise
    return ctx._lab09_landing


def _land_and_settle(ctx: LabContext) -> Landing:
    token = f"g{int(time.time() * 1000):x}"
    folder = f"{model.LANDING_PREFIX}{token}/"
    landing = Landing(token, [folder + batch["name"] for batch in ctx.dataset["batches"]], f"{folder}redelivered{model.LANDING_SUFFIX}",
                      [f"archive/{token}/batch-01{model.LANDING_SUFFIX}", f"{folder}batch-01{model.LANDING_SUFFIX}.tmp"],
                      f"{folder}batch-00{model.LANDING_SUFFIX}")
    redelivered = [{"kind": model.GOOD, "record": record} for record in ctx.dataset["redelivered"]]
    dynamodb = ctx.client("dynamodb")
    try:
        for line in redelivered:  # loaded once already, as if by an earlier delivery of the same message
            record = model.record_of(line, landing.prefix)
            dynamodb.put_item(TableName=model.TABLE, Item={
                "record_id": {"S": record["record_id"]}, "customer_id": {"S": record["customer_id"]},
                "amount": {"N": str(record["amount"])}, "created_at": {"S": record["created_at"]}, **MARKER})
    except ClientError as error:
        landing.table_problem = f"table '{model.TABLE}': {error.response['Error']['Code']} ({error.response['Error']['Message']})"
    ids = _ids(landing, ctx)
    before = _snapshot(ctx, landing, ids)
    for key, batch in zip(landing.batch_keys, ctx.dataset["batches"]):
        _put(ctx, key, model.render(batch["lines"], landing.prefix).encode())
    _put(ctx, landing.redelivered_key, model.render(redelivered, landing.prefix).encode())
    for index, key in enumerate(landing.decoy_keys):
        _put(ctx, key, model.render(_decoy_lines(ctx), _decoy_prefix(landing, index)).encode())
    # a producer that gzipped a batch without saying so: no validator can read it as text
    _put(ctx, landing.unreadable_key, gzip.compress(model.render(_decoy_lines(ctx), f"{landing.prefix}gz-").encode()))

    visibility, rounds = _visibility_and_rounds(ctx)
    started_from = before
    for landing.rounds in range(1, rounds + 1):
        queued, *_ = _wait_quiet(ctx, landing, ids, started_from)
        started_from = None
        if not queued:
            break
        ctx.admin("clock", {"action": "advance", "by": f"{visibility + 1}s"})  # messages waiting for a retry come back
    landing.queue_left = _in_queue(ctx, model.QUEUE)
    # the unreadable file's attempts: Lambda retries an asynchronous event after one and two minutes
    for gap in ASYNC_RETRY_GAPS:
        ctx.admin("clock", {"action": "advance", "by": gap})
        _wait_quiet(ctx, landing, ids)

    if not landing.table_problem:
        landing.loaded = _loaded(ctx, ids)
    for message in _drain(ctx, model.DLQ, token):
        try:
            record_id = json.loads(message["Body"]).get("record_id")
        except (ValueError, AttributeError):
            continue
        landing.dead[record_id] = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0))
    landing.alerts = [message["Body"] for message in _drain(ctx, model.OPS_QUEUE, token)]
    s3 = ctx.client("s3")
    for key in [*landing.batch_keys, *landing.decoy_keys, landing.redelivered_key]:
        try:
            text = s3.get_object(Bucket=model.QUARANTINE_BUCKET, Key=key)["Body"].read().decode()
        except ClientError:
            continue
        entries = []
        for raw in text.splitlines():
            try:
                entries.append(json.loads(raw))
            except ValueError:
                raise Fail(f"s3://{model.QUARANTINE_BUCKET}/{key}: a line is not a JSON object with line and reason: {raw[:80]}") from None
        landing.quarantined[key] = entries
    return landing


def _where(landing: Landing, record_id: str | None) -> str:
    """Where a record ended up, for a message about one that is not where it should be."""
    if record_id in landing.loaded:
        return "it is in the table"
    if record_id in landing.dead:
        return f"it is in '{model.DLQ}' after {landing.dead[record_id]} receives"
    if landing.queue_left:
        return f"'{model.QUEUE}' still holds {landing.queue_left} messages after {landing.rounds} rounds of retries"
    return "it is in neither the table nor the DLQ"


def _lines(ctx: LabContext, landing: Landing, kinds: tuple[str, ...]):
    """(key, line number, line, record id) of every line of these kinds in this grading's batches."""
    for key, batch in zip(landing.batch_keys, ctx.dataset["batches"]):
        for number, line in enumerate(batch["lines"], start=1):
            if line["kind"] in kinds:
                yield key, number, line, model.record_of(line, landing.prefix).get("record_id")


def _table_ready(landing: Landing) -> None:
    if landing.table_problem:
        raise Fail(landing.table_problem)


@check("L09-01", "The raw bucket sends its events to EventBridge", points=1, task="1.1",
       hints=("S3 sends every event of a bucket to EventBridge's default bus once the bucket's notification configuration turns EventBridge on; rules then pick what they want.",
              "PutBucketNotificationConfiguration on dea-ingest-raw with an EventBridgeConfiguration (an empty object).",
              "s3.put_bucket_notification_configuration(Bucket='dea-ingest-raw', NotificationConfiguration={'EventBridgeConfiguration': {}})"),
       docs=f"{DOCS}/AmazonS3/latest/userguide/enable-event-notifications-eventbridge.html")
def bucket_to_eventbridge(ctx: LabContext) -> str:
    try:
        configuration = ctx.client("s3").get_bucket_notification_configuration(Bucket=model.RAW_BUCKET)
    except ClientError as error:
        raise Fail(f"bucket '{model.RAW_BUCKET}': {error.response['Error']['Code']}") from None
    if "EventBridgeConfiguration" not in configuration:
        raise Fail(f"bucket '{model.RAW_BUCKET}' does not send its events to EventBridge, so no rule ever sees a file land")
    return f"bucket '{model.RAW_BUCKET}' sends its events to EventBridge"


@check("L09-02", "The rule takes landing/*.jsonl and nothing else", points=2, task="1.3",
       hints=("An event pattern is a filter on the event's fields: the bucket name, and the object key by prefix, suffix or wildcard; what it does not exclude, the validator gets.",
              "PutRule EventPattern: source aws.s3, detail-type Object Created, detail.bucket.name, and detail.object.key limited to landing/ and .jsonl (a wildcard does both).",
              "events.put_rule(Name='dea-ingest-landing', EventPattern=json.dumps({'source': ['aws.s3'], 'detail-type': ['Object Created'], "
              "'detail': {'bucket': {'name': ['dea-ingest-raw']}, 'object': {'key': [{'wildcard': 'landing/*.jsonl'}]}}}))"),
       docs=f"{DOCS}/eventbridge/latest/userguide/eb-create-pattern-operators.html")
def rule_takes_landing_only(ctx: LabContext) -> str:
    landing = _landing(ctx)
    reached = [key for key in landing.batch_keys if key in landing.quarantined] or [
        record_id for *_, record_id in _lines(ctx, landing, (model.GOOD,)) if record_id in landing.loaded]
    if not reached:
        raise Fail(f"none of the grader's files under s3://{model.RAW_BUCKET}/{model.LANDING_PREFIX} reached the validator: nothing was loaded or quarantined")
    for index, key in enumerate(landing.decoy_keys):
        taken = [r for r in [*landing.loaded, *landing.dead] if r.startswith(_decoy_prefix(landing, index))]
        if taken or key in landing.quarantined:
            raise Fail(f"s3://{model.RAW_BUCKET}/{key} was validated though it is not a landing/*.jsonl object "
                       f"({len(taken)} of its records went on to the queue): the rule lets it through")
    return f"objects under {model.LANDING_PREFIX} ending {model.LANDING_SUFFIX} are validated; {', '.join(landing.decoy_keys)} were left alone"


@check("L09-03", "Every valid record is loaded, whole", points=3, task="1.1",
       hints=("The validator passes each valid line on as one message; the loader turns each message into one item keyed by record_id, with every field and amount as a Number.",
              "Validator: SendMessageBatch (10 entries a call) to dea-ingest-records. Loader: PutItem into dea-ingest-records with record_id, customer_id, amount (N), created_at.",
              "dynamodb.put_item(TableName='dea-ingest-records', Item={'record_id': {'S': r['record_id']}, 'customer_id': {'S': r['customer_id']}, "
              "'amount': {'N': str(r['amount'])}, 'created_at': {'S': r['created_at']}}, ConditionExpression='attribute_not_exists(record_id)')"),
       docs=f"{DOCS}/lambda/latest/dg/with-sqs.html")
def valid_records_loaded(ctx: LabContext) -> str:
    landing = _landing(ctx)
    _table_ready(landing)
    count = 0
    for key, number, line, record_id in _lines(ctx, landing, (model.GOOD,)):
        item = landing.loaded.get(record_id)
        if item is None:
            raise Fail(f"record {record_id} (line {number} of s3://{model.RAW_BUCKET}/{key}) is valid but not in table '{model.TABLE}': {_where(landing, record_id)}")
        record = line["record"]
        amount = item.get("amount", {})
        if "N" not in amount or abs(float(amount["N"]) - record["amount"]) > 0.005:
            raise Fail(f"record {record_id} in '{model.TABLE}' holds amount {amount or 'nothing'}, its line says {record['amount']} (a Number)")
        for name in ("customer_id", "created_at"):
            if item.get(name) != {"S": record[name]}:
                raise Fail(f"record {record_id} in '{model.TABLE}' holds {name} {item.get(name, 'nothing')}, its line says {record[name]!r}")
        count += 1
    return f"all {count} valid records of the {len(landing.batch_keys)} landed batches are in '{model.TABLE}', whole"


@check("L09-04", "Malformed lines are quarantined with their line number and reason", points=2, task="3.1",
       hints=("A line that is not JSON, lacks a required field or has a field of the wrong type never reaches the queue: it goes to quarantine, where someone can see what was wrong and where.",
              "In the validator: json.loads each line in a try, check the four fields and their types, and PutObject the rejects to s3://dea-ingest-quarantine/<same key> as JSON lines with line (1-based) and reason.",
              "s3.put_object(Bucket='dea-ingest-quarantine', Key=key, Body=''.join(json.dumps({'line': number, 'reason': reason, 'text': line}) + '\\n' for ...))"),
       docs=f"{DOCS}/prescriptive-guidance/latest/patterns/validate-data-quality.html")
def malformed_quarantined(ctx: LabContext) -> str:
    landing = _landing(ctx)
    count = 0
    for key, number, line, record_id in _lines(ctx, landing, model.MALFORMED):
        entries = {entry.get("line"): entry for entry in landing.quarantined.get(key, []) if isinstance(entry, dict)}
        what = {model.BAD_JSON: "is not JSON", model.MISSING_FIELD: f"has no {line.get('field')}",
                model.WRONG_TYPE: f"has {line.get('field')} of the wrong type"}[line["kind"]]
        if number not in entries:
            where = f"; {_where(landing, record_id)}" if record_id in landing.loaded or record_id in landing.dead else ""
            raise Fail(f"line {number} of s3://{model.RAW_BUCKET}/{key} {what} but s3://{model.QUARANTINE_BUCKET}/{key} "
                       f"{'has no entry with that line number' if key in landing.quarantined else 'does not exist'}{where}")
        if not str(entries[number].get("reason") or "").strip():
            raise Fail(f"s3://{model.QUARANTINE_BUCKET}/{key}: the entry for line {number} gives no reason")
        if record_id in landing.loaded:
            raise Fail(f"line {number} of s3://{model.RAW_BUCKET}/{key} {what}, yet record {record_id} is in table '{model.TABLE}'")
        count += 1
    valid_lines = {number for key, number, *_ in _lines(ctx, landing, (model.GOOD, model.POISON))
                   for entry in landing.quarantined.get(key, []) if isinstance(entry, dict) and entry.get("line") == number}
    if valid_lines:
        raise Fail(f"the quarantine holds lines {sorted(valid_lines)[:5]} that are valid records")
    return f"all {count} malformed lines are in s3://{model.QUARANTINE_BUCKET}/ with their line number and a reason, and no valid one"


@check("L09-05", "A record delivered again is not loaded again", points=2, task="1.4",
       hints=("SQS and EventBridge deliver at least once: the same record can reach the loader twice, and a second write must change nothing (idempotency).",
              "PutItem with ConditionExpression attribute_not_exists(record_id); a ConditionalCheckFailedException means 'already loaded': count it as done, not as a failure.",
              "try: dynamodb.put_item(..., ConditionExpression='attribute_not_exists(record_id)') except ClientError as e: "
              "if e.response['Error']['Code'] != 'ConditionalCheckFailedException': failures.append({'itemIdentifier': message['messageId']})"),
       docs=f"{DOCS}/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html")
def redelivery_is_idempotent(ctx: LabContext) -> str:
    landing = _landing(ctx)
    _table_ready(landing)
    # valid first deliveries in the DLQ mean whole batches failed (L09-07's mistake): a redelivered record batched
    # with poison is dead-lettered then whether or not the loader took its second delivery for a failure
    batches_failed_whole = any(record_id in landing.dead for *_, record_id in _lines(ctx, landing, (model.GOOD,)))
    for record in ctx.dataset["redelivered"]:
        record_id = landing.prefix + record["record_id"]
        item = landing.loaded.get(record_id)
        if item is None:
            raise Fail(f"record {record_id} was in table '{model.TABLE}' before it arrived again in s3://{model.RAW_BUCKET}/{landing.redelivered_key}, and is gone now")
        if record_id in landing.dead and not batches_failed_whole:
            raise Fail(f"record {record_id} was already loaded when it arrived again; its second delivery was treated as a failure "
                       f"and dead-lettered after {landing.dead[record_id]} receives")
        if item.get("loaded_by") != MARKER["loaded_by"]:
            raise Fail(f"record {record_id} was already loaded when it arrived again, and the second delivery overwrote the item in '{model.TABLE}' "
                       f"(its loaded_by attribute is gone): a record is loaded as often as it is delivered")
    return f"{len(ctx.dataset['redelivered'])} records delivered a second time left their first load untouched"


@check("L09-06", "Poison records reach the dead-letter queue after a few tries", points=2, task="1.3",
       hints=("A record the loader can never write (here: an amount beyond DynamoDB's number range) must not block the queue or vanish: after maxReceiveCount receives SQS moves it to a dead-letter queue.",
              "Create dea-ingest-records-dlq first; SetQueueAttributes RedrivePolicy on dea-ingest-records names its ARN and maxReceiveCount; the loader reports the message failed, the mapping has FunctionResponseTypes ReportBatchItemFailures.",
              "sqs.set_queue_attributes(QueueUrl=url, Attributes={'RedrivePolicy': json.dumps({'deadLetterTargetArn': dlq_arn, 'maxReceiveCount': 5})})"),
       docs=f"{DOCS}/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html")
def poison_dead_lettered(ctx: LabContext) -> str:
    landing = _landing(ctx)
    count = 0
    for key, number, line, record_id in _lines(ctx, landing, (model.POISON,)):
        if record_id not in landing.dead:
            raise Fail(f"record {record_id} (line {number} of s3://{model.RAW_BUCKET}/{key}, amount {line['record']['amount']:g}) cannot be stored "
                       f"but is not in '{model.DLQ}': {_where(landing, record_id)}")
        count += 1
    return f"all {count} poison records are in '{model.DLQ}', after {min(landing.dead.values(), default=0)} or more receives"


@check("L09-07", "Only poison is dead-lettered: the loader reports partial batch failures", points=3, task="1.4",
       hints=("A batch holds valid records beside poison ones; if the whole batch counts as failed, the valid records are retried with it and end in the DLQ too.",
              "Return {'batchItemFailures': [{'itemIdentifier': messageId}, ...]} for the failed records only, and create the mapping with FunctionResponseTypes=['ReportBatchItemFailures'] so Lambda reads it.",
              "awslambda.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName='dea-ingest-load', BatchSize=10, FunctionResponseTypes=['ReportBatchItemFailures'])"),
       docs=LAMBDA_SQS_DOCS)
def only_poison_dead_lettered(ctx: LabContext) -> str:
    landing = _landing(ctx)
    good = [(key, number, record_id) for key, number, _, record_id in _lines(ctx, landing, (model.GOOD,)) if record_id in landing.dead]
    if good:
        key, number, record_id = good[0]
        raise Fail(f"{len(good)} valid records are in '{model.DLQ}' (e.g. {record_id}, line {number} of s3://{model.RAW_BUCKET}/{key}, "
                   f"received {landing.dead[record_id]} times): their batches were retried whole with the poison in them")
    if not any(record_id in landing.loaded for *_, record_id in _lines(ctx, landing, (model.GOOD,))):
        raise Fail(f"no valid record of this grading reached table '{model.TABLE}', so no batch shows how the loader fails (see L09-03)")
    return f"'{model.DLQ}' holds the {len(landing.dead)} poison records and none of the valid ones beside them"


def _alerted(landing: Landing, key: str) -> bool:
    return any(key in alert or json.dumps(key)[1:-1] in alert for alert in landing.alerts)


@check("L09-08", "Quarantined records raise an alert through SNS", points=2, task="1.3",
       hints=("Operators learn of quarantined records from an alert: the validator publishes to an SNS topic, and the topic fans out to its subscribers, here the queue dea-ingest-ops.",
              "CreateTopic dea-ingest-alerts; Subscribe it with Protocol sqs to dea-ingest-ops (a queue policy lets the topic send); the validator Publishes a message naming the object's key.",
              "sns.subscribe(TopicArn=topic_arn, Protocol='sqs', Endpoint=ops_queue_arn); in the validator: sns.publish(TopicArn=TOPIC_ARN, Message=json.dumps({'source': f's3://{bucket}/{key}', 'quarantined': n}))"),
       docs=f"{DOCS}/sns/latest/dg/sns-sqs-as-subscriber.html")
def quarantine_alerts(ctx: LabContext) -> str:
    landing = _landing(ctx)
    silent = [key for key in landing.batch_keys if not _alerted(landing, key)]
    if silent:
        raise Fail(f"{len(silent)} of {len(landing.batch_keys)} landed batches had malformed lines, but no message in queue '{model.OPS_QUEUE}' "
                   f"names them (e.g. {silent[0]}; {len(landing.alerts)} alerts of this grading arrived)")
    return f"each of the {len(landing.batch_keys)} batches with quarantined lines raised an alert that reached '{model.OPS_QUEUE}'"


@check("L09-09", "A file the validator cannot read raises an alert", points=2, task="3.1",
       hints=("EventBridge invokes the validator asynchronously; when every attempt fails (here: a gzipped batch that is not text), Lambda can send the event to an on-failure destination, such as the alerts topic.",
              "PutFunctionEventInvokeConfig on dea-ingest-validate: DestinationConfig OnFailure names the SNS topic (MaximumRetryAttempts as you like).",
              "awslambda.put_function_event_invoke_config(FunctionName='dea-ingest-validate', MaximumRetryAttempts=2, DestinationConfig={'OnFailure': {'Destination': topic_arn}})"),
       docs=f"{DOCS}/lambda/latest/dg/invocation-async-retain-records.html")
def unreadable_file_alerts(ctx: LabContext) -> str:
    landing = _landing(ctx)
    if not _alerted(landing, landing.unreadable_key):
        raise Fail(f"s3://{model.RAW_BUCKET}/{landing.unreadable_key} is gzip, not text; after every attempt to validate it, "
                   f"no message in queue '{model.OPS_QUEUE}' names it, so nobody hears of the lost batch")
    return f"the unreadable s3://{model.RAW_BUCKET}/{landing.unreadable_key} raised an alert that reached '{model.OPS_QUEUE}'"


@check("L09-10", "The queue gives the loader time and tries before dead-lettering", points=1, task="3.1",
       hints=("Lambda's SQS guide: a visibility timeout of at least six times the function's timeout (so a batch still running is not handed out again), and a maxReceiveCount of at least 5 (so a throttled message is not dead-lettered at once).",
              "GetFunctionConfiguration Timeout of dea-ingest-load; SetQueueAttributes VisibilityTimeout and RedrivePolicy.maxReceiveCount on dea-ingest-records.",
              "sqs.set_queue_attributes(QueueUrl=url, Attributes={'VisibilityTimeout': str(6 * loader_timeout), 'RedrivePolicy': json.dumps({'deadLetterTargetArn': dlq_arn, 'maxReceiveCount': 5})})"),
       docs=LAMBDA_SQS_DOCS)
def queue_settings(ctx: LabContext) -> str:
    try:
        timeout = ctx.client("lambda").get_function_configuration(FunctionName=model.LOADER)["Timeout"]
    except ClientError:
        raise Fail(f"function '{model.LOADER}' does not exist") from None
    attributes = _queue_attributes(ctx, model.QUEUE)
    visibility = int(attributes.get("VisibilityTimeout", 30))
    if visibility < VISIBILITY_PER_TIMEOUT * timeout:
        raise Fail(f"queue '{model.QUEUE}' hides a received message for {visibility} s, function '{model.LOADER}' may run {timeout} s: "
                   f"less than {VISIBILITY_PER_TIMEOUT} times over, a batch can come back while its first run still writes it")
    receives = _redrive(attributes).get("maxReceiveCount")
    if receives is None:
        raise Fail(f"queue '{model.QUEUE}' has no redrive policy: a message that always fails is retried until it expires")
    if int(receives) < LEAST_RECEIVE_COUNT:
        raise Fail(f"queue '{model.QUEUE}' dead-letters a message after {receives} receives, fewer than {LEAST_RECEIVE_COUNT}: a throttled valid record can end in the DLQ")
    return f"queue '{model.QUEUE}': visibility {visibility} s for a {timeout} s loader, dead-lettered after {receives} receives"
