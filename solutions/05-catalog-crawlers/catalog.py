"""Lab 05, part 1 — catalog the raw zone with a crawler (reference solution)."""

import time

import boto3

RAW_PATH = "s3://dea-catalog-raw/raw/"
DATABASE = "telemetry"
CRAWLER = "raw-telemetry"
ROLE = "arn:aws:iam::123456789012:role/dea-glue-crawler"

glue = boto3.client("glue")


def create_database() -> None:
    try:
        glue.create_database(DatabaseInput={"Name": DATABASE, "Description": "Raw sensor telemetry, catalogued by crawler"})
    except glue.exceptions.AlreadyExistsException:
        pass


def create_crawler() -> None:
    definition = {
        "Role": ROLE,
        "DatabaseName": DATABASE,
        "Targets": {"S3Targets": [{"Path": RAW_PATH}]},
        "Schedule": "cron(0 2 * * ? *)",
        # The team's policy for now: never change a table's schema behind the analysts' backs, only log it.
        "SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
        "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVERYTHING"},
    }
    try:
        glue.create_crawler(Name=CRAWLER, **definition)
    except glue.exceptions.AlreadyExistsException:
        glue.update_crawler(Name=CRAWLER, **definition)


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
