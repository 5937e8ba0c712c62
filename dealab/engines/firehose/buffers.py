"""Per-delivery-stream record buffers, kept on disk so records not yet delivered survive a restart."""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Buffer:
    path: Path
    records: list[tuple[datetime.datetime, bytes]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Buffer:
        buffer = cls(path)
        if path.exists():
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                buffer.records.append((datetime.datetime.fromisoformat(entry["t"]), base64.b64decode(entry["d"])))
        return buffer

    @property
    def size(self) -> int:
        return sum(len(data) for _, data in self.records)

    @property
    def oldest(self) -> datetime.datetime | None:
        return min((moment for moment, _ in self.records), default=None)

    def add(self, records: list[tuple[datetime.datetime, bytes]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            for moment, data in records:
                handle.write(json.dumps({"t": moment.isoformat(), "d": base64.b64encode(data).decode()}) + "\n")
        self.records.extend(records)

    def drop_first(self, count: int) -> None:
        """Forgets the first `count` records (they were delivered)."""
        self.records = self.records[count:]
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text("".join(json.dumps({"t": m.isoformat(), "d": base64.b64encode(d).decode()}) + "\n" for m, d in self.records))
        temporary.replace(self.path)

    def discard(self) -> None:
        self.records = []
        self.path.unlink(missing_ok=True)
