"""Lab 05, part 2 — a new day arrives with a new field; make the catalog follow (reference solution)."""

import time
from pathlib import Path

import boto3

RAW_BUCKET = "dea-catalog-raw"
DATABASE = "telemetry"
CRAWLER = "raw-telemetry"

glue = boto3.client("glue")
s3 = boto3.client("s3")


def upload_new_day() -> None:
    for path in sorted(Path("data/new_day").rglob("*.json")):
        key = "raw/readings/" + path.relative_to("data/new_day").as_posix()
        s3.upload_file(str(path), RAW_BUCKET, key)
        print(f"uploaded s3://{RAW_BUCKET}/{key}")


def follow_schema_changes() -> None:
    glue.update_crawler(Name=CRAWLER, SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"})


def crawl_and_wait(name: str) -> dict:
    glue.start_crawler(Name=name)
    while True:
        crawler = glue.get_crawler(Name=name)["Crawler"]
        if crawler["State"] == "READY":
            return crawler["LastCrawl"]
        time.sleep(1)


if __name__ == "__main__":
    upload_new_day()
    follow_schema_changes()
    print(f"crawl {crawl_and_wait(CRAWLER)['Status']}")
    table = glue.get_table(DatabaseName=DATABASE, Name="readings")["Table"]
    print("readings:", ", ".join(f"{c['Name']} {c['Type']}" for c in table["StorageDescriptor"]["Columns"]))
