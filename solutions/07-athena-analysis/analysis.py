"""Lab 07 — reference solution: Athena tables over the lake, partitions, named queries, CTAS to Parquet,
a view and a work group with a bytes-scanned limit. Plain AWS code; rerunnable."""

import time

import boto3

LAKE = "dea-athena-lake"
RESULTS = "dea-athena-results"
WORKGROUP = "analytics"
DATABASE = "shop"
BYTES_SCANNED_LIMIT = 1024 * 1024 * 1024  # 1 GB per query

athena = boto3.client("athena")
s3 = boto3.client("s3")

NAMED_QUERIES = {
    "revenue_by_category": "SELECT category, round(sum(amount), 2) AS revenue FROM shop.orders GROUP BY category ORDER BY category",
    "daily_orders": "SELECT dt, count(*) AS orders FROM shop.orders GROUP BY dt ORDER BY dt",
}


def set_up_work_group() -> None:
    try:
        s3.create_bucket(Bucket=RESULTS)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    configuration = {
        "ResultConfiguration": {"OutputLocation": f"s3://{RESULTS}/{WORKGROUP}/"},
        "EnforceWorkGroupConfiguration": True,
        "BytesScannedCutoffPerQuery": BYTES_SCANNED_LIMIT,
    }
    names = [g["Name"] for g in athena.list_work_groups()["WorkGroups"]]
    if WORKGROUP not in names:
        athena.create_work_group(Name=WORKGROUP, Configuration=configuration)
    else:
        athena.update_work_group(WorkGroup=WORKGROUP, ConfigurationUpdates={
            "ResultConfigurationUpdates": configuration["ResultConfiguration"],
            "EnforceWorkGroupConfiguration": True,
            "BytesScannedCutoffPerQuery": BYTES_SCANNED_LIMIT,
        })


def run_query(sql: str) -> dict:
    """Starts a query in the work group (unqualified table names resolve in DATABASE) and waits for it;
    raises if it does not succeed."""
    execution_id = athena.start_query_execution(QueryString=sql, WorkGroup=WORKGROUP,
                                                QueryExecutionContext={"Database": DATABASE})["QueryExecutionId"]
    while True:
        execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        state = execution["Status"]["State"]
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.2)
    if state != "SUCCEEDED":
        raise RuntimeError(f"{sql[:60]}...: {state}: {execution['Status'].get('StateChangeReason')}")
    return execution


def create_tables() -> None:
    run_query(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    run_query(f"""CREATE EXTERNAL TABLE IF NOT EXISTS {DATABASE}.orders_raw (
        order_id string, customer_id string, category string, amount double, order_date string)
        ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
        LOCATION 's3://{LAKE}/raw/orders/'
        TBLPROPERTIES ('skip.header.line.count'='1')""")
    run_query(f"""CREATE EXTERNAL TABLE IF NOT EXISTS {DATABASE}.orders (
        order_id string, customer_id string, category string, amount double)
        PARTITIONED BY (dt string)
        STORED AS PARQUET
        LOCATION 's3://{LAKE}/sales/'""")
    run_query(f"MSCK REPAIR TABLE {DATABASE}.orders")


def save_named_queries() -> None:
    existing = athena.list_named_queries(WorkGroup=WORKGROUP)["NamedQueryIds"]
    for query in athena.batch_get_named_query(NamedQueryIds=existing)["NamedQueries"] if existing else []:
        if query["Name"] in NAMED_QUERIES:
            athena.delete_named_query(NamedQueryId=query["NamedQueryId"])
    for name, sql in NAMED_QUERIES.items():
        athena.create_named_query(Name=name, Database=DATABASE, QueryString=sql, WorkGroup=WORKGROUP)
        run_query(sql)


def curate_to_parquet() -> None:
    run_query(f"DROP TABLE IF EXISTS {DATABASE}.orders_curated")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE, Prefix="curated/orders/"):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=LAKE, Key=item["Key"])
    run_query(f"""CREATE TABLE {DATABASE}.orders_curated WITH (
        format = 'PARQUET', write_compression = 'SNAPPY',
        external_location = 's3://{LAKE}/curated/orders/', partitioned_by = ARRAY['order_date'])
        AS SELECT order_id, customer_id, category, amount, order_date FROM {DATABASE}.orders_raw""")


def create_view() -> None:
    run_query(f"""CREATE OR REPLACE VIEW {DATABASE}.category_revenue AS
        SELECT category, count(*) AS orders, round(sum(amount), 2) AS revenue FROM {DATABASE}.orders GROUP BY category""")


if __name__ == "__main__":
    set_up_work_group()
    create_tables()
    save_named_queries()
    curate_to_parquet()
    create_view()
    print("lab 07: tables, named queries, curated Parquet, view and work group are in place")
