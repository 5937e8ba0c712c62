"""Lab 14 checks: the warehouse is up and loads with its own role; the star schema's keys are judged by what
they do (SVV_TABLE_INFO's skew, EXPLAIN's data movement), the loads by their rows and their rejects, then
Spectrum, the materialized view, the UNLOAD, and the analyst, signed in with its own secret, by what it may
and may not do. Every statement goes through the Data API, as the learner's code does."""

from __future__ import annotations

import io
import json
import re
import time

import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from grader.core import Fail, LabContext, check

NAMESPACE = WORKGROUP = CLUSTER = "dea-wh"
DATABASE = "dev"
COPY_ROLE = "dea-wh-copy"
LAKE = "dea-wh-lake"
GLUE_DATABASE = "wh_lake"
EXPORT_PREFIX = "exports/region_daily_revenue/"
ANALYST, GROUP, SECRET = "dea_analyst", "analysts", "dea-wh/analyst"
REPORTING_VIEW = "reporting.daily_revenue"
MAX_SKEW = 4.0
# the seeded join a dashboard runs all day: what EXPLAIN may show for it (no rows sent between slices)
JOIN = "SELECT s.region, sum(f.amount) FROM fact_sales f JOIN dim_store s ON s.store_id = f.store_id GROUP BY s.region"
COLLOCATED = ("DS_DIST_NONE", "DS_DIST_ALL_NONE")
MOVEMENTS = ("DS_BCAST_INNER", "DS_DIST_BOTH", "DS_DIST_INNER", "DS_DIST_OUTER", "DS_DIST_ALL_INNER")
CENT = 0.005
RAW_OBJECT = f"arn:aws:s3:::{LAKE}/sales/part-0000.csv.gz"
# what the warehouse's role must (True) and must not (False) be allowed: (action, resource, needed)
ROLE_ACCESS = (("s3:ListBucket", f"arn:aws:s3:::{LAKE}", True), ("s3:GetObject", RAW_OBJECT, True),
               ("s3:PutObject", f"arn:aws:s3:::{LAKE}/{EXPORT_PREFIX}region=north/0000_part_00.parquet", True),
               ("s3:PutObject", RAW_OBJECT, False), ("s3:DeleteObject", RAW_OBJECT, False), ("s3:DeleteBucket", f"arn:aws:s3:::{LAKE}", False))
DOCS = "https://docs.aws.amazon.com/redshift/latest"


class StatementFailed(Exception):
    """A grader statement ended FAILED: Redshift's error, which a check may expect (a permission denied)."""


def _target(ctx: LabContext) -> dict:
    """The learner's warehouse: the Serverless workgroup, or a provisioned cluster of the same name."""
    if "target" not in ctx.__dict__:
        serverless = ctx.client("redshift-serverless")
        try:
            serverless.get_workgroup(workgroupName=WORKGROUP)
            ctx.__dict__["target"] = {"WorkgroupName": WORKGROUP}
        except ClientError:
            try:
                ctx.client("redshift").describe_clusters(ClusterIdentifier=CLUSTER)
                ctx.__dict__["target"] = {"ClusterIdentifier": CLUSTER}
            except ClientError:
                raise Fail(f"there is no Redshift Serverless workgroup {WORKGROUP} (nor a cluster {CLUSTER}) to query") from None
    return ctx.__dict__["target"]


def _execute(ctx: LabContext, sql: str, **credentials) -> list[list]:
    """One statement through the Data API as the admin (or SecretArn=...'s user); its rows, or StatementFailed."""
    data = ctx.client("redshift-data")
    statement_id = data.execute_statement(Sql=sql, Database=DATABASE, **_target(ctx), **credentials)["Id"]
    deadline = time.monotonic() + 50
    while True:
        described = data.describe_statement(Id=statement_id)
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            break
        if time.monotonic() > deadline:
            raise Fail(f"statement did not finish in 50 s: {sql[:80]}")
        time.sleep(0.05)
    if described["Status"] != "FINISHED":
        raise StatementFailed(" ".join(str(described.get("Error", described["Status"])).split())[:200])
    if not described.get("HasResultSet"):
        return []
    pages, token = [], None
    while True:
        page = data.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
        pages.extend(page["Records"])
        token = page.get("NextToken")
        if not token:
            return [[None if field.get("isNull") else next(iter(field.values())) for field in record] for record in pages]


def _rows(ctx: LabContext, sql: str, what: str, **credentials) -> list[list]:
    """A statement the learner's warehouse should answer; its failure names `what` it needed."""
    try:
        return _execute(ctx, sql, **credentials)
    except StatementFailed as error:
        raise Fail(f"{what}: {error}") from None


def _table_info(ctx: LabContext, table: str) -> dict:
    found = _rows(ctx, f"SELECT diststyle, sortkey1, skew_rows, tbl_rows FROM svv_table_info WHERE \"schema\" = 'public' AND \"table\" = '{table}'",
                  f"SVV_TABLE_INFO of {table}")
    if not found:
        raise Fail(f"table public.{table} does not exist in database {DATABASE}")
    diststyle, sortkey1, skew, rows = found[0]
    return {"diststyle": diststyle, "sortkey1": sortkey1, "skew": None if skew is None else float(skew), "rows": int(rows)}


def _money(value) -> float:
    return round(float(value), 2)


def _analyst_secret(ctx: LabContext) -> str:
    secrets = ctx.client("secretsmanager")
    try:
        secret = secrets.describe_secret(SecretId=SECRET)
    except ClientError:
        raise Fail(f"secret {SECRET} does not exist: the analyst's credentials have nowhere to live") from None
    return secret["ARN"]


def _as_analyst(ctx: LabContext, sql: str) -> list[list]:
    """A statement as the analyst, signed in with the learner's secret (StatementFailed when refused)."""
    return _execute(ctx, sql, SecretArn=_analyst_secret(ctx))


@check("L14-01", "The warehouse is up: a Serverless workgroup (or a cluster)", points=1, task="2.1",
       hints=("Redshift Serverless is a namespace (the database, its admin, its roles) and a workgroup (the compute, with the endpoint); "
              "a provisioned cluster is both in one. Either is the warehouse here, named dea-wh, with the database dev.",
              "redshift-serverless CreateNamespace (dbName dev, an admin and its password) and CreateWorkgroup on it; wait for GetWorkgroup's status AVAILABLE.",
              "serverless.create_namespace(namespaceName='dea-wh', dbName='dev', adminUsername='admin', adminUserPassword='...'); "
              "serverless.create_workgroup(workgroupName='dea-wh', namespaceName='dea-wh'); then poll get_workgroup until status is AVAILABLE"),
       docs=f"{DOCS}/mgmt/serverless-workgroup-namespace.html")
def warehouse(ctx: LabContext) -> str:
    target = _target(ctx)
    if "WorkgroupName" in target:
        workgroup = ctx.client("redshift-serverless").get_workgroup(workgroupName=WORKGROUP)["workgroup"]
        if workgroup["status"] != "AVAILABLE":
            raise Fail(f"workgroup {WORKGROUP} is {workgroup['status']}, not AVAILABLE")
        namespace = ctx.client("redshift-serverless").get_namespace(namespaceName=workgroup["namespaceName"])["namespace"]
        if namespace.get("dbName", DATABASE) != DATABASE:
            raise Fail(f"namespace {namespace['namespaceName']} holds database {namespace['dbName']}, not {DATABASE}")
        where = f"workgroup {WORKGROUP} (namespace {namespace['namespaceName']})"
    else:
        cluster = ctx.client("redshift").describe_clusters(ClusterIdentifier=CLUSTER)["Clusters"][0]
        if cluster["ClusterStatus"] != "available" or cluster.get("DBName", DATABASE) != DATABASE:
            raise Fail(f"cluster {CLUSTER} is {cluster['ClusterStatus']} with database {cluster.get('DBName')}; expected available with {DATABASE}")
        where = f"cluster {CLUSTER}"
    _rows(ctx, "SELECT 1", f"{where} does not answer SQL")
    return f"{where} is available and answers SQL in database {DATABASE}"


@check("L14-02", "The warehouse loads with its own least-privilege role, trusted by Redshift", points=2, task="4.2",
       hints=("COPY, UNLOAD and Spectrum reach S3 as an IAM role the warehouse assumes: the role trusts the Redshift service, is associated with the namespace (or cluster), "
              "and may do what loading and exporting need — read the lake, write the exports — and nothing more.",
              f"An IAM role {COPY_ROLE} whose trust policy allows redshift.amazonaws.com sts:AssumeRole; a policy with s3:ListBucket on the bucket, s3:GetObject on its objects and "
              f"s3:PutObject (and DeleteObject, for CLEANPATH) under exports/ only; pass the role in CreateNamespace's iamRoles (a cluster's IamRoles).",
              f"iam.create_role(RoleName='{COPY_ROLE}', AssumeRolePolicyDocument=<Principal Service redshift.amazonaws.com>); iam.put_role_policy(... Resource "
              f"arn:aws:s3:::{LAKE}/exports/* for the writes ...); serverless.create_namespace(..., iamRoles=[role_arn]) (an existing namespace: serverless.update_namespace(namespaceName=..., iamRoles=[role_arn]))"),
       docs=f"{DOCS}/mgmt/authorizing-redshift-service.html")
def copy_role(ctx: LabContext) -> str:
    iam = ctx.client("iam")
    try:
        role = iam.get_role(RoleName=COPY_ROLE)["Role"]
    except ClientError:
        raise Fail(f"role {COPY_ROLE} does not exist") from None
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    services = set()
    for statement in trust.get("Statement", []):
        if statement.get("Effect") == "Allow" and "sts:AssumeRole" in str(statement.get("Action")):
            service = (statement.get("Principal") or {}).get("Service", [])
            services.update([service] if isinstance(service, str) else service)
    if "redshift.amazonaws.com" not in services:
        raise Fail(f"role {COPY_ROLE} trusts {sorted(services) or 'no service'}, not redshift.amazonaws.com: the warehouse cannot assume it")
    if "WorkgroupName" in _target(ctx):
        serverless = ctx.client("redshift-serverless")
        namespace_name = serverless.get_workgroup(workgroupName=WORKGROUP)["workgroup"]["namespaceName"]
        roles = serverless.get_namespace(namespaceName=namespace_name)["namespace"].get("iamRoles") or []
        owner = f"namespace {namespace_name}"
    else:
        roles = [r["IamRoleArn"] for r in ctx.client("redshift").describe_clusters(ClusterIdentifier=CLUSTER)["Clusters"][0].get("IamRoles", [])]
        owner = f"cluster {CLUSTER}"
    arns = [r if isinstance(r, str) else r.get("iamRoleArn", "") for r in roles]
    # the ARN as the account's code names it (a backend behind the gateway may keep roles under an account id of its own)
    role_arn = f"arn:aws:iam::{ctx.client('sts').get_caller_identity()['Account']}:role/{COPY_ROLE}"
    if role_arn not in arns:
        raise Fail(f"{owner} is associated with {arns or 'no IAM role'}, not {role_arn}: COPY ... IAM_ROLE would be refused")
    for action, resource, needed in ROLE_ACCESS:
        decision = iam.simulate_principal_policy(PolicySourceArn=role_arn, ActionNames=[action], ResourceArns=[resource])["EvaluationResults"][0]["EvalDecision"]
        if (decision == "allowed") != needed:
            raise Fail(f"role {COPY_ROLE} {'may not' if needed else 'may'} {action} on {resource}: "
                       + ("loading and exporting need it" if needed else "the warehouse's role could change or delete the lake's raw data; it needs to write under exports/ only"))
    return f"role {COPY_ROLE} trusts Redshift, is associated with {owner}, reads the lake and writes only its exports"


@check("L14-03", "dim_store holds every store once", points=1, task="2.3",
       hints=("COPY loads a table from S3 in parallel; a CSV with a header line needs to be told to skip it.",
              "CREATE TABLE dim_store (store_id, city, region), then COPY dim_store FROM the stores/ prefix with IAM_ROLE, CSV and IGNOREHEADER 1.",
              f"COPY dim_store FROM 's3://{LAKE}/stores/' IAM_ROLE '<role arn>' CSV IGNOREHEADER 1"),
       docs=f"{DOCS}/dg/r_COPY.html")
def stores(ctx: LabContext) -> str:
    rows, distinct = (int(v) for v in _rows(ctx, "SELECT count(*), count(DISTINCT store_id) FROM dim_store", "reading public.dim_store")[0])
    expected = ctx.dataset["stores"]
    if (rows, distinct) != (expected, expected):
        raise Fail(f"table dim_store has {rows} rows for {distinct} stores; stores.csv has {expected} stores, each once")
    return f"table dim_store holds the {expected} stores"


@check("L14-04", "fact_sales holds every good sale, the late ones too, once", points=2, task="2.3",
       hints=("A COPY from a prefix loads every object under it, gzipped CSV included when told so; the night's late sales arrive under their own prefix and are appended, not loaded twice.",
              "COPY fact_sales FROM the sales/ prefix (CSV, GZIP, IGNOREHEADER 1, a MAXERROR the garbled lines fit in), then a second COPY from late-sales/. A rerun must start the table over.",
              f"COPY fact_sales FROM 's3://{LAKE}/sales/' IAM_ROLE '<role arn>' CSV GZIP IGNOREHEADER 1 DATEFORMAT 'YYYY-MM-DD' MAXERROR 20; "
              f"then the same FROM 's3://{LAKE}/late-sales/'"),
       docs=f"{DOCS}/dg/t_loading-tables-from-s3.html")
def sales(ctx: LabContext) -> str:
    rows, distinct, revenue = _rows(ctx, "SELECT count(*), count(DISTINCT sale_id), sum(amount) FROM fact_sales", "reading public.fact_sales")[0]
    rows, distinct = int(rows), int(distinct)
    expected_rows = ctx.dataset["sales_rows"] + ctx.dataset["late_rows"]
    expected_revenue = round(sum(ctx.dataset["daily_revenue"].values()), 2)
    if rows != distinct:
        raise Fail(f"table fact_sales holds {rows - distinct} sales more than once ({rows} rows, {distinct} sale ids): was a batch loaded twice?")
    if rows != expected_rows:
        raise Fail(f"table fact_sales has {rows} sales; the good lines of sales/ ({ctx.dataset['sales_rows']}) and late-sales/ ({ctx.dataset['late_rows']}) are {expected_rows}")
    if revenue is None or abs(_money(revenue) - expected_revenue) > CENT:
        raise Fail(f"table fact_sales sums to {revenue} of revenue, the files to {expected_revenue}")
    return f"table fact_sales holds all {rows} good sales ({expected_revenue} of revenue)"


@check("L14-05", "COPY rejected exactly the garbled lines, and recorded them", points=2, task="2.3",
       hints=("By default one bad line fails the whole COPY; MAXERROR lets it skip up to that many, and each skipped line is recorded with its file, line and reason "
              "(SYS_LOAD_ERROR_DETAIL; STL_LOAD_ERRORS on a cluster). A header line the COPY was not told about is a bad line too.",
              "Give the sales COPY MAXERROR and IGNOREHEADER 1; then read SYS_LOAD_ERROR_DETAIL for that COPY's query_id: only the point of sale's garbled lines should be there.",
              "COPY fact_sales ... CSV GZIP IGNOREHEADER 1 MAXERROR 20; SELECT file_name, line_number, column_name, error_message FROM sys_load_error_detail ORDER BY query_id DESC"),
       docs=f"{DOCS}/dg/r_SYS_LOAD_ERROR_DETAIL.html")
def rejects(ctx: LabContext) -> str:
    found = _rows(ctx, "SELECT DISTINCT file_name, line_number FROM sys_load_error_detail WHERE table_name = 'fact_sales' AND query_id = "
                       "(SELECT max(query_id) FROM sys_load_error_detail WHERE table_name = 'fact_sales' AND file_name LIKE '%/sales/%')",
                  "reading SYS_LOAD_ERROR_DETAIL")
    got = sorted((name.strip(), int(line)) for name, line in found)
    expected = sorted((name, line) for name, line in ctx.dataset["rejected_lines"])
    if not got:
        raise Fail("SYS_LOAD_ERROR_DETAIL records no rejected line of the sales/ COPY into fact_sales: were the garbled lines loaded, cleaned away, or not loaded at all?")
    if got != expected:
        extra = [f"{name.rsplit('/', 1)[-1]} line {line}" for name, line in got if (name, line) not in expected]
        missing = [f"{name.rsplit('/', 1)[-1]} line {line}" for name, line in expected if (name, line) not in got]
        raise Fail(f"the last sales/ COPY into fact_sales rejected {len(got)} lines, the garbled ones are {len(expected)}: "
                   f"{'also rejected ' + ', '.join(extra[:4]) if extra else ''}{'; ' if extra and missing else ''}{'not rejected ' + ', '.join(missing[:4]) if missing else ''}")
    return f"the sales COPY rejected the {len(got)} garbled lines, each recorded with its file and line"


@check("L14-06", "fact_sales is spread evenly over the slices", points=1, task="2.1",
       hints=("A DISTKEY puts each row on the slice its value hashes to: a column with few values (or one value most rows share) piles the rows onto a few slices, "
              "and the slowest slice sets every query's pace. SVV_TABLE_INFO's skew_rows is the fullest slice over the emptiest.",
              "Distribute fact_sales on a column with many, evenly used values that joins use (store_id), or EVEN/AUTO; look at skew_rows in SVV_TABLE_INFO.",
              "CREATE TABLE fact_sales (...) DISTKEY (store_id) SORTKEY (sale_date); SELECT \"table\", diststyle, skew_rows FROM svv_table_info"),
       docs=f"{DOCS}/dg/t_Distributing_data.html")
def skew(ctx: LabContext) -> str:
    info = _table_info(ctx, "fact_sales")
    if info["diststyle"] == "ALL":
        raise Fail(f"table fact_sales is DISTSTYLE ALL: a copy of all {info['rows']} sales on every node, for a table that grows every night")
    if info["skew"] is not None and info["skew"] > MAX_SKEW:
        raise Fail(f"table fact_sales is distributed {info['diststyle']} with skew_rows {info['skew']}: its fullest slice holds "
                   f"{info['skew']:.0f} times the rows of its emptiest (at most {MAX_SKEW:.0f} expected)")
    return f"table fact_sales is distributed {info['diststyle']}, skew_rows {info['skew']}"


@check("L14-07", "fact_sales is sorted by sale date", points=1, task="3.2",
       hints=("A sort key orders the rows on disk so a range filter reads only the blocks it needs (zone maps); the question every morning is about days.",
              "Give fact_sales a SORTKEY whose first column is sale_date (SVV_TABLE_INFO's sortkey1).",
              "CREATE TABLE fact_sales (...) DISTKEY (store_id) SORTKEY (sale_date)"),
       docs=f"{DOCS}/dg/t_Sorting_data.html")
def sort_key(ctx: LabContext) -> str:
    info = _table_info(ctx, "fact_sales")
    if info["sortkey1"] != "sale_date":
        raise Fail(f"table fact_sales has {'sort key ' + info['sortkey1'] if info['sortkey1'] else 'no sort key'}: "
                   f"queries over a range of days read every block")
    return "table fact_sales is sorted by sale_date first"


@check("L14-08", "The sales-by-store join moves no rows between slices", points=2, task="2.1",
       hints=("A join is fastest when each slice finds both sides' matching rows at home: both tables distributed on the join column, or the small one copied to every node. "
              "EXPLAIN shows the data movement of each join (DS_DIST_NONE, DS_DIST_ALL_NONE are free; DS_BCAST_INNER, DS_DIST_INNER, DS_DIST_BOTH move rows).",
              "Distribute dim_store so it is on every node (DISTSTYLE ALL) or on store_id like fact_sales, and EXPLAIN the join of fact_sales and dim_store on store_id.",
              f"CREATE TABLE dim_store (...) DISTSTYLE ALL; EXPLAIN {JOIN}"),
       docs=f"{DOCS}/dg/c_data_redistribution.html")
def join_movement(ctx: LabContext) -> str:
    plan = "\n".join(str(row[0]) for row in _rows(ctx, f"EXPLAIN {JOIN}", "EXPLAIN of the join of fact_sales and dim_store"))
    moved = [movement for movement in MOVEMENTS if movement in plan]
    if moved or not any(kind in plan for kind in COLLOCATED):
        dim = _table_info(ctx, "dim_store")["diststyle"]
        fact = _table_info(ctx, "fact_sales")["diststyle"]
        raise Fail(f"EXPLAIN of fact_sales ({fact}) joined to dim_store ({dim}) on store_id shows {', '.join(moved) or 'no collocated join'}: "
                   f"every run of it sends rows across the network")
    return f"the join of fact_sales and dim_store is {next(kind for kind in COLLOCATED if kind in plan)}"


@check("L14-09", "Spectrum reads the lake's returns through the catalog", points=2, task="3.2",
       hints=("Redshift Spectrum queries files in S3 through an external schema that maps a Glue Data Catalog database: nothing is loaded, and external tables join local ones.",
              f"CREATE EXTERNAL SCHEMA lake FROM DATA CATALOG DATABASE '{GLUE_DATABASE}' with the role; its tables are the catalog's (lake.returns).",
              f"CREATE EXTERNAL SCHEMA IF NOT EXISTS lake FROM DATA CATALOG DATABASE '{GLUE_DATABASE}' IAM_ROLE '<role arn>'"),
       docs=f"{DOCS}/dg/c-getting-started-using-spectrum.html")
def spectrum(ctx: LabContext) -> str:
    mapped = _rows(ctx, "SELECT databasename FROM svv_external_schemas WHERE schemaname = 'lake'", "reading SVV_EXTERNAL_SCHEMAS")
    if not mapped:
        raise Fail("there is no external schema lake in the warehouse")
    if mapped[0][0] != GLUE_DATABASE:
        raise Fail(f"external schema lake maps Glue database {mapped[0][0]}, not {GLUE_DATABASE} where the returns are cataloged")
    count, amount, stores = _rows(ctx, "SELECT count(*), sum(r.amount), count(DISTINCT s.store_id) FROM lake.returns r JOIN dim_store s ON s.store_id = r.store_id",
                                  "joining lake.returns to dim_store")[0]
    if int(count) != ctx.dataset["returns"] or abs(float(amount or 0) - ctx.dataset["returns_amount"]) > 0.01:
        raise Fail(f"lake.returns joined to dim_store reads {count} returns worth {amount}; the lake holds {ctx.dataset['returns']} worth {ctx.dataset['returns_amount']}")
    return f"external schema lake reads the {count} returns of {GLUE_DATABASE} and joins them to dim_store"


def _daily(ctx: LabContext, rows: list[list], source: str) -> dict:
    try:
        got = {str(day)[:10]: (_money(revenue), int(orders)) for day, revenue, orders in rows}
    except (TypeError, ValueError):
        raise Fail(f"{source} must answer (sale_date, revenue, orders), got {rows[:2]}") from None
    expected = {day: (revenue, ctx.dataset["daily_orders"][day]) for day, revenue in ctx.dataset["daily_revenue"].items()}
    if sorted(got) != sorted(expected):
        raise Fail(f"{source} answers days {sorted(got)[:3]}...{sorted(got)[-1:] if got else ''}, the sales are of {len(expected)} days {min(expected)}..{max(expected)}")
    wrong = [day for day in expected if got[day][1] != expected[day][1] or abs(got[day][0] - expected[day][0]) > CENT]
    if wrong:
        day = wrong[0]
        raise Fail(f"{source}: {len(wrong)} day(s) differ from the sales, e.g. {day}: revenue {got[day][0]} and {got[day][1]} orders, expected {expected[day][0]} and {expected[day][1]}")
    return got


@check("L14-10", "Materialized view mv_daily_revenue answers revenue and orders per day", points=2, task="3.2",
       hints=("A materialized view stores a query's result, so a dashboard reads a few precomputed rows instead of aggregating the fact table each time.",
              "CREATE MATERIALIZED VIEW mv_daily_revenue AS an aggregate of fact_sales per sale_date: the sum of amount (revenue) and the number of sales (orders).",
              "CREATE MATERIALIZED VIEW mv_daily_revenue AS SELECT sale_date, sum(amount) AS revenue, count(*) AS orders FROM fact_sales GROUP BY sale_date"),
       docs=f"{DOCS}/dg/materialized-view-overview.html")
def daily_revenue(ctx: LabContext) -> str:
    got = _daily(ctx, _rows(ctx, "SELECT sale_date, revenue, orders FROM mv_daily_revenue", "reading materialized view mv_daily_revenue"),
                 "materialized view mv_daily_revenue")
    return f"materialized view mv_daily_revenue answers all {len(got)} days right"


@check("L14-11", "The materialized view is up to date after the late batch", points=1, task="3.2",
       hints=("A materialized view keeps the rows of its last refresh: rows loaded into its base table afterwards are not in it until it is refreshed (SVV_MV_INFO's is_stale says so).",
              "After the late COPY, REFRESH MATERIALIZED VIEW; SVV_MV_INFO shows is_stale 'f'.",
              "REFRESH MATERIALIZED VIEW mv_daily_revenue"),
       docs=f"{DOCS}/dg/materialized-view-refresh.html")
def fresh_view(ctx: LabContext) -> str:
    found = _rows(ctx, "SELECT is_stale FROM svv_mv_info WHERE name = 'mv_daily_revenue'", "reading SVV_MV_INFO")
    if not found:
        raise Fail("there is no materialized view mv_daily_revenue")
    if str(found[0][0]).strip() != "f":
        raise Fail("materialized view mv_daily_revenue is stale: fact_sales changed after its last refresh, so it misses those sales")
    return "materialized view mv_daily_revenue is refreshed (is_stale f)"


@check("L14-12", "UNLOAD wrote the revenue per region and day as Parquet, one folder per region", points=2, task="2.3",
       hints=("UNLOAD writes a query's result to S3 in parallel; FORMAT PARQUET makes it columnar, and PARTITION BY writes Hive-style folders (region=north/) that Athena or Spectrum can prune.",
              f"UNLOAD the revenue per region and sale date (fact_sales joined to dim_store) TO s3://{LAKE}/{EXPORT_PREFIX} with FORMAT AS PARQUET and PARTITION BY (region); "
              "CLEANPATH (or ALLOWOVERWRITE) lets a rerun write again.",
              f"UNLOAD ('SELECT s.region, f.sale_date, sum(f.amount) AS revenue, count(*) AS orders FROM fact_sales f JOIN dim_store s ON s.store_id = f.store_id "
              f"GROUP BY s.region, f.sale_date') TO 's3://{LAKE}/{EXPORT_PREFIX}' IAM_ROLE '<role arn>' FORMAT AS PARQUET PARTITION BY (region) CLEANPATH"),
       docs=f"{DOCS}/dg/r_UNLOAD.html")
def unload(ctx: LabContext) -> str:
    s3 = ctx.client("s3")
    keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE, Prefix=EXPORT_PREFIX)
            for item in page.get("Contents", [])]
    files = [key for key in keys if not key.endswith("manifest")]
    if not files:
        raise Fail(f"nothing under s3://{LAKE}/{EXPORT_PREFIX}")
    revenue: dict[str, float] = {}
    for key in files:
        folder = key[len(EXPORT_PREFIX):].split("/")[0]
        if not folder.startswith("region="):
            raise Fail(f"s3://{LAKE}/{key} is not in a region=... folder: the export is not partitioned by region")
        body = s3.get_object(Bucket=LAKE, Key=key)["Body"].read()
        if body[:4] != b"PAR1":
            raise Fail(f"s3://{LAKE}/{key} is not a Parquet file")
        table = pq.read_table(io.BytesIO(body))
        if "revenue" not in table.column_names:
            raise Fail(f"s3://{LAKE}/{key} has columns {table.column_names}, no revenue")
        region = folder.removeprefix("region=")
        revenue[region] = revenue.get(region, 0.0) + sum(float(value) for value in table.column("revenue").to_pylist() if value is not None)
    expected = ctx.dataset["region_revenue"]
    if sorted(revenue) != sorted(expected):
        raise Fail(f"the export has folders for regions {sorted(revenue)}, the stores are in {sorted(expected)}")
    wrong = [region for region in expected if abs(revenue[region] - expected[region]) > 0.01]
    if wrong:
        raise Fail(f"the export's revenue of region {wrong[0]} is {revenue[wrong[0]]:.2f}, the sales sum to {expected[wrong[0]]}")
    return f"the export holds {len(files)} Parquet file(s) in {len(revenue)} region folders, each region's revenue right"


@check("L14-13", "The analyst signs in with its secret, as a plain member of group analysts", points=1, task="4.2",
       hints=("Database users are the warehouse's own (CREATE USER), apart from IAM; a group collects users so grants are made once. "
              "The Data API signs in as the user a Secrets Manager secret names (SecretArn), with its password.",
              f"CREATE GROUP {GROUP}; CREATE USER {ANALYST} PASSWORD '...' IN GROUP {GROUP} (no CREATEUSER: not a superuser); "
              f"a secret {SECRET} whose JSON holds username and password.",
              f"CREATE USER {ANALYST} PASSWORD 'Abc123...' IN GROUP {GROUP}; "
              f"secretsmanager.create_secret(Name='{SECRET}', SecretString=json.dumps({{'username': '{ANALYST}', 'password': 'Abc123...'}}))"),
       docs=f"{DOCS}/dg/r_Users.html")
def analyst_signs_in(ctx: LabContext) -> str:
    try:
        who = _as_analyst(ctx, "SELECT current_user")
    except StatementFailed as error:
        raise Fail(f"the Data API with secret {SECRET} cannot sign in: {error}") from None
    user = who[0][0]
    if user != ANALYST:
        raise Fail(f"secret {SECRET} signs in as {user}, not {ANALYST}")
    superuser = _rows(ctx, f"SELECT usesuper FROM pg_user WHERE usename = '{ANALYST}'", "reading PG_USER")
    if superuser and superuser[0][0] in (True, "t", "true"):
        raise Fail(f"user {ANALYST} is a superuser: every grant and every refusal is bypassed")
    members = _rows(ctx, f"SELECT grolist FROM pg_group WHERE groname = '{GROUP}'", "reading PG_GROUP")
    if not members:
        raise Fail(f"there is no group {GROUP}")
    usesysid = _rows(ctx, f"SELECT usesysid FROM pg_user WHERE usename = '{ANALYST}'", "reading PG_USER")[0][0]
    if str(usesysid) not in re.findall(r"\d+", str(members[0][0])):  # grolist, an array of user ids however it is rendered
        raise Fail(f"user {ANALYST} is not a member of group {GROUP}: what the group is granted does not reach it")
    return f"secret {SECRET} signs in as {ANALYST}, a plain member of group {GROUP}"


@check("L14-14", "The analyst reads the reporting schema", points=2, task="4.2",
       hints=("A user needs USAGE on a schema to reach anything in it, and SELECT on each table or view it reads; a view is read with its owner's rights, so the analyst needs no grant on the tables behind it.",
              f"Schema reporting with a view {REPORTING_VIEW} over mv_daily_revenue; GRANT USAGE ON SCHEMA reporting and SELECT ON ALL TABLES IN SCHEMA reporting TO GROUP {GROUP}.",
              f"CREATE OR REPLACE VIEW {REPORTING_VIEW} AS SELECT sale_date, revenue, orders FROM public.mv_daily_revenue; "
              f"GRANT USAGE ON SCHEMA reporting TO GROUP {GROUP}; GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO GROUP {GROUP}"),
       docs=f"{DOCS}/dg/r_GRANT.html")
def analyst_reads(ctx: LabContext) -> str:
    try:
        rows = _as_analyst(ctx, f"SELECT sale_date, revenue, orders FROM {REPORTING_VIEW}")
    except StatementFailed as error:
        raise Fail(f"user {ANALYST} cannot read {REPORTING_VIEW}: {error}") from None
    got = _daily(ctx, rows, f"{REPORTING_VIEW}, read by {ANALYST},")
    return f"user {ANALYST} reads {REPORTING_VIEW}: {len(got)} days, right"


@check("L14-15", "The analyst can read nothing else, and write nothing", points=2, task="4.2",
       hints=("Least privilege: analysts read the reporting schema, not the fact tables behind it, and change nothing. GRANT ALL, or SELECT on the tables of public, gives more than the job needs.",
              f"Grant {GROUP} only USAGE on reporting and SELECT on its views; no grants on public's tables, no INSERT/UPDATE/DELETE, no CREATE on reporting. "
              "HAS_TABLE_PRIVILEGE and HAS_SCHEMA_PRIVILEGE show what a user may do.",
              f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM GROUP {GROUP}; REVOKE ALL ON ALL TABLES IN SCHEMA reporting FROM GROUP {GROUP}; "
              f"GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO GROUP {GROUP}"),
       docs=f"{DOCS}/dg/r_Privileges.html")
def analyst_limited(ctx: LabContext) -> str:
    for table in ("fact_sales", "mv_daily_revenue"):
        try:
            _as_analyst(ctx, f"SELECT count(*) FROM public.{table}")
        except StatementFailed as error:
            if "permission denied" not in str(error):
                raise Fail(f"user {ANALYST} reading public.{table} failed, but not for want of permission: {error}") from None
            continue
        raise Fail(f"user {ANALYST} can read public.{table}: analysts should see the reporting schema only")
    try:
        may = _as_analyst(ctx, f"SELECT has_table_privilege('{REPORTING_VIEW}', 'insert'), has_table_privilege('{REPORTING_VIEW}', 'update'), "
                               f"has_table_privilege('{REPORTING_VIEW}', 'delete'), has_schema_privilege('reporting', 'create')")[0]
    except StatementFailed as error:
        raise Fail(f"what user {ANALYST} may do on {REPORTING_VIEW} cannot be read: {error}") from None
    granted = [what for what, allowed in zip(("INSERT", "UPDATE", "DELETE", "CREATE in the schema"), may) if allowed in (True, "t", "true")]
    if granted:
        raise Fail(f"user {ANALYST} may {', '.join(granted)} on {REPORTING_VIEW}: a read-only analyst should only SELECT")
    return f"user {ANALYST} is refused the fact tables and may not write to reporting"
