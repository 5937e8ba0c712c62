"""Lab 05, part 1 — catalog the raw zone with a crawler. Work through the TODOs from top to bottom.

Plain AWS code: never pass endpoint_url. Run it from the lab folder with `make run-5`
(or `cd labs/05-catalog-crawlers && python starter/catalog.py` in the shell `make shell` opens).
Your raw zone is s3://dea-catalog-raw/raw/: readings/dt=YYYY-MM-DD/*.json (JSON lines, one folder per
day) and stations/stations.csv (CSV with a header line).
"""

import time

import boto3

RAW_PATH = "s3://dea-catalog-raw/raw/"
DATABASE = "telemetry"
CRAWLER = "raw-telemetry"
ROLE = "arn:aws:iam::123456789012:role/dea-glue-crawler"

glue = boto3.client("glue")


def create_database() -> None:
    # TODO 1: create the Glue database "telemetry" (ignore AlreadyExistsException, so the script can run again).
    pass


def create_crawler() -> None:
    # TODO 2: create the crawler CRAWLER with role ROLE, writing to DATABASE, crawling RAW_PATH (one target for
    #         the whole raw zone: every folder under it becomes a table). Schedule it daily at 02:00 UTC.
    #         The team's policy for now: SchemaChangePolicy UpdateBehavior "LOG", DeleteBehavior "LOG" —
    #         the crawler must not change a table's schema behind the analysts' backs.
    #         If the crawler exists already (AlreadyExistsException), update it with the same definition.
    raise NotImplementedError("TODO 2: create the crawler")


def crawl_and_wait(name: str) -> dict:
    glue.start_crawler(Name=name)
    while True:
        crawler = glue.get_crawler(Name=name)["Crawler"]
        if crawler["State"] == "READY":
            return crawler["LastCrawl"]
        time.sleep(1)


def show_tables() -> None:
    for table in glue.get_tables(DatabaseName=DATABASE)["TableList"]:
        columns = ", ".join(f"{c['Name']} {c['Type']}" for c in table["StorageDescriptor"]["Columns"])
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        partitions = glue.get_partitions(DatabaseName=DATABASE, TableName=table["Name"])["Partitions"]
        print(f"{table['Name']} ({table['Parameters'].get('classification')}): {columns}; partitioned by {keys}, {len(partitions)} partitions")


if __name__ == "__main__":
    create_database()
    create_crawler()
    last_crawl = crawl_and_wait(CRAWLER)
    print(f"crawl {last_crawl['Status']}")
    show_tables()
