"""Lab 12's orders and customers: batches of orders landing in the raw zone, each with chosen defects in chosen
rows, and the customers table the orders refer to. The grader draws its own batches (a new label per grading)
and keeps which rows are clean and which carry which defect.

The data contract a quality gate enforces (and this module follows when it plants defects):
- order_id, customer_id, amount, status and order_ts are present; order_id is unique within a batch;
- amount is greater than 0 and at most 5,000.00 (two decimals: 0.01 and 5000.00 are valid edges);
- status is one of STATUSES;
- order_ts ("YYYY-MM-DD HH:MM:SS", UTC) is at most 24 hours old when the batch is checked; ingested_at is when
  the batch landed, always fresh, so it says nothing about the order's age;
- customer_id is in the customers table.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path

from dealab.datasets import rng, write_bytes

RAW_BUCKET = "dea-dq-raw"
LANDING_PREFIX = "landing/orders/"
CUSTOMERS_KEY = "reference/customers/customers.csv"
DATABASE = "dq_lab"
ORDERS_TABLE = "orders_landing"
CUSTOMERS_TABLE = "customers"
STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled")
MAX_AMOUNT = 5000.00
FRESH_HOURS = 24
TIMESTAMP = "%Y-%m-%d %H:%M:%S"
ORDER_COLUMNS = (("order_id", "string"), ("customer_id", "string"), ("amount", "double"), ("status", "string"),
                 ("order_ts", "string"), ("ingested_at", "string"))
CUSTOMER_COLUMNS = (("customer_id", "string"), ("name", "string"), ("country", "string"))
COUNTRIES = ("DE", "FR", "ES", "IT", "NL", "PL", "SE", "IE")

# defect kind → (what is wrong, how many rows carry it); a duplicate order id is two rows sharing one id
DEFECTS = {
    "missing_amount": "amount is missing",
    "amount_out_of_range": "amount is 0.00 or above 5,000.00",
    "unknown_status": "status is outside the agreed set",
    "duplicate_order_id": "two rows share one order_id",
    "stale_order": "order_ts is days old",
    "unknown_customer": "customer_id is not in the customers table",
}


def customer_ids(seed: str, count: int) -> list[str]:
    random = rng(seed, "dq-customers")
    return sorted(random.sample([f"C{number:05d}" for number in range(10000, 100000)], count))


def _clean_row(random, order_id: str, customers: list[str], now: datetime.datetime) -> dict:
    placed = now - datetime.timedelta(seconds=random.randrange(600, (FRESH_HOURS - 4) * 3600))
    return {
        "order_id": order_id,
        "customer_id": random.choice(customers),
        "amount": round(random.uniform(5, 900), 2),
        "status": random.choice(STATUSES),
        "order_ts": placed.strftime(TIMESTAMP),
        "ingested_at": now.strftime(TIMESTAMP),
    }


def _defective_rows(random, kind: str, label: str, customers: list[str], now: datetime.datetime) -> list[dict]:
    base = _clean_row(random, f"{label}-{kind.upper().replace('_', '-')}", customers, now)
    if kind == "missing_amount":
        return [{**base, "amount": None}]
    if kind == "amount_out_of_range":
        return [{**base, "order_id": base["order_id"] + "-ZERO", "amount": 0.0},
                {**base, "order_id": base["order_id"] + "-HIGH", "amount": MAX_AMOUNT + 0.01}]
    if kind == "unknown_status":
        return [{**base, "status": "refunded"}]
    if kind == "duplicate_order_id":
        return [base, {**base, "amount": round(base["amount"] + 10, 2), "status": random.choice(STATUSES)}]
    if kind == "stale_order":
        return [{**base, "order_ts": (now - datetime.timedelta(days=random.randint(3, 9))).strftime(TIMESTAMP)}]
    if kind == "unknown_customer":
        return [{**base, "customer_id": f"C{random.randrange(100000, 999999)}"}]
    raise ValueError(f"unknown defect kind {kind!r}")


def batch(seed: str, label: str, now: datetime.datetime, customers: list[str], clean: int, defects: tuple[str, ...]) -> dict:
    """One landing batch: `clean` valid orders (the edge amounts 0.01 and 5000.00 among them) and one planted
    defect of each kind in `defects`. Returns {"rows": [...] (shuffled), "clean": [order ids],
    "defects": {kind: [order ids]}}."""
    random = rng(seed, f"dq-batch:{label}")
    now = now.replace(tzinfo=None, microsecond=0)
    rows = [_clean_row(random, f"{label}-{number:04d}", customers, now) for number in range(1, clean + 1)]
    rows[0]["amount"], rows[1]["amount"] = MAX_AMOUNT, 0.01
    planted = {kind: _defective_rows(random, kind, label, customers, now) for kind in defects}
    all_rows = rows + [row for kind in defects for row in planted[kind]]
    random.shuffle(all_rows)
    return {"rows": all_rows, "clean": [row["order_id"] for row in rows],
            "defects": {kind: sorted({row["order_id"] for row in planted[kind]}) for kind in defects}}


def json_lines(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def customers_csv(seed: str, ids: list[str]) -> bytes:
    random = rng(seed, "dq-customer-details")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([name for name, _ in CUSTOMER_COLUMNS])
    for customer in ids:
        writer.writerow([customer, f"Customer {customer[1:]}", random.choice(COUNTRIES)])
    return out.getvalue().encode()


def generate(seed: str, out_dir: Path, customers: int = 120) -> dict:
    """data/reference/customers.csv; the first orders batch is drawn at lab start (setup), dated by the lab clock."""
    ids = customer_ids(seed, customers)
    write_bytes(out_dir / "reference" / "customers.csv", customers_csv(seed, ids))
    return {"customer_ids": ids}


def _table_input(name: str, columns, location: str, serde: str, parameters: dict, serde_parameters: dict) -> dict:
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "StorageDescriptor": {
            "Columns": [{"Name": column, "Type": kind} for column, kind in columns],
            "Location": location,
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": serde, "Parameters": serde_parameters},
        },
    }


def orders_table_input() -> dict:
    return _table_input(ORDERS_TABLE, ORDER_COLUMNS, f"s3://{RAW_BUCKET}/{LANDING_PREFIX}", "org.openx.data.jsonserde.JsonSerDe",
                        {"classification": "json"}, {})


def customers_table_input() -> dict:
    return _table_input(CUSTOMERS_TABLE, CUSTOMER_COLUMNS, f"s3://{RAW_BUCKET}/{CUSTOMERS_KEY.rsplit('/', 1)[0]}/",
                        "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                        {"classification": "csv", "skip.header.line.count": "1"}, {"field.delim": ","})


def initial_batch(seed: str, started: datetime.datetime, customers: list[str]) -> dict:
    """The batch waiting in the landing zone when the lab starts: orders of the lab's start, every defect once."""
    return batch(seed, "ORD", started, customers, clean=40, defects=tuple(DEFECTS))


def setup(ctx) -> None:
    """The raw zone (customers and the first landing batch) and the catalog tables over it."""
    s3, glue = ctx.client("s3"), ctx.client("glue")
    try:
        s3.create_bucket(Bucket=RAW_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.upload_file(str(ctx.data_dir / "reference" / "customers.csv"), RAW_BUCKET, CUSTOMERS_KEY)
    first = initial_batch(ctx.seed, ctx.lab_started_at(), ctx.dataset["customer_ids"])
    landing = ctx.data_dir / "landing" / "orders-initial.json"
    write_bytes(landing, json_lines(first["rows"]))
    s3.upload_file(str(landing), RAW_BUCKET, LANDING_PREFIX + landing.name)
    try:
        glue.create_database(DatabaseInput={"Name": DATABASE})
    except glue.exceptions.AlreadyExistsException:
        pass
    for table in (orders_table_input(), customers_table_input()):
        try:
            glue.create_table(DatabaseName=DATABASE, TableInput=table)
        except glue.exceptions.AlreadyExistsException:
            glue.update_table(DatabaseName=DATABASE, TableInput=table)
