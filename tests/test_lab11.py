"""Lab 11 proves its grader: the solution gets full marks, the starter does not, each realistic mistake of a learner
(a mutant of the solution) fails exactly the checks it should, and other correct ways (variants) get full marks.
One stack for the file; every case starts from an empty one, as labkit does."""

import pytest

from tests.labkit import FAIL, explain, fresh_lab, prove_breakage, prove_variant, solution_report, starter_report

MONITOR, INVESTIGATE, AUDIT = "monitor.py", "investigate.py", "audit.py"

MUTANTS = {}
VARIANTS = {}


def test_solution_gets_full_marks(aws_env):
    report = solution_report(fresh_lab(11, aws_env), aws_env)
    assert report.full_marks, explain(report)


def test_untouched_starter_scores_nothing(aws_env):
    report = starter_report(fresh_lab(11, aws_env), aws_env)
    assert report.score == 0, explain(report)
    assert all(result.status == FAIL for result in report.results), explain(report)


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_exactly_its_checks(aws_env, tmp_path, name):
    check_ids, edits = MUTANTS[name]
    prove_breakage(fresh_lab(11, aws_env), aws_env, tmp_path, check_ids, edits)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(11, aws_env), aws_env, tmp_path, VARIANTS[name])
