"""Lab 02 checks: the stream, how the producer spread and retried, and what the consumer made of it.

Expected values come from the learner's seed (dealab.datasets.click_events). The last check judges the
consumer by what it does when it is interrupted: it sends fresh tranches of events and runs the learner's
consumer stopped at MAX_RECORDS, then crashed by the stack's faults (every S3 write refused, then every
checkpoint write refused), restarting it after each, and counts the events lost and duplicated.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from botocore.exceptions import ClientError

from grader.core import Fail, LabContext, check

STREAM = "clickstream"
SHARDS = 4
CHECKPOINTS = "clickstream-checkpoints"
RAW_BUCKET = "dea-stream-raw"
QUARANTINE_BUCKET = "dea-stream-quarantine"
RAW_KEY = re.compile(r"^events/dt=(\d{4}-\d{2}-\d{2})/[^/]+$")
# Per-shard record counts may exceed the mean by this factor at most (an even key stays within a few %).
SKEW_BOUND = 1.2
# The restart check's own events: marked so the other checks can tell them from the learner's dataset.
RESTART_PREFIX = "restart-check-"
RESTART_EVENTS = 1200
RESTART_FIRST_RUN_LIMIT = 400
# Events sent before each crash run: enough to fill a batch on every shard.
FAULT_EVENTS = 400
# Malformed records in each tranche, spread evenly over the shards' hash-key ranges.
MALFORMED_PER_TRANCHE = 8
# What each crash run refuses, every attempt: the raw zone's writes, then the checkpoint table's writes.
RAW_WRITES = ("s3:PutObject", "s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload")
CHECKPOINT_WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:TransactWriteItems")
CLEAN_RUN_SECONDS = 150
# A consumer that retries forever under a fault is killed after this long, which is a crash like any other.
FAULT_RUN_SECONDS = 30
KINESIS_DOCS = "https://docs.aws.amazon.com/streams/latest/dev"


def _stream_records(ctx: LabContext) -> dict[str, list[dict]]:
    """Every record in every shard of the stream, oldest first."""
    kinesis = ctx.client("kinesis")
    try:
        shards = kinesis.list_shards(StreamName=STREAM)["Shards"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            raise Fail(f"stream {STREAM} does not exist") from None
        raise
    records = {}
    for shard in shards:
        iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records[shard["ShardId"]] = []
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            records[shard["ShardId"]] += response["Records"]
            if not response["Records"]:
                break
            iterator = response.get("NextShardIterator")
    return records


def _objects(ctx: LabContext, bucket: str, prefix: str = "") -> dict[str, bytes]:
    s3 = ctx.client("s3")
    try:
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix))
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchBucket":
            raise Fail(f"bucket {bucket} does not exist") from None
        raise
    return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for page in pages for item in page.get("Contents", [])}


def _raw_events(ctx: LabContext) -> list[tuple[str, dict]]:
    """(object key, event) for every line in the raw zone's events/ prefix."""
    events = []
    for key, body in _objects(ctx, RAW_BUCKET, "events/").items():
        for number, line in enumerate(body.decode("utf-8", "replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                raise Fail(f"s3://{RAW_BUCKET}/{key} line {number} is not JSON: {line[:80]!r}") from None
            if not isinstance(event, dict):
                raise Fail(f"s3://{RAW_BUCKET}/{key} line {number} is not a JSON object")
            events.append((key, event))
    return events


def _examples(items, count: int = 3) -> str:
    items = sorted(items)
    return ", ".join(map(str, items[:count])) + (" ..." if len(items) > count else "")


def _exactly_once(found: Counter, expected: set[str], what: str) -> None:
    missing = expected - found.keys()
    repeated = {event_id for event_id, times in found.items() if times > 1}
    unexpected = found.keys() - expected
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(expected)} {what} are missing (e.g. {_examples(missing)})")
    if repeated:
        problems.append(f"{len(repeated)} landed more than once (e.g. {_examples(repeated)})")
    if unexpected:
        problems.append(f"{len(unexpected)} are not valid events of your dataset (e.g. {_examples(unexpected)})")
    if problems:
        raise Fail(f"s3://{RAW_BUCKET}/events/: " + "; ".join(problems))


@check("L02-01", "The stream has 4 provisioned shards", points=1, task="1.1",
       hints=("A provisioned stream's capacity is its shard count: each shard takes 1 MB/s or 1,000 records/s of writes. "
              "The exercise asks for a fixed capacity of 4 shards, not on-demand.",
              "kinesis create_stream with ShardCount and StreamModeDetails; describe_stream_summary shows the mode and the open shards.",
              "create_stream(StreamName='clickstream', ShardCount=4, StreamModeDetails={'StreamMode': 'PROVISIONED'})."),
       docs=f"{KINESIS_DOCS}/how-do-i-size-a-stream.html")
def stream_configuration(ctx: LabContext) -> str:
    try:
        summary = ctx.client("kinesis").describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            raise Fail(f"stream {STREAM} does not exist") from None
        raise
    mode = summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
    if summary["StreamStatus"] != "ACTIVE":
        raise Fail(f"stream {STREAM} is {summary['StreamStatus']}, not ACTIVE")
    if mode != "PROVISIONED" or summary["OpenShardCount"] != SHARDS:
        raise Fail(f"stream {STREAM} is {mode} with {summary['OpenShardCount']} open shards; expected PROVISIONED with {SHARDS}, the capacity the exercise sizes for")
    return f"stream {STREAM} is ACTIVE, PROVISIONED, with {SHARDS} open shards"


@check("L02-02", "Partition keys spread the load over the shards", points=2, task="1.1",
       hints=("The partition key picks the shard (MD5 of the key over the hash-key ranges): a key shared by much of the "
              "traffic makes one shard run hot while the others idle.",
              "PutRecords' PartitionKey per entry: three bot users send a third of the events, so a key per user is "
              "skewed; a key unique per event spreads evenly.",
              "put_records(StreamName='clickstream', Records=[{'Data': line, 'PartitionKey': event['event_id']} for ...])."),
       docs=f"{KINESIS_DOCS}/key-concepts.html#partition-key")
def shard_spread(ctx: LabContext) -> str:
    counts = {shard: len(records) for shard, records in _stream_records(ctx).items()}
    total = sum(counts.values())
    if not total:
        raise Fail(f"stream {STREAM} holds no records")
    mean = total / len(counts)
    busiest = max(counts, key=counts.get)
    shown = ", ".join(f"{shard[-3:]}: {count}" for shard, count in sorted(counts.items()))
    if counts[busiest] > SKEW_BOUND * mean:
        raise Fail(f"stream {STREAM}: {busiest} holds {counts[busiest]} records, {counts[busiest] / mean:.2f}x the mean of {mean:.0f} "
                   f"(at most {SKEW_BOUND}x allowed), so it throttles first while others idle; per shard {shown}")
    return f"stream {STREAM}: {total} records, busiest shard {counts[busiest] / mean:.2f}x the mean ({shown})"


@check("L02-03", "Every valid event landed in the raw zone exactly once", points=3, task="1.1",
       hints=("PutRecords succeeds or fails entry by entry inside an HTTP 200: a producer that does not look at each "
              "entry loses the failed ones. The source also repeats some events.",
              "Read FailedRecordCount and the ErrorCode of each entry of the response's Records; resend only those "
              "entries, with backoff; skip event ids already sent.",
              "pending = [rec for rec, res in zip(pending, response['Records']) if 'ErrorCode' in res], in a loop "
              "until pending is empty, sleeping a little longer each round."),
       docs=f"{KINESIS_DOCS}/kinesis-using-sdk-java-add-data-to-stream.html#kinesis-using-sdk-java-putrecords")
def raw_exactly_once(ctx: LabContext) -> str:
    expected = set(ctx.dataset["valid_events"])
    found = Counter(str(event.get("event_id")) for _, event in _raw_events(ctx)
                    if not str(event.get("event_id")).startswith(RESTART_PREFIX))
    _exactly_once(found, expected, "valid events")
    return f"s3://{RAW_BUCKET}/events/ holds each of the {len(expected)} valid events exactly once"


@check("L02-04", "Raw events are newline-delimited JSON under events/dt=YYYY-MM-DD/ of their own date", points=2, task="1.1",
       hints=("Hive-style partitions (dt=...) let queries skip data; an event belongs to the day it happened, not the "
              "day it was processed.",
              "Group each batch's valid events by the date of their ts, one newline-delimited JSON object per day.",
              "by_day[json.loads(line)['ts'][:10]].append(line); then put_object(Bucket='dea-stream-raw', "
              "Key=f'events/dt={day}/{shard_id}-{first_sequence}.jsonl', Body='\\n'.join(lines) + '\\n')."),
       docs="https://docs.aws.amazon.com/athena/latest/ug/partitions.html")
def raw_layout(ctx: LabContext) -> str:
    events = _raw_events(ctx)
    if not events:
        raise Fail(f"s3://{RAW_BUCKET}/events/ is empty")
    keys = {key for key, _ in events}
    for key, event in events:
        match = RAW_KEY.match(key)
        if not match:
            raise Fail(f"s3://{RAW_BUCKET}/{key} is not under events/dt=YYYY-MM-DD/")
        if not str(event.get("ts", "")).startswith(match.group(1)):
            raise Fail(f"s3://{RAW_BUCKET}/{key}: event {event.get('event_id')} happened at {event.get('ts')}, not on {match.group(1)}")
    days = sorted({RAW_KEY.match(key).group(1) for key in keys})
    return f"s3://{RAW_BUCKET}/events/: {len(events)} events in {len(keys)} objects over dt={', dt='.join(days)}"


def _quarantined(ctx: LabContext) -> Counter:
    """How many times each raw record was quarantined; a line without reason or raw fails the check reading it."""
    found: Counter = Counter()
    for key, body in _objects(ctx, QUARANTINE_BUCKET).items():
        for line in body.decode("utf-8", "replace").splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                raise Fail(f"s3://{QUARANTINE_BUCKET}/{key}: a line is not JSON: {line[:80]!r}") from None
            if not isinstance(entry, dict) or "raw" not in entry:
                raise Fail(f"s3://{QUARANTINE_BUCKET}/{key}: a line has no 'raw' record: {line[:80]!r}")
            if not str(entry.get("reason") or "").strip():
                raise Fail(f"s3://{QUARANTINE_BUCKET}/{key}: record {entry['raw'][:60]!r} has no reason")
            found[entry["raw"]] += 1
    return found


@check("L02-05", "Malformed records are quarantined once each, with the reason", points=2, task="3.4",
       hints=("A quarantine zone keeps every record that failed validation, exactly as received and with why, so it "
              "can be inspected and replayed instead of silently dropped.",
              "Validate each record (JSON object, event_id, user_id, a known event_type, an ISO-8601 ts); write the "
              "bad ones as JSON lines with a reason and the raw text to dea-stream-quarantine.",
              "json.dumps({'reason': problem, 'raw': line}) per bad record; put_object(Bucket='dea-stream-quarantine', "
              "Key=f'events/{shard_id}-{first_sequence}.jsonl', Body=...)."),
       docs="https://docs.aws.amazon.com/prescriptive-guidance/latest/defining-bucket-names-data-lakes/data-layer-definitions.html")
def quarantine(ctx: LabContext) -> str:
    expected = Counter(item["raw"] for item in ctx.dataset["malformed"])
    found = Counter({raw: times for raw, times in _quarantined(ctx).items() if RESTART_PREFIX not in raw})
    missing = expected.keys() - found.keys()
    repeated = [raw for raw in expected if found[raw] > expected[raw]]
    wrongly = found.keys() - expected.keys()
    if missing or repeated or wrongly:
        raise Fail(f"s3://{QUARANTINE_BUCKET}: {len(missing)} of {len(expected)} malformed records missing, "
                   f"{len(repeated)} quarantined more than once, {len(wrongly)} records there are not malformed"
                   + (f" (e.g. {next(iter(wrongly))[:60]!r})" if wrongly else ""))
    return f"s3://{QUARANTINE_BUCKET} holds the {len(expected)} malformed records once each, each with a reason"


@check("L02-06", "The checkpoint table holds each shard's last sequence number", points=2, task="1.1",
       hints=("Kinesis does not remember what a consumer read: the consumer keeps its own lease table (the KCL uses "
              "DynamoDB), one item per shard with the last sequence number it processed.",
              f"dynamodb create_table for {CHECKPOINTS} with shard_id (S) as its only HASH key; put_item after each batch.",
              f"put_item(TableName='{CHECKPOINTS}', Item={{'shard_id': {{'S': shard_id}}, "
              "'sequence_number': {'S': records[-1]['SequenceNumber']}})."),
       docs=f"{KINESIS_DOCS}/shared-throughput-kcl-consumers.html#shared-throughput-kcl-consumers-leasetable")
def checkpoints(ctx: LabContext) -> str:
    dynamodb = ctx.client("dynamodb")
    try:
        table = dynamodb.describe_table(TableName=CHECKPOINTS)["Table"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            raise Fail(f"table {CHECKPOINTS} does not exist") from None
        raise
    schema = [(key["AttributeName"], key["KeyType"]) for key in table["KeySchema"]]
    if schema != [("shard_id", "HASH")]:
        raise Fail(f"table {CHECKPOINTS} has key {schema}; expected shard_id as its only (HASH) key")
    items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=CHECKPOINTS, ConsistentRead=True) for item in page["Items"]]
    saved = {item["shard_id"]["S"]: item.get("sequence_number", {}).get("S") for item in items}
    stream = _stream_records(ctx)
    for shard, records in sorted(stream.items()):
        last = records[-1]["SequenceNumber"] if records else None
        if last and saved.get(shard) != last:
            raise Fail(f"table {CHECKPOINTS}: shard {shard} is checkpointed at {saved.get(shard)!r}, but its last record is {last}, "
                       "so a restart would not resume where the consumer stopped")
    unknown = saved.keys() - stream.keys()
    if unknown:
        raise Fail(f"table {CHECKPOINTS} has checkpoints for shards the stream does not have: {_examples(unknown)}")
    return f"table {CHECKPOINTS} holds the last sequence number of all {len(saved)} shards"


def _consumer(ctx: LabContext) -> Path:
    return ctx.code_dir / "consumer.py"


def _consumer_env(ctx: LabContext, limit: int | None, retries: bool) -> dict[str, str]:
    env = {**os.environ, **ctx.settings.client_env()}
    env.pop("MAX_RECORDS", None)
    if limit:
        env["MAX_RECORDS"] = str(limit)
    if not retries:
        # The injected fault refuses every attempt, so the SDK's own retries would only delay the crash.
        env["AWS_MAX_ATTEMPTS"] = "1"
    return env


def _run_consumer(ctx: LabContext, script: Path, limit: int | None) -> None:
    """A clean run, which must end by itself and succeed."""
    try:
        completed = subprocess.run([sys.executable, str(script)], cwd=ctx.lab.path, env=_consumer_env(ctx, limit, True),
                                   capture_output=True, text=True, timeout=CLEAN_RUN_SECONDS)
    except subprocess.TimeoutExpired:
        raise Fail(f"{script.name} {'with MAX_RECORDS=' + str(limit) + ' ' if limit else ''}was still running after "
                   f"{CLEAN_RUN_SECONDS} s; it must stop once every shard is caught up") from None
    if completed.returncode != 0:
        tail = (completed.stdout + completed.stderr).strip().splitlines()[-1:] or ["no output"]
        raise Fail(f"{script.name} {'with MAX_RECORDS=' + str(limit) + ' ' if limit else ''}exited {completed.returncode}: {tail[0][:200]}")


def _run_consumer_into_fault(ctx: LabContext, script: Path, failing: tuple[str, ...]) -> None:
    """A run while every call in `failing` is refused: the consumer may crash, stop or be killed; all three are
    what happens to consumers in production, and the next run must make good on them."""
    learners_rules = {rule["target"]: rule["spec"] for rule in ctx.admin("faults").get("rules", []) if rule["target"] in failing}
    ctx.admin("faults", {"action": "set", "rules": [f"{target} rate=1 error=internal" for target in failing]})
    try:
        subprocess.run([sys.executable, str(script)], cwd=ctx.lab.path, env=_consumer_env(ctx, None, False),
                       capture_output=True, text=True, timeout=FAULT_RUN_SECONDS)
    except subprocess.TimeoutExpired:
        pass  # killed mid-run: a crash like any other
    finally:
        ctx.admin("faults", {"action": "clear", "targets": list(failing)})
        if learners_rules:  # the learner's own rules on these calls, as they were
            ctx.admin("faults", {"action": "set", "rules": list(learners_rules.values())})


def _send_tranche(ctx: LabContext, valid_events: dict[str, str], count: int, label: str) -> tuple[set[str], set[str]]:
    """`count` fresh valid events dated within the dataset's days, and a few malformed records spread over the
    whole hash-key range so every shard's next batch holds some (retrying any entries the faults fail).
    Returns the valid events' ids and the malformed records' text."""
    days = sorted(set(valid_events.values()))
    kinesis = ctx.client("kinesis")
    events = []
    for number in range(count):
        event_id = f"{RESTART_PREFIX}{label}-{uuid.uuid4()}"
        events.append({"event_id": event_id, "user_id": f"u{number:05d}", "session_id": "s-restart", "event_type": "click",
                       "page": "/", "device": "web", "ts": f"{days[number % len(days)]}T12:00:00.000Z"})
    pending = [{"Data": json.dumps(event).encode(), "PartitionKey": event["event_id"]} for event in events]
    malformed = [json.dumps({"event_id": f"{RESTART_PREFIX}{label}-bad-{uuid.uuid4()}", "user_id": "u-restart",
                             "event_type": "teleport", "ts": f"{days[0]}T12:00:00.000Z"}) for _ in range(MALFORMED_PER_TRANCHE)]
    pending += [{"Data": line.encode(), "PartitionKey": "malformed", "ExplicitHashKey": str((2 * number + 1) * 2**128 // (2 * len(malformed)))}
                for number, line in enumerate(malformed)]
    for start in range(0, len(pending), 500):
        batch = pending[start:start + 500]
        for _ in range(20):
            results = kinesis.put_records(StreamName=STREAM, Records=batch)["Records"]
            batch = [record for record, result in zip(batch, results) if "ErrorCode" in result]
            if not batch:
                break
            time.sleep(0.05)
        else:
            raise Fail(f"the grader could not put its restart events into {STREAM}")
    return {event["event_id"] for event in events}, set(malformed)


def _landed(ctx: LabContext) -> Counter:
    return Counter(str(event.get("event_id")) for _, event in _raw_events(ctx))


def _quarantined_leniently(ctx: LabContext) -> Counter:
    """How many times each record was quarantined, reading only `raw` (L02-05 judges the lines' form)."""
    found: Counter = Counter()
    for body in _objects(ctx, QUARANTINE_BUCKET).values():
        for line in body.decode("utf-8", "replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("raw"), str):
                found[entry["raw"]] += 1
    return found


def _judge_restart(ctx: LabContext, before: Counter, tranche: tuple[set[str], set[str]], situation: str, lesson: str) -> None:
    """Every valid event of `tranche` landed once, none that had landed before `situation` landed again, and
    none of its malformed records was quarantined twice (L02-05 judges records never quarantined)."""
    after = _landed(ctx)
    valid, malformed = tranche
    missing = {event_id for event_id in valid if not after[event_id]}
    repeated = {event_id for event_id in valid if after[event_id] > 1}
    rewritten = {event_id for event_id, times in before.items() if after[event_id] > times}
    quarantined = _quarantined_leniently(ctx)
    requarantined = {raw for raw in malformed if quarantined[raw] > 1}
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(valid)} new events were lost (e.g. {_examples(missing)})")
    if repeated or rewritten:
        problems.append(f"{len(repeated | rewritten)} events landed twice (e.g. {_examples(repeated | rewritten)})")
    if requarantined:
        problems.append(f"{len(requarantined)} malformed records were quarantined twice in s3://{QUARANTINE_BUCKET}")
    if problems:
        raise Fail(f"s3://{RAW_BUCKET}/events/ after {situation} and a restart: " + "; ".join(problems) + f"; {lesson}")


@check("L02-07", "A consumer stopped or crashed mid-stream resumes without losing or repeating events", points=3, task="1.1",
       hints=("Delivery from Kinesis is at least once: a consumer can die between writing a batch and recording its "
              "checkpoint, so the restart must neither skip nor duplicate that batch. Read how KCL applications handle "
              "duplicate records and why the checkpoint comes last.",
              "Resume each shard with get_shard_iterator(ShardIteratorType='AFTER_SEQUENCE_NUMBER') from the stored "
              "checkpoint; save the checkpoint (put_item on the checkpoint table) only after the batch's put_object calls "
              "succeeded; derive object keys from the records themselves, never from uuid4() or the clock.",
              "Per batch: key = f\"events/dt={day}/{shard_id}-{records[0]['SequenceNumber']}.jsonl\"; s3.put_object(...) for "
              "every day, then dynamodb.put_item(TableName='clickstream-checkpoints', Item={'shard_id': {'S': shard_id}, "
              "'sequence_number': {'S': records[-1]['SequenceNumber']}}). The grader runs the consumer with MAX_RECORDS=400, "
              "with S3 writes refused, and with checkpoint writes refused, restarting it after each."),
       docs=f"{KINESIS_DOCS}/kinesis-record-processor-duplicates.html", timeout=400)
def restart(ctx: LabContext) -> str:
    script = _consumer(ctx)
    if not script.exists():
        raise Fail(f"there is no consumer at {script}")
    _stream_records(ctx)  # fails plainly when there is no stream yet
    valid_events = ctx.dataset["valid_events"]

    # 1. A clean stop at a batch boundary (MAX_RECORDS), then a restart.
    before = _landed(ctx)
    tranche = _send_tranche(ctx, valid_events, RESTART_EVENTS, "stop")
    _run_consumer(ctx, script, RESTART_FIRST_RUN_LIMIT)
    landed = _landed(ctx)
    if tranche[0] <= landed.keys():
        raise Fail(f"{script.name} with MAX_RECORDS={RESTART_FIRST_RUN_LIMIT} read all {RESTART_EVENTS} new events; "
                   "it must stop after MAX_RECORDS records so a restart can be tested")
    if not tranche[0] & landed.keys():
        raise Fail(f"{script.name} with MAX_RECORDS={RESTART_FIRST_RUN_LIMIT} landed none of the {RESTART_EVENTS} new events: "
                   "it spent its records re-reading what it had already processed instead of resuming after its checkpoints")
    _run_consumer(ctx, script, None)
    _judge_restart(ctx, before, tranche, f"a stop at MAX_RECORDS={RESTART_FIRST_RUN_LIMIT}",
                   "a restart must resume right after the last record it checkpointed")

    # 2. A crash after reading a batch but before it is written: S3 refuses every write.
    before = _landed(ctx)
    tranche = _send_tranche(ctx, valid_events, FAULT_EVENTS, "write-fault")
    _run_consumer_into_fault(ctx, script, RAW_WRITES)
    _run_consumer(ctx, script, None)
    _judge_restart(ctx, before, tranche, "a run in which every S3 write failed",
                   "a batch whose write failed must not be checkpointed, or the restart skips it")

    # 3. A crash after a batch is written but before its checkpoint is: DynamoDB refuses every write.
    before = _landed(ctx)
    tranche = _send_tranche(ctx, valid_events, FAULT_EVENTS, "checkpoint-fault")
    _run_consumer_into_fault(ctx, script, CHECKPOINT_WRITES)
    _run_consumer(ctx, script, None)
    _judge_restart(ctx, before, tranche, "a run in which every checkpoint write failed",
                   "a batch read again after a crash must replace its own objects, not add new ones")
    return (f"{script.name} resumed exactly once after a stop at MAX_RECORDS={RESTART_FIRST_RUN_LIMIT}, a crash with S3 "
            f"writes failing and a crash with checkpoint writes failing ({RESTART_EVENTS + 2 * FAULT_EVENTS} new events, "
            "none lost, none repeated)")
