"""Runs a lab's checks, each in its own thread with a timeout; a crash is ERROR with a readable reason."""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import asdict, dataclass

from botocore.exceptions import BotoCoreError, ClientError

from dealab.classroom import client as classroom
from dealab.config import Settings
from dealab.labs import Lab, code_dir
from dealab.wire.store import JsonFile
from grader.core import Check, Fail, LabContext, checks_of

PASS, FAIL, ERROR = "PASS", "FAIL", "ERROR"
# who wrote the code that last ran for a lab: a score the reference solution earned is not the learner's
BY_LEARNER, BY_REFERENCE = "learner", "reference solution"
SCORES_FILE = "scores.json"


@dataclass(frozen=True)
class Result:
    id: str
    title: str
    task: str
    points: int
    earned: int
    status: str
    message: str
    hint: str
    docs: str
    seconds: float


@dataclass(frozen=True)
class Report:
    lab: int
    slug: str
    title: str
    seed: str
    results: list[Result]
    earned_by: str = BY_LEARNER

    @property
    def score(self) -> int:
        return sum(r.earned for r in self.results)

    @property
    def total(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def full_marks(self) -> bool:
        return self.score == self.total and all(r.status == PASS for r in self.results)

    def to_dict(self) -> dict:
        return {"lab": self.lab, "slug": self.slug, "title": self.title, "seed": self.seed, "score": self.score,
                "total": self.total, "earned_by": self.earned_by, "results": [asdict(r) for r in self.results]}


def run_check(check_: Check, ctx: LabContext) -> Result:
    outcome: dict = {}

    def target():
        try:
            outcome["message"] = check_(ctx)
            outcome["status"] = PASS
        except Fail as failure:
            outcome.update(status=FAIL, message=str(failure))
        except ClientError as error:
            details = error.response.get("Error", {})
            outcome.update(status=ERROR, message=f"AWS said {details.get('Code', '?')}: {details.get('Message', error)}")
        except BotoCoreError as error:
            outcome.update(status=ERROR, message=f"could not reach the stack: {error}")
        except Exception as error:  # a check's own bug must not hide the other checks' results
            outcome.update(status=ERROR, message=f"the check crashed: {type(error).__name__}: {error}")

    started = time.monotonic()
    worker = threading.Thread(target=target, daemon=True, name=check_.id)
    worker.start()
    worker.join(check_.timeout)
    if worker.is_alive():
        outcome = {"status": ERROR, "message": f"the check did not finish within {check_.timeout}s"}
    status = outcome["status"]
    message = " ".join(str(outcome.get("message") or "").split())  # one line, always
    return Result(
        id=check_.id, title=check_.title, task=check_.task, points=check_.points,
        earned=check_.points if status == PASS else 0, status=status, message=message,
        hint=check_.hints[0], docs=check_.docs, seconds=round(time.monotonic() - started, 3),
    )


def earned_by(lab: Lab, settings: Settings) -> str:
    """Whose code the grade judges: the reference solution's after `make solve-N`, else the learner's."""
    return BY_REFERENCE if code_dir(lab, settings).resolve() == lab.solution_dir.resolve() else BY_LEARNER


def grade(lab: Lab, settings: Settings, seed: str, progress=None, record: bool = True) -> Report:
    """Runs every check of the lab; `record=False` grades quietly (the hint ladder) without a new score."""
    module = importlib.import_module(lab.grader_module)
    ctx = LabContext(lab, settings, seed)
    results = []
    for check_ in checks_of(module):
        if progress:
            progress(check_)
        results.append(run_check(check_, ctx))
    report = Report(lab.number, lab.slug, lab.title, seed, results, earned_by(lab, settings))
    if record:
        record_score(settings, report)
    return report


def _scores(settings: Settings) -> JsonFile:
    """Lab number → the last graded score: the grader owns this file; `dealab labs` and `reset-N` ask through
    `last_scores` and `forget_score`."""
    return JsonFile(settings.state_dir / SCORES_FILE)


def record_score(settings: Settings, report: Report) -> None:
    scores = _scores(settings)
    recorded = scores.load({})
    recorded[str(report.lab)] = {"score": report.score, "total": report.total, "at": time.strftime("%Y-%m-%d %H:%M"),
                                 "earned_by": report.earned_by}
    scores.save(recorded)
    if classroom.in_classroom():  # the instructor sees it as self-reported: this machine is the learner's
        classroom.tell(settings, "reported-score", {"lab": report.lab, "score": report.score, "total": report.total})


def forget_score(settings: Settings, lab: int) -> None:
    """`reset-N`: the lab's resources are gone, so is its score."""
    scores = _scores(settings)
    recorded = scores.load({})
    if recorded.pop(str(lab), None) is not None:
        scores.save(recorded)


def last_scores(settings: Settings) -> dict:
    return _scores(settings).load({})
