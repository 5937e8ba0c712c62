"""Lab 12, part 1 — the orders' data contract as a DQDL ruleset on the landing table.

The contract (README "The data contract"): order_id, customer_id, amount, status and order_ts present; order_id
unique; amount greater than 0 and at most 5,000.00; status one of placed, paid, shipped, delivered, cancelled;
order_ts at most 24 hours old; customer_id in the customers table (alias "customers").
"""

import boto3

RULESET = "orders-gate"
DATABASE = "dq_lab"
TABLE = "orders_landing"

# TODO: one rule per clause of the contract (IsComplete, IsUnique, ColumnValues, DataFreshness, ReferentialIntegrity).
# Try the ruleset on the table with an evaluation run before the job uses it (README, step 1).
DQDL = """Rules = [
    RowCount > 0
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
