"""Query failures worded as Athena words them, with the line:column of the original SQL where it is known."""

from __future__ import annotations

import re

import sqlglot
from sqlglot.tokens import TokenType

# AthenaError.ErrorCategory (1 system, 2 user) and ErrorType values from Athena's error catalog.
USER_ERROR = 2
SYSTEM_ERROR = 1
USER_ERROR_TYPE = 1000  # "User error"
ENGINE_ERROR_TYPE = 200  # "Query engine had an internal error"


class QueryError(Exception):
    """Ends a query FAILED (or CANCELLED) with an Athena-style StateChangeReason."""

    def __init__(self, message: str, code: str = "", position: tuple[int, int] | None = None,
                 category: int = USER_ERROR, error_type: int | None = None):
        self.code, self.position, self.category = code, position, category
        self.error_type = error_type or (USER_ERROR_TYPE if category == USER_ERROR else ENGINE_ERROR_TYPE)
        self.detail = message
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        where = f"line {self.position[0]}:{self.position[1]}: " if self.position else ""
        return f"{self.code}: {where}{self.detail}" if self.code else f"{where}{self.detail}"


def syntax_error(sql: str, error: sqlglot.errors.ParseError) -> QueryError:
    detail = error.errors[0] if error.errors else {}
    highlight = (detail.get("highlight") or "").strip()
    line, col = detail.get("line") or 1, detail.get("col") or 1
    col = max(1, col - len(highlight) + 1) if highlight else col
    description = detail.get("description") or str(error).splitlines()[0]
    return QueryError(f"mismatched input '{highlight or '<EOF>'}'. {description}", position=(line, col))


def position_of(sql: str, word: str) -> tuple[int, int] | None:
    """Line and column (1-based) of the first token spelling `word` in the original SQL."""
    try:
        tokens = sqlglot.tokenize(sql, read="athena")
    except sqlglot.errors.TokenError:
        return None
    for token in tokens:
        if token.token_type != TokenType.STRING and token.text.lower() == word.lower():
            return _line_col(sql, token.start)
    return None


def _line_col(sql: str, offset: int) -> tuple[int, int]:
    before = sql[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


# DuckDB error text → (Athena error code, message template, which group names a token to locate).
DUCKDB_ERROR_RULES: list[tuple[re.Pattern, str, str, int | None]] = [
    (re.compile(r'Referenced column "([^"]+)" not found'), "COLUMN_NOT_FOUND",
     "Column '{0}' cannot be resolved or requester is not authorized to access requested resources", 1),
    (re.compile(r'Values list "[^"]*" does not have a column named "([^"]+)"'), "COLUMN_NOT_FOUND",
     "Column '{0}' cannot be resolved or requester is not authorized to access requested resources", 1),
    (re.compile(r"(?:Scalar|Aggregate|Table) Function with name (\w+) does not exist"), "FUNCTION_NOT_FOUND",
     "Function '{0}' not registered", 1),
    (re.compile(r'column "([^"]+)" must appear in the GROUP BY clause'), "EXPRESSION_NOT_AGGREGATE",
     "'{0}' must be an aggregate expression or appear in GROUP BY clause", 1),
    (re.compile(r"Could not convert string '([^']*)' to (\w+)"), "INVALID_CAST_ARGUMENT",
     "Cannot cast '{0}' to {1}", None),
    (re.compile(r"Division by zero"), "DIVISION_BY_ZERO", "Division by zero", None),
    (re.compile(r"No function matches the given name and argument types '([^(]+)\(([^)]*)\)'"), "FUNCTION_NOT_FOUND",
     "Unexpected parameters ({1}) for function {0}", 1),
    (re.compile(r"Cannot compare values of type (\S+) and type (\S+)"), "TYPE_MISMATCH",
     "Cannot apply operator: {0} = {1}", None),
    # The sandbox's lockdown (sandbox.py) refusing a local path the query check let through.
    (re.compile(r'Cannot access (?:file|directory) "([^"]*)"'), "PERMISSION_DENIED",
     "Access Denied: Cannot access '{0}': queries in dealab read and write S3 only", None),
    # The direct read path (s3reads.py) refused a GetObject: a bucket policy, Block Public Access, KMS.
    (re.compile(r"Permission denied on S3 path: (s3://\S+)"), "PERMISSION_DENIED", "Permission denied on S3 path: {0}", None),
    (re.compile(r"Out of Memory Error|max_temp_directory_size"), "EXCEEDED_LOCAL_MEMORY_LIMIT",
     "Query exhausted resources at this scale factor", None),
]


def from_duckdb(sql: str, error: Exception) -> QueryError:
    text = str(error)
    for pattern, code, template, locate in DUCKDB_ERROR_RULES:
        match = pattern.search(text)
        if match:
            groups = [g.lower() if g and g.isupper() else g for g in match.groups()]
            position = position_of(sql, match.group(locate)) if locate else None
            return QueryError(template.format(*groups), code, position)
    first_line = text.splitlines()[0] if text else type(error).__name__
    first_line = re.sub(r"^\w+ Error: ", "", first_line)
    return QueryError(first_line, "GENERIC_INTERNAL_ERROR", category=SYSTEM_ERROR)
