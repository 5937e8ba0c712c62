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

# TODO 4: write the SQL of two named queries. Both read the Parquet table (which one is cheaper to scan, and why?).
#   revenue_by_category: how much money did each category bring in? Two columns, category and revenue
#                        (rounded to cents), one row per category, sorted by category.
#   daily_orders:        how many orders arrived each day? Two columns, the day (the table's partition column)
#                        and orders, one row per day, sorted by day.
NAMED_QUERIES: dict[str, str] = {}


def set_up_work_group() -> None:
    try:
        s3.create_bucket(Bucket=RESULTS)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    # TODO 1: the work group should be a guardrail. Which settings make every query in it write results only
    #         here, whatever the client asks, and cancel any query that scans more than 1 GB?
    #         And when the work group already exists (a second run), how do you change its settings?
    configuration = {"ResultConfiguration": {"OutputLocation": f"s3://{RESULTS}/{WORKGROUP}/"}}
    if WORKGROUP not in [g["Name"] for g in athena.list_work_groups()["WorkGroups"]]:
        athena.create_work_group(Name=WORKGROUP, Configuration=configuration)


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
    # TODO 2: a table shop.orders_raw over the CSV folder raw/orders/. Look at the file first: which columns,
    #         in which order and of which types (amount is a number)? How are fields separated? What must the
    #         table do with the file's first line so that it is not counted as an order?
    # TODO 3: a table shop.orders over the Parquet folder sales/, whose sub-folders are named dt=YYYY-MM-DD.
    #         The folder name is a column too: how do you declare it? After creating the table, a query finds
    #         no rows yet: what has to tell the catalog which dt=... folders exist?


def save_named_queries() -> None:
    # TODO 5: save each entry of NAMED_QUERIES as a named query of work group analytics whose database is shop.
    #         Athena allows several named queries with one name: a second run must replace, not add.
    pass


def curate_to_parquet() -> None:
    # TODO 6: convert the CSV into a new table shop.orders_curated with one query (CREATE TABLE AS SELECT):
    #         Parquet compressed with SNAPPY, its files in s3://dea-athena-lake/curated/orders/, one partition
    #         per order_date. Which column must come last in the SELECT? And what happens when you run it twice
    #         while files are still in that folder?
    pass


def create_view() -> None:
    # TODO 7: a view shop.category_revenue answering, per category: how many orders (column orders) and how
    #         much revenue (column revenue, rounded to cents)? Every read of a view runs its query: which table
    #         should it read so that each read stays cheap? A second run must replace the view.
    pass


if __name__ == "__main__":
    set_up_work_group()
    create_tables()
    save_named_queries()
    curate_to_parquet()
    create_view()
