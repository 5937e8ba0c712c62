"""Lab 02's and Lab 03's source: a clickstream as newline-delimited JSON, with the flaws real streams have.

About 2% of the lines are malformed (cut off, no event id, an unreadable timestamp, an unknown event type),
some events appear twice (a client resent them), and a few bot users produce far more events than anyone
else, so partitioning by user makes hot shards. The grader recomputes all of it from the learner's seed.
Lab 03 asks for the clean variant (flawed=False): every line a distinct, valid event.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from random import Random

from dealab.datasets import rng, write_bytes

SOURCE_FILE = "clickstream.jsonl"
EVENT_TYPES = ("page_view", "click", "add_to_cart", "checkout", "purchase")
EVENT_TYPE_WEIGHTS = (60, 25, 9, 4, 2)
PAGES = ("/", "/search", "/products", "/products/{sku}", "/cart", "/checkout", "/account")
DEVICES = ("web", "ios", "android")
MALFORMED_SHARE = 0.02
DUPLICATE_SHARE = 0.01
BOT_USERS = 3
BOT_SHARE = 0.3   # of all events, from the bots together
LAKE_BUCKETS = ("dea-stream-raw", "dea-stream-quarantine")
# On while the lab runs, so a producer's retry code really runs: a tenth of PutRecords entries fail.
FAULT_TARGET = "kinesis:PutRecords"
FAULT_RATE = 0.1
FIREHOSE_LAKE_BUCKET = "dea-firehose-lake"
FIREHOSE_FAULT_TARGET = "firehose:PutRecordBatch"
FIREHOSE_FAULT_RATE = 0.05


def _cut_off(event: dict, random: Random) -> str:
    line = json.dumps(event)
    return line[: random.randrange(10, len(line) - 5)]


def _without_event_id(event: dict, random: Random) -> str:
    return json.dumps({key: value for key, value in event.items() if key != "event_id"})


def _unreadable_timestamp(event: dict, random: Random) -> str:
    return json.dumps({**event, "ts": random.choice(("yesterday", "29/02/2023 25:61", "", "1700000000x"))})


def _unknown_event_type(event: dict, random: Random) -> str:
    return json.dumps({**event, "event_type": random.choice(("teleport", "PAGE VIEW", None))})


# kind of malformation → how a good event is spoilt into it
MALFORMATIONS: dict[str, Callable[[dict, Random], str]] = {
    "cut_off": _cut_off,
    "missing_event_id": _without_event_id,
    "bad_timestamp": _unreadable_timestamp,
    "unknown_event_type": _unknown_event_type,
}


def is_valid(line: str) -> bool:
    """The lab's rule for a good event: JSON with an event id, a user, a known type and an ISO-8601 time."""
    try:
        event = json.loads(line)
        datetime.datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return bool(event.get("event_id")) and bool(event.get("user_id")) and event.get("event_type") in EVENT_TYPES


def _event(random: Random, moment: datetime.datetime, user: str) -> dict:
    event_type = random.choices(EVENT_TYPES, EVENT_TYPE_WEIGHTS)[0]
    event = {
        "event_id": str(uuid.UUID(int=random.getrandbits(128), version=4)),
        "user_id": user,
        "session_id": f"s-{random.getrandbits(40):010x}",
        "event_type": event_type,
        "page": random.choice(PAGES).format(sku=f"SKU-{random.randrange(1000, 9999)}"),
        "device": random.choice(DEVICES),
        "ts": moment.isoformat(timespec="milliseconds") + "Z",
    }
    if event_type == "purchase":
        event["amount"] = round(random.uniform(5, 400), 2)
    return event


def generate(seed: str, out_dir: Path, events: int, days: int, users: int, flawed: bool = True) -> dict:
    """Writes data/clickstream.jsonl; returns the expected outcome: valid event ids, malformed lines, dates.
    With flawed=False every line is a valid, distinct event."""
    random = rng(seed, "click-events")
    start = datetime.datetime(2026, 1, 1) + datetime.timedelta(days=random.randrange(300))
    span = days * 86400
    moments = sorted(start + datetime.timedelta(milliseconds=random.randrange(span * 1000)) for _ in range(events))
    bots = [f"bot-{n}" for n in range(BOT_USERS)]
    people = [f"u{n:05d}" for n in range(users)]
    lines: list[str] = []
    valid: dict[str, str] = {}      # event id → its date
    malformed: list[dict] = []
    duplicates = 0
    for moment in moments:
        user = random.choice(bots) if random.random() < BOT_SHARE else random.choice(people)
        event = _event(random, moment, user)
        roll = random.random() if flawed else 1.0
        if roll < MALFORMED_SHARE:
            kind = random.choice(sorted(MALFORMATIONS))
            lines.append(MALFORMATIONS[kind](event, random))
            malformed.append({"kind": kind, "raw": lines[-1]})
            continue
        lines.append(json.dumps(event))
        valid[event["event_id"]] = moment.date().isoformat()
        if roll < MALFORMED_SHARE + DUPLICATE_SHARE and len(lines) > 1:
            lines.insert(len(lines) - 1 - random.randrange(min(len(lines) - 1, 40)), lines[-1])  # resent nearby
            duplicates += 1
    write_bytes(out_dir / SOURCE_FILE, ("\n".join(lines) + "\n").encode())
    return {
        "file": SOURCE_FILE,
        "records": len(lines),
        "valid_events": valid,
        "malformed": malformed,
        "duplicates": duplicates,
        "dates": sorted(set(valid.values())),
    }


def _start_lab(ctx, buckets: tuple[str, ...], fault_target: str, fault_rate: float) -> None:
    s3 = ctx.client("s3")
    for bucket in buckets:
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    seed = "".join(ctx.seed.split())
    ctx.admin("faults", {"action": "set", "rules": [f"{fault_target} rate={fault_rate} seed={seed}"]})


def setup(ctx) -> None:
    """Lab 02's `lab start`: the lake's two buckets, and faults on PutRecords so the producer's retries run."""
    _start_lab(ctx, LAKE_BUCKETS, FAULT_TARGET, FAULT_RATE)


def setup_firehose(ctx) -> None:
    """Lab 03's `lab start`: the lake bucket, and faults on PutRecordBatch so the sender's retries run."""
    _start_lab(ctx, (FIREHOSE_LAKE_BUCKET,), FIREHOSE_FAULT_TARGET, FIREHOSE_FAULT_RATE)
