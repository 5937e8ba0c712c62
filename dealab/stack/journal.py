"""An append-only journal of the mutating requests the embedded backend applied, for replay on start."""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

INLINE_BODY_LIMIT = 64 * 1024


class JournalDamaged(Exception):
    """The journal cannot be read past some line; nothing has been changed or dropped."""

    def __init__(self, path: Path, line_number: int, reason: str):
        self.path, self.line_number = path, line_number
        super().__init__(
            f"the state journal {path} is damaged at line {line_number} ({reason}). Your data is untouched. "
            "Run `dealab repair` to keep everything before that line (the damaged file is set aside as a copy), "
            "or `dealab reset` to start over."
        )


@dataclass(frozen=True)
class Entry:
    seq: int
    time: datetime.datetime
    environ: dict
    body: bytes


class Journal:
    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "journal.jsonl"
        self.blobs = folder / "blobs"
        self._next_seq = 1
        self._handle = None

    def entries(self) -> Iterator[Entry]:
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            for line_number, line in enumerate(handle, start=1):
                try:
                    record = json.loads(line)
                    entry = Entry(
                        record["seq"],
                        datetime.datetime.fromisoformat(record["time"]),
                        record["environ"],
                        self._load_body(record),
                    )
                except (ValueError, KeyError, TypeError, OSError) as error:
                    raise JournalDamaged(self.path, line_number, f"{type(error).__name__}: {error}") from None
                self._next_seq = entry.seq + 1
                yield entry

    def append(self, environ: dict, body: bytes, moment: datetime.datetime) -> Entry:
        entry = Entry(self._next_seq, moment, _portable(environ), body)
        record = {"seq": entry.seq, "time": moment.isoformat(), "environ": entry.environ}
        if len(body) <= INLINE_BODY_LIMIT:
            record["body"] = base64.b64encode(body).decode("ascii")
        else:
            self.blobs.mkdir(parents=True, exist_ok=True)
            blob = self.blobs / f"{entry.seq}.bin"
            blob.write_bytes(body)
            record["blob"] = blob.name
        if self._handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("ab")
        self._handle.write(json.dumps(record).encode() + b"\n")
        self._handle.flush()
        self._next_seq += 1
        return entry

    def clear(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.blobs, ignore_errors=True)
        self._next_seq = 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def repair(self) -> tuple[int, Path]:
        """Keeps the readable entries before the first damaged line; the original is kept beside it."""
        kept: list[bytes] = []
        with self.path.open("rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                    self._load_body(record)
                except (ValueError, KeyError, TypeError, OSError):
                    break
                kept.append(line if line.endswith(b"\n") else line + b"\n")
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        damaged_copy = self.path.with_name(f"journal.damaged-{stamp}.jsonl")
        shutil.copy2(self.path, damaged_copy)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(kept))
        os.replace(tmp, self.path)
        return len(kept), damaged_copy

    def _load_body(self, record: dict) -> bytes:
        if "blob" in record:
            return (self.blobs / record["blob"]).read_bytes()
        return base64.b64decode(record["body"], validate=True)


def _portable(environ: dict) -> dict:
    """The parts of a WSGI environ that describe the request, as JSON-safe values."""
    return {
        key: value
        for key, value in environ.items()
        if isinstance(value, (str, dict)) and (key.isupper() or key == "wsgi.url_scheme" or key.startswith("moto."))
    }
