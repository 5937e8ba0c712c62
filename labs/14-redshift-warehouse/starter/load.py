"""Lab 14, step 2 — the star schema, loaded from the lake; the daily revenue view; Spectrum's schema.

The lake (s3://dea-wh-lake/) holds stores/stores.csv (store_id, city, region: one line per store, a header
line) and sales/part-000N.csv.gz (gzipped CSV with a header: sale_id, store_id, sale_date, product, channel,
quantity, amount). The point of sale garbled a few sales lines: they must be rejected, recorded, not loaded.
Rerunnable: a second run starts the tables over."""

from sql import COPY_ROLE_ARN, LAKE, run


def tables() -> None:
    # TODO 3: tables dim_store and fact_sales (in public), columns in the files' order with fitting types.
    #         Every dashboard joins the two on store_id and asks about ranges of days. How should each table be
    #         distributed so the join moves no rows between slices, and fact_sales not pile onto a few slices?
    #         How should fact_sales be sorted? (DISTSTYLE AUTO is ALL while small, EVEN once grown: see the README.)
    #         Drop what a previous run made first (the materialized view of TODO 5 depends on fact_sales).
    pass


def load() -> None:
    # TODO 4: COPY both tables from their prefixes with the role. What must COPY be told about the files
    #         (format, compression, the header line)? How does it get past the garbled lines instead of failing,
    #         and where can you then see which lines it rejected and why?
    pass


def daily_revenue() -> None:
    # TODO 5: a materialized view mv_daily_revenue answering, per sale_date: the revenue (sum of amount) and
    #         the number of orders (sales). Columns sale_date, revenue, orders.
    pass


def lake_schema() -> None:
    # TODO 6: the returns are not loaded: they stay in the lake, cataloged in Glue database wh_lake (table
    #         returns). Make them queryable from the warehouse as lake.returns. Rerunnable.
    pass


if __name__ == "__main__":
    tables()
    load()
    daily_revenue()
    lake_schema()
