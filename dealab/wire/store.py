"""The one store: every state file dealab writes goes through here, written atomically, read forgivingly.

- `write_atomic` puts a whole file in place with a rename, so a reader (or the next start after `kill -9`)
  sees the old content or the new, never half of each.
- `JsonFile` is one JSON document; a damaged one is set aside beside itself and read as the default.
- `JsonLines` is an append-only log of JSON records; a torn last line (the process died mid-write) or a
  damaged line in the middle is skipped and counted, never fatal.
- `child_path` maps a resource name to a file under a folder, refusing anything that could leave it.
- `sqlite_damage` says whether an SQLite database (an engine that keeps SQLite rather than JSON) is damaged.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("dealab.store")

# A resource name becomes one path component: letters, digits and . _ - only, never "." or "..", never
# hidden (a leading "."; the store's own temporary files start with one). "_x" and "-x" are names AWS takes.
_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")


class UnsafeName(ValueError):
    """A name that cannot become a file name under a state folder."""


def child_path(folder: Path, name: str, suffix: str = "") -> Path:
    """`folder / (name + suffix)`, refusing names that are not one plain component (no separators, no
    traversal, no NUL, nothing hidden)."""
    if not isinstance(name, str) or not _SAFE_COMPONENT.fullmatch(name) or name in (".", ".."):
        raise UnsafeName(f"{name!r} cannot name a file: use letters, digits, '.', '_' and '-' only")
    path = folder / f"{name}{suffix}"
    if path.resolve().parent != folder.resolve():
        raise UnsafeName(f"{name!r} leaves its folder")
    return path


def write_atomic(path: Path, content: bytes | str) -> None:
    """Replaces `path` with `content` in one step: written beside it, flushed, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    # One temporary name per process and thread: two threads saving the same file never share one.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def rename(path: Path, target: Path) -> None:
    """Gives a finished file its final name in one step (a journal tail becoming a segment)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)


def set_aside(path: Path, reason: str) -> Path:
    """Moves a damaged file out of the way (kept beside it for a person to look at) and says so in the log."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    copy = path.with_name(f"{path.name}.damaged-{stamp}")
    number = 1
    while copy.exists():  # a second set-aside within the same second keeps the first copy too
        number += 1
        copy = path.with_name(f"{path.name}.damaged-{stamp}-{number}")
    os.replace(path, copy)
    log.warning("%s was damaged (%s); set aside as %s", path, reason, copy.name)
    return copy


SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def sqlite_damage(path: Path) -> str | None:
    """Why the SQLite database at `path` cannot be used (not a database, a failed integrity check), or None
    when it is sound or absent. Checking changes nothing the database holds."""
    if not path.exists():
        return None
    database = None
    try:
        database = sqlite3.connect(path)
        rows = database.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as error:
        return str(error)
    finally:
        if database is not None:
            database.close()
    verdict = "; ".join(str(row[0]) for row in rows[:3])
    return None if verdict == "ok" else verdict


def set_aside_sqlite(path: Path, reason: str) -> Path:
    """Sets a damaged database aside together with its write-ahead log and shared-memory files."""
    copy = set_aside(path, reason)
    for companion in SQLITE_COMPANIONS:
        extra = path.with_name(path.name + companion)
        if extra.exists():
            os.replace(extra, copy.with_name(copy.name + companion))
    return copy


class JsonFile:
    """One JSON document, replaced whole on every save."""

    def __init__(self, path: Path):
        self.path = path

    def load(self, default):
        """The document, or `default` when there is none. A document that is not JSON, or not of the
        default's kind (a list where a mapping belongs), is set aside: the engine starts from the default."""
        try:
            document = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return default
        except ValueError as error:
            set_aside(self.path, f"not JSON: {error}")
            return default
        if default is not None and not isinstance(document, type(default)):
            set_aside(self.path, f"a JSON {type(document).__name__} where a {type(default).__name__} belongs")
            return default
        return document

    def save(self, document) -> None:
        write_atomic(self.path, json.dumps(document, separators=(",", ":"), default=str))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class ReadReport:
    """What reading a JSON-lines file met: good records, and the lines it had to skip."""

    records: int = 0
    damaged_lines: list[int] = field(default_factory=list)
    torn_tail: bool = False


def parse_json_lines(lines: Iterable[bytes], report: ReadReport) -> Iterator[dict]:
    """The JSON objects of a JSON-lines stream. A last line without its newline is a write the process never
    finished (and so never acknowledged): it is skipped as torn. Any other unreadable line is skipped and
    its number reported."""
    for number, line in enumerate(lines, start=1):
        if not line.endswith(b"\n"):
            report.torn_tail = True
            break
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            report.damaged_lines.append(number)
            continue
        report.records += 1
        yield record


def json_line(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


class JsonLines:
    """An append-only file of JSON records, one a line."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = None

    def read(self, report: ReadReport | None = None) -> Iterator[dict]:
        """Every readable record in order (see `parse_json_lines`)."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            yield from parse_json_lines(handle, report if report is not None else ReadReport())

    def append(self, records: list[dict], sync: bool = False) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._drop_torn_tail()
            self._handle = self.path.open("ab")
        self._handle.write(b"".join(map(json_line, records)))
        self._handle.flush()
        if sync:
            os.fsync(self._handle.fileno())

    def rewrite(self, records: list[dict]) -> None:
        """Replaces the whole file with `records`, atomically."""
        self.close()
        write_atomic(self.path, b"".join(map(json_line, records)))

    def repair(self) -> ReadReport:
        """Rewrites the file with only its readable records; the damaged original is set aside."""
        report = ReadReport()
        records = list(self.read(report))
        if report.damaged_lines or report.torn_tail:
            self.close()
            set_aside(self.path, f"{len(report.damaged_lines)} damaged line(s), torn tail: {report.torn_tail}")
            self.rewrite(records)
        return report

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def _drop_torn_tail(self) -> None:
        """Cuts a torn last line off before appending, so the next record starts on a line of its own."""
        try:
            with self.path.open("rb+") as handle:
                size = handle.seek(0, os.SEEK_END)
                if size == 0:
                    return
                handle.seek(size - 1)
                if handle.read(1) == b"\n":
                    return
                position = size
                while position > 0:
                    step = min(65536, position)
                    handle.seek(position - step)
                    chunk = handle.read(step)
                    newline = chunk.rfind(b"\n")
                    if newline >= 0:
                        handle.truncate(position - step + newline + 1)
                        return
                    position -= step
                handle.truncate(0)
        except FileNotFoundError:
            return
