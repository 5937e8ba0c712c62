"""Lab 14, step 4 — a read-only analyst. Analysts read schema reporting, and only that; their credentials live
in Secrets Manager (secret dea-wh/analyst: a JSON document with username and password), which is how the Data
API (SecretArn=...) and the grader sign in as them."""

import boto3

from sql import run

ANALYST = "dea_analyst"
GROUP = "analysts"
SECRET = "dea-wh/analyst"

secretsmanager = boto3.client("secretsmanager")


def reporting() -> None:
    # TODO 10: schema reporting with a view daily_revenue (sale_date, revenue, orders) over mv_daily_revenue.
    pass


def analyst() -> None:
    # TODO 11: group GROUP and user ANALYST in it (Redshift wants a password of 8-64 characters with an upper-case
    #          letter, a lower-case one and a digit), the secret SECRET holding its username and password, and
    #          the grants: what must the group be given to read reporting's views, and nothing more?
    #          A second run must keep the secret and the user's password in agreement.
    pass


if __name__ == "__main__":
    reporting()
    analyst()
