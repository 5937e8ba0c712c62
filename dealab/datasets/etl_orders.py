"""Lab 06's raw orders: JSON lines in two batches, seeded with re-sent versions of orders, exact copies,
values of the wrong type and missing fields. The summary holds what a correct ETL job must produce.

The rules the job must follow (and this module applies to compute the expected result):
- a row is valid when order_id and customer_id are present, amount reads as a number >= 0, quantity as a
  whole number >= 1, and order_ts as a timestamp (yyyy-MM-ddTHH:mm:ssZ); any other row goes to quarantine;
- among the valid rows, only the latest version (greatest updated_at) of each order is kept;
- order_date is the UTC date of order_ts.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from dealab.datasets import rng, write_bytes

RAW_BUCKET = "dea-etl-raw"
RAW_PREFIX = "orders/"
STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled")
BAD_AMOUNTS = ("abc", "12,50", "", "-4.00")
BAD_QUANTITIES = ("two", "", 0, -1)
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"


def _version(random, order_id: str, customer_id: str, placed: datetime.datetime, updated: datetime.datetime) -> dict:
    amount = round(random.uniform(2, 400), 2)
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "amount": amount if random.random() < 0.7 else f"{amount:.2f}",
        "quantity": random.randint(1, 6) if random.random() < 0.8 else str(random.randint(1, 6)),
        "status": random.choice(STATUSES),
        "order_ts": placed.strftime(TIMESTAMP),
        "updated_at": updated.strftime(TIMESTAMP),
    }


def _spoil(random, row: dict) -> dict:
    """One defect: a field of the wrong type, or a missing one."""
    row = dict(row)
    defect = random.choice(("amount", "quantity", "customer_id", "order_ts"))
    if defect == "amount":
        row["amount"] = random.choice(BAD_AMOUNTS)
    elif defect == "quantity":
        row["quantity"] = random.choice(BAD_QUANTITIES)
    elif defect == "customer_id":
        del row["customer_id"]
    else:
        row["order_ts"] = random.choice(("yesterday", "", None))
    return row


def is_valid(row: dict) -> bool:
    if not row.get("order_id") or not row.get("customer_id"):
        return False
    try:
        amount = float(row.get("amount"))
        quantity = row.get("quantity")
        if isinstance(quantity, str) and not quantity.lstrip("-").isdigit():
            return False
        quantity = int(quantity)
        datetime.datetime.strptime(row.get("order_ts") or "", TIMESTAMP)
    except (TypeError, ValueError):
        return False
    return amount >= 0 and quantity >= 1


def _batch(random, first_order: int, orders: int, start_day: datetime.date, days: int) -> list[dict]:
    rows = []
    for number in range(first_order, first_order + orders):
        placed = datetime.datetime.combine(start_day + datetime.timedelta(days=random.randrange(days)), datetime.time()) + \
            datetime.timedelta(seconds=random.randrange(86400))
        order_id, customer_id = f"O-{number:06d}", f"C{random.randrange(1, 400):04d}"
        updated = placed + datetime.timedelta(minutes=random.randrange(1, 60))
        versions = [_version(random, order_id, customer_id, placed, updated)]
        for _ in range(random.choices((0, 1, 2), weights=(80, 15, 5))[0]):  # re-sent with later updates
            updated += datetime.timedelta(hours=random.randrange(1, 30))
            versions.append(dict(_version(random, order_id, customer_id, placed, updated), amount=versions[0]["amount"]))
        if random.random() < 0.05:
            versions.append(dict(random.choice(versions)))  # an exact copy
        if random.random() < 0.08:
            index = random.randrange(len(versions))
            versions[index] = _spoil(random, versions[index])
        rows.extend(versions)
    random.shuffle(rows)
    return rows


def expected_result(rows: list[dict]) -> tuple[dict[str, dict], list[dict]]:
    """(curated orders by id, quarantined rows) that the rules give for `rows`."""
    latest: dict[str, dict] = {}
    quarantined = []
    for row in rows:
        if not is_valid(row):
            quarantined.append(row)
        elif row["order_id"] not in latest or row["updated_at"] > latest[row["order_id"]]["updated_at"]:
            latest[row["order_id"]] = row
    curated = {
        order_id: {
            "customer_id": row["customer_id"],
            "amount": round(float(row["amount"]), 2),
            "quantity": int(row["quantity"]),
            "status": row["status"],
            "order_ts": row["order_ts"],
            "updated_at": row["updated_at"],
            "order_date": row["order_ts"][:10],
        }
        for order_id, row in latest.items()
    }
    return curated, quarantined


def _write_files(out_dir: Path, batch: str, rows: list[dict], files: int) -> list[str]:
    names = []
    for index in range(files):
        name = f"orders-{batch}-{index:03d}.json"
        chunk = rows[index::files]
        write_bytes(out_dir / "raw" / f"batch-{batch}" / name, "".join(json.dumps(row) + "\n" for row in chunk).encode())
        names.append(name)
    return names


def generate(seed: str, out_dir: Path, orders: int, days: int) -> dict:
    """data/raw/batch-1/*.json (uploaded at lab start) and data/raw/batch-2/*.json (the learner uploads later)."""
    random = rng(seed, "etl-orders")
    start_day = datetime.date(2024, 4, 1) + datetime.timedelta(days=random.randrange(150))
    first = _batch(random, 1, orders, start_day, days)
    second = _batch(random, orders + 1, orders // 3, start_day + datetime.timedelta(days=days), 2)
    curated, quarantined = expected_result(first + second)
    return {
        "batch_1_files": _write_files(out_dir, "1", first, 3),
        "batch_2_files": _write_files(out_dir, "2", second, 2),
        "raw_rows": len(first) + len(second),
        "curated": curated,
        "quarantined_order_ids": sorted(row.get("order_id") or "" for row in quarantined),
        "order_dates": sorted({order["order_date"] for order in curated.values()}),
    }


def setup(ctx) -> None:
    """Creates the raw bucket and uploads the first batch."""
    s3 = ctx.client("s3")
    try:
        s3.create_bucket(Bucket=RAW_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for path in sorted((ctx.data_dir / "raw" / "batch-1").glob("*.json")):
        s3.upload_file(str(path), RAW_BUCKET, RAW_PREFIX + path.name)
