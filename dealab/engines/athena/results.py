"""Result files as Athena writes them (every value double-quoted, NULL as an empty field, DDL output as
plain lines) and their reading back for GetQueryResults."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from dealab.engines.athena.datatypes import column_info, render


@dataclass
class Outcome:
    """What a statement produced: its result rows and how Athena files them."""

    statement_type: str  # DML | DDL | UTILITY
    substatement_type: str
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, DuckDB type)
    rows: list[list[str | None]] = field(default_factory=list)  # rendered values
    tabular: bool = True  # .csv with a header row (queries) or .txt lines (DDL and utility statements)
    data_files: list[str] | None = None  # written by CTAS / INSERT / UNLOAD, listed in the manifest
    update_count: int | None = None

    @classmethod
    def lines(cls, statement_type: str, substatement_type: str, column: str, lines: list[str]) -> Outcome:
        return cls(statement_type, substatement_type, [(column, "VARCHAR")], [[line] for line in lines], tabular=False)

    @classmethod
    def from_rows(cls, statement_type: str, substatement_type: str, names: list[str], types: list[str], rows: list[tuple]) -> Outcome:
        rendered = [[render(value, kind) for value, kind in zip(row, types)] for row in rows]
        return cls(statement_type, substatement_type, list(zip(names, types)), rendered)

    @property
    def column_infos(self) -> list[dict]:
        return [column_info(name, kind) for name, kind in self.columns]


def _quoted(value: str | None) -> str:
    return "" if value is None else '"' + value.replace('"', '""') + '"'


def to_csv(outcome: Outcome) -> bytes:
    lines = [",".join(_quoted(name) for name, _ in outcome.columns)]
    lines += [",".join(_quoted(value) for value in row) for row in outcome.rows]
    return ("\n".join(lines) + "\n").encode()


def to_text(outcome: Outcome) -> bytes:
    return "".join(f"{row[0] or ''}\n" for row in outcome.rows).encode()


def metadata_document(outcome: Outcome) -> bytes:
    """dealab's .metadata (Athena's own is a binary encoding of the same column information)."""
    return json.dumps({"ResultSetMetadata": {"ColumnInfo": outcome.column_infos}}).encode()


def parse_csv(text: str) -> list[list[str | None]]:
    """Reads Athena's result CSV, telling NULL (empty field) from the empty string ("")."""
    rows: list[list[str | None]] = []
    row: list[str | None] = []
    position, length = 0, len(text)
    while position < length:
        if text[position] == '"':
            end, parts = position + 1, []
            while True:
                close = text.index('"', end)
                parts.append(text[end:close])
                if close + 1 < length and text[close + 1] == '"':
                    parts.append('"')
                    end = close + 2
                    continue
                position = close + 1
                break
            row.append("".join(parts))
        else:
            end = position
            while end < length and text[end] not in ",\n":
                end += 1
            row.append(text[position:end] or None)
            position = end
        if position >= length or text[position] == "\n":
            rows.append(row)
            row = []
        position += 1
    return rows


def parse_text(text: str) -> list[list[str | None]]:
    return [[line] for line in text.split("\n")[:-1]] if text else []
