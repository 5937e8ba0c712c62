"""Data types across the three vocabularies Athena touches: Hive (the Glue catalog), DuckDB (execution) and
Trino (what Athena reports in ColumnInfo and typeof), and how Athena renders values as text."""

from __future__ import annotations

import datetime
import decimal
import functools
import math

import sqlglot
from sqlglot import exp

# DuckDB type (base name) → the Trino name Athena reports. Anything not listed keeps DuckDB's name, lowered.
TRINO_NAME_FOR_DUCKDB = {
    "BOOLEAN": "boolean",
    "TINYINT": "tinyint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "bigint",  # DuckDB's sum/count_if of integers; Trino's are bigint
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "decimal",
    "FLOAT": "real",
    "DOUBLE": "double",
    "DECIMAL": "decimal",
    "VARCHAR": "varchar",
    "BLOB": "varbinary",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "INTERVAL": "interval day to second",
    "LIST": "array",
    "ARRAY": "array",
    "MAP": "map",
    "STRUCT": "row",
    "UUID": "uuid",
    "JSON": "json",
    "NULL": "unknown",
}
# ColumnInfo.Precision Athena reports for types without a declared precision.
PRECISION_FOR_TRINO_TYPE = {
    "varchar": 2147483647,
    "varbinary": 2147483647,
    "boolean": 0,
    "tinyint": 3,
    "smallint": 5,
    "integer": 10,
    "bigint": 19,
    "real": 17,
    "double": 17,
    "date": 0,
    "timestamp": 3,
    "timestamp with time zone": 3,
}
CASE_SENSITIVE_TRINO_TYPES = frozenset({"varchar", "char", "varbinary", "json"})


@functools.lru_cache(maxsize=4096)
def hive_to_duckdb(hive_type: str) -> str:
    """`array<struct<a:int>>` (Glue column type) → `STRUCT(a INT)[]` (DuckDB). Kept by type text: every query
    spells its tables' columns and partition values with it, and sqlglot's parse and print cost ~0.1 ms a type."""
    return exp.DataType.build(hive_type, dialect="hive").sql("duckdb")


@functools.lru_cache(maxsize=4096)
def duckdb_to_hive(duckdb_type: str) -> str:
    """A DuckDB result type → the Hive spelling Glue stores (lower case, no spaces), e.g. `array<string>`."""
    text = exp.DataType.build(duckdb_type, dialect="duckdb").sql("hive").lower()
    return text.replace(": ", ":").replace(", ", ",").replace("int128", "bigint")


def base_name(duckdb_type: str) -> str:
    text = duckdb_type.upper()
    if text.endswith("]"):
        return "LIST"
    if text.startswith("TIMESTAMP WITH TIME ZONE"):
        return "TIMESTAMP WITH TIME ZONE"
    return text.split("(", 1)[0].strip()


def trino_name(duckdb_type: str) -> str:
    """The full Trino spelling of a DuckDB type, as `typeof` answers on Athena: `array(varchar)`, `decimal(10,2)`."""
    try:
        text = exp.DataType.build(duckdb_type, dialect="duckdb").sql("trino").lower()
    except sqlglot.errors.ParseError:
        return duckdb_type.lower()
    return text.replace(", ", ",").replace("int128", "bigint")


def column_info(name: str, duckdb_type: str) -> dict:
    """One ResultSetMetadata.ColumnInfo entry as Athena returns it."""
    trino = TRINO_NAME_FOR_DUCKDB.get(base_name(duckdb_type), base_name(duckdb_type).lower())
    precision, scale = PRECISION_FOR_TRINO_TYPE.get(trino, 0), 0
    if trino == "decimal":
        precision, scale = _decimal_precision_scale(duckdb_type)
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": trino,
        "Precision": precision,
        "Scale": scale,
        "Nullable": "UNKNOWN",
        "CaseSensitive": trino in CASE_SENSITIVE_TRINO_TYPES,
    }


def _decimal_precision_scale(duckdb_type: str) -> tuple[int, int]:
    inside = duckdb_type[duckdb_type.find("(") + 1 : duckdb_type.rfind(")")] if "(" in duckdb_type else ""
    if "," in inside:
        precision, scale = inside.split(",")
        return int(precision), int(scale)
    return 38, 0


def java_double(value: float) -> str:
    """Double rendered as Java's Double.toString does (Trino's varchar of a double): 1.0, 0.001, 1.0E7."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0.0" if math.copysign(1, value) > 0 else "-0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    mantissa = text[0] + "." + (text[1:] or "0")
    return ("-" if sign else "") + f"{mantissa}E{len(digits) - 1 + exponent}"


def render(value, duckdb_type: str) -> str | None:
    """A value as Athena writes it into the result CSV and GetQueryResults' VarCharValue; None is NULL."""
    if value is None:
        return None
    return _render(value, duckdb_type.upper())


def _render(value, type_text: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, datetime.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
        if value.tzinfo is not None:
            text += " " + (value.tzname() or "UTC")
        return text
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return " ".join(f"{byte:02x}" for byte in value)
    if isinstance(value, dict):
        if type_text.startswith("MAP"):
            return "{" + ", ".join(f"{_nested(k)}={_nested(v)}" for k, v in value.items()) + "}"
        return "{" + ", ".join(f"{k}={_nested(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    return str(value)


def _nested(value) -> str:
    return "null" if value is None else _render(value, "")
