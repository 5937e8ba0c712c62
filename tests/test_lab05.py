"""Lab 05 proves its grader: the solution gets full marks, the starter does not, and each small breakage
of the solution fails the matching check and only it."""

import pytest

from tests.labkit import explain, fresh_lab, grade_lab, prove_breakage, run_solution, solution_report, starter_report

pytestmark = pytest.mark.slow


def test_solution_gets_full_marks_and_is_rerunnable(aws_env):
    lab = fresh_lab(5, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    run_solution(lab, aws_env)
    assert grade_lab(lab, aws_env).full_marks


def test_untouched_starter_does_not_get_full_marks(aws_env):
    report = starter_report(fresh_lab(5, aws_env), aws_env)
    assert not report.full_marks
    assert report.score < report.total / 3, explain(report)


BREAKAGES = {
    "schema policy left at LOG": ("L05-06", {"evolve.py": [(
        '    glue.update_crawler(Name=CRAWLER, SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"})',
        "    pass")]}),
    "crawler over the readings folder only": ("L05-05", {"catalog.py": [('RAW_PATH = "s3://dea-catalog-raw/raw/"', 'RAW_PATH = "s3://dea-catalog-raw/raw/readings/"')]}),
    "no schedule": ("L05-08", {"catalog.py": [('        "Schedule": "cron(0 2 * * ? *)",\n', "")]}),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_each_breakage_fails_its_check_and_only_it(aws_env, tmp_path, name):
    check_id, edits = BREAKAGES[name]
    prove_breakage(fresh_lab(5, aws_env), aws_env, tmp_path, {check_id}, edits)
