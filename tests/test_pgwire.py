"""The Postgres wire protocol server with real clients (psql, psycopg, redshift_connector) over a DuckDB session
stand-in: start-up and MD5 authentication, simple and extended queries, SQLSTATE errors, a client that goes
away. What the Redshift engine runs behind it is tested with the engine."""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass, field

import duckdb
import psycopg
import pytest
import redshift_connector

from dealab.engines.redshift import tls
from dealab.engines.redshift.pgwire import WireError, WireServer, md5_answer, md5_secret, split_statements

USER, PASSWORD, DATABASE = "awsuser", "Secret-pass-1", "dev"
DUCKDB_CODES = {duckdb.CatalogException: "42P01", duckdb.ParserException: "42601"}


@dataclass
class Answer:
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    affected: int = -1


class DuckSession:
    def __init__(self, cursor):
        self.cursor = cursor

    def execute(self, sql: str, parameters: list) -> Answer:
        try:
            self.cursor.execute(sql, parameters or None)
        except duckdb.Error as error:
            raise WireError(DUCKDB_CODES.get(type(error), "XX000"), str(error).splitlines()[0]) from None
        if self.cursor.description is None:
            return Answer()
        columns = [(name, str(kind)) for name, kind, *_ in self.cursor.description]
        rows = self.cursor.fetchall()
        if sql.split()[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            return Answer(affected=int(rows[0][0]))
        return Answer(columns, rows)

    def describe(self, sql: str):
        if sql.split()[0].upper() not in ("SELECT", "WITH"):
            return None
        self.cursor.execute(f"SELECT * FROM ({sql}) AS described LIMIT 0", [None] * sql.count("$") or None)
        return [(name, str(kind)) for name, kind, *_ in self.cursor.description]

    def cancel(self) -> None:
        self.cursor.interrupt()

    def close(self) -> None:
        self.cursor.close()


class DuckSessions:
    def __init__(self):
        self.database = duckdb.connect()

    def md5_secret_of(self, user: str) -> str | None:
        return md5_secret(USER, PASSWORD) if user == USER else None

    def open(self, user: str, database: str) -> DuckSession:
        if database != DATABASE:
            raise WireError("3D000", f'database "{database}" does not exist', severity="FATAL")
        return DuckSession(self.database.cursor())

    def refused(self, user: str, peer: tuple[str, int]) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    running = WireServer(0, DuckSessions()).start()
    yield running
    running.stop()


def connect(server, password: str = PASSWORD) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=server.port, user=USER, password=password, dbname=DATABASE,
                           sslmode="prefer", connect_timeout=5, autocommit=True)


def test_psycopg_runs_simple_and_extended_queries(server):
    with connect(server) as connection:
        connection.execute("CREATE TABLE sales (id INTEGER, region VARCHAR, amount DECIMAL(10,2), sold DATE)")
        inserted = connection.execute("INSERT INTO sales VALUES (1, 'eu', 10.50, DATE '2026-01-02'), (2, 'us', 7.25, NULL)")
        assert inserted.rowcount == 2
        rows = connection.execute("SELECT id, region, amount, sold FROM sales WHERE id >= %s ORDER BY id", (1,)).fetchall()
        assert [(row[0], row[1], str(row[2]), row[3] and row[3].isoformat()) for row in rows] == [
            (1, "eu", "10.50", "2026-01-02"), (2, "us", "7.25", None)]
        with connection.cursor() as cursor:  # several statements in one Query message: the last result is read
            cursor.execute("SELECT 1; SELECT 'two' AS word", prepare=False)
        assert connection.execute("SELECT count(*) FROM sales").fetchone() == (2,)


def test_errors_carry_postgres_sqlstate_and_leave_the_session_usable(server):
    with connect(server) as connection:
        with pytest.raises(psycopg.errors.UndefinedTable):
            connection.execute("SELECT * FROM no_such_table")
        with pytest.raises(psycopg.errors.SyntaxError):
            connection.execute("SELEC 1")
        assert connection.execute("SELECT 41 + %s", (1,)).fetchone() == (42,)


def _error_fields(raw: socket.socket) -> dict[str, str]:
    """Reads messages until an ErrorResponse and returns its fields (code letter → text)."""
    stream = raw.makefile("rb")
    while True:
        kind, length = stream.read(1), struct.unpack("!i", stream.read(4))[0]
        payload = stream.read(length - 4)
        if kind == b"E":
            return {field[:1]: field[1:] for field in payload.decode().split("\0") if field}


def test_a_wrong_password_is_refused_with_28P01(server):
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "awsuser"'):
        connect(server, password="wrong")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:  # the code, as a driver reads it
        startup = struct.pack("!i", 196608) + b"user\0awsuser\0database\0dev\0\0"
        raw.sendall(struct.pack("!i", len(startup) + 4) + startup)
        request = raw.recv(13)
        assert request[:1] == b"R" and struct.unpack("!i", request[5:9])[0] == 5  # MD5, with a salt
        answer = md5_answer(md5_secret(USER, "wrong"), request[9:13]).encode() + b"\0"
        raw.sendall(b"p" + struct.pack("!i", len(answer) + 4) + answer)
        fields = _error_fields(raw)
    assert (fields["S"], fields["C"]) == ("FATAL", "28P01")


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_psql_connects_and_prints_a_result(server):
    run = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", USER, "-d", DATABASE, "-At",
                          "-c", "SELECT 'from psql' AS greeting"],
                         env={**os.environ, "PGPASSWORD": PASSWORD, "PGCONNECT_TIMEOUT": "5"}, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "from psql"


def test_redshift_connector_queries_without_tls(server):
    connection = redshift_connector.connect(host="127.0.0.1", port=server.port, user=USER, password=PASSWORD,
                                            database=DATABASE, ssl=False, timeout=10)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT 7 AS seven, 'x' AS letter, TIMESTAMP '2026-12-06 10:30:00' AS at, true AS yes")
        assert [list(row) for row in cursor.fetchall()] == [[7, "x", datetime.datetime(2026, 12, 6, 10, 30), True]]
        cursor.execute("CREATE TABLE events (id BIGINT, kind VARCHAR, score DOUBLE)")
        cursor.execute("INSERT INTO events VALUES (%s, %s, %s)", (1, "click", 0.5))
        cursor.execute("INSERT INTO events VALUES (%s, %s, %s)", (2, "view", 1.5))
        cursor.execute("SELECT kind, score FROM events WHERE id > %s ORDER BY id", (0,))
        assert [list(row) for row in cursor.fetchall()] == [["click", 0.5], ["view", 1.5]]
    finally:
        connection.close()


def test_a_client_that_goes_away_mid_start_up_leaves_the_server_healthy(server):
    for startup in (b"", struct.pack("!ii", 8, 80877103), struct.pack("!ii", 40, 196608) + b"user\0awsuser\0"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            raw.sendall(startup)
    with connect(server) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


def test_statements_split_on_semicolons_outside_quotes_and_comments():
    assert split_statements("select ';'; -- a; comment\nselect 2;;") == ["select ';'", "select 2"]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    running = WireServer(0, DuckSessions(), tls.server_context(folder)).start()
    yield running, folder
    running.stop()


def test_tls_with_the_dealab_ca_for_psycopg_and_redshift_connectors_defaults(tls_server, monkeypatch):
    server, folder = tls_server
    with psycopg.connect(host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, dbname=DATABASE, connect_timeout=5,
                         sslmode="verify-full", sslrootcert=str(folder / tls.CA_FILE)) as connection:
        assert connection.pgconn.ssl_in_use
        assert connection.execute("SELECT 'private'").fetchone() == ("private",)
    # redshift_connector's defaults (ssl=True, verify-ca) with the bundle `dealab env` exports as SSL_CERT_FILE
    monkeypatch.setenv("SSL_CERT_FILE", str(folder / tls.BUNDLE_FILE))
    connection = redshift_connector.connect(host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, database=DATABASE, timeout=10)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT 1 + 1")
        assert [list(row) for row in cursor.fetchall()] == [[2]]
    finally:
        connection.close()
    assert (folder / tls.KEY_FILE).stat().st_mode & 0o077 == 0
