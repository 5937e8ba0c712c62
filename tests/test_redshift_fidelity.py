"""Redshift as its SQL reference describes it, where Lab 14 found dealab differing: COPY rejects a line once
(MAXERROR counts lines), DISTSTYLE AUTO is ALL while a table is small and EVEN once it grows, and materialized
views live in any schema, with grants on them enforced."""

from __future__ import annotations

import re

import boto3
import pytest

from dealab.engines.redshift.errors import RedshiftError
from dealab.engines.redshift.warehouse import Warehouse


@pytest.fixture
def warehouse(tmp_path):
    built = Warehouse(tmp_path / "dev.duckdb", tmp_path / "scratch", "dev", "serverless")
    yield built
    built.close()


def _sql(warehouse: Warehouse, sql: str, s3=None, user: str | None = None):
    cursor = warehouse.session()
    try:
        return warehouse.execute(cursor, sql, None, s3, user=user)
    finally:
        cursor.close()


def test_copy_rejects_each_bad_line_once_and_maxerror_counts_lines(warehouse):
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        # a header line (fails in every typed column), a line short of two fields, a line with a bad number
        lines = ["sale_id,store_id,day,amount,quantity", "1,10,2024-03-01,2.50,1", "2,11", "3,12,2024-03-01,abc,2",
                 "4,13,2024-03-02,1.25,3"]
        s3.put_object(Bucket="lake", Key="sales/part-0.csv", Body=("\n".join(lines) + "\n").encode())
        _sql(warehouse, "CREATE TABLE sales (sale_id INT, store_id INT, day DATE, amount DECIMAL(8,2), quantity INT)")
        copy = "COPY sales FROM 's3://lake/sales/' IAM_ROLE 'arn:aws:iam::123456789012:role/r' CSV MAXERROR {}"
        with pytest.raises(RedshiftError, match=re.escape("Load into table 'sales' failed.  Check 'sys_load_error_detail' system table for details.")):
            _sql(warehouse, copy.format(2), s3)
        assert _sql(warehouse, "SELECT count(*) FROM sales").rows == [(0,)]
        assert _sql(warehouse, copy.format(3), s3).affected == 2
        errors = _sql(warehouse, "SELECT query_id, line_number, column_name, error_code, error_message FROM sys_load_error_detail "
                                 "ORDER BY query_id, line_number").rows
        assert len(errors) == 6  # three lines, by each of the two COPYs
        failed, loaded = errors[:3], errors[3:]
        assert [row[1:4] for row in loaded] == [(1, "sale_id", 1207), (3, "day", 1214), (4, "amount", 1207)]
        assert [row[1:] for row in failed] == [row[1:] for row in loaded]
        assert "Delimiter not found" in loaded[1][4] and "Type: Decimal" in loaded[2][4]


def test_a_materialized_view_lives_in_any_schema_with_grants_enforced(tmp_path):
    warehouse = Warehouse(tmp_path / "dev.duckdb", tmp_path / "scratch", "dev", "provisioned")
    try:
        for sql in ["CREATE SCHEMA mart", "CREATE TABLE mart.sales (region VARCHAR(8), amount INT)",
                    "INSERT INTO mart.sales VALUES ('eu', 1), ('us', 2), ('eu', 3)", "CREATE SCHEMA reporting",
                    "CREATE MATERIALIZED VIEW reporting.by_region AUTO REFRESH YES AS "
                    "SELECT region, sum(amount) AS total FROM mart.sales GROUP BY region",
                    "CREATE MATERIALIZED VIEW by_region AS SELECT region FROM mart.sales",  # public's, another view
                    "CREATE USER ann PASSWORD DISABLED", "CREATE USER bob PASSWORD DISABLED", "GRANT USAGE ON SCHEMA reporting TO ann, bob",
                    "GRANT SELECT ON reporting.by_region TO ann"]:
            _sql(warehouse, sql)
        info = "SELECT schema_name, name, is_stale, autorefresh FROM svv_mv_info ORDER BY 1, 2"
        assert _sql(warehouse, info).rows == [("public", "by_region", "f", "f"), ("reporting", "by_region", "f", "t")]
        assert _sql(warehouse, 'SELECT "schema", name FROM stv_mv_info ORDER BY 1').rows == [("public", "by_region"), ("reporting", "by_region")]
        assert _sql(warehouse, "SELECT * FROM reporting.by_region ORDER BY region", user="ann").rows == [("eu", 4), ("us", 2)]
        with pytest.raises(RedshiftError, match="permission denied for relation by_region"):
            _sql(warehouse, "SELECT * FROM reporting.by_region", user="bob")
        with pytest.raises(RedshiftError, match="permission denied"):
            _sql(warehouse, "SELECT * FROM mart.sales", user="ann")  # the view's rows, not its base table's
        _sql(warehouse, "INSERT INTO mart.sales VALUES ('us', 10)")
        assert _sql(warehouse, info).rows == [("public", "by_region", "t", "f"), ("reporting", "by_region", "t", "t")]
        assert _sql(warehouse, "REFRESH MATERIALIZED VIEW reporting.by_region").affected == 2
        assert _sql(warehouse, info).rows == [("public", "by_region", "t", "f"), ("reporting", "by_region", "f", "t")]
        assert _sql(warehouse, "SELECT * FROM reporting.by_region ORDER BY region", user="ann").rows == [("eu", 4), ("us", 12)]
        with pytest.raises(RedshiftError, match='relation "by_region" already exists'):
            _sql(warehouse, "CREATE MATERIALIZED VIEW reporting.by_region AS SELECT 1 AS one")
        _sql(warehouse, "DROP MATERIALIZED VIEW reporting.by_region")
        assert _sql(warehouse, info).rows == [("public", "by_region", "t", "f")]
        with pytest.raises(RedshiftError, match='materialized view "by_region" does not exist'):
            _sql(warehouse, "REFRESH MATERIALIZED VIEW reporting.by_region")
        _sql(warehouse, "CREATE MATERIALIZED VIEW reporting.by_region AS SELECT region FROM mart.sales")  # no grant survives the drop
        with pytest.raises(RedshiftError, match="permission denied for relation by_region"):
            _sql(warehouse, "SELECT * FROM reporting.by_region", user="ann")
        _sql(warehouse, "DROP MATERIALIZED VIEW IF EXISTS reporting.nothing")
    finally:
        warehouse.close()


def test_diststyle_auto_is_all_while_small_and_even_once_grown_never_back(warehouse):
    from dealab.engines.redshift.dialect import AUTO_ALL_MAX_ROWS

    for sql in ["CREATE TABLE stores (store_id INT, city VARCHAR(20))",  # no DISTSTYLE: AUTO
                "CREATE TABLE sales (sale_id INT, store_id INT, amount INT) DISTKEY (store_id)",
                "CREATE TABLE visits (visit_id INT, store_id INT) DISTSTYLE AUTO",
                "INSERT INTO stores SELECT n, 'city' FROM generate_series(1, 48) g(n)",
                f"INSERT INTO sales SELECT n, n % 48 + 1, n FROM generate_series(1, {AUTO_ALL_MAX_ROWS * 3}) g(n)",
                "INSERT INTO visits SELECT n, n % 48 + 1 FROM generate_series(1, 10) g(n)"]:
        _sql(warehouse, sql)

    def shown():
        return dict(_sql(warehouse, 'SELECT "table", diststyle FROM svv_table_info').rows)

    def movement(sql):
        return re.findall(r"Join (DS_[A-Z_]+)", "\n".join(line for (line,) in _sql(warehouse, "EXPLAIN " + sql).rows))

    assert shown() == {"stores": "AUTO(ALL)", "sales": "KEY(store_id)", "visits": "AUTO(ALL)"}
    assert _sql(warehouse, "SELECT skew_rows FROM svv_table_info WHERE \"table\" = 'stores'").rows == [(None,)]  # a copy on every node
    assert movement("SELECT s.city, sum(f.amount) FROM sales f JOIN stores s ON f.store_id = s.store_id GROUP BY s.city") == ["DS_DIST_ALL_NONE"]
    _sql(warehouse, f"INSERT INTO visits SELECT n, n % 48 + 1 FROM generate_series(11, {AUTO_ALL_MAX_ROWS + 1}) g(n)")
    assert shown()["visits"] == "AUTO(EVEN)"
    assert movement("SELECT count(*) FROM sales f JOIN visits v ON f.store_id = v.store_id") != ["DS_DIST_ALL_NONE"]
    _sql(warehouse, "DELETE FROM visits WHERE visit_id > 5")  # Redshift never changes EVEN back to ALL
    assert shown()["visits"] == "AUTO(EVEN)"
    assert movement("SELECT count(*) FROM sales f JOIN visits v ON f.store_id = v.store_id") == ["DS_DIST_INNER"]  # 5 rows sent
    _sql(warehouse, f"CREATE TABLE big AS SELECT n FROM generate_series(1, {AUTO_ALL_MAX_ROWS + 1}) g(n)")
    _sql(warehouse, "DELETE FROM big")
    assert shown()["big"] == "AUTO(EVEN)"
