"""Lab 09's data: batches of JSON-lines payment records landing in S3, some malformed in documented ways
(a line that is not JSON, a required field missing, a field of the wrong type) and some "poison": valid by
those rules but refused by DynamoDB (an amount beyond its number range), so a loader fails on them every time.

Each line of each batch has a kind the seed decides; `render_line` writes it with any record-id prefix, so the
grader can land the same lines again under ids of its own and know what must become of each.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from dealab.datasets import rng, write_bytes

RAW_BUCKET = "dea-ingest-raw"
QUARANTINE_BUCKET = "dea-ingest-quarantine"
LANDING_PREFIX = "landing/"
LANDING_SUFFIX = ".jsonl"
TABLE = "dea-ingest-records"
QUEUE = "dea-ingest-records"
DLQ = "dea-ingest-records-dlq"
OPS_QUEUE = "dea-ingest-ops"
TOPIC = "dea-ingest-alerts"
RULE = "dea-ingest-landing"
VALIDATOR = "dea-ingest-validate"
LOADER = "dea-ingest-load"
ROLE = "dea-ingest-lambda"

REQUIRED_FIELDS = ("record_id", "customer_id", "amount", "created_at")  # amount a JSON number, the rest strings
GOOD, BAD_JSON, MISSING_FIELD, WRONG_TYPE, POISON = "good", "bad_json", "missing_field", "wrong_type", "poison"
MALFORMED = (BAD_JSON, MISSING_FIELD, WRONG_TYPE)
# DynamoDB stores numbers up to 9.99e125 in magnitude; these amounts are valid JSON numbers far beyond it.
POISON_EXPONENT = 130


def generate(seed: str, out_dir: Path, files: int = 3, records: int = 12) -> dict:
    """Writes data/batch-NN.jsonl; returns every line's kind and record, file by file, and the records the
    grader lands a second time (already loaded once) to see that a loader does not load them twice."""
    random = rng(seed, "ingest-events")
    start = datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(days=random.randrange(200))
    customers = [f"C{random.randrange(10_000, 99_999)}" for _ in range(8)]
    number = 0

    def record() -> dict:
        nonlocal number
        number += 1
        created = start + datetime.timedelta(seconds=random.randrange(86_400 * 3))
        return {"record_id": f"R{number:05d}", "customer_id": random.choice(customers),
                "amount": round(random.uniform(1, 900), 2), "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ")}

    batches = []
    for index in range(1, files + 1):
        # every batch holds each malformed kind and a poison record, the seed decides how many and where
        kinds = [BAD_JSON] * random.randint(1, 2) + [MISSING_FIELD] * random.randint(1, 2) + [WRONG_TYPE] * random.randint(1, 2) + [POISON]
        kinds += [GOOD] * max(records - len(kinds), 1)
        random.shuffle(kinds)
        batches.append({"name": f"batch-{index:02d}{LANDING_SUFFIX}", "lines": [_line(kind, record(), random) for kind in kinds]})
    redelivered = [record() for _ in range(3)]
    for batch in batches:
        write_bytes(out_dir / batch["name"], render(batch["lines"]).encode())
    return {"batches": batches, "redelivered": redelivered}


def _line(kind: str, record: dict, random) -> dict:
    line = {"kind": kind, "record": record}
    if kind == MISSING_FIELD:
        line["field"] = random.choice(REQUIRED_FIELDS)
    elif kind == WRONG_TYPE:
        line["field"] = random.choice(("customer_id", "amount", "created_at"))
    elif kind == POISON:
        record["amount"] = float(f"{random.uniform(1, 9.9):.2f}e{POISON_EXPONENT}")
    return line


def record_of(line: dict, prefix: str = "") -> dict:
    """The record a line carries, its record_id prefixed (the grader's own copies of the seed's lines)."""
    record = {**line["record"], "record_id": prefix + line["record"]["record_id"]}
    if line["kind"] == MISSING_FIELD:
        del record[line["field"]]
    elif line["kind"] == WRONG_TYPE:
        value = record[line["field"]]
        record[line["field"]] = f"{value:.2f}" if isinstance(value, float) else len(value)  # "12.50" or a number
    return record


def render_line(line: dict, prefix: str = "") -> str:
    text = json.dumps(record_of(line, prefix))
    return text[:-9] if line["kind"] == BAD_JSON else text  # cut short, as a writer that died mid-line leaves it


def render(lines: list[dict], prefix: str = "") -> str:
    return "".join(render_line(line, prefix) + "\n" for line in lines)


def setup(ctx) -> None:
    """`lab start`: the raw bucket files land in and the quarantine bucket; the rest is the learner's."""
    s3 = ctx.client("s3")
    for bucket in (RAW_BUCKET, QUARANTINE_BUCKET):
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
