"""Lab 07 — analyse the shop's orders with Athena. Work through the TODOs from top to bottom.

Plain AWS code: never pass endpoint_url. Run it from the lab folder with `make run-7`
(or `cd labs/07-athena-analysis && python starter/analysis.py` in the shell `make shell` opens).
The lake already holds your data: s3://dea-athena-lake/raw/orders/orders.csv (one CSV with a header line)
and s3://dea-athena-lake/sales/dt=YYYY-MM-DD/orders.parquet (Parquet, one folder per day).
"""

import time

import boto3

LAKE = "dea-athena-lake"
RESULTS = "dea-athena-results"
WORKGROUP = "analytics"
DATABASE = "shop"

athena = boto3.client("athena")
s3 = boto3.client("s3")

# TODO 4: the SQL of two named queries over shop.orders (the Parquet table):
#   revenue_by_category: category and round(sum(amount), 2) AS revenue, one row per category, ORDER BY category
#   daily_orders:        dt and count(*) AS orders, one row per day, ORDER BY dt
NAMED_QUERIES: dict[str, str] = {}


def set_up_work_group() -> None:
    try:
        s3.create_bucket(Bucket=RESULTS)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    # TODO 1: make the work group enforce its configuration (EnforceWorkGroupConfiguration) and stop any
    #         query that scans more than 1 GB (BytesScannedCutoffPerQuery). Update it if it already exists.
    configuration = {"ResultConfiguration": {"OutputLocation": f"s3://{RESULTS}/{WORKGROUP}/"}}
    if WORKGROUP not in [g["Name"] for g in athena.list_work_groups()["WorkGroups"]]:
        athena.create_work_group(Name=WORKGROUP, Configuration=configuration)


def run_query(sql: str) -> dict:
    """Starts a query in the work group and waits for it; raises if it does not succeed."""
    execution_id = athena.start_query_execution(QueryString=sql, WorkGroup=WORKGROUP)["QueryExecutionId"]
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
    # TODO 2: CREATE EXTERNAL TABLE shop.orders_raw over s3://dea-athena-lake/raw/orders/ with the columns
    #         order_id, customer_id, category (strings), amount (double), order_date (string); comma-separated,
    #         and skip the header line.
    # TODO 3: CREATE EXTERNAL TABLE shop.orders over s3://dea-athena-lake/sales/ (order_id, customer_id,
    #         category, amount), PARTITIONED BY (dt string), STORED AS PARQUET; then register its partitions.


def save_named_queries() -> None:
    # TODO 5: save each entry of NAMED_QUERIES as a named query (Database shop, WorkGroup analytics),
    #         replacing any earlier one with the same name.
    pass


def curate_to_parquet() -> None:
    # TODO 6: with CREATE TABLE AS SELECT, write shop.orders_curated from shop.orders_raw as SNAPPY Parquet
    #         to s3://dea-athena-lake/curated/orders/, partitioned by order_date.
    pass


def create_view() -> None:
    # TODO 7: CREATE OR REPLACE VIEW shop.category_revenue: category, count(*) AS orders,
    #         round(sum(amount), 2) AS revenue from shop.orders, one row per category.
    pass


if __name__ == "__main__":
    set_up_work_group()
    create_tables()
    save_named_queries()
    curate_to_parquet()
    create_view()
