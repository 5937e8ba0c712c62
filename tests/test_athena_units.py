"""The Athena engine's pure parts, without a stack: Joda patterns, Java-style doubles, result CSV round
trips, parameter binding, partition pruning against partition values."""

import duckdb
import pytest
import sqlglot

from dealab.engines.athena.datatypes import column_info, java_double, render
from dealab.engines.athena.engine import InvalidRequest, _bind_parameters
from dealab.engines.athena.results import Outcome, parse_csv, to_csv
from dealab.engines.athena.translate import joda_to_strftime, setup_statements, to_duckdb


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
