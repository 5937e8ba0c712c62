"""What a classification job finds in one S3 object: the object's bytes read as Macie reads them (text, CSV/TSV,
JSON, JSON Lines, Parquet, any of them gzip-compressed), every detector run over it, and each detection's count and
occurrences in Macie's shape — lineRanges for text, cells (row, column, columnName) for CSV, records (recordIndex,
jsonPath) for JSON, JSON Lines and Parquet. Macie reports at most 15 occurrences of a type per object.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from dealab.engines.macie.identifiers import Detector, DetectorSet

MAX_OCCURRENCES = 15  # per type per finding, as Macie reports them
GZIP_MAGIC = b"\x1f\x8b"


class Unreadable(Exception):
    """An object Macie cannot analyze (an unsupported binary format, text that is not UTF-8)."""


@dataclass
class Detection:
    count: int = 0
    occurrences: dict[str, list[dict]] = field(default_factory=dict)

    def add(self, kind: str, occurrence: dict) -> None:
        self.count += 1
        places = self.occurrences.setdefault(kind, [])
        if len(places) < MAX_OCCURRENCES:
            places.append(occurrence)


@dataclass
class Scanned:
    mime_type: str
    size: int
    detections: dict[str, Detection]  # detector key → what it found


def _format(key: str) -> tuple[str, str]:
    """(reader, MIME type) by the object's extension, as Macie picks a file type."""
    lowered = key.lower()
    for suffix, reader, mime in ((".csv", "csv", "text/csv"), (".tsv", "tsv", "text/tab-separated-values"),
                                 (".jsonl", "jsonl", "application/x-ndjson"), (".ndjson", "jsonl", "application/x-ndjson"),
                                 (".json", "json", "application/json"), (".parquet", "parquet", "application/parquet")):
        if lowered.endswith(suffix):
            return reader, mime
    return "text", "text/plain"


def _walk(value, path: str) -> Iterator[tuple[str, str]]:
    """(JSONPath, text) of every scalar under `value`."""
    if isinstance(value, dict):
        for name, inner in value.items():
            yield from _walk(inner, f"{path}.{name}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _walk(inner, f"{path}[{index}]")
    elif value is not None and not isinstance(value, bool):
        yield path, str(value)


def _text_fields(text: str, detectors: DetectorSet, found: dict[str, Detection]) -> None:
    line_starts = [0] + [index + 1 for index, char in enumerate(text) if char == "\n"]
    for detector in detectors.candidates(text):
        for start, end in detector.find(text):
            first = bisect_right(line_starts, start)
            last = bisect_right(line_starts, max(start, end - 1))
            found.setdefault(detector.key, Detection()).add(
                "lineRanges", {"start": first, "end": last, "startColumn": start - line_starts[first - 1] + 1})


def _cells(text: str, delimiter: str, detectors: DetectorSet, found: dict[str, Detection]) -> None:
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(rows, [])
    for row_number, row in enumerate(rows, start=2):  # the header is row 1, as the file shows it
        for column, value in enumerate(row, start=1):
            name = header[column - 1] if column <= len(header) else ""
            for detector in detectors.candidates(value):
                for _ in detector.find(value, name):
                    found.setdefault(detector.key, Detection()).add(
                        "cells", {"row": row_number, "column": column, "columnName": name, "cellReference": None})


def _records(records: Iterator[tuple[int, object]], detectors: DetectorSet, found: dict[str, Detection]) -> None:
    for index, record in records:
        for path, value in _walk(record, "$"):
            # a keyword may be any element of the path: $.credentials.aws.key is near "credentials"
            names = path.replace("$", " ").replace(".", " ")
            for detector in detectors.candidates(value):
                for _ in detector.find(value, names):
                    found.setdefault(detector.key, Detection()).add("records", {"recordIndex": index, "jsonPath": path})


def _json_records(text: str, lines: bool) -> Iterator[tuple[int, object]]:
    if not lines:
        try:
            return iter([(0, json.loads(text))])  # a JSON file is one record, index 0
        except ValueError:
            pass  # JSON Lines written with a .json name: Macie reads it by content
    return ((index, json.loads(line)) for index, line in enumerate(text.splitlines()) if line.strip())


def scan(key: str, body: bytes, detector_list: list[Detector]) -> Scanned:
    detectors = DetectorSet(detector_list)
    size = len(body)
    name = key
    if body[:2] == GZIP_MAGIC:
        body = gzip.decompress(body)
        name = key[:-3] if key.lower().endswith(".gz") else key
    reader, mime = _format(name)
    found: dict[str, Detection] = {}
    if reader == "parquet":
        import pyarrow.parquet

        table = pyarrow.parquet.read_table(io.BytesIO(body))
        _records(enumerate(table.to_pylist()), detectors, found)
        return Scanned(mime, size, found)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unreadable(f"{key} is not UTF-8 text or a format Macie reads") from None
    if reader in ("csv", "tsv"):
        _cells(text, "," if reader == "csv" else "\t", detectors, found)
    elif reader in ("json", "jsonl"):
        try:
            _records(_json_records(text, reader == "jsonl"), detectors, found)
        except ValueError as error:
            raise Unreadable(f"{key} is not valid JSON: {error}") from None
    else:
        _text_fields(text, detectors, found)
    return Scanned(mime, size, found)
