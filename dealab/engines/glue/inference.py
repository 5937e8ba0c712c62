"""What a crawler concludes from a file's bytes: its format (CSV and its delimiter and header, JSON lines,
Parquet) and its columns with catalog (Hive) types. Pure functions, no I/O.

Bad files never break a crawl: whatever a file holds, infer() returns a schema or raises UnreadableFile (the
crawler logs it and skips the file). Gzip is read up to a byte cap (a zip bomb stops there), a file with NUL
bytes or mostly control bytes is binary and never delimited text, JSON nested deeper than MAX_NESTING_DEPTH is
refused, and no control character (NUL included) reaches a column name.

A crawler's custom CSV classifiers (CsvRules) are tried first, in its order, as AWS runs custom classifiers
before the built-in ones: one recognises a file when every sampled line splits, with its delimiter and
quote, into the same number of fields (at least two unless AllowSingleColumn, as many as its Header names).
"""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
# At most this much of a gzip file is decompressed to infer its schema (as much as an uncompressed sample).
DECOMPRESSED_SAMPLE_BYTES = 1024 * 1024
# Deeper JSON is refused (Hive type names nest as deep as the data; Python's parser stops near 1,000).
MAX_NESTING_DEPTH = 100
# Text has no NUL byte and few control bytes; binary data (images, archives, executables) has many.
BINARY_PROBE_BYTES = 8192
MAX_CONTROL_BYTE_SHARE = 0.05
_CONTROL_BYTES = bytes(set(range(32)) - {9, 10, 12, 13}) + b"\x7f"
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_NULL_TYPE = re.compile(r"(?:(?<=[:<])|^)null(?=[,>]|$)")
CSV_DELIMITERS = (",", "\t", "|", ";")
SAMPLE_ROWS = 1000
# Widening order when two samples disagree on a column's type.
NUMERIC_WIDENING = {("bigint", "double"): "double", ("double", "bigint"): "double"}


class UnreadableFile(ValueError):
    """The bytes are not a format the crawler knows; the message says what was found."""


@dataclass
class FileSchema:
    format: str  # csv, json or parquet
    columns: list[tuple[str, str]]
    csv_delimiter: str = ","
    csv_header: bool = False
    csv_quote: str = '"'
    csv_serde: str = "LazySimpleSerDe"  # or OpenCSVSerDe, when a custom classifier asks for it
    classifier: str = ""  # the custom classifier that recognised the file, if one did
    compression: str = "none"  # or gzip


@dataclass(frozen=True)
class CsvRules:
    """A custom CSV classifier (CreateClassifier CsvClassifier)."""

    name: str
    delimiter: str = ","
    quote: str = '"'
    contains_header: str = "UNKNOWN"  # PRESENT, ABSENT, or UNKNOWN: Glue's own header rule decides
    header: tuple[str, ...] = ()  # column names that replace the header's (or col0, col1, ...)
    trim_values: bool = False
    allow_single_column: bool = False
    serde: str = "None"  # OpenCSVSerDe, LazySimpleSerDe, or None: as the built-in classifier decides (LazySimpleSerDe)


def merge_type(first: str, second: str) -> str:
    if first == second:
        return first
    if first == "null":
        return second
    if second == "null":
        return first
    if (first, second) in NUMERIC_WIDENING:
        return NUMERIC_WIDENING[(first, second)]
    if first.startswith("struct<") and second.startswith("struct<"):
        return _struct(merge_columns(_struct_fields(first), _struct_fields(second)))
    if first.startswith("array<") and second.startswith("array<"):
        # an empty list ([] gives array<null>) takes the element type of the lists beside it
        return f"array<{merge_type(first[len('array<'):-1], second[len('array<'):-1])}>"
    return "string"


def merge_columns(first: list[tuple[str, str]], second: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The columns of both, in order of first appearance, types widened where they disagree."""
    merged = dict(first)
    for name, kind in second:
        merged[name] = merge_type(merged[name], kind) if name in merged else kind
    return list(merged.items())


def finalize(columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Columns only ever seen null are strings, as in the catalog a crawler writes."""
    return [(name, _NULL_TYPE.sub("string", kind)) for name, kind in columns]


def infer(data: bytes, whole_file: bool, csv_classifiers: Sequence[CsvRules] = ()) -> FileSchema:
    """The schema of a file from its bytes (`whole_file` False: only the first part of a larger file)."""
    if not data.strip():
        raise UnreadableFile("the file is empty")
    if data.startswith(GZIP_MAGIC):
        data, whole_file = _gunzip(data, whole_file)
        schema = _infer_plain(data, whole_file, csv_classifiers)
        schema.compression = "gzip"
        return schema
    return _infer_plain(data, whole_file, csv_classifiers)


def _gunzip(data: bytes, whole_file: bool) -> tuple[bytes, bool]:
    """The start of a gzip file's content, at most DECOMPRESSED_SAMPLE_BYTES, and whether that is all of it."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        content = decompressor.decompress(data, DECOMPRESSED_SAMPLE_BYTES)
    except zlib.error as error:
        raise UnreadableFile(f"a damaged gzip file ({error})") from None
    if decompressor.eof:
        return content, True
    if whole_file and len(content) < DECOMPRESSED_SAMPLE_BYTES:  # all its bytes read, yet the stream never ended
        raise UnreadableFile("a gzip file cut short")
    return content, False


def _infer_plain(data: bytes, whole_file: bool, csv_classifiers: Sequence[CsvRules]) -> FileSchema:
    if not data.strip():
        raise UnreadableFile("the file is empty")
    if data.startswith(PARQUET_MAGIC):
        return _parquet(data)
    probe = data[:BINARY_PROBE_BYTES]
    if b"\0" in probe or sum(probe.count(byte) for byte in _CONTROL_BYTES) > MAX_CONTROL_BYTE_SHARE * len(probe):
        raise UnreadableFile("binary data, not text: it has NUL or other control bytes")
    text = data.decode("utf-8", errors="replace")
    if not whole_file:
        text = text[: text.rfind("\n") + 1] or text
    try:
        for rules in csv_classifiers:
            schema = _custom_csv(text, rules)
            if schema is not None:
                return schema
        if text.lstrip().startswith(("{", "[")):
            return _json_lines(text)
        return _csv(text)
    except RecursionError:
        raise UnreadableFile(f"JSON nested deeper than {MAX_NESTING_DEPTH} levels") from None
    except csv.Error as error:  # e.g. a field over the csv module's limit (128 KB): one huge line
        raise UnreadableFile(f"delimited text that does not split into fields ({error})") from None


def _parquet(data: bytes) -> FileSchema:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as error:
        raise UnreadableFile(f"not a readable Parquet file: {error}") from None
    return FileSchema("parquet", [(_clean_name(f.name, i), _arrow_type(f.type)) for i, f in enumerate(schema)])


def _arrow_type(arrow_type) -> str:
    import pyarrow.types as t

    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_int8(arrow_type):
        return "tinyint"
    if t.is_int16(arrow_type):
        return "smallint"
    if t.is_int32(arrow_type) or t.is_uint8(arrow_type) or t.is_uint16(arrow_type):
        return "int"
    if t.is_integer(arrow_type):
        return "bigint"
    if t.is_float32(arrow_type):
        return "float"
    if t.is_floating(arrow_type):
        return "double"
    if t.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if t.is_timestamp(arrow_type):
        return "timestamp"
    if t.is_date(arrow_type):
        return "date"
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type):
        return "binary"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type):
        return f"array<{_arrow_type(arrow_type.value_type)}>"
    if t.is_struct(arrow_type):
        return _struct([(_clean_name(arrow_type.field(i).name, i), _arrow_type(arrow_type.field(i).type)) for i in range(arrow_type.num_fields)])
    if t.is_map(arrow_type):
        return f"map<{_arrow_type(arrow_type.key_type)},{_arrow_type(arrow_type.item_type)}>"
    return "string"


def _json_value_type(value, depth: int = 1) -> str:
    if depth > MAX_NESTING_DEPTH:
        raise UnreadableFile(f"JSON nested deeper than {MAX_NESTING_DEPTH} levels")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return _struct([(_clean_name(key, index), _json_value_type(item, depth + 1)) for index, (key, item) in enumerate(value.items())])
    if isinstance(value, list):
        element = "null"
        for item in value:
            element = merge_type(element, _json_value_type(item, depth + 1))
        return f"array<{element}>"  # null while only empty lists were seen: finalize makes it string
    return "string"


def _json_lines(text: str) -> FileSchema:
    columns: list[tuple[str, str]] = []
    records = 0
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            documents = json.loads(stripped)
        except ValueError as error:
            raise UnreadableFile(f"a JSON array that does not parse: {error}") from None
    else:
        documents = []
        for number, line in enumerate(stripped.splitlines()[:SAMPLE_ROWS], start=1):
            if line.strip():
                try:
                    documents.append(json.loads(line))
                except ValueError as error:
                    raise UnreadableFile(f"line {number} is not JSON: {error}") from None
    for document in documents[:SAMPLE_ROWS]:
        if isinstance(document, dict):
            columns = merge_columns(columns, [(_clean_name(key, index), _json_value_type(value))
                                              for index, (key, value) in enumerate(document.items())])
            records += 1
    if not records:
        raise UnreadableFile("no JSON objects found")
    # not finalized: a column only null (or only empty lists) in this file takes its type from the others
    return FileSchema("json", columns)


def _scalar_type(value: str) -> str:
    if value == "":
        return "null"
    try:
        int(value)
        return "bigint"
    except ValueError:
        pass
    try:
        float(value)
        return "double"
    except ValueError:
        pass
    return "boolean" if value.lower() in ("true", "false") else "string"


def _untrimmed_type(value: str) -> str:
    """A value's type with its spaces kept: ' 5' is a string (Python's int() would skip them)."""
    return _scalar_type(value) if value == value.strip() else "string"


def _csv(text: str) -> FileSchema:
    lines = text.splitlines()[: SAMPLE_ROWS + 1]
    delimiter = _delimiter(lines)
    rows = [row for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter) if row]
    if not rows or max(len(row) for row in rows) < 2:
        raise UnreadableFile("not JSON, Parquet or delimited text (every line is a single field)")
    columns, header = _delimited_columns(rows, "UNKNOWN", (), _scalar_type)
    return FileSchema("csv", columns, csv_delimiter=delimiter, csv_header=header)


def _custom_csv(text: str, rules: CsvRules) -> FileSchema | None:
    """The schema under a custom CSV classifier, or None when the file is not what it describes."""
    if text.lstrip().startswith(("{", "[")):  # a JSON document, not delimited text
        return None
    lines = [line for line in text.splitlines()[: SAMPLE_ROWS + 1] if line.strip()]
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=rules.delimiter, quotechar=rules.quote))
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        return None
    width = widths.pop()
    if (width < 2 and not rules.allow_single_column) or (rules.header and len(rules.header) != width):
        return None
    value_type = (lambda value: _scalar_type(value.strip())) if rules.trim_values else _untrimmed_type
    columns, header = _delimited_columns(rows, rules.contains_header, rules.header, value_type)
    serde = "OpenCSVSerDe" if rules.serde == "OpenCSVSerDe" else "LazySimpleSerDe"
    return FileSchema("csv", columns, csv_delimiter=rules.delimiter, csv_header=header, csv_quote=rules.quote, csv_serde=serde,
                      classifier=rules.name)


def _delimited_columns(rows: list[list[str]], contains_header: str, names: tuple[str, ...],
                       value_type: Callable[[str], str]) -> tuple[list[tuple[str, str]], bool]:
    """Columns of split rows and whether the first row is a header (PRESENT, ABSENT, or UNKNOWN: Glue's rule)."""
    width = max(len(row) for row in rows)
    first, data = rows[0], rows[1:]
    data_types = ["null"] * width
    for row in data:
        for index, value in enumerate(row[:width]):
            data_types[index] = merge_type(data_types[index], value_type(value))
    header = _looks_like_header(first, data_types, width) if contains_header == "UNKNOWN" else contains_header == "PRESENT"
    if header:
        found = [_column_name(value, index) for index, value in enumerate(first)] + [f"col{i}" for i in range(len(first), width)]
        types = data_types
    else:
        found = [f"col{index}" for index in range(width)]
        types = [merge_type(value_type(value), data_types[index]) for index, value in enumerate(first + [""] * (width - len(first)))]
    column_names = [_column_name(name, index) for index, name in enumerate(names)] if names else found
    return finalize(list(zip(column_names, types))), header


def _delimiter(lines: list[str]) -> str:
    """The delimiter that splits every sampled line into the same number (> 1) of fields."""
    sample = [line for line in lines[:50] if line.strip()]
    best, best_fields = ",", 1
    for candidate in CSV_DELIMITERS:
        counts = {len(next(csv.reader([line], delimiter=candidate))) for line in sample}
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = candidate, fields
    return best


def _looks_like_header(first: list[str], data_types: list[str], width: int) -> bool:
    """AWS Glue's rule: every header cell is a non-empty, distinct string, and the data below is not all strings."""
    if len(first) != width or len(set(first)) != len(first):
        return False
    if any(_scalar_type(value) != "string" or not value.strip() for value in first):
        return False
    return any(kind not in ("string", "null") for kind in data_types)


def _column_name(value: str, index: int) -> str:
    """A CSV header cell as a column name: lower case, without spaces around or control characters."""
    return _clean_name(value.strip().lower(), index)


def _clean_name(value: str, index: int) -> str:
    """A name without control characters (a NUL never reaches the catalog), or col<index> if nothing is left."""
    return _CONTROL_CHARACTERS.sub("", value) or f"col{index}"


def _struct(fields: list[tuple[str, str]]) -> str:
    return "struct<" + ",".join(f"{name}:{kind}" for name, kind in fields) + ">"


def _struct_fields(type_name: str) -> list[tuple[str, str]]:
    inner, fields, depth, start = type_name[len("struct<"):-1], [], 0, 0
    for position, character in enumerate(inner + ","):
        if character in "<(":
            depth += 1
        elif character in ">)":
            depth -= 1
        elif character == "," and depth == 0:
            name, _, kind = inner[start:position].partition(":")
            if name:
                fields.append((name, kind))
            start = position + 1
    return fields
