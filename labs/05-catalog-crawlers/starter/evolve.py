"""Lab 05, part 2 — a new day arrives with a new field; make the catalog follow. Run after catalog.py.

The new day is in data/new_day/dt=YYYY-MM-DD/ (your lab folder): its readings carry a `firmware` field.
"""

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
    # TODO 3: the analysts now want new fields in the catalog. Change only the crawler's SchemaChangePolicy so
    #         that it updates the table in the database (keep DeleteBehavior LOG).
    pass


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
    # TODO 4: crawl again (crawl_and_wait) so the new day's partition and field reach the catalog.
    table = glue.get_table(DatabaseName=DATABASE, Name="readings")["Table"]
    print("readings:", ", ".join(f"{c['Name']} {c['Type']}" for c in table["StorageDescriptor"]["Columns"]))
