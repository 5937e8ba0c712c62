"""Lab 07 checks: the shop's Athena tables and partitions, the learner's named queries answered against
values recomputed from their seed, the curated Parquet, the view, and the work group's guardrails."""

from __future__ import annotations

import io
import time

import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from grader.catalog import glue_table
from grader.core import Fail, LabContext, check

DATABASE = "shop"
WORKGROUP = "analytics"
LAKE = "dea-athena-lake"
RESULTS_BUCKET = "dea-athena-results"
GRADER_OUTPUT = f"s3://{LAKE}/_grader-results/"
MAX_BYTES_SCANNED_LIMIT = 1024 * 1024 * 1024
PARQUET_SHARE_OF_CSV = 0.25
CURATED_LOCATION = f"s3://{LAKE}/curated/orders/"
RAW_LOCATION = f"s3://{LAKE}/raw/orders/"
SALES_LOCATION = f"s3://{LAKE}/sales/"
RESULTS_LOCATION = f"s3://{RESULTS_BUCKET}/{WORKGROUP}/"
RAW_CSV_PREFIX = "raw/orders/"
RAW_COLUMNS = [("order_id", "string"), ("customer_id", "string"), ("category", "string"), ("amount", "double"), ("order_date", "string")]
DOCS = "https://docs.aws.amazon.com/athena/latest/ug"


def _run(ctx: LabContext, sql: str, work_group: str | None = None, database: str = DATABASE) -> dict:
    """Runs a query (in the grader's own output location unless a work group is named) and waits."""
    athena = ctx.client("athena")
    arguments = {"QueryString": sql, "QueryExecutionContext": {"Database": database}}
    if work_group:
        arguments["WorkGroup"] = work_group
    else:
        arguments["ResultConfiguration"] = {"OutputLocation": GRADER_OUTPUT}
    execution_id = athena.start_query_execution(**arguments)["QueryExecutionId"]
    for _ in range(600):
        execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        if execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return execution
        time.sleep(0.1)
    raise Fail(f"query did not finish in a minute: {sql[:80]}")


def _rows(ctx: LabContext, sql: str, database: str = DATABASE) -> list[list[str | None]]:
    execution = _run(ctx, sql, database=database)
    if execution["Status"]["State"] != "SUCCEEDED":
        raise Fail(f"{sql[:70]!r} ended {execution['Status']['State']}: {execution['Status'].get('StateChangeReason', '')}")
    pages = ctx.client("athena").get_paginator("get_query_results").paginate(QueryExecutionId=execution["QueryExecutionId"])
    return [[d.get("VarCharValue") for d in row["Data"]] for page in pages for row in page["ResultSet"]["Rows"]][1:]


def _table(ctx: LabContext, name: str) -> dict:
    return glue_table(ctx, DATABASE, name)


def _named_query(ctx: LabContext, name: str) -> dict:
    athena = ctx.client("athena")
    try:
        ids = athena.list_named_queries(WorkGroup=WORKGROUP)["NamedQueryIds"]
    except athena.exceptions.InvalidRequestException:
        raise Fail(f"work group {WORKGROUP} does not exist, so it has no named queries") from None
    queries = athena.batch_get_named_query(NamedQueryIds=ids)["NamedQueries"] if ids else []
    found = [q for q in queries if q["Name"] == name]
    if not found:
        raise Fail(f"work group {WORKGROUP} has no named query '{name}' (it has {sorted(q['Name'] for q in queries)})")
    return found[-1]


def _same_folder(location: str, expected: str) -> bool:
    return location.rstrip("/") + "/" == expected


def _tables_read(sql: str, database: str) -> set[str]:
    """The tables a query reads, each as database.table: unqualified names resolve in the query's database,
    as Athena resolves them; names of the query's own CTEs are not tables."""
    try:
        tree = sqlglot.parse_one(sql, read="athena")
    except sqlglot.errors.ParseError:
        return set()
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    return {f"{(table.db or database).lower()}.{table.name.lower()}" for table in tree.find_all(exp.Table)
            if table.db or table.name.lower() not in ctes}


def _reading_instead(sql: str, database: str, table: str, instead: str) -> str:
    """The same query with every read of `table` (database.table) turned into a read of `instead`."""
    tree = sqlglot.parse_one(sql, read="athena")
    for node in list(tree.find_all(exp.Table)):
        if f"{(node.db or database).lower()}.{node.name.lower()}" == table:
            replacement_db, _, replacement_name = instead.partition(".")
            node.set("db", exp.to_identifier(replacement_db))
            node.set("this", exp.to_identifier(replacement_name))
    return tree.sql(dialect="athena")


def _named_query_answers(ctx: LabContext, name: str, columns: str, expected: dict, tolerance: float) -> dict[str, float]:
    """Runs the learner's named query and compares its (key, number) rows with what the seed implies."""
    query = _named_query(ctx, name)
    rows = _rows(ctx, query["QueryString"], query.get("Database") or DATABASE)
    try:
        got = {row[0]: float(row[1]) for row in rows}
    except (TypeError, ValueError, IndexError):
        raise Fail(f"named query '{name}' must return {columns} rows, got {rows[:2]}") from None
    if sorted(got) != sorted(expected):
        raise Fail(f"named query '{name}' returns keys {sorted(got)}, expected {sorted(expected)}")
    if list(got) != sorted(got):
        raise Fail(f"named query '{name}' returns its rows in the order {list(got)[:4]}..., the question asks for them in ascending order")
    for key, value in expected.items():
        if abs(got[key] - value) > tolerance:
            raise Fail(f"named query '{name}': {key} is {got[key]}, expected {value}")
    return got


@check("L07-01", "Raw CSV table reads every order", points=2, task="2.4",
       hints=("An external table is only a schema over files where they lie: it names the folder (not the file), the columns in file order, and how a line splits into fields.",
              "CREATE EXTERNAL TABLE with ROW FORMAT DELIMITED (comma-separated), LOCATION the raw/orders/ folder, and the table property skip.header.line.count so the header line is not an order.",
              "CREATE EXTERNAL TABLE IF NOT EXISTS shop.orders_raw (order_id string, customer_id string, category string, amount double, order_date string) "
              "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://dea-athena-lake/raw/orders/' TBLPROPERTIES ('skip.header.line.count'='1')"),
       docs=f"{DOCS}/create-table.html")
def raw_table(ctx: LabContext) -> str:
    table = _table(ctx, "orders_raw")
    location = table["StorageDescriptor"].get("Location", "")
    if not _same_folder(location, RAW_LOCATION):
        raise Fail(f"table {DATABASE}.orders_raw reads {location or 'no location'}, not the CSV's folder {RAW_LOCATION}: "
                   f"it would read other files, or none")
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"].get("Columns", [])]
    if columns != RAW_COLUMNS:
        raise Fail(f"table {DATABASE}.orders_raw has columns {columns}, but the CSV's fields are {RAW_COLUMNS}: queries would misread them")
    count, header_rows = _rows(ctx, "SELECT count(*), count_if(order_id = 'order_id') FROM shop.orders_raw")[0]
    if header_rows != "0":
        raise Fail(f"table {DATABASE}.orders_raw reads the CSV header line as an order: every count and sum over it is off")
    if int(count) != ctx.dataset["rows"]:
        raise Fail(f"table {DATABASE}.orders_raw has {count} rows, the CSV has {ctx.dataset['rows']} orders")
    return f"table {DATABASE}.orders_raw reads all {count} orders of the CSV"


@check("L07-02", "Parquet table is partitioned by day, every day readable", points=2, task="2.4",
       hints=("A partitioned table reads only the partitions the catalog knows: creating the table registers none of the dt=... folders.",
              "PARTITIONED BY (dt string) with STORED AS PARQUET over the sales/ folder; then register the Hive-style folders with MSCK REPAIR TABLE (or ALTER TABLE ADD PARTITION, or partition projection).",
              "CREATE EXTERNAL TABLE IF NOT EXISTS shop.orders (order_id string, customer_id string, category string, amount double) PARTITIONED BY (dt string) "
              "STORED AS PARQUET LOCATION 's3://dea-athena-lake/sales/'; then MSCK REPAIR TABLE shop.orders"),
       docs=f"{DOCS}/partitions.html")
def parquet_partitions(ctx: LabContext) -> str:
    table = _table(ctx, "orders")
    location = table["StorageDescriptor"].get("Location", "")
    if not _same_folder(location, SALES_LOCATION):
        raise Fail(f"table {DATABASE}.orders reads {location or 'no location'}, not the Parquet folder {SALES_LOCATION} that holds the dt=... folders")
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    if keys != ["dt"]:
        raise Fail(f"table {DATABASE}.orders has partition keys {keys}, but the files lie in dt=... folders: queries cannot prune by day")
    got = {dt: int(n) for dt, n in _rows(ctx, "SELECT dt, count(*) FROM shop.orders GROUP BY dt")}
    expected = ctx.dataset["orders_per_day"]
    if got != expected:
        missing = sorted(set(expected) - set(got))
        raise Fail(f"table {DATABASE}.orders: days {missing} return no rows (partitions not registered?)" if missing
                   else f"table {DATABASE}.orders: orders per day {got} differ from the files {expected}")
    return f"table {DATABASE}.orders reads {len(got)} day partitions"


@check("L07-03", "Named query revenue_by_category is right", points=2, task="3.2",
       hints=("A named (saved) query stores SQL, its database and its work group, so others can run the same question; the grader runs yours and compares the answer with your data.",
              "Revenue per category is an aggregate over shop.orders grouped by category (round to cents); save it with CreateNamedQuery in work group analytics, replacing an older one of that name.",
              "athena.create_named_query(Name='revenue_by_category', Database='shop', WorkGroup='analytics', "
              "QueryString='SELECT category, round(sum(amount), 2) AS revenue FROM shop.orders GROUP BY category ORDER BY category')"),
       docs=f"{DOCS}/saved-queries.html")
def revenue_query(ctx: LabContext) -> str:
    got = _named_query_answers(ctx, "revenue_by_category", "(category, revenue)", ctx.dataset["revenue_by_category"], 0.02)
    return f"named query 'revenue_by_category' returns the revenue of all {len(got)} categories"


@check("L07-04", "Named query daily_orders is right", points=2, task="3.2",
       hints=("The orders per day come straight from the day partitions of shop.orders: the partition column is queryable like any other.",
              "Group shop.orders by its partition column dt and count the rows (every row is one order); save it with CreateNamedQuery in work group analytics.",
              "athena.create_named_query(Name='daily_orders', Database='shop', WorkGroup='analytics', "
              "QueryString='SELECT dt, count(*) AS orders FROM shop.orders GROUP BY dt ORDER BY dt')"),
       docs=f"{DOCS}/saved-queries.html")
def daily_query(ctx: LabContext) -> str:
    query = _named_query(ctx, "daily_orders")
    tables = _tables_read(query["QueryString"], query.get("Database") or DATABASE)
    if tables != {f"{DATABASE}.orders"}:
        raise Fail(f"named query 'daily_orders' reads {sorted(tables) or 'no table'}; over the day-partitioned {DATABASE}.orders "
                   f"counting per day needs no scan of the raw CSV")
    got = _named_query_answers(ctx, "daily_orders", "(dt, orders)", ctx.dataset["orders_per_day"], 0)
    return f"named query 'daily_orders' returns the orders of all {len(got)} days"


@check("L07-05", "Curated table is SNAPPY Parquet partitioned by order_date", points=3, task="3.1",
       hints=("CREATE TABLE AS SELECT writes a query's result as new files and registers the table over them; its WITH properties choose format, compression, location and partitioning. "
              "Athena refuses to write where files already lie (HIVE_PATH_ALREADY_EXISTS): to run it again, drop the table and empty its folder first.",
              "CTAS WITH format 'PARQUET', write_compression 'SNAPPY', external_location s3://dea-athena-lake/curated/orders/ and partitioned_by ARRAY['order_date']; "
              "the partition column must be the last one selected. Before it: DROP TABLE IF EXISTS and delete the objects under curated/orders/.",
              "CREATE TABLE shop.orders_curated WITH (format = 'PARQUET', write_compression = 'SNAPPY', external_location = 's3://dea-athena-lake/curated/orders/', "
              "partitioned_by = ARRAY['order_date']) AS SELECT order_id, customer_id, category, amount, order_date FROM shop.orders_raw"),
       docs=f"{DOCS}/create-table-as.html")
def curated_parquet(ctx: LabContext) -> str:
    table = _table(ctx, "orders_curated")
    serde = table["StorageDescriptor"].get("SerdeInfo", {}).get("SerializationLibrary", "")
    if "parquet" not in serde.lower():
        raise Fail(f"table {DATABASE}.orders_curated is stored with {serde or 'no SerDe'}, expected Parquet")
    keys = [k["Name"] for k in table.get("PartitionKeys", [])]
    if keys != ["order_date"]:
        raise Fail(f"table {DATABASE}.orders_curated has partition keys {keys}, expected ['order_date']")
    partitions = ctx.client("glue").get_partitions(DatabaseName=DATABASE, TableName="orders_curated")["Partitions"]
    if sorted(p["Values"][0] for p in partitions) != ctx.dataset["days"]:
        raise Fail(f"table {DATABASE}.orders_curated has partitions {sorted(p['Values'][0] for p in partitions)}, expected one per day {ctx.dataset['days']}")
    location = table["StorageDescriptor"].get("Location", "")
    if not _same_folder(location, CURATED_LOCATION):
        raise Fail(f"table {DATABASE}.orders_curated lives at {location or 'no location'}, not {CURATED_LOCATION}: "
                   f"its files would mix with other data in the lake, and readers of that path would not find them")
    s3 = ctx.client("s3")
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/") + "/"
    keys_found = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    if not keys_found:
        raise Fail(f"no files under {table['StorageDescriptor']['Location']}")
    body = s3.get_object(Bucket=bucket, Key=keys_found[0])["Body"].read()
    if body[:4] != b"PAR1":
        raise Fail(f"s3://{bucket}/{keys_found[0]} is not a Parquet file")
    codec = pq.ParquetFile(io.BytesIO(body)).metadata.row_group(0).column(0).compression
    if codec != "SNAPPY":
        raise Fail(f"s3://{bucket}/{keys_found[0]} is compressed with {codec}, expected SNAPPY")
    count = int(_rows(ctx, "SELECT count(*) FROM shop.orders_curated")[0][0])
    if count != ctx.dataset["rows"]:
        raise Fail(f"table {DATABASE}.orders_curated has {count} rows, expected {ctx.dataset['rows']}")
    return f"table {DATABASE}.orders_curated: {count} rows of SNAPPY Parquet in {len(partitions)} order_date partitions"


@check("L07-06", "View category_revenue answers from the Parquet table", points=2, task="3.2",
       hints=("A view stores a query, not data: every read of the view runs it, so what it reads (columnar Parquet or the whole CSV) is paid on every read.",
              "CREATE OR REPLACE VIEW over a Parquet table (shop.orders), grouping by category with count(*) AS orders and the rounded sum of amount AS revenue.",
              "CREATE OR REPLACE VIEW shop.category_revenue AS SELECT category, count(*) AS orders, round(sum(amount), 2) AS revenue FROM shop.orders GROUP BY category"),
       docs=f"{DOCS}/views.html")
def category_view(ctx: LabContext) -> str:
    view = _table(ctx, "category_revenue")
    if view.get("TableType") != "VIRTUAL_VIEW":
        raise Fail(f"{DATABASE}.category_revenue is a {view.get('TableType')}, not a view: it holds a copy that goes stale instead of a query")
    rows = _rows(ctx, "SELECT category, orders, revenue FROM shop.category_revenue")
    try:
        got = {row[0]: (int(row[1]), float(row[2])) for row in rows}
    except (TypeError, ValueError, IndexError):
        raise Fail(f"view {DATABASE}.category_revenue must return (category, orders, revenue) numbers, got {rows[:2]}") from None
    expected = {c: (ctx.dataset["orders_by_category"][c], ctx.dataset["revenue_by_category"][c]) for c in ctx.dataset["orders_by_category"]}
    for category, (orders, revenue) in expected.items():
        if category not in got:
            raise Fail(f"view {DATABASE}.category_revenue has no row for category {category}, which has {orders} orders worth {revenue}")
        if got[category][0] != orders or abs(got[category][1] - revenue) > 0.02:
            raise Fail(f"view {DATABASE}.category_revenue: {category} has {got[category][0]} orders worth {got[category][1]}, "
                       f"your data has {orders} worth {revenue}")
    scanned = _run(ctx, "SELECT category, orders, revenue FROM shop.category_revenue")["Statistics"]["DataScannedInBytes"]
    csv_size = sum(o["Size"] for o in ctx.client("s3").list_objects_v2(Bucket=LAKE, Prefix=RAW_CSV_PREFIX).get("Contents", []))
    if csv_size and scanned > PARQUET_SHARE_OF_CSV * csv_size:
        raise Fail(f"view {DATABASE}.category_revenue scans {scanned} bytes per query, as much as the {csv_size}-byte CSV: "
                   f"it reads the raw CSV, so every dashboard refresh pays for all of it")
    return f"view {DATABASE}.category_revenue returns orders and revenue of {len(got)} categories, scanning {scanned} bytes"


@check("L07-07", "Work group analytics enforces its results location and a bytes-scanned limit", points=2, task="3.2",
       hints=("A work group is a cost and governance boundary: when it enforces its settings, no client can send results elsewhere or escape its per-query data limit.",
              "Work group configuration: ResultConfiguration.OutputLocation under s3://dea-athena-results/, EnforceWorkGroupConfiguration, and BytesScannedCutoffPerQuery of at most 1 GB; "
              "an existing work group is changed with UpdateWorkGroup.",
              "athena.update_work_group(WorkGroup='analytics', ConfigurationUpdates={'ResultConfigurationUpdates': {'OutputLocation': 's3://dea-athena-results/analytics/'}, "
              "'EnforceWorkGroupConfiguration': True, 'BytesScannedCutoffPerQuery': 1024 ** 3})  (create_work_group with Configuration=... if it does not exist)"),
       docs=f"{DOCS}/workgroups-setting-control-limits-cloudwatch.html")
def work_group(ctx: LabContext) -> str:
    athena = ctx.client("athena")
    try:
        configuration = athena.get_work_group(WorkGroup=WORKGROUP)["WorkGroup"]["Configuration"]
    except athena.exceptions.InvalidRequestException:
        raise Fail(f"work group {WORKGROUP} does not exist") from None
    location = configuration.get("ResultConfiguration", {}).get("OutputLocation", "")
    if not _same_folder(location, RESULTS_LOCATION):
        raise Fail(f"work group {WORKGROUP} writes results to {location or 'nowhere'}, not {RESULTS_LOCATION}: "
                   f"the team's results would land where nobody looks for them (or mix with other work groups')")
    limit = configuration.get("BytesScannedCutoffPerQuery")
    if not limit or limit > MAX_BYTES_SCANNED_LIMIT:
        raise Fail(f"work group {WORKGROUP} has {f'a bytes-scanned limit of {limit}' if limit else 'no bytes-scanned limit'}: "
                   f"a runaway query could scan (and bill) more than 1 GB")
    execution_id = athena.start_query_execution(QueryString="SELECT 1", WorkGroup=WORKGROUP,
                                                ResultConfiguration={"OutputLocation": GRADER_OUTPUT})["QueryExecutionId"]
    used = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["ResultConfiguration"]["OutputLocation"]
    if not used.startswith(location):
        raise Fail(f"work group {WORKGROUP} let a query write its results to {used}: it does not enforce its configuration, so any client can bypass its limits")
    return f"work group {WORKGROUP} enforces results in {location} and a {limit}-byte limit per query"


@check("L07-08", "Parquet scans a small fraction of the CSV", points=2, task="3.1",
       hints=("Athena bills by bytes scanned: over Parquet it reads only the columns a query names, over CSV it reads every byte of every line.",
              "Point revenue_by_category at the Parquet table shop.orders (qualified, or unqualified with the named query's Database shop), not at shop.orders_raw.",
              "QueryString='SELECT category, round(sum(amount), 2) AS revenue FROM shop.orders GROUP BY category ORDER BY category'"),
       docs=f"{DOCS}/columnar-storage.html")
def scanned_bytes(ctx: LabContext) -> str:
    query = _named_query(ctx, "revenue_by_category")
    sql, database = query["QueryString"], query.get("Database") or DATABASE
    tables = _tables_read(sql, database)
    if tables != {f"{DATABASE}.orders"}:
        raise Fail(f"named query 'revenue_by_category' reads {sorted(tables) or 'no table'}; reading only {DATABASE}.orders "
                   f"(the Parquet table) lets Athena skip the columns it does not need")
    parquet = _run(ctx, sql, database=database)
    csv = _run(ctx, _reading_instead(sql, database, f"{DATABASE}.orders", f"{DATABASE}.orders_raw"), database=database)
    for execution, what in ((parquet, "over Parquet"), (csv, "over the CSV")):
        if execution["Status"]["State"] != "SUCCEEDED":
            raise Fail(f"revenue_by_category {what} ended {execution['Status']['State']}: {execution['Status'].get('StateChangeReason', '')}")
    parquet_bytes, csv_bytes = parquet["Statistics"]["DataScannedInBytes"], csv["Statistics"]["DataScannedInBytes"]
    if not csv_bytes or parquet_bytes > PARQUET_SHARE_OF_CSV * csv_bytes:
        raise Fail(f"revenue_by_category scans {parquet_bytes} bytes over Parquet and {csv_bytes} over the CSV; expected at most {PARQUET_SHARE_OF_CSV:.0%}")
    return f"revenue_by_category scans {parquet_bytes} bytes over Parquet, {parquet_bytes / csv_bytes:.0%} of the {csv_bytes} over the CSV"
