"""Lab 11's running pipeline and the people around it. A Kinesis stream of payment events is read by a Lambda
function through an event source mapping; the function writes each batch to the raw bucket as JSON lines and
logs JSON lines of its own (INFO per stored batch, WARN for a currency it does not know, ERROR for a record it
cannot read, before it fails the batch). A Glue Python shell job curates the raw events into daily summaries in
the curated bucket. Three IAM users of the data team may read and delete curated data.

Per learner (the seed): the events, the one bad record among them (an amount written with a decimal comma,
which the function fails on), the records it only warns about, the team's user names, and which user the
grader acts as when it reads curated data and which when it deletes some.
"""

from __future__ import annotations

import datetime
import io
import json
import time
import zipfile
from pathlib import Path

from dealab.datasets import rng, write_bytes

STREAM = "dea-ops-events"
FUNCTION = "dea-ops-ingest"
LOG_GROUP = f"/aws/lambda/{FUNCTION}"
FUNCTION_ROLE = "dea-ops-lambda"
JOB = "dea-ops-curate"
JOB_ROLE = "dea-ops-glue"
RAW_BUCKET, CURATED_BUCKET, SCRIPTS_BUCKET, ATHENA_BUCKET = "dea-ops-raw", "dea-ops-curated", "dea-ops-scripts", "dea-ops-athena"
RAW_PREFIX, CURATED_PREFIX = "events/", "daily/"
ONCALL_QUEUE = "dea-ops-oncall"            # stands for the on-call pager: the learner subscribes it to the pages topic
FAILURES_QUEUE = "dea-ops-ingest-failures"  # the mapping's on-failure destination (records it gave up on)
TEAM_POLICY = "curated-data-steward"
KNOWN_CURRENCIES = ("EUR", "USD", "GBP")
UNKNOWN_CURRENCIES = ("XAU", "BTC", "ZZZ")
FIRST_NAMES = ("maria", "tom", "aiko", "samir", "lena", "jonas", "priya", "noah", "ines", "kofi", "elif", "mateo")
LAST_NAMES = ("lopez", "becker", "sato", "haddad", "novak", "berg", "iyer", "walsh", "costa", "mensah", "yilmaz", "rossi")
BATCH_SIZE = 10
MAX_RETRY_ATTEMPTS = 2
SETUP_WAIT_SECONDS = 90

# The function the mapping invokes (python3.12). A batch is stored whole or not at all: one record it cannot read
# fails the batch, and the mapping bisects and retries until that record stands alone and is given up on.
FUNCTION_SOURCE = '''import base64
import json
import os

import boto3

s3 = boto3.client("s3")
KNOWN_CURRENCIES = {"EUR", "USD", "GBP"}


def log(level, **fields):
    print(json.dumps({"level": level, **fields}))


def handler(event, context):
    rows = []
    for record in event["Records"]:
        payment = json.loads(base64.b64decode(record["kinesis"]["data"]))
        try:
            amount = float(payment["amount"])
        except (KeyError, ValueError) as error:
            log("ERROR", msg="record rejected", event_id=payment.get("event_id"),
                sequence_number=record["kinesis"]["sequenceNumber"], error=str(error))
            raise
        if payment["currency"] not in KNOWN_CURRENCIES:
            log("WARN", msg="unknown currency, stored as sent", event_id=payment["event_id"], currency=payment["currency"])
        rows.append({**payment, "amount": amount})
    key = "events/" + event["Records"][0]["kinesis"]["sequenceNumber"] + ".jsonl"
    s3.put_object(Bucket=os.environ["RAW_BUCKET"], Key=key, Body="\\n".join(json.dumps(row) for row in rows).encode())
    log("INFO", msg="batch stored", records=len(rows), key=key)
    return {"stored": len(rows)}
'''

# The curation job (Glue Python shell): every raw batch → one summary per day (events, amount per currency).
JOB_SOURCE = '''import json
import sys
from collections import defaultdict

import boto3
from awsglue.utils import getResolvedOptions

args = getResolvedOptions(sys.argv, ["raw_bucket", "curated_bucket"])
s3 = boto3.client("s3")
days = defaultdict(lambda: {"events": 0, "amount": defaultdict(float)})
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args["raw_bucket"], Prefix="events/"):
    for item in page.get("Contents", []):
        for line in s3.get_object(Bucket=args["raw_bucket"], Key=item["Key"])["Body"].read().decode().splitlines():
            payment = json.loads(line)
            day = days[payment["at"][:10]]
            day["events"] += 1
            day["amount"][payment["currency"]] += payment["amount"]
for date, day in sorted(days.items()):
    summary = {"date": date, "events": day["events"], "amount": {currency: round(total, 2) for currency, total in sorted(day["amount"].items())}}
    s3.put_object(Bucket=args["curated_bucket"], Key=f"daily/date={date}/summary.json", Body=json.dumps(summary).encode())
print(f"curated {len(days)} day(s)")
'''


def _payment(random, event_id: str, at: datetime.datetime, currency: str | None = None) -> dict:
    return {"event_id": event_id, "customer": f"C{random.randrange(1000, 9999)}", "amount": f"{random.uniform(2, 400):.2f}",
            "currency": currency or random.choice(KNOWN_CURRENCIES), "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")}


def events(seed: str, purpose: str, count: int, bad: int = 0, warned: int = 0) -> dict:
    """`count` payment events for one purpose (the seeded run, the grader's traffic…): `bad` of them with an amount
    the function cannot read, `warned` with a currency it only warns about. {"records", "bad", "warned"} (ids)."""
    random = rng(seed, f"ops-audit-{purpose}")
    start = datetime.datetime(2026, 1, 5, 8, 0) + datetime.timedelta(days=random.randrange(0, 40))
    records = [_payment(random, f"evt-{purpose[:1]}{random.randrange(16 ** 6):06x}", start + datetime.timedelta(minutes=3 * n))
               for n in range(count)]
    chosen = random.sample(range(count), bad + warned)
    for index in chosen[:bad]:
        whole, cents = records[index]["amount"].split(".")
        records[index]["amount"] = f"{whole},{cents}"  # a decimal comma: float() refuses it
    for index in chosen[bad:]:
        records[index]["currency"] = random.choice(UNKNOWN_CURRENCIES)
    return {"records": records, "bad": [records[i]["event_id"] for i in chosen[:bad]],
            "warned": [records[i]["event_id"] for i in chosen[bad:]]}


def team(seed: str) -> dict:
    """The data team's IAM user names; the grader reads curated data as `reader` and deletes some as `deleter`."""
    random = rng(seed, "ops-audit-team")
    names = random.sample([f"{first}.{last}" for first in FIRST_NAMES for last in LAST_NAMES], 3)
    return {"users": sorted(names), "reader": names[0], "deleter": names[1]}


def curated_objects(seed: str) -> dict[str, bytes]:
    """The curated daily summaries the lab starts with: key → body."""
    random = rng(seed, "ops-audit-curated")
    first = datetime.date(2026, 1, 1) + datetime.timedelta(days=random.randrange(0, 30))
    objects = {}
    for offset in range(6):
        date = (first + datetime.timedelta(days=offset)).isoformat()
        summary = {"date": date, "events": random.randrange(200, 900),
                   "amount": {currency: round(random.uniform(1000, 90000), 2) for currency in KNOWN_CURRENCIES}}
        objects[f"{CURATED_PREFIX}date={date}/summary.json"] = json.dumps(summary).encode()
    return objects


def generate(seed: str, out_dir: Path, records: int = 40, warned: int = 3) -> dict:
    """data/team.json (who may touch curated data) and data/curated/ (what the curated bucket starts with). The
    stream's events are not written out: the function's logs are where an operator finds what went wrong."""
    seeded = events(seed, "seeded", records, bad=1, warned=warned)
    people = team(seed)
    write_bytes(out_dir / "team.json", json.dumps({"users": people["users"], "policy": TEAM_POLICY}, indent=2).encode())
    curated = curated_objects(seed)
    for key, body in curated.items():
        write_bytes(out_dir / "curated" / key, body)
    return {"bad_event_id": seeded["bad"][0], "warned_event_ids": seeded["warned"],
            "event_ids": [record["event_id"] for record in seeded["records"]], **people, "curated_keys": sorted(curated)}


def put_events(kinesis, records: list[dict]) -> None:
    """Writes the events to the stream in order (one shard, so the mapping reads them in this order)."""
    for start in range(0, len(records), 100):
        chunk = records[start:start + 100]
        answer = kinesis.put_records(StreamName=STREAM, Records=[{"Data": json.dumps(record).encode(), "PartitionKey": record["customer"]}
                                                                for record in chunk])
        if answer.get("FailedRecordCount"):
            raise RuntimeError(f"stream {STREAM} refused {answer['FailedRecordCount']} seeded record(s)")


def _zip(name: str, source: str) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(name, source)
    return archive.getvalue()


def _role(iam, name: str, service: str, statements: list[dict]) -> str:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="pipeline", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return arn


def _bucket(s3, name: str) -> None:
    try:
        s3.create_bucket(Bucket=name)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass


def _queue_arn(sqs, name: str) -> str:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _pipeline(ctx) -> None:
    iam, s3, sqs = ctx.client("iam"), ctx.client("s3"), ctx.client("sqs")
    kinesis, awslambda, glue = ctx.client("kinesis"), ctx.client("lambda"), ctx.client("glue")
    for bucket in (RAW_BUCKET, CURATED_BUCKET, SCRIPTS_BUCKET, ATHENA_BUCKET):
        _bucket(s3, bucket)
    sqs.create_queue(QueueName=ONCALL_QUEUE)
    failures_arn = _queue_arn(sqs, FAILURES_QUEUE)
    try:
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    except kinesis.exceptions.ResourceInUseException:
        pass
    kinesis.get_waiter("stream_exists").wait(StreamName=STREAM)
    stream_arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]
    function_role = _role(iam, FUNCTION_ROLE, "lambda.amazonaws.com", [
        {"Effect": "Allow", "Action": ["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
                                       "kinesis:ListShards"], "Resource": stream_arn},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{RAW_BUCKET}/{RAW_PREFIX}*"},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": failures_arn},
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}])
    try:
        awslambda.create_function(FunctionName=FUNCTION, Runtime="python3.12", Handler="ingest.handler", Role=function_role, Timeout=30,
                                  Code={"ZipFile": _zip("ingest.py", FUNCTION_SOURCE)}, Environment={"Variables": {"RAW_BUCKET": RAW_BUCKET}})
    except awslambda.exceptions.ResourceConflictException:
        pass
    if not awslambda.list_event_source_mappings(FunctionName=FUNCTION, EventSourceArn=stream_arn)["EventSourceMappings"]:
        awslambda.create_event_source_mapping(
            FunctionName=FUNCTION, EventSourceArn=stream_arn, StartingPosition="TRIM_HORIZON", BatchSize=BATCH_SIZE,
            BisectBatchOnFunctionError=True, MaximumRetryAttempts=MAX_RETRY_ATTEMPTS,
            DestinationConfig={"OnFailure": {"Destination": failures_arn}})
    job_role = _role(iam, JOB_ROLE, "glue.amazonaws.com", [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [f"arn:aws:s3:::{RAW_BUCKET}", f"arn:aws:s3:::{RAW_BUCKET}/*",
                                                                                     f"arn:aws:s3:::{SCRIPTS_BUCKET}/*"]},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{CURATED_BUCKET}/{CURATED_PREFIX}*"}])
    s3.put_object(Bucket=SCRIPTS_BUCKET, Key="jobs/curate.py", Body=JOB_SOURCE.encode())
    definition = {"Role": job_role, "MaxCapacity": 0.0625, "MaxRetries": 0, "Timeout": 10,
                  "Command": {"Name": "pythonshell", "ScriptLocation": f"s3://{SCRIPTS_BUCKET}/jobs/curate.py", "PythonVersion": "3.9"},
                  "DefaultArguments": {"--raw_bucket": RAW_BUCKET, "--curated_bucket": CURATED_BUCKET}}
    try:
        glue.create_job(Name=JOB, **definition)
    except glue.exceptions.AlreadyExistsException:
        glue.update_job(JobName=JOB, JobUpdate=definition)


def _team(ctx, people: dict) -> None:
    iam = ctx.client("iam")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{CURATED_BUCKET}"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": f"arn:aws:s3:::{CURATED_BUCKET}/*"}]}
    for user in people["users"]:
        try:
            iam.create_user(UserName=user, Tags=[{"Key": "team", "Value": "data"}])
        except iam.exceptions.EntityAlreadyExistsException:
            pass
        iam.put_user_policy(UserName=user, PolicyName=TEAM_POLICY, PolicyDocument=json.dumps(policy))


def processed(ctx) -> int:
    """How many seeded events the function has stored in the raw bucket so far."""
    s3 = ctx.client("s3")
    stored = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=RAW_BUCKET, Prefix=RAW_PREFIX):
        for item in page.get("Contents", []):
            stored += len(s3.get_object(Bucket=RAW_BUCKET, Key=item["Key"])["Body"].read().splitlines())
    return stored


def setup(ctx) -> None:
    """`lab start`: the pipeline, the team's users and the curated data, then the seeded events run through the
    pipeline (the function fails on the bad one, the mapping gives up on it) before the learner arrives."""
    _pipeline(ctx)
    _team(ctx, team(ctx.seed))
    s3 = ctx.client("s3")
    for key, body in curated_objects(ctx.seed).items():
        s3.put_object(Bucket=CURATED_BUCKET, Key=key, Body=body)
    params = ctx.lab.dataset.get("params", {})
    seeded = events(ctx.seed, "seeded", params.get("records", 40), bad=1, warned=params.get("warned", 3))
    if processed(ctx) == 0:  # a second `lab start` does not send the events again
        put_events(ctx.client("kinesis"), seeded["records"])
    good = len(seeded["records"]) - 1
    deadline = time.monotonic() + SETUP_WAIT_SECONDS
    while processed(ctx) < good and time.monotonic() < deadline:
        time.sleep(0.5)

