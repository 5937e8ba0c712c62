"""SUPER with PartiQL navigation on DuckDB's JSON: JSON_PARSE, dot and bracket paths (0-based, lax: a missing path is
NULL), unnesting in FROM, the IS_*/JSON_TYPEOF/JSON_SERIALIZE functions, comparisons with literals; COPY ... JSON
'noshred' into a SUPER column; then through the Data API and a real psycopg and redshift_connector."""

from __future__ import annotations

import json
import time

import boto3
import psycopg
import pytest
import redshift_connector

from dealab.engines.redshift import tls
from dealab.engines.redshift.errors import RedshiftError
from dealab.engines.redshift.warehouse import Warehouse
from tests.conftest import client

ORDERS = [
    "CREATE TABLE orders (id INT, c SUPER)",
    """INSERT INTO orders VALUES
       (1, JSON_PARSE('{"address": {"city": "Paris"}, "items": [{"sku": "a1", "qty": 2, "tags": ["x", "y"]}, {"sku": "b2", "qty": 5}], "name": "Ann"}')),
       (2, JSON_PARSE('{"address": "unknown", "items": {"sku": "z9"}, "name": "Bob", "vip": true}')),
       (3, JSON_PARSE('[1, 2, 3]'))""",
]

DOCUMENTS = [{"id": 1, "customer": {"city": "Lyon"}, "lines": [{"sku": "k1"}]}, {"id": 2, "customer": {"city": "Oslo"}, "lines": []}]


def _rows(warehouse: Warehouse, sql: str) -> list[tuple]:
    cursor = warehouse.session()
    try:
        return warehouse.execute(cursor, sql, None, None).rows
    finally:
        cursor.close()


def test_super_navigation_is_partiql_and_lax(tmp_path):
    warehouse = Warehouse(tmp_path / "dev.duckdb", tmp_path / "scratch", "dev", "serverless")
    for statement in ORDERS:
        _rows(warehouse, statement)
    cursor = warehouse.session()
    result = warehouse.execute(cursor, "SELECT id, o.c.address.city, o.c.items[1].sku, o.c.missing.deeper, c.items[9] "
                                       "FROM orders o ORDER BY id", None, None)
    cursor.close()
    assert [name for name, _ in result.columns] == ["id", "city", "sku", "deeper", "items"]
    assert result.rows == [(1, '"Paris"', '"b2"', None, None), (2, None, None, None, None), (3, None, None, None, None)]
    # unnesting in FROM: an array's elements; a non-array yields nothing (lax)
    assert _rows(warehouse, "SELECT o.id, i.sku, i.qty FROM orders o, o.c.items i ORDER BY 1, 2") == [(1, '"a1"', "2"), (1, '"b2"', "5")]
    assert _rows(warehouse, "SELECT i.sku, t FROM orders o, o.c.items i, i.tags t ORDER BY 2") == [('"a1"', '"x"'), ('"a1"', '"y"')]
    # compared with a literal, a SUPER value is its text or its number
    assert _rows(warehouse, "SELECT id FROM orders o WHERE o.c.address.city = 'Paris'") == [(1,)]
    assert _rows(warehouse, "SELECT id FROM orders WHERE c.name IN ('Bob', 'Zed')") == [(2,)]
    assert _rows(warehouse, "SELECT count(*) FROM orders o, o.c.items i WHERE i.qty >= 5") == [(1,)]
    assert _rows(warehouse, "SELECT c.name::varchar, c.items[0].qty::int FROM orders WHERE id = 1") == [("Ann", 2)]
    assert _rows(warehouse, "SELECT IS_ARRAY(c.items), IS_OBJECT(c.address), IS_BOOLEAN(c.vip), JSON_TYPEOF(c), "
                            "GET_ARRAY_LENGTH(c.items), JSON_SERIALIZE(c.address) FROM orders ORDER BY id") == [
        (True, True, None, "object", 2, '{"city":"Paris"}'), (False, False, True, "object", None, '"unknown"'),
        (None, None, None, "array", None, None)]
    assert _rows(warehouse, "SELECT JSON_TYPEOF(JSON_PARSE('3.5')), IS_SCALAR(JSON_PARSE('\"s\"'))") == [("number", True)]
    # a bare name that another table of the statement has as a plain column stays that column
    _rows(warehouse, "CREATE TABLE people (id INT, c VARCHAR(10))")
    _rows(warehouse, "INSERT INTO people VALUES (1, 'Ann')")
    assert _rows(warehouse, "SELECT o.c.name, p.c FROM orders o JOIN people p ON p.id = o.id WHERE p.c = 'Ann' AND o.c.name = 'Ann'") \
        == [('"Ann"', "Ann")]
    warehouse.close()


def test_copy_json_noshred_loads_each_document_into_a_super_column(tmp_path):
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        s3.put_object(Bucket="lake", Key="events/part-0.json", Body="\n".join(json.dumps(document) for document in DOCUMENTS).encode())
        warehouse = Warehouse(tmp_path / "dev.duckdb", tmp_path / "scratch", "dev", "provisioned")
        session = warehouse.session()
        warehouse.execute(session, "CREATE TABLE events (doc SUPER)", None, s3)
        copied = warehouse.execute(session, "COPY events FROM 's3://lake/events/' IAM_ROLE 'r' FORMAT JSON 'noshred'", None, s3)
        assert copied.affected == 2
        assert warehouse.execute(session, "SELECT e.doc.customer.city, e.doc.lines[0].sku FROM events e ORDER BY 1", None, s3).rows \
            == [('"Lyon"', '"k1"'), ('"Oslo"', None)]
        warehouse.execute(session, "CREATE TABLE wide (doc SUPER, other INT)", None, s3)
        with pytest.raises(RedshiftError, match="JSON 'noshred' loads into a table of one SUPER column"):
            warehouse.execute(session, "COPY wide FROM 's3://lake/events/' IAM_ROLE 'r' FORMAT JSON 'noshred'", None, s3)
        session.close()
        warehouse.close()


def _wait(data, statement_id: str) -> dict:
    deadline = time.monotonic() + 30
    while (described := data.describe_statement(Id=statement_id))["Status"] not in ("FINISHED", "FAILED", "ABORTED"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return described


def test_super_through_the_data_api_and_the_wire(clean_stack, monkeypatch):
    redshift, data = client(clean_stack, "redshift"), client(clean_stack, "redshift-data")
    redshift.create_cluster(ClusterIdentifier="supers", NodeType="dc2.large", MasterUsername="admin",
                            MasterUserPassword="Passw0rd1", DBName="dev", ClusterType="single-node")
    target = {"ClusterIdentifier": "supers", "Database": "dev", "DbUser": "admin"}
    setup = data.batch_execute_statement(Sqls=["CREATE TABLE events (doc SUPER)",
                                               *[f"INSERT INTO events VALUES (JSON_PARSE('{json.dumps(document)}'))" for document in DOCUMENTS]],
                                         **target)["Id"]
    assert _wait(data, setup)["Status"] == "FINISHED", _wait(data, setup).get("Error")
    read = _wait(data, data.execute_statement(Sql="SELECT e.doc.customer.city, e.doc.lines[0].sku FROM events e ORDER BY 1", **target)["Id"])
    assert read["Status"] == "FINISHED", read.get("Error")
    result = data.get_statement_result(Id=read["Id"])
    assert result["Records"] == [[{"stringValue": '"Lyon"'}, {"stringValue": '"k1"'}], [{"stringValue": '"Oslo"'}, {"isNull": True}]]
    assert [column["typeName"] for column in result["ColumnMetadata"]] == ["super", "super"]

    port = redshift.describe_clusters(ClusterIdentifier="supers")["Clusters"][0]["Endpoint"]["Port"]
    ca = str(clean_stack.state_dir / "redshift" / "tls" / tls.CA_FILE)
    with psycopg.connect(host="127.0.0.1", port=port, user="admin", password="Passw0rd1", dbname="dev", connect_timeout=10,
                         autocommit=True, sslmode="verify-full", sslrootcert=ca) as connection:
        rows = connection.execute("SELECT e.doc.customer.city::varchar FROM events e WHERE e.doc.id = %s", (2,)).fetchall()
        assert rows == [("Oslo",)]
    monkeypatch.setenv("SSL_CERT_FILE", str(clean_stack.state_dir / "redshift" / "tls" / tls.BUNDLE_FILE))
    connection = redshift_connector.connect(host="127.0.0.1", port=port, user="admin", password="Passw0rd1", database="dev", timeout=10)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT count(*) FROM events e, e.doc.lines l WHERE l.sku = %s", ("k1",))
        assert cursor.fetchall()[0][0] == 1
    finally:
        connection.close()
    redshift.delete_cluster(ClusterIdentifier="supers", SkipFinalClusterSnapshot=True)
