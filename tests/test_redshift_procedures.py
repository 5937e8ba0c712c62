"""Stored procedures in dealab's PL/pgSQL subset: CREATE/CALL/DROP/SHOW PROCEDURE with IF, loops, EXIT/CONTINUE,
EXECUTE, RAISE, SELECT INTO, COMMIT/ROLLBACK and WHEN OTHERS; a clear 0A000 beyond the subset; variables bound as
literals (a value cannot inject SQL); procedures kept with the data across a restart; EXECUTE granted to database
users. Then through the Data API and over the wire (psycopg's notices and SQLSTATEs, redshift_connector's OUT
arguments), and the wire's is_superuser reported per user."""

from __future__ import annotations

import re
import time

import psycopg
import pytest
import redshift_connector

from dealab.engines.redshift import pgwire, tls
from dealab.engines.redshift.errors import RedshiftError
from dealab.engines.redshift.warehouse import Warehouse
from tests.conftest import client

FILL = """CREATE OR REPLACE PROCEDURE fill(n int, prefix varchar(10), INOUT total int, OUT msg varchar)
AS $$
DECLARE
  i int := 0;
  c int;
BEGIN
  WHILE i < n LOOP
    i := i + 1;
    IF i % 2 = 0 THEN
      CONTINUE;
    ELSIF i = 5 THEN
      RAISE INFO 'five reached, prefix %', prefix;
    ELSE
      NULL;
    END IF;
    INSERT INTO items VALUES (i, prefix || i::varchar);
  END LOOP;
  FOR j IN REVERSE 3..1 LOOP
    total := total + j;
  END LOOP;
  SELECT count(*) INTO c FROM items WHERE name LIKE prefix || '%';
  msg := 'inserted ' || c;
  EXECUTE 'INSERT INTO items VALUES (' || 100 || ', ''dynamic'')';
  GET DIAGNOSTICS c := ROW_COUNT;
  RAISE NOTICE 'dynamic rows %', c;
END;
$$ LANGUAGE plpgsql"""
LOOPS = """CREATE PROCEDURE loops() AS $$
DECLARE
  r RECORD;
  s int := 0;
BEGIN
  FOR r IN SELECT id FROM items ORDER BY id LOOP
    s := s + r.id;
    EXIT WHEN s > 3;
  END LOOP;
  <<outer>>
  LOOP
    LOOP
      EXIT outer;
    END LOOP;
  END LOOP;
  RAISE INFO 'sum %', s;
  INSERT INTO items VALUES (7, 'kept');
  COMMIT;
  INSERT INTO items VALUES (8, 'rolled back');
  ROLLBACK;
END;
$$ LANGUAGE plpgsql"""
GUARDED = """CREATE PROCEDURE guarded(x int) AS $$
BEGIN
  INSERT INTO items VALUES (x, 'before');
  IF x > 10 THEN
    RAISE EXCEPTION 'value % is too large', x;
  END IF;
  BEGIN
    EXECUTE 'SELECT * FROM no_such_table';
  EXCEPTION WHEN OTHERS THEN
    RAISE INFO 'caught: %', SQLERRM;
  END;
END;
$$ LANGUAGE plpgsql"""


def _run(warehouse: Warehouse, sql: str, user: str | None = None):
    cursor = warehouse.session()
    try:
        return warehouse.execute(cursor, sql, None, None, user=user)
    finally:
        cursor.close()


def _rows(warehouse: Warehouse, sql: str, user: str | None = None) -> list[tuple]:
    return _run(warehouse, sql, user).rows


def test_a_procedure_runs_the_subset_and_survives_a_restart(tmp_path):
    warehouse = Warehouse(tmp_path / "dev.duckdb", tmp_path / "scratch", "dev", "provisioned")
    _run(warehouse, "CREATE TABLE items (id INT, name VARCHAR(20))")
    for definition in (FILL, LOOPS, GUARDED):
        _run(warehouse, definition)

    called = _run(warehouse, "CALL fill(6, 'it''s', 10)")  # OUT and INOUT arguments come back as one row
    assert called.columns == [("total", "INTEGER"), ("msg", "VARCHAR")] and called.rows == [(16, "inserted 3")]
    assert called.notices == [("INFO", "five reached, prefix it's"), ("NOTICE", "dynamic rows 1")]
    assert _rows(warehouse, "SELECT id, name FROM items ORDER BY id") == [(1, "it's1"), (3, "it's3"), (5, "it's5"), (100, "dynamic")]

    assert _run(warehouse, "CALL loops()").notices == [("INFO", "sum 4")]  # 1 + 3, then EXIT WHEN
    assert _rows(warehouse, "SELECT name FROM items WHERE id IN (7, 8)") == [("kept",)]  # COMMIT kept it, ROLLBACK undid 8

    assert _run(warehouse, "CALL guarded(2)").notices == [("INFO", 'caught: relation "no_such_table" does not exist')]
    with pytest.raises(RedshiftError, match="^ERROR: value 11 is too large$") as raised:
        _run(warehouse, "CALL guarded(11)")
    assert raised.value.sqlstate == "P0001"
    assert _rows(warehouse, "SELECT count(*) FROM items WHERE id = 11") == [(0,)]  # the failed call rolled back
    assert _rows(warehouse, "SELECT message FROM svl_stored_proc_messages WHERE message LIKE 'five%'") == [("five reached, prefix it's",)]
    assert _rows(warehouse, "SELECT procedure_name, status FROM sys_procedure_call WHERE procedure_name = 'guarded' ORDER BY query_id") \
        == [("guarded", "success"), ("guarded", "failed")]

    # a value is bound, never spliced: this text is a name, not a statement
    _run(warehouse, "CREATE PROCEDURE rename_item(new_name varchar) AS $$ BEGIN UPDATE items SET name = new_name WHERE id = 1; END; "
                    "$$ LANGUAGE plpgsql")
    _run(warehouse, "CALL rename_item('x''; DROP TABLE items; --')")
    assert _rows(warehouse, "SELECT name FROM items WHERE id = 1") == [("x'; DROP TABLE items; --",)]

    for body, refused in (("OPEN c;", "cursors (OPEN)"), ("RETURN 1;", "RETURN with a value"),
                          ("FOREACH x IN ARRAY a LOOP END LOOP;", "FOREACH")):
        with pytest.raises(RedshiftError, match=re.escape(refused) + r".* is not supported in dealab's procedure subset"):
            _run(warehouse, f"CREATE PROCEDURE beyond() AS $$ BEGIN {body} END; $$ LANGUAGE plpgsql")
    with pytest.raises(RedshiftError, match="NONATOMIC mode is not supported"):
        _run(warehouse, "CREATE PROCEDURE beyond() NONATOMIC AS $$ BEGIN NULL; END; $$ LANGUAGE plpgsql")
    with pytest.raises(RedshiftError, match="query has no destination for result data"):
        _run(warehouse, "CREATE PROCEDURE bare() AS $$ BEGIN SELECT 1; END; $$ LANGUAGE plpgsql; ")
        _run(warehouse, "CALL bare()")
    with pytest.raises(RedshiftError, match='function "fill" already exists with same argument types'):
        _run(warehouse, FILL.replace("OR REPLACE ", ""))

    warehouse.close()
    warehouse = Warehouse(tmp_path / "dev.duckdb", tmp_path / "scratch", "dev", "provisioned")
    assert _rows(warehouse, "SELECT proname, pronargs, proargnames FROM pg_proc ORDER BY proname") == [
        ("bare", 0, []), ("fill", 4, ["n", "prefix", "total", "msg"]), ("guarded", 1, ["x"]), ("loops", 0, []), ("rename_item", 1, ["new_name"])]
    assert _run(warehouse, "CALL fill(1, 'z', 0)").rows == [(6, "inserted 1")]
    assert "RAISE EXCEPTION 'value % is too large', x;" in _rows(warehouse, "SHOW PROCEDURE guarded")[0][0]
    _run(warehouse, "DROP PROCEDURE guarded(int)")
    with pytest.raises(RedshiftError, match=r"procedure guarded\(unknown\) does not exist"):
        _run(warehouse, "CALL guarded(1)")
    warehouse.close()


def test_execute_on_procedure_is_granted_to_database_users(tmp_path):
    warehouse = Warehouse(tmp_path / "dev.duckdb", tmp_path / "scratch", "dev", "provisioned")
    for statement in ("CREATE TABLE salaries (name VARCHAR(16), pay INT)", "INSERT INTO salaries VALUES ('ann', 10), ('bob', 20)",
                      "CREATE USER ann PASSWORD 'Analyst-pass1'", "CREATE GROUP analysts WITH USER ann",
                      "CREATE PROCEDURE payroll(OUT total int) AS $$ BEGIN SELECT sum(pay) INTO total FROM salaries; END; $$ "
                      "LANGUAGE plpgsql SECURITY DEFINER",
                      "CREATE PROCEDURE peek(OUT total int) AS $$ BEGIN SELECT sum(pay) INTO total FROM salaries; END; $$ "
                      "LANGUAGE plpgsql"):
        _run(warehouse, statement)
    with pytest.raises(RedshiftError, match="^ERROR: permission denied for procedure payroll$"):
        _run(warehouse, "CALL payroll()", "ann")
    _run(warehouse, "GRANT EXECUTE ON PROCEDURE payroll() TO GROUP analysts")
    _run(warehouse, "GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA public TO ann")
    assert _rows(warehouse, "CALL payroll()", "ann") == [(30,)]  # SECURITY DEFINER: the owner's grants
    with pytest.raises(RedshiftError, match="permission denied for relation salaries"):
        _run(warehouse, "CALL peek()", "ann")  # SECURITY INVOKER: the caller's
    assert _rows(warehouse, "SELECT function_name, identity_type, identity_name FROM svv_function_privileges ORDER BY 1, 2") == [
        ("payroll", "group", "analysts"), ("payroll", "user", "ann"), ("peek", "user", "ann")]
    _run(warehouse, "REVOKE EXECUTE ON PROCEDURE payroll() FROM GROUP analysts")
    _run(warehouse, "REVOKE EXECUTE ON PROCEDURE payroll() FROM ann")
    with pytest.raises(RedshiftError, match="permission denied for procedure payroll"):
        _run(warehouse, "CALL payroll()", "ann")
    with pytest.raises(RedshiftError, match="must be owner of procedure payroll"):
        _run(warehouse, "DROP PROCEDURE payroll()", "ann")
    _run(warehouse, "CREATE PROCEDURE mine() AS $$ BEGIN RAISE INFO 'mine'; END; $$ LANGUAGE plpgsql", "ann")  # PUBLIC may CREATE in public
    assert _run(warehouse, "CALL mine()", "ann").notices == [("INFO", "mine")]
    warehouse.close()


def test_the_wire_keeps_a_dollar_quoted_body_whole():
    """psql sends a CREATE PROCEDURE in a simple Query: its body's semicolons do not split it, and its $1 is the
    procedure's argument, not a parameter of the statement."""
    sql = "CREATE PROCEDURE p(int) AS $body$ BEGIN RAISE INFO '%', $1; END; $body$ LANGUAGE plpgsql; CALL p($1)"
    assert pgwire.split_statements(sql) == [sql.rpartition(";")[0], "CALL p($1)"]
    assert pgwire.parameter_count(sql.rpartition(";")[0]) == 0 and pgwire.parameter_count("CALL p($1)") == 1


def _wait(data, statement_id: str) -> dict:
    deadline = time.monotonic() + 30
    while (described := data.describe_statement(Id=statement_id))["Status"] not in ("FINISHED", "FAILED", "ABORTED"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return described


def test_procedures_through_the_data_api_and_the_wire_and_is_superuser_per_user(clean_stack, monkeypatch):
    redshift, data = client(clean_stack, "redshift"), client(clean_stack, "redshift-data")
    redshift.create_cluster(ClusterIdentifier="procs", NodeType="dc2.large", MasterUsername="admin",
                            MasterUserPassword="Passw0rd1", DBName="dev", ClusterType="single-node")
    target = {"ClusterIdentifier": "procs", "Database": "dev", "DbUser": "admin"}

    def run(sql: str, **parameters) -> dict:
        return _wait(data, data.execute_statement(Sql=sql, **target, **parameters)["Id"])

    setup = data.batch_execute_statement(Sqls=["CREATE TABLE items (id INT, name VARCHAR(20))", FILL, GUARDED,
                                               "CREATE USER ann PASSWORD 'Analyst-pass1'",
                                               "CREATE USER boss PASSWORD 'Boss-pass1' CREATEUSER"], **target)["Id"]
    assert _wait(data, setup)["Status"] == "FINISHED", _wait(data, setup).get("Error")
    called = run("CALL fill(:n, 'p', 1)", Parameters=[{"name": "n", "value": "3"}])
    assert called["Status"] == "FINISHED", called.get("Error")
    result = data.get_statement_result(Id=called["Id"])
    assert result["Records"] == [[{"longValue": 7}, {"stringValue": "inserted 2"}]]
    assert [column["name"] for column in result["ColumnMetadata"]] == ["total", "msg"]
    assert run("CALL guarded(12)")["Error"] == "ERROR: value 12 is too large"
    assert "OPEN" in run("CREATE PROCEDURE beyond() AS $$ BEGIN OPEN c; END; $$ LANGUAGE plpgsql")["Error"]

    port = redshift.describe_clusters(ClusterIdentifier="procs")["Clusters"][0]["Endpoint"]["Port"]
    ca = str(clean_stack.state_dir / "redshift" / "tls" / tls.CA_FILE)

    def connect(user: str, password: str) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="dev", connect_timeout=10,
                               autocommit=True, sslmode="verify-full", sslrootcert=ca)

    with connect("admin", "Passw0rd1") as connection:
        assert connection.info.parameter_status("is_superuser") == "on"
        notices = []
        connection.add_notice_handler(lambda notice: notices.append((notice.severity, notice.message_primary)))
        connection.execute(GUARDED.replace("CREATE PROCEDURE guarded", "CREATE OR REPLACE PROCEDURE guarded"))  # $1 and ; inside $$
        assert connection.execute("CALL fill(5, 'w', 0)").fetchone() == (6, "inserted 3")
        assert notices == [("INFO", "five reached, prefix w"), ("NOTICE", "dynamic rows 1")]
        with pytest.raises(psycopg.errors.RaiseException, match="value 20 is too large"):
            connection.execute("CALL guarded(%s)", (20,))
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="not supported in dealab's procedure subset"):
            connection.execute("CREATE PROCEDURE beyond() AS $$ BEGIN OPEN c; END; $$ LANGUAGE plpgsql")
        with pytest.raises(psycopg.errors.UndefinedFunction, match="procedure nothing"):
            connection.execute("CALL nothing()")
    with connect("ann", "Analyst-pass1") as connection:
        assert connection.info.parameter_status("is_superuser") == "off"
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for procedure fill"):
            connection.execute("CALL fill(1, 'a', 0)")
    with connect("boss", "Boss-pass1") as connection:
        assert connection.info.parameter_status("is_superuser") == "on"

    monkeypatch.setenv("SSL_CERT_FILE", str(clean_stack.state_dir / "redshift" / "tls" / tls.BUNDLE_FILE))
    connection = redshift_connector.connect(host="127.0.0.1", port=port, user="admin", password="Passw0rd1", database="dev", timeout=10)
    try:
        cursor = connection.cursor()
        cursor.execute("CALL fill(%s, %s, %s)", (1, "rc", 100))
        assert [list(row) for row in cursor.fetchall()] == [[106, "inserted 1"]]
        connection.commit()
    finally:
        connection.close()
    redshift.delete_cluster(ClusterIdentifier="procs", SkipFinalClusterSnapshot=True)
