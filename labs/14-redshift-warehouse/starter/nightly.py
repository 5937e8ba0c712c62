"""Lab 14, step 3 — the night's work: late sales, the view brought up to date, the export for the lake.

s3://dea-wh-lake/late-sales/part-0000.csv.gz holds sales of the last day that arrived late (same columns)."""

from sql import COPY_ROLE_ARN, LAKE, run

EXPORT = f"s3://{LAKE}/exports/region_daily_revenue/"

if __name__ == "__main__":
    # TODO 7: append the late sales to fact_sales.
    # TODO 8: the materialized view was computed before they arrived: what does it show now, and what makes it
    #         show them? (SVV_MV_INFO tells whether a view is stale.)
    # TODO 9: export the revenue and orders per region and sale_date (fact_sales joined to dim_store) to EXPORT,
    #         as Parquet, one folder per region (region=north/, ...), so Athena and Spectrum can prune by region.
    #         A second run must be able to write there again.
    pass
