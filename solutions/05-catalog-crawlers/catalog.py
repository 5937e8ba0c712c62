"""Lab 05, part 1 — catalog the raw zone with a crawler (reference solution)."""

import json
import time

import boto3

RAW_BUCKET = "dea-catalog-raw"
RAW_PATH = "s3://dea-catalog-raw/raw/"
DATABASE = "telemetry"
CRAWLER = "raw-telemetry"
ROLE = "dea-glue-crawler"

glue = boto3.client("glue")
iam = boto3.client("iam")
ACCOUNT = boto3.client("sts").get_caller_identity()["Account"]
REGION = glue.meta.region_name


def crawler_role() -> str:
    """The crawler's role: Glue may assume it; it reads the raw zone, writes this database's tables and partitions,
    and logs to /aws-glue/crawlers. Created or brought up to date; its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    glue_arn = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    iam.put_role_policy(RoleName=ROLE, PolicyName="crawl-raw-zone", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{RAW_BUCKET}"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{RAW_BUCKET}/raw/*"},
        # tables and partitions of this database, never deleted (the team's DeleteBehavior is LOG)
        {"Effect": "Allow", "Resource": [f"{glue_arn}:catalog", f"{glue_arn}:database/{DATABASE}", f"{glue_arn}:table/{DATABASE}/*"],
         "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
                    "glue:GetPartitions", "glue:BatchCreatePartition"]},
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/crawlers*"},
    ]}))
    return arn


def create_database() -> None:
    try:
        glue.create_database(DatabaseInput={"Name": DATABASE, "Description": "Raw sensor telemetry, catalogued by crawler"})
    except glue.exceptions.AlreadyExistsException:
        pass


def create_crawler() -> None:
    definition = {
        "Role": crawler_role(),
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
