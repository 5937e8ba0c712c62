"""Lab 13, part 5 — find the personal data in the raw zone with Macie, then give analysts a masked copy of the EU
customers (README, step 5)."""

import boto3

from roles import ANALYST, DATABASE, LAKE, account

JOB = "dea-gov-pii-scan"
RAW_KEY = "raw/customers/customers.csv"
MASKED_PREFIX = "masked/customers/"
MASKED_TABLE = "customers_masked"

macie = boto3.client("macie2")
s3 = boto3.client("s3")
glue = boto3.client("glue")
lakeformation = boto3.client("lakeformation")

if __name__ == "__main__":
    # TODO: enable Macie; a ONE_TIME classification job JOB over the lake's raw zone; wait for it; print its findings
    # TODO: the masked copy of the EU customers under MASKED_PREFIX, table DATABASE.MASKED_TABLE, the analyst's grant
    print("TODO: no scan and no masked copy yet (README, step 5)")
