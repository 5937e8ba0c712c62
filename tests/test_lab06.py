"""Lab 06 proves its grader: the solution gets full marks, the starter does not, and each small breakage
of the solution fails the matching check and only it. The job runs on the stack's warm Spark worker."""

import pytest

from tests.labkit import explain, fresh_lab, grade_lab, prove_breakage, run_solution, solution_report, starter_report

pytestmark = pytest.mark.slow
SCRIPT = "etl_orders.py"


def test_solution_gets_full_marks_and_is_rerunnable(aws_env):
    lab = fresh_lab(6, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    run_solution(lab, aws_env)
    assert grade_lab(lab, aws_env).full_marks


def test_untouched_starter_does_not_get_full_marks(aws_env):
    report = starter_report(fresh_lab(6, aws_env), aws_env)
    assert not report.full_marks
    assert report.score < report.total / 3, explain(report)


BREAKAGES = {
    "gzip instead of snappy": ("L06-06", [('sink.setFormat("glueparquet", compression="snappy")', 'sink.setFormat("glueparquet", compression="gzip")')]),
    "no deduplication": ("L06-05", [("        .where(F.col(\"version\") == 1)\n", "")]),
    "no quarantine": ("L06-08", [('        connection_options={"path": args["quarantine_path"]},', '        connection_options={"path": args["quarantine_path"] + "../rejected-elsewhere/"},')]),
    "quantity kept as text": ("L06-04", [('F.when(F.col("quantity").rlike(r"^-?\\d+$"), F.col("quantity").cast("int")).alias("quantity")',
                                          'F.when(F.col("quantity").rlike(r"^-?\\d+$"), F.col("quantity")).alias("quantity")')]),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_each_breakage_fails_its_check_and_only_it(aws_env, tmp_path, name):
    check_id, edits = BREAKAGES[name]
    prove_breakage(fresh_lab(6, aws_env), aws_env, tmp_path, {check_id}, {SCRIPT: edits})
