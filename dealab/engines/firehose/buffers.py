"""Per-delivery-stream record buffers, kept on disk so records not yet delivered survive a restart.

A buffer file is JSON lines ({"t": arrival, "d": base64 data}) through the one store: a torn last line (a
write the stack died in, never acknowledged) or a damaged line is skipped on load, never fatal, and a file
that had such lines is set aside and written again with the readable records only.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import logging
from dataclasses import dataclass, field
from pathlib import Path

from dealab.wire.store import JsonLines, ReadReport, set_aside

log = logging.getLogger("dealab.firehose")


def _encode(moment: datetime.datetime, data: bytes) -> dict:
    return {"t": moment.isoformat(), "d": base64.b64encode(data).decode()}


def _decode(entry: dict) -> tuple[datetime.datetime, bytes]:
    """One record back from its line; ValueError (or KeyError/TypeError) when the line is not one."""
    return datetime.datetime.fromisoformat(entry["t"]), base64.b64decode(entry["d"], validate=True)


@dataclass
class Buffer:
    path: Path
    records: list[tuple[datetime.datetime, bytes]] = field(default_factory=list)

    def __post_init__(self):
        self._lines = JsonLines(self.path)

    @classmethod
    def load(cls, path: Path) -> Buffer:
        buffer = cls(path)
        report = ReadReport()
        unreadable = 0
        for entry in buffer._lines.read(report):
            try:
                buffer.records.append(_decode(entry))
            except (KeyError, TypeError, ValueError, binascii.Error):
                unreadable += 1
        if report.damaged_lines or report.torn_tail or unreadable:
            set_aside(path, f"{len(report.damaged_lines) + unreadable} damaged line(s), torn last line: {report.torn_tail}")
            buffer._lines.rewrite([_encode(moment, data) for moment, data in buffer.records])
            log.warning("firehose buffer %s: kept %d record(s)", path.name, len(buffer.records))
        return buffer

    @property
    def size(self) -> int:
        return sum(len(data) for _, data in self.records)

    @property
    def oldest(self) -> datetime.datetime | None:
        return min((moment for moment, _ in self.records), default=None)

    def add(self, records: list[tuple[datetime.datetime, bytes]]) -> None:
        self._lines.append([_encode(moment, data) for moment, data in records])
        self.records.extend(records)

    def drop_first(self, count: int) -> None:
        """Forgets the first `count` records (they were delivered)."""
        self.records = self.records[count:]
        self._lines.rewrite([_encode(moment, data) for moment, data in self.records])

    def discard(self) -> None:
        self.records = []
        self._lines.remove()

    def close(self) -> None:
        self._lines.close()
