"""`repair_state`: every state file dealab writes, made readable again without losing what can be read.

Run with the stack down. Each kind of file has one rule (the table FILE_RULES, by name):
- JSON lines (Firehose buffers, ...): rewritten with their readable records; damaged and torn lines are
  dropped, never the lines after them; the original is set aside beside the file.
- JSON documents (engine state, hint counters, ...): a damaged one is set aside, so its engine starts empty.
- SQLite databases (Athena's store): integrity-checked; a damaged one is set aside with its WAL files.
- Temporary files a write died in before its rename: removed (their content was never in place).
The journal and its snapshots are the journal's own to repair; so are scratch folders that hold no state.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable
from pathlib import Path

from dealab.wire.store import JsonLines, set_aside, set_aside_sqlite, sqlite_damage

# Folders (at any depth) that hold no state of ours to repair: the journal and snapshots have their own
# repair, and a query's scratch space is thrown away on every start.
SKIPPED_FOLDERS = frozenset({"journal", "snapshots", "snapshot", "scratch"})


def _repair_json_lines(path: Path) -> list[str]:
    report = JsonLines(path).repair()
    if not (report.damaged_lines or report.torn_tail):
        return []
    lost = []
    if report.damaged_lines:
        shown = ", ".join(map(str, report.damaged_lines[:5])) + (", ..." if len(report.damaged_lines) > 5 else "")
        lost.append(f"{len(report.damaged_lines)} damaged line(s) (line {shown})")
    if report.torn_tail:
        lost.append("a torn last line")
    return [f"{path}: kept {report.records} record(s), dropped {' and '.join(lost)}; the original is set aside"]


def _repair_json_document(path: Path) -> list[str]:
    try:
        json.loads(path.read_bytes())
        return []
    except ValueError as error:
        copy = set_aside(path, f"not JSON: {error}")
        return [f"{path}: not JSON ({error}); set aside as {copy.name}, its engine starts without it"]


def _repair_sqlite(path: Path) -> list[str]:
    damage = sqlite_damage(path)
    if damage is None:
        return []
    copy = set_aside_sqlite(path, damage)
    return [f"{path}: damaged database ({damage}); set aside as {copy.name}, its engine starts with an empty one"]


def _remove_temporary(path: Path) -> list[str]:
    path.unlink(missing_ok=True)
    return [f"{path}: removed an unfinished write (the file it was to replace is intact)"]


# First matching pattern wins. Names set aside earlier (*.damaged-*) match nothing and stay as they are.
FILE_RULES: tuple[tuple[str, Callable[[Path], list[str]]], ...] = (
    ("*.damaged-*", lambda path: []),
    (".*.tmp", _remove_temporary),
    ("*.jsonl", _repair_json_lines),
    ("*.json", _repair_json_document),
    ("*.sqlite3", _repair_sqlite),
    ("*.sqlite", _repair_sqlite),
    ("*.db", _repair_sqlite),
)


def repair_state(state_dir: Path) -> list[str]:
    """Repairs every state file under `state_dir` (the stack must be down); one line per thing done."""
    done: list[str] = []
    if not state_dir.is_dir():
        return done
    for folder, subfolders, files in os.walk(state_dir):
        subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED_FOLDERS)
        for name in sorted(files):
            rule = next((handler for pattern, handler in FILE_RULES if fnmatch.fnmatchcase(name, pattern)), None)
            if rule is not None:
                done.extend(rule(Path(folder) / name))
    return done
