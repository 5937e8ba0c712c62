"""Lab 07's lake: a week of web-shop orders in two shapes, one raw CSV and Parquet partitioned by day."""

from __future__ import annotations

import csv
import datetime
import io
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dealab.datasets import rng, write_bytes

COLUMNS = ("order_id", "customer_id", "category", "amount", "order_date")
CATEGORIES = ("books", "electronics", "garden", "home", "sports", "toys")
LAKE_BUCKET = "dea-athena-lake"
RAW_KEY = "raw/orders/orders.csv"
PARQUET_PREFIX = "sales/"


def _orders(seed: str, days: int, rows_per_day: int) -> list[tuple]:
    random = rng(seed, "shop-orders")
    first_day = datetime.date(2024, 1, 1) + datetime.timedelta(days=random.randrange(300))
    orders = []
    for offset in range(days):
        day = first_day + datetime.timedelta(days=offset)
        for number in range(random.randint(rows_per_day * 3 // 4, rows_per_day)):
            category = random.choices(CATEGORIES, weights=(5, 3, 1, 4, 2, 2))[0]
            amount = round(random.uniform(3, 250), 2)
            orders.append((f"O{day:%Y%m%d}{number:05d}", f"C{random.randrange(1, 900):04d}", category, amount, day.isoformat()))
    return orders


def generate(seed: str, out_dir: Path, days: int, rows_per_day: int) -> dict:
    """Writes raw/orders.csv and parquet/dt=<day>/orders.parquet; returns the answers the grader expects."""
    orders = _orders(seed, days, rows_per_day)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(orders)
    write_bytes(out_dir / "raw" / "orders.csv", buffer.getvalue().encode())
    by_day: dict[str, list[tuple]] = defaultdict(list)
    for order in orders:
        by_day[order[4]].append(order)
    for day, rows in by_day.items():
        table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(COLUMNS[:4])})
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="snappy")
        write_bytes(out_dir / "parquet" / f"dt={day}" / "orders.parquet", sink.getvalue())
    revenue: dict[str, float] = defaultdict(float)
    for order in orders:
        revenue[order[2]] += order[3]
    return {
        "days": sorted(by_day),
        "rows": len(orders),
        "orders_per_day": {day: len(rows) for day, rows in sorted(by_day.items())},
        "revenue_by_category": {category: round(total, 2) for category, total in sorted(revenue.items())},
        "orders_by_category": dict(sorted(Counter(order[2] for order in orders).items())),
    }


def setup(ctx) -> None:
    """Puts the learner's data into the lake: the raw CSV and the day-partitioned Parquet."""
    s3 = ctx.client("s3")
    try:
        s3.create_bucket(Bucket=LAKE_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.upload_file(str(ctx.data_dir / "raw" / "orders.csv"), LAKE_BUCKET, RAW_KEY)
    for path in sorted((ctx.data_dir / "parquet").rglob("*.parquet")):
        key = PARQUET_PREFIX + path.relative_to(ctx.data_dir / "parquet").as_posix()
        s3.upload_file(str(path), LAKE_BUCKET, key)
