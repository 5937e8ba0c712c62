"""Lab 13, part 3 — Lake Formation decides what analysts see: EU customers, without the personal columns
(README, step 3). Mind the trap: database gov_lake was made under a fresh account's settings."""

import boto3

from roles import ANALYST, DATABASE, LAKE, STEWARD, account

TABLE = "customers"
FILTER = "analysts_eu_no_pii"
PII_COLUMNS = ["full_name", "email", "phone", "ssn", "card_number", "iban"]
ANALYST_ARN = f"arn:aws:iam::{account}:role/{ANALYST}"
STEWARD_ARN = f"arn:aws:iam::{account}:role/{STEWARD}"

lakeformation = boto3.client("lakeformation")
glue = boto3.client("glue")

if __name__ == "__main__":
    # TODO: the steward as data lake administrator; no default permissions for new databases and tables
    # TODO: what gov_lake and its table were given when they were made (and what gov_lake gives its new tables)
    # TODO: register the lake's location with the steward's role
    # TODO: the data cells filter FILTER on TABLE (EU rows, no PII_COLUMNS) and the analyst's grants
    print(f"TODO: Lake Formation does not govern {DATABASE} yet (README, step 3)")
