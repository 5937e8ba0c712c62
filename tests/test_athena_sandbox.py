"""Athena SQL never reaches the host: table functions and DuckDB statements that touch local files or the
engine's configuration end FAILED with an Athena-style reason, and nothing is read or written; the DuckDB
lockdown behind that check holds on its own; the direct read path's S3 file system reaches only the objects a
query's tables name, never for writes, listings or globs; queries time out and StopQueryExecution cancels them."""

from __future__ import annotations

import io
import itertools
import re
import time
from types import SimpleNamespace

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dealab.engines.athena.catalog import view_text
from dealab.engines.athena.execution import QueryRunner
from dealab.engines.athena.s3reads import NO_QUERY_REASON, READ_ONLY_REASON, CallerS3, ListedObjects
from dealab.wire.loopback import Loopback, RawAnswer
from dealab.stack import control
from tests.conftest import client, make_settings
from tests.test_athena import Athena, lake, put_sales_csv, unique  # noqa: F401  (lake is a fixture)

SECRET = "canary-secret-4242"


@pytest.fixture
def canary(tmp_path):
    """A host folder with a file a query must not read; COPY/ATTACH targets inside it must stay absent."""
    folder = tmp_path / "host"
    folder.mkdir()
    (folder / "canary.csv").write_text(f"word\n{SECRET}\n")
    return folder


# Each host-reaching form → the code its StateChangeReason starts with (None: a syntax error). {file} is the canary file,
# {dir} its folder, {out} a path that must not be written.
HOST_FORMS = [
    ("SELECT * FROM read_csv('{file}')", "FUNCTION_NOT_FOUND"),
    ("SELECT * FROM read_csv_auto('{file}')", "FUNCTION_NOT_FOUND"),
    ("SELECT * FROM read_text('{file}')", "FUNCTION_NOT_FOUND"),
    ("SELECT content FROM read_blob('{file}')", "FUNCTION_NOT_FOUND"),
    ("SELECT * FROM read_parquet('{file}')", "FUNCTION_NOT_FOUND"),
    ("SELECT * FROM parquet_metadata('{file}')", "FUNCTION_NOT_FOUND"),
    ("SELECT * FROM sniff_csv('{file}')", "FUNCTION_NOT_FOUND"),
    ("SELECT * FROM glob('{dir}/*')", None),  # sqlglot takes glob for the GLOB operator: a syntax error
    ("SELECT * FROM TABLE(read_text('{file}'))", "FUNCTION_NOT_FOUND"),
    ("SELECT (SELECT content FROM read_text('{file}'))", "FUNCTION_NOT_FOUND"),
    ("WITH r AS (SELECT * FROM read_csv('{file}')) SELECT * FROM r", "FUNCTION_NOT_FOUND"),
    ("SELECT * FROM (VALUES 1) AS t(x) CROSS JOIN read_text('{file}')", "FUNCTION_NOT_FOUND"),
    ("SELECT * FROM query('SELECT * FROM read_text(''{file}'')')", "FUNCTION_NOT_FOUND"),
    ("SELECT * FROM duckdb_settings()", "FUNCTION_NOT_FOUND"),
    ("SELECT current_setting('allowed_directories')", "FUNCTION_NOT_FOUND"),
    ("SELECT * FROM \"{file}\"", "TABLE_NOT_FOUND"),
    ("EXPLAIN SELECT * FROM read_text('{file}')", "FUNCTION_NOT_FOUND"),
    ("COPY (SELECT 1) TO '{out}'", "NOT_SUPPORTED"),
    ("ATTACH '{out}' AS other", "NOT_SUPPORTED"),
    ("SET enable_external_access = true", "NOT_SUPPORTED"),
    ("PRAGMA enable_profiling", "NOT_SUPPORTED"),
    ("INSTALL spatial", "NOT_SUPPORTED"),
    ("LOAD httpfs", "NOT_SUPPORTED"),
    ("CALL enable_logging('HTTP')", "NOT_SUPPORTED"),
]


@pytest.mark.parametrize(("template", "code"), HOST_FORMS, ids=[t for t, _ in HOST_FORMS])
def test_host_reaching_sql_fails_and_touches_nothing(lake, canary, template, code):
    out = canary / "written.csv"
    sql = template.format(file=canary / "canary.csv", dir=canary, out=out)
    status = lake.athena.run(sql, lake.db, expect="FAILED")["Status"]
    if code is None:
        assert "mismatched input" in status["StateChangeReason"], status
    else:
        assert status["StateChangeReason"].startswith(code + ":"), status
    assert SECRET not in status["StateChangeReason"]
    assert status["AthenaError"]["ErrorCategory"] == 2  # the learner's error, not the engine's
    assert sorted(p.name for p in canary.iterdir()) == ["canary.csv"]


def test_create_view_over_a_host_file_is_refused_and_not_stored(lake, canary):
    status = lake.athena.run(f"CREATE VIEW {lake.db}.peek AS SELECT * FROM read_text('{canary / 'canary.csv'}')",
                             lake.db, expect="FAILED")["Status"]
    assert status["StateChangeReason"].startswith("FUNCTION_NOT_FOUND:") and "read_text" in status["StateChangeReason"]
    tables = client(lake.settings, "glue").get_tables(DatabaseName=lake.db)["TableList"]
    assert [t["Name"] for t in tables] == []


def test_a_view_written_straight_into_glue_cannot_read_the_host_either(lake, canary):
    sql = f"SELECT content FROM read_text('{canary / 'canary.csv'}')"
    client(lake.settings, "glue").create_table(DatabaseName=lake.db, TableInput={
        "Name": "sneaky", "TableType": "VIRTUAL_VIEW", "ViewExpandedText": "/* Presto View */",
        "ViewOriginalText": view_text(sql, lake.db, [("content", "varchar")]),
        "StorageDescriptor": {"Columns": [{"Name": "content", "Type": "string"}], "SerdeInfo": {}},
    })
    status = lake.athena.run(f"SELECT * FROM {lake.db}.sneaky", lake.db, expect="FAILED")["Status"]
    assert status["StateChangeReason"].startswith("FUNCTION_NOT_FOUND:") and SECRET not in status["StateChangeReason"]


def test_a_table_located_on_the_host_reads_nothing(lake, canary):
    lake.athena.run(f"CREATE EXTERNAL TABLE {lake.db}.local (word string) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
                    f"LOCATION 'file://{canary}/'", lake.db)
    execution = lake.athena.wait(lake.athena.start(f"SELECT * FROM {lake.db}.local", lake.db))
    assert execution["Status"]["State"] == "FAILED"
    assert SECRET not in execution["Status"]["StateChangeReason"]


# Ways SQL could name an S3 object, folder or pattern itself rather than through a table: {object} is a readable
# object no table names, {bucket} its bucket.
S3_FORMS = [
    "SELECT * FROM read_csv('{object}')",
    "SELECT * FROM read_text('{object}')",
    "SELECT * FROM read_parquet('s3://{bucket}/*/*.parquet')",
    "SELECT * FROM glob('s3://{bucket}/*')",
    "SELECT * FROM '{object}'",
    'SELECT * FROM "{object}"',
    "SELECT * FROM parquet_metadata('{object}')",
    "COPY (SELECT 1 AS x) TO 's3://{bucket}/written.csv'",
    "CREATE VIEW peek AS SELECT * FROM read_csv('{object}')",
]


@pytest.mark.parametrize("template", S3_FORMS)
def test_sql_reaches_s3_objects_only_through_tables(lake, template):
    """The direct path's file system is registered on every query's database: SQL still cannot name an object,
    list a bucket, glob or write through it, only read the files of the tables it queries."""
    lake.s3.put_object(Bucket=lake.bucket, Key="private/secret.csv", Body=f"word\n{SECRET}\n".encode())
    sql = template.format(object=f"s3://{lake.bucket}/private/secret.csv", bucket=lake.bucket)
    execution = lake.athena.wait(lake.athena.start(sql, lake.db))
    assert execution["Status"]["State"] == "FAILED", execution["Status"]
    assert SECRET not in execution["Status"]["StateChangeReason"]
    assert execution["Statistics"]["DataScannedInBytes"] == 0
    keys = [o["Key"] for o in lake.s3.list_objects_v2(Bucket=lake.bucket).get("Contents", [])]
    assert keys == ["private/secret.csv"]
    assert client(lake.settings, "glue").get_tables(DatabaseName=lake.db)["TableList"] == []


def direct_runner(tmp_path) -> QueryRunner:
    """A runner on the direct read path whose loopback has no gateway (a request would fail, not be refused)."""
    (tmp_path / "scratch").mkdir()
    return QueryRunner("http://127.0.0.1:9", "us-east-1", catalog=SimpleNamespace(listed=ListedObjects()), scratch=tmp_path / "scratch", on_change=None,
                       caller=CallerS3(Loopback(), "http://127.0.0.1:9", "us-east-1"))


def test_the_direct_file_system_refuses_writes_listings_and_globs_by_itself(tmp_path):
    """Defence in depth: on a query's connection without the query check, s3:// writes, listings and patterns are
    refused by the file system before any request is made, and so is a path naming no live query's token (on the
    query's connection to the shared database and to its one-thread copy alike)."""
    runner = direct_runner(tmp_path)
    box = runner._open_sandbox()
    try:
        assert box.reads is not None and box.one_thread is not None
        for connection, statement in itertools.product((box.connection, box.one_thread), [
            "COPY (SELECT 1 AS x) TO 's3://lake/written.csv'",
            "COPY (SELECT 1 AS x) TO 's3://lake/written.parquet' (FORMAT parquet)",
            "SELECT * FROM glob('s3://lake/*')",
            "SELECT * FROM read_csv('s3://lake/*.csv')",
            "SELECT * FROM read_parquet('s3://lake/**')",
        ]):
            with pytest.raises(duckdb.Error, match=re.escape(READ_ONLY_REASON)):
                connection_rows = connection.execute(statement).fetchall()
                raise AssertionError(f"{statement} gave {connection_rows}")
        for connection, path in itertools.product((box.connection, box.one_thread),
                                                  ["s3://lake/data.csv", "s3://0123456789abcdef0123456789abcdef/lake/data.csv"]):
            with pytest.raises(duckdb.Error, match=re.escape(NO_QUERY_REASON)):
                connection.execute(f"SELECT * FROM read_csv('{path}')").fetchall()
        assert box.reads.counter.requests == 0
    finally:
        box.discard()
        runner.close()


def test_nothing_a_query_leaves_reaches_the_next_on_the_shared_database(tmp_path):
    """Queries share one database, a connection each: what one connection can make is temporary and goes with it
    (views, tables, macros, variables, prepared statements), the database itself takes no DDL (it is read-only),
    the configuration is locked, and a query's S3 token is refused once the query is over. (Learner SQL reaches
    none of these statements: this is the layer behind the query check.) The same holds on the one-thread copy of
    the database that queries reading little run on."""
    for database in ("connection", "one_thread"):
        (tmp_path / database).mkdir()
        nothing_reaches_the_next(direct_runner(tmp_path / database), database)


def nothing_reaches_the_next(runner: QueryRunner, database: str) -> None:
    first = runner._open_sandbox()
    try:
        for statement in ["CREATE TEMPORARY VIEW leftover_view AS SELECT 42 AS x", "CREATE TEMP TABLE leftover_table AS SELECT 42 AS x",
                          "CREATE TEMP MACRO leftover_macro(x) AS x + 42", "SET VARIABLE leftover_variable = 42",
                          "PREPARE leftover_statement AS SELECT 42", "SELECT setseed(0.42)"]:
            getattr(first, database).execute(statement)
        for statement in ["CREATE TABLE kept AS SELECT 1 AS x", "CREATE VIEW kept_view AS SELECT 1 AS x", "CREATE MACRO kept_macro(x) AS x",
                          "CREATE OR REPLACE MACRO trino_typeof(t) AS 'changed'", "DROP MACRO trino_typeof", "CREATE SEQUENCE kept_sequence",
                          "CREATE TYPE kept_type AS INTEGER", "ATTACH ':memory:' AS kept_database", "SET integer_division = false",
                          "SET threads = 1", "RESET integer_division", "SET SESSION integer_division = false"]:
            with pytest.raises(duckdb.Error):
                getattr(first, database).execute(statement)
        token_path = first.reads.prefix + "lake/data.csv"
    finally:
        first.discard()
    second = runner._open_sandbox()
    try:
        connection = getattr(second, database)
        assert second.reads.prefix != token_path[: len(second.reads.prefix)]
        assert connection.execute("SELECT table_name FROM duckdb_tables()").fetchall() == []
        assert connection.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall() == []
        assert connection.execute("SELECT function_name FROM duckdb_functions() WHERE function_name LIKE 'leftover%' "
                                  "OR function_name LIKE 'kept%'").fetchall() == []
        assert connection.execute("SELECT getvariable('leftover_variable')").fetchall() == [(None,)]
        with pytest.raises(duckdb.Error):
            connection.execute("EXECUTE leftover_statement")
        assert connection.execute("SELECT current_setting('integer_division'), trino_typeof('INTEGER')").fetchall() == [(True, "integer")]
        with pytest.raises(duckdb.Error, match=re.escape(NO_QUERY_REASON)):
            connection.execute(f"SELECT * FROM read_csv('{token_path}')").fetchall()
    finally:
        second.discard()
        runner.close()


def test_s3_reads_ctas_unload_and_ordinary_queries_still_work(lake):
    athena, db = lake.athena, lake.db
    put_sales_csv(lake, days=2, rows_per_day=10)
    athena.run(f"CREATE EXTERNAL TABLE {db}.sales (id bigint, item string, price double) PARTITIONED BY (dt string) "
               f"ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{lake.bucket}/raw/sales/' "
               "TBLPROPERTIES ('skip.header.line.count'='1')", db)
    athena.run(f"MSCK REPAIR TABLE {db}.sales", db)
    assert athena.rows(athena.run(f"SELECT count(*) AS n FROM {db}.sales", db)) == [["n"], ["20"]]
    athena.run(f"CREATE TABLE {db}.copied WITH (format = 'PARQUET', external_location = 's3://{lake.bucket}/copied/') "
               f"AS SELECT id, item FROM {db}.sales", db)
    assert athena.rows(athena.run(f"SELECT count(*) AS n FROM {db}.copied", db)) == [["n"], ["20"]]
    athena.run(f"UNLOAD (SELECT item FROM {db}.sales) TO 's3://{lake.bucket}/unloaded/' WITH (format = 'JSON')", db)
    assert lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix="unloaded/")["KeyCount"] >= 1
    rows = athena.rows(athena.run("SELECT sum(x) AS s FROM UNNEST(sequence(1, 4)) AS t(x) CROSS JOIN range(2) AS r(y)", db))
    assert rows == [["s"], ["20"]]


def test_stop_query_execution_cancels_a_running_query(lake):
    athena = lake.athena
    execution_id = athena.start("SELECT count(*) FROM range(40000000000) AS a(x) WHERE x % 7 = 3", lake.db)
    deadline = time.time() + 30
    while athena.athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]["State"] != "RUNNING":
        assert time.time() < deadline, "the query never started"
        time.sleep(0.05)
    athena.athena.stop_query_execution(QueryExecutionId=execution_id)
    status = athena.wait(execution_id, timeout=30)["Status"]
    assert status["State"] == "CANCELLED", status


@pytest.mark.parametrize("read_path", ["direct", "http"])
def test_the_duckdb_lockdown_holds_without_the_query_check(tmp_path, canary, read_path):
    """Defence in depth: a query's connection refuses host paths and configuration changes by itself, on the
    shared database of the direct path as on the HTTP path's database of its own."""
    if read_path == "direct":
        runner = direct_runner(tmp_path)
    else:
        runner = QueryRunner("http://127.0.0.1:9", "us-east-1", catalog=None, scratch=tmp_path / "scratch", on_change=None)
        (tmp_path / "scratch").mkdir()
    assert runner.read_path == read_path
    box = runner._open_sandbox()
    try:
        connection = box.connection
        for each, statement in itertools.product((box.connection, box.one_thread) if read_path == "direct" else (box.connection,), [
            f"SELECT * FROM read_text('{canary / 'canary.csv'}')",
            f"SELECT * FROM '{canary / 'canary.csv'}'",
            f"SELECT * FROM glob('{canary}/*')",
            f"COPY (SELECT 1) TO '{canary / 'written.csv'}'",
            f"ATTACH '{canary / 'other.db'}'",
            f"SELECT * FROM read_text('{box.folder}/../../host/canary.csv')",
            "INSTALL spatial",
            "SET enable_external_access = true",
            "SET allowed_directories = ['/']",
            "SET lock_configuration = false",
            "SET threads = 4",
        ]):
            with pytest.raises(duckdb.Error):
                each.execute(statement).fetchall()
        box.folder.mkdir(exist_ok=True)  # made by the statement that writes there (CTAS, INSERT, UNLOAD)
        connection.execute(f"COPY (SELECT 42 AS x) TO '{box.folder}/own.csv'")  # CTAS writes here first
        assert connection.execute(f"SELECT x FROM read_csv('{box.folder}/own.csv')").fetchall() == [(42,)]
        assert sorted(p.name for p in canary.iterdir()) == ["canary.csv"]
    finally:
        box.discard()
        runner.close()
    assert not box.folder.exists()


def test_a_runaway_query_fails_at_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALAB_ATHENA_QUERY_TIMEOUT", "2")
    settings = make_settings(tmp_path / "state")
    control.up(settings)
    try:
        client(settings, "s3").create_bucket(Bucket="timeout-results")
        athena = Athena(settings, "s3://timeout-results/")
        execution = athena.wait(athena.start("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t"),
                                timeout=60)
        status = execution["Status"]
        assert status["State"] == "FAILED", status
        assert status["StateChangeReason"].startswith("Query timeout") and "DEALAB_ATHENA_QUERY_TIMEOUT" in status["StateChangeReason"]
        assert athena.rows(athena.run("SELECT 1 AS one")) == [["one"], ["1"]]  # the next query runs as usual
    finally:
        control.down(settings)


def _rows_parquet() -> bytes:
    body = io.BytesIO()
    pq.write_table(pa.table({"n": list(range(1000)), "twice": [n * 2 for n in range(1000)]}), body)
    return body.getvalue()


class BlobS3(CallerS3):
    """S3 holding one small Parquet object (b/rows.parquet), read through the shared database's file system."""

    BODY = _rows_parquet()

    def __init__(self):
        super().__init__(Loopback(), "http://127.0.0.1:9", "us-east-1")

    def request(self, method, bucket, key, headers=None, body=b""):
        start, _, end = (headers or {}).get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
        first = len(self.BODY) - int(end) if start == "" else int(start)
        last = len(self.BODY) - 1 if start == "" or end == "" else int(end)
        headers = {"etag": '"v1"', "content-range": f"bytes {first}-{last}/{len(self.BODY)}", "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
        return RawAnswer(206, headers, self.BODY[first:last + 1])

    def may_read(self, bucket, key):
        return False  # nothing listed: every opening asks this S3


def test_queries_on_the_shared_database_leave_no_reads_behind(tmp_path):
    """The shared database outlives every query, and each query's paths are its own: DuckDB's cache of file reads
    (keyed by path) would keep every query's bytes for good and serve none of them again."""
    (tmp_path / "scratch").mkdir()
    runner = QueryRunner("http://127.0.0.1:9", "us-east-1", catalog=SimpleNamespace(listed=ListedObjects()),
                         scratch=tmp_path / "scratch", on_change=None, caller=BlobS3())
    try:
        for _ in range(3):
            box = runner._open_sandbox()
            try:
                rows = box.connection.execute(f"SELECT count(*), sum(twice) FROM read_parquet(['{box.reads.prefix}b/rows.parquet'])").fetchall()
                assert rows == [(1000, 999_000)]
                assert box.connection.execute("SELECT count(*) FROM duckdb_external_file_cache()").fetchone() == (0,)
            finally:
                box.discard()
    finally:
        runner.close()
