"""Lab 10 — the nightly Glue job (Python shell): one night's raw sales CSV → curated CSV, partition registered (starter: TODO 6).

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


def curated(rows: list[dict]) -> list[list]:
    """TODO 6: the night's valid sales, each once, as [sale_id, store, sku, quantity, unit_price, amount]:
    valid = sale_id and store present, quantity a whole number >= 1, unit_price a number >= 0; a sale_id seen
    again is a re-send; amount = round(quantity * unit_price, 2)."""
    raise NotImplementedError("TODO 6: the cleaning rules")


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
