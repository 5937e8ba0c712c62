"""The Athena engine's pure parts, without a stack: Joda patterns, Java-style doubles, result CSV round
trips, parameter binding, partition pruning against partition values."""

from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from dealab.engines.athena.catalog import PartitionFiles, Table
from dealab.engines.athena.datatypes import column_info, java_double, render
from dealab.engines.athena.engine import InvalidRequest, _bind_parameters
from dealab.engines.athena.planner import _scan_estimate
from dealab.engines.athena.results import Outcome, parse_csv, to_csv
from dealab.engines.athena.statements.common import ONE_THREAD_MAX_BYTES, StatementContext
from dealab.engines.athena.translate import DIALECT, joda_to_strftime, setup_statements, to_duckdb


@pytest.mark.parametrize(("joda", "strftime"), [
    ("yyyy-MM-dd HH:mm:ss", "%Y-%m-%d %H:%M:%S"),
    ("dd/MM/yy", "%d/%m/%y"),
    ("yyyy-MM-dd'T'HH:mm:ss.SSS", "%Y-%m-%dT%H:%M:%S.%g"),
    ("EEE, d MMM yyyy h:mm a", "%a, %-d %b %Y %-I:%M %p"),
    ("'at' HH 'o''clock' 100%", "at %H o'clock 100%%"),
])
def test_joda_patterns_become_strftime(joda, strftime):
    assert joda_to_strftime(joda) == strftime


@pytest.mark.parametrize(("value", "text"), [(1.0, "1.0"), (0.5, "0.5"), (1e7, "1.0E7"), (123456789.0, "1.23456789E8"),
                                             (0.0001, "1.0E-4"), (-2.5e-7, "-2.5E-7"), (float("nan"), "NaN")])
def test_doubles_render_as_java_does(value, text):
    assert java_double(value) == text


def test_result_csv_keeps_null_apart_from_empty_and_survives_quotes_and_newlines():
    outcome = Outcome.from_rows("DML", "SELECT", ["a", "b"], ["VARCHAR", "INTEGER"], [("x,\"y\"\nz", None), ("", 3)])
    text = to_csv(outcome).decode()
    assert text == '"a","b"\n"x,""y""\nz",\n"",\"3"\n'
    assert parse_csv(text) == [["a", "b"], ['x,"y"\nz', None], ["", "3"]]


def test_nested_values_and_column_info_follow_athena():
    assert render([1, None], "INTEGER[]") == "[1, null]"
    assert render({"k": 1}, "MAP(VARCHAR, INTEGER)") == "{k=1}"
    assert column_info("d", "DECIMAL(10,2)")["Type"] == "decimal" and column_info("d", "DECIMAL(10,2)")["Scale"] == 2
    assert column_info("s", "VARCHAR")["Precision"] == 2147483647 and column_info("s", "VARCHAR")["CaseSensitive"] is True


def test_execution_parameters_fill_placeholders_outside_quotes():
    assert _bind_parameters("SELECT '?' , ? WHERE x = ?", ["1", "'a'"]) == "SELECT '?' , 1 WHERE x = 'a'"
    with pytest.raises(InvalidRequest):
        _bind_parameters("SELECT ?, ?", ["1"])
    with pytest.raises(InvalidRequest):
        _bind_parameters("SELECT 1", ["1"])


def test_translated_sql_means_what_trino_means():
    connection = duckdb.connect()
    for statement in setup_statements():
        connection.execute(statement)

    def run(sql: str):
        return connection.execute(to_duckdb(sqlglot.parse_one(sql, read="athena"))).fetchone()

    assert run("SELECT 7 / 2, -7 / 2, 7.0 / 2, 7 % 3") == (3, -3, 3.5, 1)
    assert run("SELECT date_diff('day', TIMESTAMP '2024-01-01 23:00:00', TIMESTAMP '2024-01-02 01:00:00')") == (0,)
    assert run("SELECT typeof(1), typeof(1.5), typeof('a'), typeof(ARRAY[1])") == ("integer", "decimal(2,1)", "varchar", "array(integer)")
    assert run("SELECT url_extract_port('http://h:81/'), url_extract_fragment('http://h/p#frag'), url_extract_host('not a url')") == (81, "frag", None)


def test_a_query_reading_little_runs_on_the_one_thread_connection():
    """Queries that may read at most ONE_THREAD_MAX_BYTES run on the sandbox's one-thread connection (DuckDB's
    threads would take turns at Python's lock in the file system's callbacks); others, and every query where
    there is no such connection (the HTTP read path), on the query's own."""
    wide, narrow = duckdb.connect(), duckdb.connect()
    try:
        ctx = StatementContext(execution_id="q", sql="SELECT 1", database="default", catalog=None, connection=wide,
                               scratch=Path("."), output_folder="s3://out/", one_thread=narrow)
        ctx.scan_estimate = ONE_THREAD_MAX_BYTES
        assert ctx.connection_for_query() is narrow
        ctx.scan_estimate = ONE_THREAD_MAX_BYTES + 1
        assert ctx.connection_for_query() is wide
        ctx.scan_estimate, ctx.one_thread = 0, None
        assert ctx.connection_for_query() is wide
    finally:
        wide.close()
        narrow.close()


def test_the_scan_estimate_counts_the_columns_a_parquet_query_names():
    """How much of a table a query may read (which decides its DuckDB threads): a Parquet table's share of named
    columns (none for count(*), all for `*` or `t.*`; partition columns are in the path), a row format's every byte."""
    def table(serde: str) -> Table:
        return Table("shop", "events", {"PartitionKeys": [{"Name": "dt", "Type": "string"}], "StorageDescriptor": {
            "Columns": [{"Name": name, "Type": "string"} for name in ("id", "user_id", "category", "amount", "url")],
            "SerdeInfo": {"SerializationLibrary": serde}}})
    parquet, csv = table("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"), table("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe")
    partitions = [PartitionFiles({"dt": "2024-03-05"}, "s3://lake/events/", [("s3://lake/events/a", 600), ("s3://lake/events/b", 400)])]

    def estimate(table: Table, sql: str) -> int:
        query = sqlglot.parse_one(sql, read=DIALECT)
        return _scan_estimate(table, partitions, query, next(query.find_all(exp.Table)))

    assert estimate(parquet, "SELECT count(*) FROM shop.events WHERE dt = '2024-03-05'") == 0
    assert estimate(parquet, "SELECT category, sum(amount) FROM shop.events GROUP BY category") == 400
    assert estimate(parquet, "SELECT e.amount FROM shop.events e JOIN shop.users u ON e.user_id = u.id") == 400  # u.id is not e's
    assert estimate(parquet, "SELECT amount FROM shop.events e JOIN shop.users u ON user_id = u.user_id AND id > 0") == 600
    assert estimate(parquet, "SELECT * FROM shop.events") == estimate(parquet, "SELECT e.* FROM shop.events e") == 1000
    assert estimate(csv, "SELECT count(*) FROM shop.events") == 1000
