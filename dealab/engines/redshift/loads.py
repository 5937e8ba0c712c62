"""COPY from S3 into a table: the objects are fetched through the engine's own S3 client into the database's
scratch folder (the one local folder its connection may read), read by DuckDB's CSV, JSON or Parquet reader,
and inserted in one transaction. Lines DuckDB's CSV reader rejects are counted against MAXERROR and recorded,
one row a line with its first error's column and reason as Redshift does, in the load-error views (kept even
when the COPY fails)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import botocore.exceptions
import duckdb

from dealab.engines.redshift import dialect, roles
from dealab.engines.redshift.errors import RedshiftError, from_duckdb, no_such_bucket, position_of

COPY_STATEMENT = re.compile(r"^\s*COPY\s+(?P<table>(?:\"?\w+\"?\.)?\"?\w+\"?)\s*(?:\((?P<columns>[^)]*)\))?\s*"
                            r"FROM\s+'(?P<source>[^']*)'(?P<options>.*)$", re.I | re.S)
# Each option COPY takes and the arguments it has: 0 none, 1 one, "?" an optional quoted string
COPY_OPTIONS = {
    "IAM_ROLE": 1, "CREDENTIALS": 1, "ACCESS_KEY_ID": 1, "SECRET_ACCESS_KEY": 1, "SESSION_TOKEN": 1, "REGION": 1,
    "CSV": 0, "JSON": "?", "PARQUET": 0, "DELIMITER": 1, "QUOTE": 1, "IGNOREHEADER": 1, "GZIP": 0, "ZSTD": 0,
    "MANIFEST": 0, "EMPTYASNULL": 0, "BLANKSASNULL": 0, "DATEFORMAT": 1, "TIMEFORMAT": 1, "MAXERROR": 1, "NULL": 1,
    "ACCEPTINVCHARS": "?", "TRUNCATECOLUMNS": 0, "COMPUPDATE": 1, "STATUPDATE": 1, "TRIMBLANKS": 0,
}
# Options and formats Redshift has that dealab does not load yet
LATER_OPTIONS = {"AVRO", "ORC", "BZIP2", "LZOP", "FIXEDWIDTH", "SHAPEFILE", "JSONPATHS", "FILLRECORD", "ESCAPE",
                 "REMOVEQUOTES", "EXPLICIT_IDS", "ENCRYPTED", "MASTER_SYMMETRIC_KEY", "SSH", "READRATIO", "NOLOAD"}
COMPRESSION = {"GZIP": "gzip", "ZSTD": "zstd"}
# The file name DuckDB's readers recognise each compression by
FILE_SUFFIX = {"gzip": ".gz", "zstd": ".zst", "none": ""}
NUMERIC_OPTIONS = ("IGNOREHEADER", "MAXERROR")
# Where a failed COPY sends the learner, by deployment (Serverless has the SYS_* views only)
LOAD_ERROR_VIEW = {"provisioned": "stl_load_errors", "serverless": "sys_load_error_detail"}
STREAM_CHUNK = 8 * 1024 * 1024
# Redshift's datetime format elements → strftime's (DATEFORMAT / TIMEFORMAT other than 'auto')
FORMAT_ELEMENTS = [("YYYY", "%Y"), ("YY", "%y"), ("MON", "%b"), ("MM", "%m"), ("DD", "%d"), ("HH24", "%H"),
                   ("HH12", "%I"), ("HH", "%H"), ("MI", "%M"), ("SS", "%S"), ("AM", "%p"), ("PM", "%p")]
# Redshift's error code and reason for a row DuckDB's reader rejected: by DuckDB's error type, and for a value
# that does not convert, by the family of the column's type
REJECT_REASONS = {"MISSING COLUMNS": (1214, "Delimiter not found"), "TOO MANY COLUMNS": (1214, "Extra column(s) found"),
                  "UNQUOTED VALUE": (1214, "Delimited value missing end quote"),
                  "INVALID ENCODING": (1220, "Invalid UTF8 byte sequence"),
                  "LINE SIZE OVER MAXIMUM": (1224, "Line length exceeds the maximum")}
CAST_REASONS = [
    (r"INT", 1207, "Invalid digit, Value '{value}', Pos {position}, Type: Integer"),
    (r"DECIMAL|NUMERIC", 1207, "Invalid digit, Value '{value}', Pos {position}, Type: Decimal"),
    (r"DOUBLE|FLOAT|REAL", 1207, "Invalid digit, Value '{value}', Pos {position}, Type: Double"),
    (r"TIMESTAMP", 1206, "Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS]"),
    (r"DATE", 1205, "Invalid Date Format - length must be 10 or more"),
    (r"BOOL", 1218, "Invalid boolean value: '{value}'"),
    (r"", 1216, "Invalid input value '{value}'"),
]


@dataclass
class CopyCommand:
    table: str
    columns: list[str] | None
    source: str
    options: dict[str, str | None] = field(default_factory=dict)

    @property
    def format(self) -> str:
        return next((name for name in ("JSON", "PARQUET", "CSV") if name in self.options), "TEXT")

    @property
    def compression(self) -> str:
        return next((COMPRESSION[name] for name in COMPRESSION if name in self.options), "none")


def _unquote(token: str) -> str:
    return token[1:-1].replace("''", "'") if token.startswith("'") else token


def parse(sql: str) -> CopyCommand:
    match = COPY_STATEMENT.match(sql)
    if not match:
        raise RedshiftError('syntax error at or near "COPY"', position_of(sql, "COPY"))
    tokens = re.findall(r"'(?:[^']|'')*'|[\w.:-]+|\S", match.group("options"))
    options: dict[str, str | None] = {}
    index = 0
    while index < len(tokens):
        word = tokens[index].upper()
        index += 1
        if word in ("AS", "FORMAT", ";", "ON", "OFF"):
            continue
        if word in LATER_OPTIONS:
            raise RedshiftError(f"dealab's COPY does not support {word} yet (a later part of issue 18)", position_of(sql, word))
        if word not in COPY_OPTIONS:
            raise RedshiftError(f'syntax error at or near "{tokens[index - 1]}"', position_of(sql, tokens[index - 1]))
        arity = COPY_OPTIONS[word]
        if arity and index < len(tokens) and tokens[index].upper() == "AS":
            index += 1
        value = None
        if arity == 1 or (arity == "?" and index < len(tokens) and tokens[index].startswith("'")):
            if index >= len(tokens):
                raise RedshiftError("syntax error at end of input")
            value = _unquote(tokens[index])
            index += 1
        options[word] = value
    for option in NUMERIC_OPTIONS:
        if option in options and not (options[option] or "").isdigit():
            raise RedshiftError(f'syntax error at or near "{options[option]}"', position_of(sql, options[option] or option))
    if options.get("JSON") not in (None, "auto", "noshred"):
        raise RedshiftError(f"dealab's COPY reads JSON 'auto' and 'noshred' only yet, not '{options['JSON']}' (a later part of issue 18)")
    columns = [name.strip().strip('"').lower() for name in match.group("columns").split(",")] if match.group("columns") else None
    return CopyCommand(match.group("table").replace('"', "").lower(), columns, match.group("source"), options)


def _strftime(redshift_format: str | None) -> str | None:
    if not redshift_format or redshift_format.lower() == "auto":
        return None
    for element, directive in FORMAT_ELEMENTS:
        redshift_format = redshift_format.replace(element, directive)
    return redshift_format


def _literal(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(_literal, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(key)}: {_literal(item)}" for key, item in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class Loader:
    def __init__(self, warehouse, s3):
        self.warehouse, self.s3 = warehouse, s3

    def copy(self, cursor, sql: str, query_id: int, own_transaction: bool = True, user: str | None = None) -> int:
        """Runs one COPY; returns the rows loaded. In a transaction of its own unless the caller's (a batch's).
        Every S3 request it makes must be allowed to the IAM role it names (roles.py), signed in as `user`."""
        transaction = {"begin": "BEGIN TRANSACTION", "commit": "COMMIT", "rollback": "ROLLBACK"} if own_transaction else {}
        command = parse(sql)
        role = self.warehouse.assume_role(command.options, user)
        if role is not None:  # every S3 request of the COPY is the role session's
            self.s3 = role.s3
        schema, table = dialect.split_name(command.table)
        table_columns = dict(self.warehouse.columns(cursor, table, schema))
        identity = self.warehouse.identity_columns(cursor, table, schema)
        targets = command.columns or [name for name in table_columns if name not in identity]
        for name in targets:
            if name not in table_columns:
                raise RedshiftError(f'column "{name}" of relation "{command.table}" does not exist', position_of(sql, name))
        objects = self._objects(command, query_id)
        folder = self.warehouse.scratch / f"copy-{query_id}"
        folder.mkdir(parents=True, exist_ok=True)
        started = time.time()
        try:
            files = {}
            for number, (bucket, key) in enumerate(objects):
                path = folder / f"{number}{FILE_SUFFIX[command.compression]}"
                answer = self._get(bucket, key, query_id)
                with path.open("wb") as handle:  # streamed: an object of a GB never sits whole in memory
                    shutil.copyfileobj(answer["Body"], handle, STREAM_CHUNK)
                files[str(path)] = f"s3://{bucket}/{key}"
            reader = self._reader(command, list(files), {name: table_columns[name] for name in targets}, query_id)
            column_list = ", ".join(f'"{name}"' for name in targets)
            self._step(cursor, transaction, "begin")
            try:
                loaded = cursor.execute(f'INSERT INTO "{schema}"."{table}" ({column_list}) {reader}').fetchone()[0]
            except duckdb.Error as error:
                self._step(cursor, transaction, "rollback")
                raise from_duckdb(error, sql) from None
            rejected = self._rejects(cursor, command, files, table_columns, query_id, started) if command.format in ("CSV", "TEXT") else []
            limit = int(command.options.get("MAXERROR") or 0)
            if len(rejected) > limit:
                self._step(cursor, transaction, "rollback")
                self.warehouse.record_load_errors(rejected)
                raise RedshiftError(f"Load into table '{command.table}' failed.  Check "
                                    f"'{LOAD_ERROR_VIEW[self.warehouse.deployment]}' system table for details.")
            self._step(cursor, transaction, "commit")
            self.warehouse.record_load_errors(rejected)
            return int(loaded)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _step(cursor, transaction: dict[str, str], step: str) -> None:
        if step in transaction:
            cursor.execute(transaction[step])

    def _get(self, bucket: str, key: str, query_id: int) -> dict:
        """GetObject (as the role: its policies, the bucket's and an SSE-KMS object's key policy must allow it)."""
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            raise roles.s3_denied(error, f"S3 key being read : s3://{bucket}/{key}", query_id) or error from None

    def _objects(self, command: CopyCommand, query_id: int) -> list[tuple[str, str]]:
        """(bucket, key) of every object the COPY reads: the manifest's entries, or every object under the prefix."""
        location = urlparse(command.source)
        if location.scheme != "s3" or not location.netloc:
            raise RedshiftError(f"dealab's COPY loads from Amazon S3 only (s3://bucket/prefix), not '{command.source}'")
        bucket, prefix = location.netloc, location.path.lstrip("/")
        errors = self.s3.exceptions
        try:
            if "MANIFEST" in command.options:
                manifest = json.loads(self._get(bucket, prefix, query_id)["Body"].read())
                entries = [urlparse(entry["url"]) for entry in manifest.get("entries", [])]
                return [(entry.netloc, entry.path.lstrip("/")) for entry in entries]
            keys = []
            try:
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    keys += [item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/")]
            except botocore.exceptions.ClientError as error:
                denied = roles.s3_denied(error, f"Listing bucket={bucket} prefix={prefix}", query_id)
                if denied is None:
                    raise
                raise denied from None
        except errors.NoSuchBucket:
            raise no_such_bucket(bucket) from None
        except errors.NoSuchKey:
            raise RedshiftError(f"S3ServiceException:The specified key does not exist.,Status 404,Error NoSuchKey (s3://{bucket}/{prefix})") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RedshiftError("Manifest file is not in correct json format") from None
        if not keys:
            raise RedshiftError(f"The specified S3 prefix '{prefix}' does not exist")
        return [(bucket, key) for key in sorted(keys)]

    def _reader(self, command: CopyCommand, files: list[str], columns: dict[str, str], query_id: int) -> str:
        options, compression = command.options, command.compression
        if command.format == "PARQUET":
            return f"SELECT * FROM read_parquet({_literal(files)})"
        if command.format == "JSON":
            json_compression = "uncompressed" if compression == "none" else compression  # the JSON reader's word for none
            if options.get("JSON") == "noshred":  # each document whole, into the table's one SUPER column
                if list(columns.values()) != ["JSON"]:
                    raise RedshiftError("JSON 'noshred' loads into a table of one SUPER column (or a column list naming one)")
                return f"SELECT json FROM read_json({_literal(files)}, records=false, format='auto', compression='{json_compression}')"
            return f"SELECT * FROM read_json({_literal(files)}, columns={_literal(columns)}, format='auto', compression='{json_compression}')"
        csv_format = command.format == "CSV"
        text = [name for name, kind in columns.items() if kind == "VARCHAR"]
        arguments = {
            "delim": options.get("DELIMITER") or ("," if csv_format else "|"),
            "quote": (options.get("QUOTE") or '"') if csv_format else "",
            "escape": (options.get("QUOTE") or '"') if csv_format else "",
            "header": False, "auto_detect": False, "skip": int(options.get("IGNOREHEADER") or 0),
            "columns": columns, "nullstr": [options.get("NULL") or "\\N", ""], "compression": compression,
            "store_rejects": True, "rejects_table": f"rejects_{query_id}", "rejects_scan": f"rejects_scan_{query_id}",
        }
        if "EMPTYASNULL" not in options and text:
            arguments["force_not_null"] = text
        for option, argument in (("DATEFORMAT", "dateformat"), ("TIMEFORMAT", "timestampformat")):
            if _strftime(options.get(option)):
                arguments[argument] = _strftime(options.get(option))
        selected = ", ".join(f"CASE WHEN trim(\"{name}\") = '' THEN NULL ELSE \"{name}\" END" if name in text and "BLANKSASNULL" in options
                             else f'"{name}"' for name in columns)
        listed = ", ".join(f"{name}={_literal(value)}" for name, value in arguments.items())
        return f"SELECT {selected} FROM read_csv({_literal(files)}, {listed})"

    def _rejects(self, cursor, command: CopyCommand, files: dict[str, str], table_columns: dict[str, str],
                 query_id: int, started: float) -> list[tuple]:
        # DuckDB records each error of a line (a header line fails in every typed column, a short line once per
        # missing column); Redshift rejects the line once, with its first error, and MAXERROR counts lines
        found = cursor.execute(
            f"SELECT s.file_path, e.line, e.column_idx, e.column_name, e.error_type, e.csv_line FROM rejects_{query_id} e "
            f"JOIN rejects_scan_{query_id} s USING (scan_id, file_id) "
            "QUALIFY row_number() OVER (PARTITION BY s.file_path, e.line ORDER BY e.column_idx) = 1 ORDER BY s.file_path, e.line").fetchall()
        delimiter = command.options.get("DELIMITER") or ("," if command.format == "CSV" else "|")
        rows = []
        for path, line, column_index, column, error_type, raw_line in found:
            fields = next(csv.reader([raw_line or ""], delimiter=delimiter[0]), []) if command.format == "CSV" else (raw_line or "").split(delimiter)
            value = fields[column_index - 1] if column_index and column_index <= len(fields) else ""
            column_type = table_columns.get(column, "")
            if error_type == "CAST":
                code, reason = next((code, reason) for pattern, code, reason in CAST_REASONS if re.search(pattern, column_type))
            else:
                code, reason = REJECT_REASONS.get(error_type, (1216, "Invalid input line"))
            rows.append((query_id, started, command.table, files.get(path, path), line, column or "", column_type.lower(),
                         0, raw_line, value, code, reason.format(value=value, position=0)))
        return rows
