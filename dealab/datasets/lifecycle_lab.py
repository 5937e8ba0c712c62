"""Lab 04's bucket: objects of various ages, sizes and tags under logs/, raw/ and tmp/, some with many
versions, some on legal hold, and incomplete multipart uploads; and what the lab's rules must do to each.

Ages are real: seeding moves the lab clock forward between uploads (oldest first), so when it is done an
object seeded "45 days old" has a LastModified 45 days before the clock.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path

from dealab.datasets import rng, write_bytes

BUCKET = "dea-lifecycle-lab"
SMALL_OBJECT_BYTES = 128 * 1024  # S3 leaves objects under 128 KiB in their class by default
DAY = datetime.timedelta(days=1)
UTC = datetime.timezone.utc

# What the lab asks for, as data: the grader's expectations come from here.
RAW_TRANSITIONS = ((30, "STANDARD_IA"), (90, "GLACIER_IR"))
RAW_EXPIRY_DAYS = 365
TMP_EXPIRY_DAYS = 7
NONCURRENT_DAYS = 30
NONCURRENT_KEPT = 3
ABORT_UPLOAD_DAYS = 7
RETENTION_TAG = "retention"
STANDARD_RETENTION = "standard"
LEGAL_HOLD = "legal-hold"


def _ages(random, count: int, low: int, high: int) -> list[int]:
    return [random.randint(low, high) for _ in range(count)]


def generate(seed: str, out_dir: Path, raw_objects: int = 12, tmp_objects: int = 6, log_keys: int = 3, uploads: int = 3) -> dict:
    """The seeding plan for this learner: every object version (key, age in days, size, tags) and upload."""
    random = rng(seed, "lifecycle-lab")
    objects = []
    for index, age in enumerate(_ages(random, raw_objects, 0, 300)):
        size = random.choice((40_000, 90_000, 150_000, 220_000, 400_000))
        objects.append({"key": f"raw/events-{index:03d}.json", "versions": [age], "size": size, "retention": STANDARD_RETENTION})
    for index, age in enumerate(_ages(random, tmp_objects, 0, 14)):
        objects.append({"key": f"tmp/scratch-{index:03d}.tmp", "versions": [age], "size": random.randint(1_000, 50_000), "retention": STANDARD_RETENTION})
    for index in range(log_keys):
        versions = sorted(_ages(random, random.randint(4, 7), 1, 120), reverse=True)
        objects.append({"key": f"logs/app-{index}.log", "versions": sorted(set(versions), reverse=True), "size": random.randint(2_000, 30_000), "retention": STANDARD_RETENTION})
    objects.append({"key": "raw/legal-contract-001.pdf", "versions": [random.randint(100, 300)], "size": 250_000, "retention": LEGAL_HOLD})
    objects.append({"key": "tmp/legal-evidence-001.tmp", "versions": [random.randint(8, 14)], "size": 20_000, "retention": LEGAL_HOLD})
    upload_plan = [{"key": f"raw/upload-{index}.bin", "age": age} for index, age in enumerate(sorted(_ages(random, uploads, 0, 20)))]
    plan = {"bucket": BUCKET, "objects": objects, "uploads": upload_plan}
    write_bytes(out_dir / "plan.json", json.dumps(plan, indent=2).encode())
    return plan


def seed_bucket(s3, advance: Callable[[str], dict], bucket: str, plan: dict, seed: str,
                configure: Callable[[], None] | None = None) -> dict[str, list[datetime.datetime]]:
    """Creates `bucket` (versioned) and uploads the plan oldest first, moving the lab clock between ages.
    `configure` runs once the bucket exists, before anything is uploaded (the grader puts rules there), so
    rules already act while the plan is seeded. Returns when each version was written, oldest first per
    key: what must remain is judged from these, not from what the rules left."""
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if configure is not None:
        configure()
    events: list[tuple[int, str, dict]] = []
    for spec in plan["objects"]:
        for number, age in enumerate(spec["versions"]):
            events.append((age, "version", {**spec, "number": number}))
    for upload in plan["uploads"]:
        events.append((upload["age"], "upload", upload))
    events.sort(key=lambda event: -event[0])
    created: dict[str, list[datetime.datetime]] = {}
    current_age = events[0][0]
    for age, kind, spec in events:
        if age < current_age:
            advance(f"{current_age - age}d")
            current_age = age
        if kind == "upload":
            s3.create_multipart_upload(Bucket=bucket, Key=spec["key"])
            continue
        body = rng(seed, f"lifecycle-lab:{spec['key']}:{spec['number']}").randbytes(spec["size"])
        version = s3.put_object(Bucket=bucket, Key=spec["key"], Body=body, Tagging=f"{RETENTION_TAG}={spec['retention']}")["VersionId"]
        written = s3.head_object(Bucket=bucket, Key=spec["key"], VersionId=version)["LastModified"]
        created.setdefault(spec["key"], []).append(written)
    if current_age > 0:
        advance(f"{current_age}d")
    return created


def setup(ctx) -> None:
    """`lab start`: the learner's bucket, seeded with their plan."""
    seed_bucket(ctx.client("s3"), lambda by: ctx.admin("clock", {"action": "advance", "by": by}), BUCKET, ctx.dataset, ctx.seed)


# ---- what must happen -------------------------------------------------------------------------------

def due(created: datetime.datetime, days: int) -> datetime.datetime:
    """When S3 acts: `days` after `created`, rounded up to the next midnight UTC."""
    moment = created + days * DAY
    midnight = datetime.datetime.combine(moment.date(), datetime.time(), UTC)
    return midnight if midnight == moment else midnight + DAY


def expected_current(spec: dict, created: datetime.datetime, moment: datetime.datetime) -> str | None:
    """The storage class the object's current version must have at `moment`, or None once it has expired."""
    if spec["retention"] == LEGAL_HOLD:
        return "STANDARD"
    if spec["key"].startswith("tmp/"):
        return None if moment >= due(created, TMP_EXPIRY_DAYS) else "STANDARD"
    if spec["key"].startswith("raw/"):
        if moment >= due(created, RAW_EXPIRY_DAYS):
            return None
        storage_class = "STANDARD"
        if spec["size"] >= SMALL_OBJECT_BYTES:
            for days, target in RAW_TRANSITIONS:
                if moment >= due(created, days):
                    storage_class = target
        return storage_class
    return "STANDARD"


def expected_stored_class(spec: dict, created: datetime.datetime, moment: datetime.datetime) -> str:
    """The class a version is stored in at `moment`, current or not: expiry leaves it where it was."""
    if spec["key"].startswith("raw/") and spec["retention"] != LEGAL_HOLD:
        moment = min(moment, due(created, RAW_EXPIRY_DAYS) - datetime.timedelta(seconds=1))
    return expected_current(spec, created, moment) or "STANDARD"


def expected_versions(created: list[datetime.datetime], moment: datetime.datetime) -> int:
    """How many versions of a key with versions created at `created` (oldest first) must remain at `moment`."""
    newest = len(created) - 1
    kept = 1  # the current version
    for index in range(newest):
        newer_noncurrent = newest - 1 - index
        became_noncurrent = created[index + 1]
        if not (newer_noncurrent >= NONCURRENT_KEPT and moment >= due(became_noncurrent, NONCURRENT_DAYS)):
            kept += 1
    return kept


def upload_aborted(initiated: datetime.datetime, moment: datetime.datetime) -> bool:
    return moment >= due(initiated, ABORT_UPLOAD_DAYS)
