"""What the front door records per learner (class/<learner>/classroom.json), and the scores table built from it.

Three kinds of record, kept apart because they are worth different things:
- graded: `dealab class grade` ran the grader server-side against the learner's stack. These count.
- reported: the learner's own `make grade-N` told the front door its result. Self-reported: the learner
  controls that machine, so these are shown and never counted.
- reference_runs: `make solve-N` announced a run of the reference solution (through the front door, the only
  way to its stack). Set-only: no endpoint clears it, so a learner's code cannot un-flag a score; every
  grading of that lab after it is flagged by_reference.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from pathlib import Path

from dealab.classroom.roster import learner_dir
from dealab.wire.store import JsonFile

RECORD_FILE = "classroom.json"
SCORE_COLUMNS = ("learner", "lab", "best_score", "last_score", "total", "attempts", "by_reference",
                 "first_full_marks_lab_time", "first_full_marks_real_time",
                 "self_reported_best", "self_reported_last", "self_reported_attempts")
_lock = threading.Lock()


def real_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _file(state_dir: Path, learner: str) -> JsonFile:
    return JsonFile(learner_dir(state_dir, learner) / RECORD_FILE)


def load(state_dir: Path, learner: str) -> dict:
    record = _file(state_dir, learner).load({})
    return record if isinstance(record, dict) else {}


def _update(state_dir: Path, learner: str, change) -> dict:
    with _lock:
        record = load(state_dir, learner)
        change(record)
        _file(state_dir, learner).save(record)
        return record


def add_graded(state_dir: Path, learner: str, report: dict, lab_time: str) -> dict:
    """One server-side grading (a grader Report's to_dict()); flagged by_reference after a reference run."""
    lab = str(report["lab"])

    def change(record: dict) -> None:
        record.setdefault("graded", []).append({
            "lab": lab, "score": report["score"], "total": report["total"], "at_real": real_now(), "at_lab": lab_time,
            "by_reference": lab in record.get("reference_runs", {}),
            "failing": [{"id": r["id"], "title": r["title"], "status": r["status"], "message": r["message"]}
                        for r in report["results"] if r["status"] != "PASS"],
        })

    return _update(state_dir, learner, change)


def add_reported(state_dir: Path, learner: str, report: dict) -> None:
    def change(record: dict) -> None:
        record.setdefault("reported", []).append({"lab": str(report["lab"]), "score": int(report["score"]),
                                                  "total": int(report["total"]), "at_real": real_now()})

    _update(state_dir, learner, change)


def add_reference_run(state_dir: Path, learner: str, lab: str) -> None:
    def change(record: dict) -> None:
        record.setdefault("reference_runs", {}).setdefault(lab, real_now())

    _update(state_dir, learner, change)


def score_rows(state_dir: Path, learner_ids: list[str]) -> list[dict]:
    """One row per learner × lab with any record, in SCORE_COLUMNS."""
    rows = []
    for learner in learner_ids:
        record = load(state_dir, learner)
        graded, reported = record.get("graded", []), record.get("reported", [])
        for lab in sorted({entry["lab"] for entry in graded + reported}, key=int):
            counted = [entry for entry in graded if entry["lab"] == lab]
            mine = [entry for entry in reported if entry["lab"] == lab]
            full = next((entry for entry in counted if entry["score"] == entry["total"] and not entry["failing"]), None)
            rows.append({
                "learner": learner, "lab": int(lab),
                "best_score": max((entry["score"] for entry in counted), default=None),
                "last_score": counted[-1]["score"] if counted else None,
                "total": (counted or mine)[-1]["total"],
                "attempts": len(counted),
                "by_reference": any(entry["by_reference"] for entry in counted) or lab in record.get("reference_runs", {}),
                "first_full_marks_lab_time": full["at_lab"] if full else None,
                "first_full_marks_real_time": full["at_real"] if full else None,
                "self_reported_best": max((entry["score"] for entry in mine), default=None),
                "self_reported_last": mine[-1]["score"] if mine else None,
                "self_reported_attempts": len(mine),
            })
    return rows


def rows_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=SCORE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: "" if row[name] is None else str(row[name]).lower() if isinstance(row[name], bool) else row[name]
                         for name in SCORE_COLUMNS})
    return out.getvalue()
