"""Lab 10's raw zone: each night a store system drops CSV files of the day's sales, with the defects real feeds
have (a sale sent twice, a missing store, a quantity or price that is not a positive number). Files are made
per night index; the grader drops night k's files under the date of the k-th night it runs, so the summary
holds what a correct pipeline makes of each night: the curated sales and the daily aggregate per store.

The cleaning rules (the job must follow them; this module applies them to compute the expected result):
- a row is valid when sale_id and store are present, quantity is a whole number >= 1 and unit_price a number >= 0;
- a sale_id seen again in the same night is a re-send: only its first valid row is kept;
- amount = round(quantity * unit_price, 2).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from dealab.datasets import rng, write_bytes

RAW_BUCKET = "dea-pipeline-raw"
RAW_PREFIX = "sales/"
CURATED_BUCKET = "dea-pipeline-curated"
CURATED_PREFIX = "sales/"
DAILY_PREFIX = "daily_sales/"
NOTICES_QUEUE = "dea-pipeline-notices"
ALERTS_QUEUE = "dea-pipeline-alerts"
FIELDS = ("sale_id", "store", "sku", "quantity", "unit_price")
STORES = ("berlin", "lisbon", "madrid", "oslo", "paris", "vienna")
BAD_QUANTITIES = ("0", "-2", "two", "")
BAD_PRICES = ("n/a", "-1.50", "")


def night_folder(night: int) -> str:
    """Where night k's files wait in data/ until the grader (or the learner) drops them into the raw zone."""
    return f"nights/night-{night}"


def raw_key(date: str, file_name: str) -> str:
    """A raw file of the night `date` in the raw zone: Hive-style, so the crawler makes `night` a partition."""
    return f"{RAW_PREFIX}night={date}/{file_name}"


def is_valid(row: dict) -> bool:
    if not row.get("sale_id") or not row.get("store"):
        return False
    quantity, price = row.get("quantity", ""), row.get("unit_price", "")
    if not quantity.isdigit() or int(quantity) < 1:
        return False
    try:
        return float(price) >= 0
    except ValueError:
        return False


def cleaned(rows: list[dict]) -> dict[str, dict]:
    """sale_id → the curated sale the rules give for one night's raw rows."""
    kept: dict[str, dict] = {}
    for row in rows:
        if is_valid(row) and row["sale_id"] not in kept:
            quantity, price = int(row["quantity"]), float(row["unit_price"])
            kept[row["sale_id"]] = {"store": row["store"], "sku": row["sku"], "quantity": quantity, "unit_price": price,
                                    "amount": round(quantity * price, 2)}
    return kept


def aggregate(curated: dict[str, dict]) -> dict[str, dict]:
    """store → {sales, units, revenue} for one night's curated sales."""
    totals: dict[str, dict] = {}
    for sale in curated.values():
        store = totals.setdefault(sale["store"], {"sales": 0, "units": 0, "revenue": 0.0})
        store["sales"] += 1
        store["units"] += sale["quantity"]
        store["revenue"] += sale["amount"]
    return {store: {**values, "revenue": round(values["revenue"], 2)} for store, values in sorted(totals.items())}


def _night_rows(random, night: int, sales: int) -> list[dict]:
    rows = []
    for number in range(sales):
        row = {"sale_id": f"S{night}-{number:05d}", "store": random.choice(STORES), "sku": f"SKU-{random.randrange(100, 999)}",
               "quantity": str(random.randint(1, 5)), "unit_price": f"{random.uniform(1, 120):.2f}"}
        if random.random() < 0.06:
            defect = random.choice(("store", "quantity", "unit_price"))
            row[defect] = "" if defect == "store" else random.choice(BAD_QUANTITIES if defect == "quantity" else BAD_PRICES)
        rows.append(row)
        if random.random() < 0.05:
            rows.append(dict(row))  # the store system sent it twice
    random.shuffle(rows)
    return rows


def _csv(rows: list[dict]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()


def generate(seed: str, out_dir: Path, nights: int = 4, sales_per_night: int = 150) -> dict:
    """data/nights/night-<k>/sales-<k>-<n>.csv for each night k; the summary holds, per night, the files and
    what the pipeline must make of them."""
    random = rng(seed, "nightly-sales")
    summary = []
    for night in range(1, nights + 1):
        rows = _night_rows(random, night, sales_per_night + random.randrange(-20, 20))
        files = []
        for index in range(2):
            name = f"sales-{night}-{index}.csv"
            write_bytes(out_dir / night_folder(night) / name, _csv(rows[index::2]))
            files.append(name)
        curated = cleaned(rows)
        summary.append({"night": night, "files": files, "curated": curated, "aggregate": aggregate(curated)})
    return {"nights": summary}


def setup(ctx) -> None:
    """The raw zone and the two queues operations read (success notices, alerts); the nights' files land later."""
    s3, sqs = ctx.client("s3"), ctx.client("sqs")
    try:
        s3.create_bucket(Bucket=RAW_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for queue in (NOTICES_QUEUE, ALERTS_QUEUE):
        sqs.create_queue(QueueName=queue)
