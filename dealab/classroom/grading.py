"""`python -m dealab.classroom.grading N`: the front door's server-side grading of one learner's stack.

Run in a process of its own whose environment names that learner's stack (DEALAB_HOME, DEALAB_PORT) and key
pair (DEALAB_ACCESS_KEY_ID/SECRET: the grader's clients sign with them), so it grades what the stack holds.
Prints one JSON line: {"report": ..., "lab_time": ...}, or {"not_started": true} for a lab never started there.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path

from dealab import labrun
from dealab.config import settings
from dealab.datasets import learner_seed
from dealab.labs import Lab, get_lab
from grader.runner import grade


def main(number: str) -> int:
    lab = get_lab(number)
    current = settings()
    if str(lab.number) not in labrun.started_labs(current):
        print(json.dumps({"not_started": True, "message": f"lab {lab.number:02d} was never started on this learner's stack"}))
        return 0
    seed = learner_seed(current)
    with tempfile.TemporaryDirectory(prefix="dealab-grading-") as scratch:
        report = grade(with_learners_data(lab, seed, Path(scratch)), current, seed, record=False)
    print(json.dumps({"report": report.to_dict(), "lab_time": labrun.clock_admin(current).get("now")}))
    return 0


def with_learners_data(lab: Lab, seed: str, scratch: Path) -> Lab:
    """The lab as the grader sees it on the learner's machine: its folder (starter code included) with the data
    generated for the learner's seed, in `scratch`; graders that read the data folder (labs 10 and 12) read
    the learner's, not whatever this machine last generated."""
    generator = lab.generator()
    if generator is None:
        return lab
    folder = scratch / lab.path.name
    shutil.copytree(lab.path, folder, ignore=shutil.ignore_patterns("data"))
    generator(seed, folder / "data", **lab.dataset.get("params", {}))
    return dataclasses.replace(lab, path=folder)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
