"""Lab 14's warehouse data: a store dimension, two weeks of sales as gzipped CSV parts (a few lines the point of
sale garbled, which COPY must reject), a late batch for the last day, and returns the lake already catalogs."""

from __future__ import annotations

import csv
import datetime
import gzip
import io
from collections import defaultdict
from pathlib import Path

from dealab.datasets import rng, write_bytes

LAKE_BUCKET = "dea-wh-lake"
GLUE_DATABASE = "wh_lake"
RETURNS_TABLE = "returns"
STORES_KEY = "stores/stores.csv"
SALES_PREFIX = "sales/"
LATE_PREFIX = "late-sales/"
RETURNS_KEY = "returns/returns.csv"
REGIONS = ("north", "south", "east", "west")
CITIES = ("Aberdeen", "Bristol", "Cardiff", "Derby", "Exeter", "Glasgow", "Hull", "Leeds", "Luton", "Norwich",
          "Oxford", "Perth", "Reading", "Salford", "Truro", "York")
PRODUCTS = ("kettle", "toaster", "lamp", "chair", "desk", "rug", "mirror", "clock", "vase", "shelf")
STORE_COLUMNS = ("store_id", "city", "region")
SALE_COLUMNS = ("sale_id", "store_id", "sale_date", "product", "channel", "quantity", "amount")
RETURN_COLUMNS = ("return_id", "sale_id", "store_id", "return_date", "amount")
# How a point of sale garbles a line, each a line COPY cannot load into the fact table's types:
# field → what replaces it (a line with `None` loses its last two fields: too few columns)
GARBLES = (("quantity", "two"), ("amount", "12,50"), ("sale_date", "2024-02-30"), ("store_id", "S-07"), ("amount", None))


def _csv(header: tuple[str, ...], rows: list[tuple]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _stores(seed: str, count: int) -> list[tuple]:
    random = rng(seed, "warehouse-stores")
    return [(store_id, f"{random.choice(CITIES)} {store_id:02d}", REGIONS[(store_id + random.randrange(2)) % len(REGIONS)])
            for store_id in range(1, count + 1)]


def _sales(seed: str, stores: list[tuple], per_day: int, day_list: list[datetime.date]) -> list[tuple]:
    random = rng(seed, "warehouse-sales")
    sales = []
    for day in day_list:
        for _ in range(random.randint(per_day * 3 // 4, per_day)):
            quantity = random.randint(1, 4)
            sales.append((100001 + len(sales), random.choice(stores)[0], day.isoformat(), random.choice(PRODUCTS),
                          "online" if random.random() < 0.15 else "store", quantity, f"{quantity * random.randint(299, 8999) / 100:.2f}"))
    return sales


def generate(seed: str, out_dir: Path, stores: int = 48, days: int = 14, sales_per_day: int = 260, parts: int = 3,
             late_sales: int = 120, returns: int = 90) -> dict:
    """Writes stores.csv, sales/part-000N.csv.gz, late-sales/part-0000.csv.gz and returns.csv; returns the
    answers the grader expects."""
    random = rng(seed, "warehouse")
    store_rows = _stores(seed, stores)
    first_day = datetime.date(2024, 1, 1) + datetime.timedelta(days=random.randrange(280))
    day_list = [first_day + datetime.timedelta(days=offset) for offset in range(days)]
    sales = _sales(seed, store_rows, sales_per_day, day_list)
    late_random = rng(seed, "warehouse-late")
    late = [(900001 + number, late_random.choice(store_rows)[0], day_list[-1].isoformat(), late_random.choice(PRODUCTS), "online", 1,
             f"{late_random.randint(299, 8999) / 100:.2f}") for number in range(late_sales)]

    write_bytes(out_dir / "stores.csv", _csv(STORE_COLUMNS, store_rows))
    part_rows: list[list[tuple]] = [sales[part::parts] for part in range(parts)]
    for number, (column, garble) in enumerate(GARBLES):
        rows = part_rows[number % parts]
        line = list(rows[random.randrange(len(rows))])
        if garble is None:
            line = line[:-2]
        else:
            line[SALE_COLUMNS.index(column)] = garble
        rows.insert(random.randrange(1, len(rows)), tuple(line))
    for part, rows in enumerate(part_rows):
        write_bytes(out_dir / "sales" / f"part-{part:04d}.csv.gz", gzip.compress(_csv(SALE_COLUMNS, rows), mtime=0))
    write_bytes(out_dir / "late-sales" / "part-0000.csv.gz", gzip.compress(_csv(SALE_COLUMNS, late), mtime=0))
    rejected = sorted((f"s3://{LAKE_BUCKET}/{SALES_PREFIX}part-{part:04d}.csv.gz", index + 2)
                      for part, rows in enumerate(part_rows) for index, row in enumerate(rows) if not _loadable(row))

    returns_random = rng(seed, "warehouse-returns")
    returned = returns_random.sample(sales, returns)
    return_rows = [(700001 + number, sale[0], sale[1], (datetime.date.fromisoformat(sale[2]) + datetime.timedelta(days=returns_random.randint(1, 9))).isoformat(),
                    sale[6]) for number, sale in enumerate(returned)]
    write_bytes(out_dir / "returns.csv", _csv(RETURN_COLUMNS, return_rows))

    region_of = {store_id: region for store_id, _, region in store_rows}
    loaded = sales + late
    revenue_by_day: dict[str, int] = defaultdict(int)
    orders_by_day: dict[str, int] = defaultdict(int)
    revenue_by_region: dict[str, int] = defaultdict(int)
    for sale in loaded:
        cents = round(float(sale[6]) * 100)
        revenue_by_day[sale[2]] += cents
        orders_by_day[sale[2]] += 1
        revenue_by_region[region_of[sale[1]]] += cents
    return {
        "stores": len(store_rows),
        "regions": sorted(set(region_of.values())),
        "sales_rows": len(sales),
        "late_rows": len(late),
        "sales_revenue": round(sum(round(float(sale[6]) * 100) for sale in sales) / 100, 2),
        "rejected_lines": [list(line) for line in rejected],
        "daily_revenue": {day: round(cents / 100, 2) for day, cents in sorted(revenue_by_day.items())},
        "daily_orders": dict(sorted(orders_by_day.items())),
        "region_revenue": {region: round(cents / 100, 2) for region, cents in sorted(revenue_by_region.items())},
        "returns": len(return_rows),
        "returns_amount": round(sum(round(float(row[4]) * 100) for row in return_rows) / 100, 2),
    }


def _loadable(row: tuple) -> bool:
    """Whether a sales line fits the fact table's types (the lines GARBLES made do not)."""
    if len(row) != len(SALE_COLUMNS):
        return False
    try:
        int(row[0]), int(row[1]), int(row[5]), float(row[6])
        datetime.date.fromisoformat(row[2])
    except ValueError:
        return False
    return True


def returns_table_input() -> dict:
    return {
        "Name": RETURNS_TABLE,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "csv", "skip.header.line.count": "1"},
        "StorageDescriptor": {
            "Columns": [{"Name": "return_id", "Type": "int"}, {"Name": "sale_id", "Type": "int"}, {"Name": "store_id", "Type": "int"},
                        {"Name": "return_date", "Type": "string"}, {"Name": "amount", "Type": "double"}],
            "Location": f"s3://{LAKE_BUCKET}/{RETURNS_KEY.rpartition('/')[0]}/",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                          "Parameters": {"field.delim": ","}},
        },
    }


def setup(ctx) -> None:
    """The lake bucket with the stores, the sales parts, the late batch and the returns, and the catalog
    database and table over the returns (which the warehouse reads through Spectrum)."""
    s3, glue = ctx.client("s3"), ctx.client("glue")
    try:
        s3.create_bucket(Bucket=LAKE_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.upload_file(str(ctx.data_dir / "stores.csv"), LAKE_BUCKET, STORES_KEY)
    for folder, prefix in (("sales", SALES_PREFIX), ("late-sales", LATE_PREFIX)):
        for path in sorted((ctx.data_dir / folder).glob("*.csv.gz")):
            s3.upload_file(str(path), LAKE_BUCKET, prefix + path.name)
    s3.upload_file(str(ctx.data_dir / "returns.csv"), LAKE_BUCKET, RETURNS_KEY)
    try:
        glue.create_database(DatabaseInput={"Name": GLUE_DATABASE, "Description": "the shop's lake, cataloged"})
    except glue.exceptions.AlreadyExistsException:
        pass
    try:
        glue.create_table(DatabaseName=GLUE_DATABASE, TableInput=returns_table_input())
    except glue.exceptions.AlreadyExistsException:
        glue.update_table(DatabaseName=GLUE_DATABASE, TableInput=returns_table_input())
