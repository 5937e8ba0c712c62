"""Lab 04 proves its grader: the solution gets full marks, the starter does not, and each small breakage
of the solution fails the matching check and only it."""

import re

import pytest

from grader.core import LabContext
from tests.labkit import explain, fresh_lab, grade_lab, prove_breakage, solution_report, starter_report

SCRIPT = "lifecycle_rules.py"


# Seeds as `dealab` draws a learner's ("learner-" and 8 hex digits); each test runs on one of them. The first
# two once failed L04-08 with the reference solution: their plans have objects 0 days old, which seeding puts
# after its last clock move, and the cost "before" was read from a storage history that had no point with them.
SEEDS = ("learner-0000016e", "learner-00000159", "learner-000000a7", "learner-00000006")


def use_seed(monkeypatch, seed: str) -> None:
    monkeypatch.setenv("DEALAB_LEARNER", seed)


def test_solution_gets_full_marks_and_grading_can_be_repeated(aws_env, monkeypatch):
    use_seed(monkeypatch, SEEDS[2])
    lab = fresh_lab(4, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    assert grade_lab(lab, aws_env).full_marks  # each grading runs its own probe, whatever the clock reads


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_cost_cut_counts_objects_seeded_after_the_last_clock_move(aws_env, monkeypatch, seed):
    """Regression (issue 6): with these seeds L04-08 measured a 1% or -2% cut where the lab's rules make 13% or 23%."""
    use_seed(monkeypatch, seed)
    lab = fresh_lab(4, aws_env)
    assert any(0 in spec["versions"] for spec in LabContext(lab, aws_env, seed).dataset["objects"])  # what made the seed fail
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    cut = next(result for result in report.results if result.id == "L04-08").message
    measured, expected = re.findall(r"(-?[\d.]+)%", cut)
    assert measured == expected, cut  # the report and the lab's rules price the same objects the same way


def test_untouched_starter_does_not_get_full_marks(aws_env, monkeypatch):
    use_seed(monkeypatch, SEEDS[3])
    lab = fresh_lab(4, aws_env)
    report = starter_report(lab, aws_env)
    assert report.score == 0, explain(report)


BREAKAGES = {
    "tmp kept two weeks": ("L04-04", [('"Expiration": {"Days": 7}', '"Expiration": {"Days": 14}')]),
    "one noncurrent version kept": ("L04-05", [('"NewerNoncurrentVersions": 3', '"NewerNoncurrentVersions": 1')]),
    "uploads kept a month": ("L04-06", [('"DaysAfterInitiation": 7', '"DaysAfterInitiation": 30')]),
    "raw rule ignores the retention tag": ("L04-07", [('"Filter": {"And": {"Prefix": "raw/", "Tags": STANDARD_RETENTION}}', '"Filter": {"Prefix": "raw/"}')]),
    "raw expires at 400 days": ("L04-03", [('"Expiration": {"Days": 365}', '"Expiration": {"Days": 400}')]),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_each_breakage_fails_its_check_and_only_it(aws_env, tmp_path, monkeypatch, name):
    check_id, edits = BREAKAGES[name]
    use_seed(monkeypatch, SEEDS[list(BREAKAGES).index(name) % len(SEEDS)])
    prove_breakage(fresh_lab(4, aws_env), aws_env, tmp_path, {check_id}, {SCRIPT: edits})
