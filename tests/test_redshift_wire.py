"""A workgroup's and a cluster's endpoint speak the Postgres wire protocol: psycopg (TLS verified against the dealab
CA) and redshift_connector (its ssl=True default, with the bundle `dealab env` exports) sign in as the admin, run
SQL the Data API then sees, get Redshift's errors with their SQLSTATE, and find the endpoint again after kill -9."""

from __future__ import annotations

import time

import psycopg
import pytest
import redshift_connector

from dealab.engines.redshift import tls
from dealab.stack import control
from tests.conftest import client, kill_hard
from tests.test_iam import as_keys, code, new_user

ADMIN, PASSWORD = "admin", "Lab-14-password"


def _available_endpoint(settings, workgroup: str) -> int:
    serverless = client(settings, "redshift-serverless")
    deadline = time.monotonic() + 30
    while (found := serverless.get_workgroup(workgroupName=workgroup)["workgroup"])["status"] != "AVAILABLE":
        assert time.monotonic() < deadline, found
        time.sleep(0.3)
    assert found["endpoint"]["address"] == "127.0.0.1"
    return found["endpoint"]["port"]


def _connect(settings, port: int, password: str = PASSWORD, database: str = "dev") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user=ADMIN, password=password, dbname=database, connect_timeout=10,
                           autocommit=True, sslmode="verify-full", sslrootcert=str(settings.state_dir / "redshift" / "tls" / tls.CA_FILE))


def test_a_workgroup_endpoint_runs_sql_over_the_wire_and_survives_kill_9(private_stack, monkeypatch):
    serverless = client(private_stack, "redshift-serverless")
    serverless.create_namespace(namespaceName="wire-ns", adminUsername=ADMIN, adminUserPassword=PASSWORD, dbName="dev")
    serverless.create_workgroup(workgroupName="wire-wg", namespaceName="wire-ns")
    port = _available_endpoint(private_stack, "wire-wg")

    with _connect(private_stack, port) as connection:
        assert connection.pgconn.ssl_in_use
        connection.execute("CREATE TABLE sales (id INT, region VARCHAR(8), amount DECIMAL(10,2)) DISTKEY(id) SORTKEY(region)")
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO sales VALUES (%s, %s, %s)", [(1, "eu", 10.5), (2, "us", 7.25), (3, "eu", 1.0)])
        rows = connection.execute("SELECT region, count(*) FROM sales WHERE amount > %s GROUP BY region ORDER BY region", (1,)).fetchall()
        assert rows == [("eu", 1), ("us", 1)]
        with pytest.raises(psycopg.errors.UndefinedTable, match='relation "no_such_table" does not exist'):
            connection.execute("SELECT * FROM no_such_table")
        with pytest.raises(psycopg.errors.UndefinedFunction, match="dealab refuses"):  # the lock-down holds over the wire too
            connection.execute("SELECT * FROM read_csv('/etc/passwd')")
        assert connection.execute("SELECT tablename, \"column\", distkey FROM pg_table_def WHERE tablename = 'sales' AND distkey").fetchall() \
            == [("sales", "id", True)]

    # the Data API sees what the wire wrote: one database behind both
    data = client(private_stack, "redshift-data")
    statement = data.execute_statement(WorkgroupName="wire-wg", Database="dev", Sql="SELECT sum(amount) FROM sales")["Id"]
    deadline = time.monotonic() + 30
    while data.describe_statement(Id=statement)["Status"] not in ("FINISHED", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert data.get_statement_result(Id=statement)["Records"] == [[{"stringValue": "18.75"}]]

    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "admin"'):
        _connect(private_stack, port, password="wrong")
    with pytest.raises(psycopg.OperationalError, match='database "prod" does not exist'):
        _connect(private_stack, port, database="prod")

    # redshift_connector as AWS's docs call it: ssl=True (verify-ca) by default, trusting the bundle `dealab env` exports
    monkeypatch.setenv("SSL_CERT_FILE", str(private_stack.state_dir / "redshift" / "tls" / tls.BUNDLE_FILE))
    connection = redshift_connector.connect(host="127.0.0.1", port=port, user=ADMIN, password=PASSWORD, database="dev", timeout=10)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT id, region FROM sales WHERE region = %s ORDER BY id", ("eu",))
        assert [list(row) for row in cursor.fetchall()] == [[1, "eu"], [3, "eu"]]
        cursor.execute("INSERT INTO sales VALUES (%s, %s, %s)", (4, "apac", 2.0))
        connection.commit()
    finally:
        connection.close()

    kill_hard(private_stack)
    control.up(private_stack)
    port_after = _available_endpoint(private_stack, "wire-wg")
    with _connect(private_stack, port_after) as connection:
        assert connection.execute("SELECT count(*) FROM sales").fetchone() == (4,)


def test_a_cluster_endpoint_takes_the_master_user_and_a_changed_password(clean_stack):
    redshift = client(clean_stack, "redshift")
    redshift.create_cluster(ClusterIdentifier="wire-cluster", NodeType="ra3.xlplus", MasterUsername=ADMIN,
                            MasterUserPassword=PASSWORD, DBName="analytics", ClusterType="single-node")
    endpoint = redshift.describe_clusters(ClusterIdentifier="wire-cluster")["Clusters"][0]["Endpoint"]
    with _connect(clean_stack, endpoint["Port"], database="analytics") as connection:
        assert connection.execute("SELECT current_database() IS NOT NULL").fetchone() == (True,)
    redshift.modify_cluster(ClusterIdentifier="wire-cluster", MasterUserPassword="Changed-password-2")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(clean_stack, endpoint["Port"], database="analytics")
    with _connect(clean_stack, endpoint["Port"], password="Changed-password-2", database="analytics") as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    redshift.delete_cluster(ClusterIdentifier="wire-cluster", SkipFinalClusterSnapshot=True)
    with pytest.raises(psycopg.OperationalError):
        _connect(clean_stack, endpoint["Port"], password="Changed-password-2", database="analytics")


def test_the_data_api_is_authorized_for_iam_users_by_its_actions(clean_stack):
    serverless = client(clean_stack, "redshift-serverless")
    serverless.create_namespace(namespaceName="iam-ns", adminUsername=ADMIN, adminUserPassword=PASSWORD, dbName="dev")
    serverless.create_workgroup(workgroupName="iam-wg", namespaceName="iam-ns")
    analyst = new_user(clean_stack, "rs-analyst", {"Effect": "Allow", "Action": ["redshift-data:ExecuteStatement", "redshift-data:DescribeStatement"],
                                                   "Resource": "*"})
    data = as_keys(clean_stack, "redshift-data", analyst)
    statement = data.execute_statement(WorkgroupName="iam-wg", Database="dev", Sql="SELECT 1")["Id"]
    assert data.describe_statement(Id=statement)["Id"] == statement
    assert code(lambda: data.get_statement_result(Id=statement)) == "AccessDeniedException"  # no redshift-data:GetStatementResult
    assert code(lambda: as_keys(clean_stack, "redshift-serverless", analyst).list_workgroups()) == "AccessDeniedException"
