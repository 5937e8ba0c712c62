"""Redshift users, groups and GRANT, enforced: an analyst group granted one schema reads it and nothing else,
column grants, REVOKE, ownership, the system views, and all of it surviving a restart; then the same user
through the Data API (DbUser, SecretArn) and over the wire with its own password."""

from __future__ import annotations

import json
import socket
import struct
import time

import psycopg
import pytest

from dealab.engines.redshift import tls
from dealab.engines.redshift.pgwire import md5_answer, md5_secret
from dealab.engines.redshift.errors import RedshiftError
from dealab.engines.redshift.warehouse import Warehouse
from tests.conftest import client
from tests.test_pgwire import _error_fields
from tests.test_redshift import redshift_role

ANALYST_PASSWORD = "Analyst-pass1"
SETUP = [
    "CREATE SCHEMA mart",
    "CREATE TABLE mart.sales (id INT, region VARCHAR(8), amount DECIMAL(10,2))",
    "INSERT INTO mart.sales VALUES (1, 'eu', 10.5), (2, 'us', 7.25)",
    "CREATE TABLE mart.customers (id INT, region VARCHAR(8), email VARCHAR(64))",
    "INSERT INTO mart.customers VALUES (1, 'eu', 'a@example.com')",
    "CREATE TABLE public.salaries (name VARCHAR(16), pay INT)",
    "CREATE SCHEMA finance",
    "CREATE TABLE finance.ledger (id INT)",
    "CREATE GROUP analysts",
    f"CREATE USER ann PASSWORD '{ANALYST_PASSWORD}' IN GROUP analysts",
    "CREATE USER bob PASSWORD DISABLED",
    "GRANT USAGE ON SCHEMA mart TO GROUP analysts",
    "GRANT SELECT ON TABLE mart.sales TO GROUP analysts",
]


def _as(warehouse: Warehouse, sql: str, user: str | None = None) -> list[tuple]:
    cursor = warehouse.session()
    try:
        return warehouse.execute(cursor, sql, None, None, user=user).rows
    finally:
        cursor.close()


def _refused(warehouse: Warehouse, sql: str, user: str, message: str) -> None:
    with pytest.raises(RedshiftError, match=message):
        _as(warehouse, sql, user)


def test_an_analyst_group_reads_its_schema_only_and_keeps_its_grants_after_a_restart(tmp_path):
    warehouse = Warehouse(tmp_path / "dev.duckdb", tmp_path / "scratch", "dev", "provisioned")
    for statement in SETUP:
        _as(warehouse, statement)

    assert _as(warehouse, "SELECT sum(amount) FROM mart.sales", "ann") == [(17.75,)]
    _refused(warehouse, "SELECT * FROM salaries", "ann", "ERROR: permission denied for relation salaries$")
    _refused(warehouse, "SELECT count(*) FROM salaries", "ann", "permission denied for relation salaries")
    with pytest.raises(RedshiftError, match="permission denied for relation salaries"):  # the wire's Describe too
        warehouse.describe(warehouse.session(), "SELECT * FROM salaries", user="ann")
    _refused(warehouse, "SELECT * FROM finance.ledger", "ann", "ERROR: permission denied for schema finance$")
    _refused(warehouse, "INSERT INTO mart.sales VALUES (3, 'eu', 1)", "ann", "ERROR: permission denied for relation sales$")
    _refused(warehouse, "SELECT s.id FROM mart.sales s JOIN mart.customers c ON s.id = c.id", "ann",
             "permission denied for relation customers")
    _refused(warehouse, "SELECT * FROM mart.sales", "bob", "permission denied for schema mart")  # not in the group
    _refused(warehouse, "CREATE USER eve PASSWORD 'Eve-pass12'", "ann", "only a superuser")
    _refused(warehouse, "CREATE TABLE mart.mine (id INT)", "ann", "permission denied for schema mart")
    _refused(warehouse, "DROP TABLE mart.sales", "ann", "must be owner of relation sales")
    _refused(warehouse, "TRUNCATE mart.sales", "ann", "permission denied for relation sales")
    with pytest.raises(RedshiftError, match="Password must contain at least one number"):
        _as(warehouse, "CREATE USER weak PASSWORD 'NoDigitsHere'")

    # column grants: the granted columns only, and * reads them all
    _as(warehouse, "GRANT SELECT (id, region) ON mart.customers TO ann")
    assert _as(warehouse, "SELECT c.id, region FROM mart.customers c", "ann") == [(1, "eu")]
    _refused(warehouse, "SELECT email FROM mart.customers", "ann", "permission denied for relation customers")
    _refused(warehouse, "SELECT * FROM mart.customers", "ann", "permission denied for relation customers")
    assert _as(warehouse, "SELECT count(*) FROM mart.customers", "ann") == [(1,)]

    # default privileges reach the tables created after them, in that schema only
    _as(warehouse, "ALTER DEFAULT PRIVILEGES IN SCHEMA mart GRANT SELECT ON TABLES TO GROUP analysts")
    _as(warehouse, "CREATE TABLE mart.daily AS SELECT 1 AS d")
    _as(warehouse, "CREATE TABLE public.later AS SELECT 1 AS d")
    assert _as(warehouse, "SELECT d FROM mart.daily", "ann") == [(1,)]
    _refused(warehouse, "SELECT d FROM later", "ann", "permission denied for relation later")

    # public gives everyone CREATE; what a user creates it owns
    _as(warehouse, "CREATE TABLE scratchpad AS SELECT 1 AS n", "ann")
    assert _as(warehouse, "SELECT n FROM scratchpad", "ann") == [(1,)]
    _refused(warehouse, "SELECT n FROM scratchpad", "bob", "permission denied for relation scratchpad")
    _as(warehouse, "GRANT SELECT ON scratchpad TO bob", "ann")  # an owner grants on its own table
    assert _as(warehouse, "SELECT n FROM scratchpad", "bob") == [(1,)]
    _refused(warehouse, "GRANT SELECT ON mart.sales TO bob", "ann", "only a table's owner or a superuser")

    assert _as(warehouse, "SELECT usename, usesuper FROM pg_user ORDER BY usesysid") == [("ann", False), ("bob", False)]
    assert _as(warehouse, "SELECT current_user, has_table_privilege('mart.sales', 'select'), "
                          "has_table_privilege('ann', 'salaries', 'select'), has_schema_privilege('bob', 'mart', 'usage')", "ann") \
        == [("ann", True, False, False)]
    assert _as(warehouse, "SELECT groname, len(grolist) FROM pg_group") == [("analysts", 1)]
    assert ("sales", "SELECT", "group", "analysts") in _as(
        warehouse, "SELECT relation_name, privilege_type, identity_type, identity_name FROM svv_relation_privileges")

    warehouse.close()
    warehouse = Warehouse(tmp_path / "dev.duckdb", tmp_path / "scratch", "dev", "provisioned")
    assert _as(warehouse, "SELECT count(*) FROM mart.sales", "ann") == [(2,)]
    assert _as(warehouse, "SELECT id FROM mart.customers", "ann") == [(1,)]
    _refused(warehouse, "SELECT * FROM salaries", "ann", "permission denied for relation salaries")

    _as(warehouse, "REVOKE SELECT ON ALL TABLES IN SCHEMA mart FROM GROUP analysts")
    _refused(warehouse, "SELECT * FROM mart.sales", "ann", "permission denied for relation sales")
    _as(warehouse, "GRANT ALL ON ALL TABLES IN SCHEMA mart TO GROUP analysts")
    _as(warehouse, "INSERT INTO mart.sales VALUES (3, 'eu', 1)", "ann")
    _as(warehouse, "ALTER GROUP analysts DROP USER ann")
    _refused(warehouse, "SELECT * FROM mart.sales", "ann", "permission denied for schema mart")
    warehouse.close()


def _wait(data, statement_id: str) -> dict:
    deadline = time.monotonic() + 30
    while (described := data.describe_statement(Id=statement_id))["Status"] not in ("FINISHED", "FAILED", "ABORTED"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return described


def test_a_database_user_signs_in_through_the_data_api_and_the_wire(clean_stack):
    redshift, data = client(clean_stack, "redshift"), client(clean_stack, "redshift-data")
    spectrum_role = redshift_role("spectrum", iam=client(clean_stack, "iam"))
    redshift.create_cluster(ClusterIdentifier="grants", NodeType="dc2.large", MasterUsername="admin",
                            MasterUserPassword="Passw0rd1", DBName="dev", ClusterType="single-node", IamRoles=[spectrum_role])
    admin = {"ClusterIdentifier": "grants", "DbUser": "admin", "Database": "dev"}
    batch = data.batch_execute_statement(Sqls=SETUP, **admin)["Id"]
    assert _wait(data, batch)["Status"] == "FINISHED"

    def run(sql: str, **target) -> dict:
        return _wait(data, data.execute_statement(Sql=sql, **{"ClusterIdentifier": "grants", "Database": "dev", **target})["Id"])

    read = run("SELECT count(*) FROM mart.sales", DbUser="ann")
    assert read["Status"] == "FINISHED", read.get("Error")
    assert data.get_statement_result(Id=read["Id"])["Records"] == [[{"longValue": 2}]]
    assert "permission denied for relation salaries" in run("SELECT * FROM salaries", DbUser="ann")["Error"]
    assert 'user "ghost" does not exist' in run("SELECT 1", DbUser="ghost")["Error"]
    who = run("SELECT current_user", DbUser="ann")
    assert data.get_statement_result(Id=who["Id"])["Records"] == [[{"stringValue": "ann"}]]
    assert run("SELECT usename FROM pg_user WHERE usesuper", DbUser="admin")["Status"] == "FINISHED"

    # an external schema (Spectrum) is read with USAGE on it; its DDL is a superuser's
    s3, glue = client(clean_stack, "s3"), client(clean_stack, "glue")
    s3.create_bucket(Bucket="grants-lake")
    s3.put_object(Bucket="grants-lake", Key="events/events.csv", Body=b"7\n8\n")
    glue.create_database(DatabaseInput={"Name": "raw"})
    for sql in ("CREATE EXTERNAL SCHEMA lake FROM DATA CATALOG DATABASE 'raw' IAM_ROLE 'arn:aws:iam::123456789012:role/spectrum'",
                "CREATE EXTERNAL TABLE lake.events (id INT) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' STORED AS TEXTFILE "
                "LOCATION 's3://grants-lake/events/'"):
        assert run(sql, DbUser="admin")["Status"] == "FINISHED"
    assert "permission denied for schema lake" in run("SELECT count(*) FROM lake.events", DbUser="ann")["Error"]
    assert "only a superuser" in run("CREATE EXTERNAL SCHEMA mine FROM DATA CATALOG DATABASE 'raw'", DbUser="ann")["Error"]
    assert "only a superuser" in run("DROP TABLE lake.events", DbUser="ann")["Error"]
    assert run("GRANT USAGE ON SCHEMA lake TO GROUP analysts", DbUser="admin")["Status"] == "FINISHED"
    external = run("SELECT count(*) FROM lake.events", DbUser="ann")
    assert data.get_statement_result(Id=external["Id"])["Records"] == [[{"longValue": 2}]], external.get("Error")

    secrets = client(clean_stack, "secretsmanager")
    good = secrets.create_secret(Name="ann", SecretString=json.dumps({"username": "ann", "password": ANALYST_PASSWORD}))["ARN"]
    bad = secrets.create_secret(Name="ann-bad", SecretString=json.dumps({"username": "ann", "password": "Wrong-pass1"}))["ARN"]
    assert "permission denied for relation salaries" in run("SELECT * FROM salaries", SecretArn=good)["Error"]
    assert run("SELECT * FROM mart.sales", SecretArn=good)["Status"] == "FINISHED"
    assert 'password authentication failed for user "ann"' in run("SELECT 1", SecretArn=bad)["Error"]

    port = redshift.describe_clusters(ClusterIdentifier="grants")["Clusters"][0]["Endpoint"]["Port"]
    ca = str(clean_stack.state_dir / "redshift" / "tls" / tls.CA_FILE)

    def connect(password: str) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=port, user="ann", password=password, dbname="dev", connect_timeout=10,
                               autocommit=True, sslmode="verify-full", sslrootcert=ca)

    with connect(ANALYST_PASSWORD) as connection:
        assert connection.execute("SELECT region FROM mart.sales ORDER BY id").fetchall() == [("eu",), ("us",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for relation sales"):
            connection.execute("INSERT INTO mart.sales VALUES (3, 'eu', 1)")
        assert connection.execute("SELECT current_user, has_table_privilege('salaries', 'select')").fetchone() == ("ann", False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for relation salaries"):
            connection.cursor().execute("SELECT * FROM salaries WHERE pay > %s", (1,), prepare=True)  # Describe before Execute
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "ann"'):
        connect("Wrong-pass1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:  # the code, as a driver reads it
        startup = struct.pack("!i", 196608) + b"user\0ann\0database\0dev\0\0"
        raw.sendall(struct.pack("!i", len(startup) + 4) + startup)
        request = raw.recv(13)
        answer = md5_answer(md5_secret("ann", "Wrong-pass1"), request[9:13]).encode() + b"\0"
        raw.sendall(b"p" + struct.pack("!i", len(answer) + 4) + answer)
        assert _error_fields(raw)["C"] == "28P01"
    redshift.delete_cluster(ClusterIdentifier="grants", SkipFinalClusterSnapshot=True)
