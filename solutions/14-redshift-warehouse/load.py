"""Lab 14 — reference solution, step 2: the star schema with its distribution and sort keys, loaded from the
lake with COPY (the point of sale garbles a few lines: they are rejected and recorded, not loaded), the daily
revenue materialized view, and Spectrum's schema over the lake's catalog. Rerunnable: it starts the tables over."""

from sql import COPY_ROLE_ARN, LAKE, run

DIM_STORE = """CREATE TABLE dim_store (
    store_id INTEGER NOT NULL,
    city VARCHAR(64),
    region VARCHAR(16))
    DISTSTYLE ALL SORTKEY (store_id)"""
FACT_SALES = """CREATE TABLE fact_sales (
    sale_id BIGINT NOT NULL,
    store_id INTEGER NOT NULL,
    sale_date DATE NOT NULL,
    product VARCHAR(32),
    channel VARCHAR(8),
    quantity INTEGER,
    amount DECIMAL(10,2))
    DISTKEY (store_id) SORTKEY (sale_date)"""
DAILY_REVENUE = """CREATE MATERIALIZED VIEW mv_daily_revenue AS
    SELECT sale_date, sum(amount) AS revenue, count(*) AS orders FROM fact_sales GROUP BY sale_date"""


def tables() -> None:
    run("DROP MATERIALIZED VIEW IF EXISTS mv_daily_revenue CASCADE")
    run("DROP TABLE IF EXISTS fact_sales")
    run("DROP TABLE IF EXISTS dim_store")
    run(DIM_STORE)
    run(FACT_SALES)


def load() -> None:
    run(f"COPY dim_store FROM 's3://{LAKE}/stores/' IAM_ROLE '{COPY_ROLE_ARN}' CSV IGNOREHEADER 1")
    run(f"COPY fact_sales FROM 's3://{LAKE}/sales/' IAM_ROLE '{COPY_ROLE_ARN}' CSV GZIP IGNOREHEADER 1 DATEFORMAT 'YYYY-MM-DD' MAXERROR 20")
    rejected = run("SELECT count(*) FROM (SELECT DISTINCT file_name, line_number FROM sys_load_error_detail "
                   "WHERE query_id = (SELECT max(query_id) FROM sys_load_error_detail))")
    print(f"fact_sales: {run('SELECT count(*) FROM fact_sales')[0][0]} rows loaded, {rejected[0][0]} lines rejected")


def lake_schema() -> None:
    run(f"CREATE EXTERNAL SCHEMA IF NOT EXISTS lake FROM DATA CATALOG DATABASE 'wh_lake' IAM_ROLE '{COPY_ROLE_ARN}'")


if __name__ == "__main__":
    tables()
    load()
    run(DAILY_REVENUE)
    lake_schema()
