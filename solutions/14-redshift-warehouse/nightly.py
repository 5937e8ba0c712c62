"""Lab 14 — reference solution, step 3: the night's late sales appended, the materialized view brought up to
date, and the revenue per region and day exported to the lake as Parquet, one folder per region."""

from sql import COPY_ROLE_ARN, LAKE, run

EXPORT = f"s3://{LAKE}/exports/region_daily_revenue/"
REGION_DAILY_REVENUE = ("SELECT s.region, f.sale_date, sum(f.amount) AS revenue, count(*) AS orders "
                        "FROM fact_sales f JOIN dim_store s ON s.store_id = f.store_id GROUP BY s.region, f.sale_date")

if __name__ == "__main__":
    run(f"COPY fact_sales FROM 's3://{LAKE}/late-sales/' IAM_ROLE '{COPY_ROLE_ARN}' CSV GZIP IGNOREHEADER 1 DATEFORMAT 'YYYY-MM-DD'")
    run("REFRESH MATERIALIZED VIEW mv_daily_revenue")
    run(f"UNLOAD ('{REGION_DAILY_REVENUE}') TO '{EXPORT}' IAM_ROLE '{COPY_ROLE_ARN}' FORMAT AS PARQUET PARTITION BY (region) CLEANPATH")
