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
