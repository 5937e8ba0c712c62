"""Redshift's wording for what fails: DuckDB's own text never reaches the learner.

A failure inside DuckDB is matched against DUCKDB_ERRORS (exception class name, pattern over DuckDB's message)
and re-worded the way Redshift words the same failure; the first match wins. What no rule matches gets a
generic Redshift-shaped line that names the kind of failure only."""

from __future__ import annotations

import re


class RedshiftError(Exception):
    """A statement's failure as Redshift reports it: `ERROR: <message>`, with the 1-based character position
    in the statement where Redshift would show one."""

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.message, self.position = message, position

    def __str__(self) -> str:
        where = f"\n  Position: {self.position}" if self.position else ""
        return f"ERROR: {self.message}{where}"


def no_such_bucket(bucket: str) -> RedshiftError:
    """What COPY and UNLOAD say of a bucket that is not there (Redshift passes S3's answer on)."""
    return RedshiftError("S3ServiceException:The specified bucket does not exist,Status 404,Error NoSuchBucket,"
                         f"Rid dealab,CanRetry 1 (bucket {bucket})")


def position_of(sql: str, word: str) -> int | None:
    """The 1-based position of `word` in `sql` (case-insensitive), as Redshift's Position counts."""
    found = sql.lower().find(word.lower()) if word else -1
    return found + 1 if found >= 0 else None


# (DuckDB exception class, pattern over its message, Redshift's wording with the pattern's groups, the group
# whose text locates the position in the statement)
DUCKDB_ERRORS = [
    ("CatalogException", r"Table with name (\S+) does not exist", 'relation "{0}" does not exist', 0),
    ("CatalogException", r"Schema with name (\S+) does not exist", 'schema "{0}" does not exist', 0),
    ("CatalogException", r"Table with name \"?(\S+?)\"? already exists", 'relation "{0}" already exists', 0),
    ("CatalogException", r"(?:Scalar )?Function with name (\S+) does not exist", "function {0} does not exist", 0),
    ("CatalogException", r"Type with name (\S+) does not exist", 'type "{0}" does not exist', 0),
    ("BinderException", r'Referenced column "([^"]+)" not found', 'column "{0}" does not exist', 0),
    ("BinderException", r'column "([^"]+)" must appear in the GROUP BY', 'column "{0}" must appear in the GROUP BY clause or be used in an aggregate function', 0),
    ("BinderException", r"No function matches the given name and argument types '(\w+)\(", "function {0} does not exist", 0),
    ("BinderException", r"Cannot compare values of type (\w+) and type (\w+)", "operator does not exist: {0} = {1}", None),
    ("ParserException", r'syntax error at or near "([^"]*)"', 'syntax error at or near "{0}"', 0),
    ("ParserException", r"syntax error at end of input", "syntax error at end of input", None),
    ("ConversionException", r"Could not convert string '([^']*)' to (\w+)", 'invalid input syntax for type {1}: "{0}"', None),
    ("ConversionException", r"Overflow", "numeric value out of range", None),
    ("OutOfRangeException", r".", "value out of range", None),
    ("ConstraintException", r"NOT NULL constraint failed: \w+\.(\w+)", 'null value in column "{0}" violates not-null constraint', None),
    ("InterruptException", r".", "Query cancelled on user's request", None),
    ("PermissionException", r".", "dealab refuses this statement: learner SQL cannot reach the host's files or the engine's settings", None),
    ("OutOfMemoryException", r".", "Out of memory: the statement needed more memory than the workgroup has", None),
]

# DuckDB's type names in its conversion errors, as Redshift names them
TYPE_NAMES = {"INT32": "integer", "INT64": "bigint", "INT16": "smallint", "DOUBLE": "double precision",
              "FLOAT": "real", "DATE": "date", "TIMESTAMP": "timestamp", "BOOL": "boolean", "DECIMAL": "numeric"}


def from_duckdb(error: Exception, sql: str) -> RedshiftError:
    kind = type(error).__name__
    text = str(error)
    for rule_kind, pattern, wording, locator in DUCKDB_ERRORS:
        match = re.search(pattern, text) if rule_kind == kind else None
        if match:
            groups = [TYPE_NAMES.get(group, group) for group in match.groups()]
            position = position_of(sql, match.group(locator + 1)) if locator is not None else None
            return RedshiftError(wording.format(*groups), position)
    return RedshiftError(f"the statement failed ({kind.removesuffix('Exception').lower()} error)")
