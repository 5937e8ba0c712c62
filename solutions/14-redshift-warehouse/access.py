"""Lab 14 — reference solution, step 4: the reporting schema analysts read, and a read-only analyst whose
credentials live in Secrets Manager. Rerunnable: the analyst keeps the password its secret holds."""

import json
import secrets

import boto3

from sql import run

ANALYST = "dea_analyst"
GROUP = "analysts"
SECRET = "dea-wh/analyst"

secretsmanager = boto3.client("secretsmanager")


def reporting() -> None:
    run("CREATE SCHEMA IF NOT EXISTS reporting")
    run("CREATE OR REPLACE VIEW reporting.daily_revenue AS SELECT sale_date, revenue, orders FROM public.mv_daily_revenue")


def analyst_password() -> str:
    """The password the secret holds, or a new one (Redshift wants an upper-case letter, a lower-case one and a digit)."""
    try:
        return json.loads(secretsmanager.get_secret_value(SecretId=SECRET)["SecretString"])["password"]
    except secretsmanager.exceptions.ResourceNotFoundException:
        password = f"Ab1{secrets.token_hex(12)}"
        secretsmanager.create_secret(Name=SECRET, SecretString=json.dumps(
            {"engine": "redshift", "dbname": "dev", "username": ANALYST, "password": password}))
        return password


def analyst() -> None:
    password = analyst_password()
    if not run(f"SELECT 1 FROM pg_group WHERE groname = '{GROUP}'"):
        run(f"CREATE GROUP {GROUP}")
    if run(f"SELECT 1 FROM pg_user WHERE usename = '{ANALYST}'"):
        run(f"ALTER USER {ANALYST} PASSWORD '{password}'")
        run(f"ALTER GROUP {GROUP} ADD USER {ANALYST}")
    else:
        run(f"CREATE USER {ANALYST} PASSWORD '{password}' IN GROUP {GROUP}")
    run(f"GRANT USAGE ON SCHEMA reporting TO GROUP {GROUP}")
    run(f"GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO GROUP {GROUP}")


if __name__ == "__main__":
    reporting()
    analyst()
