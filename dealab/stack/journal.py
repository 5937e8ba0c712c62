"""The journal: every request the embedded backend applied, in order, for replay after the latest snapshot.

Layout under the journal folder:
- `journal.jsonl`        the tail: entries since the last rotation, one JSON record a line
- `segments/A-B.jsonl.gz` older tails (entries A..B), compressed once a snapshot covers them; kept so that a
                          snapshot another version cannot read falls back to a full replay
- `blobs/<sha256>`       request bodies over 64 KiB and snapshotted object bodies, stored once by content
- `snapshot.bin`         the latest snapshot (see snapshot.py), covering entries up to its `seq`

A line is written (and flushed) before the response leaves, so an acknowledged request is never lost to a
killed process; a torn last line is a request that was never acknowledged, and is skipped.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import logging
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dealab.wire.store import JsonLines, ReadReport, json_line, parse_json_lines, rename, set_aside, write_atomic

log = logging.getLogger("dealab.journal")

INLINE_BODY_LIMIT = 64 * 1024
_SEGMENT_NAME = re.compile(r"^(\d+)-(\d+)\.jsonl(\.gz)?$")


@dataclass(frozen=True)
class Entry:
    seq: int
    time: datetime.datetime
    environ: dict
    body: bytes
    # draws the backend made that no seed brings back (motohooks.tape_draw), in order
    tape: list = field(default_factory=list)


class Blobs:
    """Bytes stored once by their SHA-256, shared by journal entries and snapshots."""

    def __init__(self, folder: Path):
        self.folder = folder

    def put(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or hashlib.sha256(data).hexdigest()
        path = self.folder / digest
        if not path.exists():
            write_atomic(path, data)
        return digest

    def has(self, digest: str) -> bool:
        return (self.folder / digest).exists()

    def get(self, name: str) -> bytes:
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad blob name {name!r}")
        return (self.folder / name).read_bytes()


class Journal:
    def __init__(self, folder: Path):
        self.folder = folder
        self.tail = JsonLines(folder / "journal.jsonl")
        self.segments = folder / "segments"
        self.blobs = Blobs(folder / "blobs")
        self.snapshot_path = folder / "snapshot.bin"
        self.last_seq = 0
        self.tail_entries = 0
        self.tail_bytes = 0
        self._compressing: list[threading.Thread] = []

    # Reading ------------------------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """Every segment in order, then the tail."""
        numbered = []
        if self.segments.is_dir():
            for path in self.segments.iterdir():
                match = _SEGMENT_NAME.match(path.name)
                if match:
                    numbered.append((int(match.group(1)), 0 if match.group(3) else 1, path))
        # a segment caught between rename and compression exists twice: prefer the whole .gz
        chosen: dict[int, Path] = {}
        for first, _, path in sorted(numbered):
            chosen.setdefault(first, path)
        return [chosen[first] for first in sorted(chosen)] + [self.tail.path]

    def entries(self, after: int = 0, report: ReadReport | None = None) -> Iterator[Entry]:
        """Entries with seq > `after`, in order; damaged lines are skipped and counted in `report`."""
        report = report if report is not None else ReadReport()
        for path in self.files():
            match = _SEGMENT_NAME.match(path.name)
            if match and int(match.group(2)) <= after:
                continue
            for record in _records(path, report):
                try:
                    entry = Entry(
                        int(record["seq"]),
                        datetime.datetime.fromisoformat(record["time"]),
                        record["environ"],
                        self._body(record),
                        [tuple(draw) for draw in record.get("tape", [])],
                    )
                except (ValueError, KeyError, TypeError, OSError) as error:
                    log.warning("journal entry %s unreadable (%s: %s); skipped", record.get("seq"), type(error).__name__, error)
                    report.damaged_lines.append(int(record.get("seq", 0) or 0))
                    continue
                self.last_seq = max(self.last_seq, entry.seq)
                if entry.seq > after:
                    yield entry

    def count_after(self, after: int) -> int:
        """Roughly how many entries a replay after `after` will read (for progress): lines, not parsed."""
        total = 0
        for path in self.files():
            match = _SEGMENT_NAME.match(path.name)
            if match and int(match.group(2)) <= after:
                continue
            try:
                with _open(path) as handle:
                    total += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            except (OSError, EOFError):
                continue
        return total

    # Writing ------------------------------------------------------------------------------------------------

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    def append(self, seq: int, environ: dict, body: bytes, moment: datetime.datetime, tape: list) -> None:
        record = {"seq": seq, "time": moment.isoformat(), "environ": _portable(environ)}
        if len(body) <= INLINE_BODY_LIMIT:
            record["body"] = base64.b64encode(body).decode("ascii")
        else:
            record["blob"] = self.blobs.put(body)
        if tape:
            record["tape"] = tape
        self.tail.append([record])
        self.tail_entries += 1
        self.tail_bytes += len(body) + 200

    def rotate(self) -> Path | None:
        """Closes the tail as a segment (compressed in the background); the next entry starts a new tail."""
        self.tail.close()
        if not self.tail.path.exists() or self.tail.path.stat().st_size == 0:
            return None
        first = None
        for record in self.tail.read():
            first = record.get("seq")
            break
        if first is None:
            self.tail.path.unlink()
            return None
        segment = self.segments / f"{int(first):012d}-{self.last_seq:012d}.jsonl"
        rename(self.tail.path, segment)
        self.tail_entries = self.tail_bytes = 0
        worker = threading.Thread(target=_compress, args=(segment,), name="journal-compress", daemon=True)
        worker.start()
        self._compressing.append(worker)
        return segment

    def wait_compressed(self) -> None:
        for worker in self._compressing:
            worker.join()
        self._compressing.clear()

    def clear(self) -> None:
        self.close()
        for path in (self.tail.path, self.snapshot_path):
            path.unlink(missing_ok=True)
        for folder in (self.segments, self.blobs.folder):
            shutil.rmtree(folder, ignore_errors=True)
        self.last_seq = self.tail_entries = self.tail_bytes = 0

    def close(self) -> None:
        self.tail.close()
        self.wait_compressed()

    def repair(self) -> list[str]:
        """Rewrites every journal file that has damaged or torn lines with only its readable entries (each
        original set aside beside it); returns one line per file it changed."""
        said = []
        for path in self.files():
            report = ReadReport()
            records = list(_records(path, report))
            if not (report.damaged_lines or report.torn_tail):
                continue
            self.tail.close()
            set_aside(path, f"{len(report.damaged_lines)} damaged line(s)")
            content = b"".join(map(json_line, records))
            write_atomic(path, gzip.compress(content) if path.suffix == ".gz" else content)
            skipped = ", ".join(map(str, report.damaged_lines[:5])) + (" ..." if len(report.damaged_lines) > 5 else "")
            said.append(
                f"{path.name}: kept {len(records)} entries, skipped damaged line(s) {skipped or '-'}"
                + (", dropped a torn last line" if report.torn_tail else "")
            )
        return said

    def _body(self, record: dict) -> bytes:
        if "blob" in record:
            return self.blobs.get(record["blob"])
        return base64.b64decode(record["body"], validate=True)


def _records(path: Path, report: ReadReport) -> Iterator[dict]:
    """The entries of one journal file; a line that is JSON but no entry counts as damaged."""
    try:
        with _open(path) as handle:
            lines = io.BytesIO(handle.read()) if path.suffix == ".gz" else handle
            for record in parse_json_lines(lines, report):
                if "seq" in record:
                    yield record
                else:
                    report.damaged_lines.append(0)
    except FileNotFoundError:
        return
    except (OSError, EOFError) as error:
        log.warning("journal file %s unreadable (%s); skipped", path.name, error)
        report.damaged_lines.append(0)


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _compress(segment: Path) -> None:
    target = segment.with_name(segment.name + ".gz")
    try:
        with segment.open("rb") as source:
            write_atomic(target, gzip.compress(source.read(), compresslevel=3))
        segment.unlink()
    except OSError as error:  # the plain segment stays and is read as it is
        log.warning("could not compress %s: %s", segment.name, error)


def _portable(environ: dict) -> dict:
    """The parts of a WSGI environ that describe the request, as JSON-safe values."""
    return {
        key: value
        for key, value in environ.items()
        if isinstance(value, (str, dict)) and (key.isupper() or key == "wsgi.url_scheme" or key.startswith("moto."))
    }
