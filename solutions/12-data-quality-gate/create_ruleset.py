"""Lab 12, part 1 — the orders' data contract as a DQDL ruleset on the landing table (reference solution)."""

import boto3

RULESET = "orders-gate"
DATABASE = "dq_lab"
TABLE = "orders_landing"

# Each rule names what it protects: required columns, the amount's range (0 excluded, 5,000.00 included),
# the status set, one row per order id, orders at most a day old, and customers that exist. The alias
# "customers" is the reference dataset: the job passes it as additional_data_sources, an evaluation run as
# AdditionalDataSources.
DQDL = """Rules = [
    RowCount > 0,
    IsComplete "order_id",
    IsComplete "customer_id",
    IsComplete "amount",
    IsComplete "status",
    IsComplete "order_ts",
    IsUnique "order_id",
    ColumnValues "amount" > 0,
    ColumnValues "amount" <= 5000,
    ColumnValues "status" in ["placed", "paid", "shipped", "delivered", "cancelled"],
    DataFreshness "order_ts" <= 24 hours,
    ReferentialIntegrity "customer_id" "customers.customer_id" = 1.0
]"""

glue = boto3.client("glue")

if __name__ == "__main__":
    try:
        glue.create_data_quality_ruleset(
            Name=RULESET, Ruleset=DQDL, Description="Quality gate of the orders landing batch",
            TargetTable={"DatabaseName": DATABASE, "TableName": TABLE},
        )
        print(f"created ruleset {RULESET} on {DATABASE}.{TABLE}")
    except glue.exceptions.AlreadyExistsException:
        glue.update_data_quality_ruleset(Name=RULESET, Ruleset=DQDL)
        print(f"updated ruleset {RULESET}")
