"""`python -m dealab.classroom.grading N`: the front door's server-side grading of one learner's stack.

Run in a process of its own whose environment names that learner's stack (DEALAB_HOME, DEALAB_PORT) and key
pair (DEALAB_ACCESS_KEY_ID/SECRET: the grader's clients sign with them), so it grades what the stack holds.
Prints one JSON line: {"report": ..., "lab_time": ...}, or {"not_started": true} for a lab never started there.
"""

from __future__ import annotations

import json
import sys

from dealab import labrun
from dealab.config import settings
from dealab.datasets import learner_seed
from dealab.labs import get_lab
from grader.runner import grade


def main(number: str) -> int:
    lab = get_lab(number)
    current = settings()
    if str(lab.number) not in labrun.started_labs(current):
        print(json.dumps({"not_started": True, "message": f"lab {lab.number:02d} was never started on this learner's stack"}))
        return 0
    report = grade(lab, current, learner_seed(current), record=False)
    print(json.dumps({"report": report.to_dict(), "lab_time": labrun.clock_admin(current).get("now")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
