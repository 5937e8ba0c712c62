"""UNLOAD a query's rows to S3, with the object names Redshift gives them: `<prefix>0000_part_00` per slice
(PARALLEL ON, the default) or `<prefix>000` (PARALLEL OFF), each split at MAXFILESIZE, `.parquet` after
Parquet files, a `col=value/` folder per partition (PARTITION BY), and `<prefix>manifest` (MANIFEST).
The query is learner SQL and goes through the same translation and lock-down as any statement; the files are
made in memory and written through the engine's own S3 client, never on the host's disk."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

import botocore.exceptions

from dealab.engines.redshift import roles
from dealab.engines.redshift.errors import RedshiftError, no_such_bucket, position_of

UNLOAD_STATEMENT = re.compile(r"^\s*UNLOAD\s*\(\s*'(?P<query>(?:[^']|'')*)'\s*\)\s*TO\s*'(?P<target>[^']*)'(?P<options>.*)$", re.I | re.S)
# Each option UNLOAD takes and its arguments: 0 none, 1 one, "?" an optional word (MANIFEST VERBOSE, PARALLEL OFF)
UNLOAD_OPTIONS = {"IAM_ROLE": 1, "CREDENTIALS": 1, "REGION": 1, "CSV": 0, "PARQUET": 0, "HEADER": 0, "DELIMITER": 1,
                  "MANIFEST": "?", "PARALLEL": "?", "MAXFILESIZE": 1, "ALLOWOVERWRITE": 0, "CLEANPATH": 0,
                  "NULL": 1, "EXTENSION": 1, "PARTITION": 0}
LATER_OPTIONS = {"JSON", "ENCRYPTED", "KMS_KEY_ID", "GZIP", "BZIP2", "ZSTD", "ADDQUOTES", "ESCAPE", "FIXEDWIDTH",
                 "ROWGROUPSIZE"}
OPTIONAL_WORDS = {"MANIFEST": {"VERBOSE"}, "PARALLEL": {"ON", "OFF", "TRUE", "FALSE"}}
SIZE_UNITS = {"MB": 1024 ** 2, "GB": 1024 ** 3}
DEFAULT_MAX_FILE_SIZE = int(6.2 * 1024 ** 3)
MIN_FILE_SIZE = 5 * 1024 ** 2
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


@dataclass
class UnloadCommand:
    query: str
    bucket: str
    prefix: str
    options: dict[str, str | None] = field(default_factory=dict)
    partition_by: list[str] = field(default_factory=list)
    include_partition_columns: bool = False

    @property
    def parallel(self) -> bool:
        return (self.options.get("PARALLEL") or "ON").upper() in ("ON", "TRUE")

    @property
    def max_file_size(self) -> int:
        text = self.options.get("MAXFILESIZE")
        if not text:
            return DEFAULT_MAX_FILE_SIZE
        return max(MIN_FILE_SIZE, int(float(text[0]) * SIZE_UNITS[text[1]]))


def parse(sql: str) -> UnloadCommand:
    match = UNLOAD_STATEMENT.match(sql)
    if not match:
        raise RedshiftError('syntax error at or near "UNLOAD"', position_of(sql, "UNLOAD"))
    target = urlparse(match.group("target"))
    if target.scheme != "s3" or not target.netloc:
        raise RedshiftError(f"UNLOAD writes to Amazon S3 only (s3://bucket/prefix), not '{match.group('target')}'")
    command = UnloadCommand(match.group("query").replace("''", "'"), target.netloc, target.path.lstrip("/"))
    tokens = re.findall(r"'(?:[^']|'')*'|[\w.:-]+|\S", match.group("options"))
    index = 0
    while index < len(tokens):
        word = tokens[index].upper()
        index += 1
        if word in ("AS", "FORMAT", ";"):
            continue
        if word in LATER_OPTIONS:
            raise RedshiftError(f"dealab's UNLOAD does not support {word} yet (a later part of issue 18)", position_of(sql, word))
        if word not in UNLOAD_OPTIONS:
            raise RedshiftError(f'syntax error at or near "{tokens[index - 1]}"', position_of(sql, tokens[index - 1]))
        if word == "PARTITION":
            closing = tokens.index(")", index)
            command.partition_by = [token.strip('"').lower() for token in tokens[index + 2:closing] if token not in (",", "(")]
            index = closing + 1
            if index < len(tokens) and tokens[index].upper() == "INCLUDE":
                command.include_partition_columns, index = True, index + 1
            continue
        value = None
        if UNLOAD_OPTIONS[word] == 1:
            index += index < len(tokens) and tokens[index].upper() == "AS"
            value = tokens[index].strip("'") if index < len(tokens) else None
            index += 1
            if word == "MAXFILESIZE":
                unit = tokens[index].upper() if index < len(tokens) and tokens[index].upper() in SIZE_UNITS else "MB"
                index += unit == (tokens[index].upper() if index < len(tokens) else "")
                value = (value, unit)
        elif UNLOAD_OPTIONS[word] == "?" and index < len(tokens) and tokens[index].upper() in OPTIONAL_WORDS[word]:
            value = tokens[index].upper()
            index += 1
        command.options[word] = value
    if "PARQUET" in command.options and ({"HEADER", "DELIMITER", "NULL"} & command.options.keys()):
        raise RedshiftError("HEADER, DELIMITER and NULL AS cannot be used with FORMAT PARQUET")
    return command


class Unloader:
    def __init__(self, warehouse, s3):
        self.warehouse, self.s3 = warehouse, s3
        self.query_id = None

    def unload(self, cursor, sql: str, query_id: int | None = None, user: str | None = None) -> int:
        """Runs one UNLOAD; returns the rows written. Every S3 request it makes must be allowed to the IAM role it
        names (roles.py), signed in as `user`."""
        command = parse(sql)
        role, self.query_id = self.warehouse.assume_role(command.options, user), query_id
        if role is not None:  # every S3 request of the UNLOAD is the role session's
            self.s3 = role.s3
        table = self.warehouse.query_arrow(cursor, command.query)
        for column in command.partition_by:
            if column not in table.column_names:
                raise RedshiftError(f'column "{column}" in PARTITION BY is not in the query\'s result', position_of(sql, column))
        self._clear_target(command)
        written = []
        for folder, part in self._partitions(command, table):
            written += self._write_slices(command, folder, part)
        if "MANIFEST" in command.options:
            manifest = {"entries": [{"url": f"s3://{command.bucket}/{key}", "meta": {"content_length": size}} for key, size in written]}
            if command.options["MANIFEST"] == "VERBOSE":
                manifest["schema"] = {"elements": [{"name": name, "type": {"base": str(kind)}} for name, kind in zip(table.column_names, table.schema.types)]}
                manifest["meta"] = {"content_length": sum(size for _, size in written), "record_count": table.num_rows}
            self._put(command.bucket, f"{command.prefix}manifest", json.dumps(manifest, indent=2).encode())
        return table.num_rows

    def _s3(self, context: str, call, **arguments):
        """One S3 request (as the role); S3's refusal in Redshift's words."""
        try:
            return call(**arguments)
        except botocore.exceptions.ClientError as error:
            denied = roles.s3_denied(error, context, self.query_id)
            if denied is None:
                raise
            raise denied from None

    def _put(self, bucket: str, key: str, body: bytes) -> None:
        self._s3(f"S3 key being written : s3://{bucket}/{key}", self.s3.put_object, Bucket=bucket, Key=key, Body=body)

    def _clear_target(self, command: UnloadCommand) -> None:
        try:
            existing = self._s3(f"Listing bucket={command.bucket} prefix={command.prefix}", self.s3.list_objects_v2,
                                Bucket=command.bucket, Prefix=command.prefix).get("Contents", [])
        except self.s3.exceptions.NoSuchBucket:
            raise no_such_bucket(command.bucket) from None
        if not existing or "ALLOWOVERWRITE" in command.options:
            return
        if "CLEANPATH" not in command.options:
            raise RedshiftError("Specified unload destination on S3 is not empty. Consider using a different bucket / prefix, "
                                "manually removing the target files in S3, or using the ALLOWOVERWRITE option.")
        for item in existing:
            self._s3(f"S3 key being deleted : s3://{command.bucket}/{item['Key']}", self.s3.delete_object,
                     Bucket=command.bucket, Key=item["Key"])

    def _partitions(self, command: UnloadCommand, table):
        """(key prefix, rows) for each partition: `<prefix>/col=value/...` per distinct PARTITION BY value."""
        if not command.partition_by:
            return [(command.prefix, table)]
        base = command.prefix if command.prefix.endswith("/") or not command.prefix else command.prefix + "/"
        groups: dict[tuple, list[int]] = {}
        keys = zip(*(table.column(name).to_pylist() for name in command.partition_by))
        for row_number, key in enumerate(keys):
            groups.setdefault(key, []).append(row_number)
        data = table if command.include_partition_columns else table.drop_columns(command.partition_by)
        folders = []
        for key, rows in sorted(groups.items(), key=lambda item: tuple("" if value is None else str(value) for value in item[0])):
            path = "".join(f"{name}={NULL_PARTITION if value is None else value}/" for name, value in zip(command.partition_by, key))
            folders.append((base + path, data.take(rows)))
        return folders

    def _write_slices(self, command: UnloadCommand, prefix: str, table) -> list[tuple[str, int]]:
        parquet = "PARQUET" in command.options
        extension = ".parquet" if parquet else (f".{command.options['EXTENSION']}" if command.options.get("EXTENSION") else "")
        slices = self.warehouse.slices if command.parallel else 1
        per_slice = math.ceil(table.num_rows / slices) if table.num_rows else 0
        estimated_row_size = max(1, table.nbytes // max(1, table.num_rows))
        per_file = max(1, command.max_file_size // estimated_row_size)
        written = []
        for slice_number in range(slices):
            rows = table.slice(slice_number * per_slice, per_slice) if per_slice else table.slice(0, 0)
            if rows.num_rows == 0 and (slice_number or table.num_rows):
                continue
            for part in range(max(1, math.ceil(rows.num_rows / per_file))):
                chunk = rows.slice(part * per_file, per_file)
                name = f"{slice_number:04d}_part_{part:02d}" if command.parallel else f"{part:03d}"
                body = self._parquet(chunk) if parquet else self._delimited(command, chunk)
                key = f"{prefix}{name}{extension}"
                self._put(command.bucket, key, body)
                written.append((key, len(body)))
        return written

    @staticmethod
    def _parquet(table) -> bytes:
        import pyarrow.parquet

        sink = io.BytesIO()
        pyarrow.parquet.write_table(table, sink)
        return sink.getvalue()

    @staticmethod
    def _delimited(command: UnloadCommand, table) -> bytes:
        csv_format = "CSV" in command.options
        delimiter = command.options.get("DELIMITER") or ("," if csv_format else "|")
        null = command.options.get("NULL") or ""
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\n",
                            quoting=csv.QUOTE_MINIMAL if csv_format else csv.QUOTE_NONE, escapechar=None if csv_format else "\\")
        if "HEADER" in command.options:
            writer.writerow(table.column_names)
        for row in zip(*(column.to_pylist() for column in table.columns)):
            writer.writerow([null if value is None else value for value in row])
        return out.getvalue().encode()
