"""Lab 10 — the nightly Glue job (Python shell): one night's raw sales CSV → curated CSV, partition registered.

Arguments: --night (YYYY-MM-DD, from the state machine) --raw_path --curated_path --database --table
A re-run of a night replaces that night's curated file, so running a night twice changes nothing.
"""

import csv
import io
import sys

import boto3
from awsglue.utils import getResolvedOptions

args = getResolvedOptions(sys.argv, ["night", "raw_path", "curated_path", "database", "table"])
s3 = boto3.client("s3")
glue = boto3.client("glue")

CURATED_COLUMNS = ["sale_id", "store", "sku", "quantity", "unit_price", "amount"]


def split(path: str) -> tuple[str, str]:
    bucket, _, prefix = path.removeprefix("s3://").partition("/")
    return bucket, prefix


def raw_rows(night: str) -> list[dict]:
    bucket, prefix = split(args["raw_path"])
    rows = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}night={night}/")
    for item in sorted((item for page in pages for item in page.get("Contents", [])), key=lambda item: item["Key"]):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
        rows.extend(csv.DictReader(io.StringIO(body)))
    return rows


def valid(row: dict) -> bool:
    if not row.get("sale_id") or not row.get("store"):
        return False
    if not (row.get("quantity") or "").isdigit() or int(row["quantity"]) < 1:
        return False
    try:
        return float(row.get("unit_price") or "x") >= 0
    except ValueError:
        return False


def curated(rows: list[dict]) -> list[list]:
    seen, kept = set(), []
    for row in rows:
        if valid(row) and row["sale_id"] not in seen:  # a re-sent sale counts once
            seen.add(row["sale_id"])
            quantity, price = int(row["quantity"]), float(row["unit_price"])
            kept.append([row["sale_id"], row["store"], row["sku"], quantity, price, round(quantity * price, 2)])
    return kept


def write_night(night: str, rows: list[list]) -> str:
    bucket, prefix = split(args["curated_path"])
    folder = f"{prefix}night={night}/"
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    s3.put_object(Bucket=bucket, Key=f"{folder}sales.csv", Body=text.getvalue().encode())
    return f"s3://{bucket}/{folder}"


def register(night: str, location: str) -> None:
    table = glue.get_table(DatabaseName=args["database"], Name=args["table"])["Table"]
    descriptor = dict(table["StorageDescriptor"], Location=location)
    try:
        glue.create_partition(DatabaseName=args["database"], TableName=args["table"],
                              PartitionInput={"Values": [night], "StorageDescriptor": descriptor})
    except glue.exceptions.AlreadyExistsException:
        pass


night = args["night"]
rows = raw_rows(night)
kept = curated(rows)
location = write_night(night, kept)
register(night, location)
print(f"night {night}: {len(rows)} raw rows, {len(kept)} curated sales at {location}")
