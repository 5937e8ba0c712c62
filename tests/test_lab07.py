"""Lab 07 proves its grader: the solution gets full marks, the starter does not, and each small breakage
of the solution fails the matching check and only it."""

import pytest

from tests.labkit import explain, fresh_lab, grade_lab, prove_breakage, run_solution, solution_report, starter_report

SCRIPT = "analysis.py"


def test_solution_gets_full_marks_and_is_rerunnable(aws_env):
    lab = fresh_lab(7, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    run_solution(lab, aws_env)
    assert grade_lab(lab, aws_env).full_marks


def test_untouched_starter_does_not_get_full_marks(aws_env):
    report = starter_report(fresh_lab(7, aws_env), aws_env)
    assert not report.full_marks
    assert report.score < report.total / 3, explain(report)


BREAKAGES = {
    "CTAS compressed with GZIP": ("L07-05", [("write_compression = 'SNAPPY'", "write_compression = 'GZIP'")]),
    "no bytes-scanned limit": ("L07-07", [('        "BytesScannedCutoffPerQuery": BYTES_SCANNED_LIMIT,\n    }', "    }"),
                                           ('            "BytesScannedCutoffPerQuery": BYTES_SCANNED_LIMIT,\n        })', "        })")]),
    "revenue averaged instead of summed": ("L07-03", [("round(sum(amount), 2) AS revenue FROM shop.orders GROUP BY category ORDER BY category",
                                                       "round(avg(amount), 2) AS revenue FROM shop.orders GROUP BY category ORDER BY category")]),
    "daily orders counts customers": ("L07-04", [("SELECT dt, count(*) AS orders", "SELECT dt, count(DISTINCT customer_id) AS orders")]),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_each_breakage_fails_its_check_and_only_it(aws_env, tmp_path, name):
    check_id, edits = BREAKAGES[name]
    prove_breakage(fresh_lab(7, aws_env), aws_env, tmp_path, {check_id}, {SCRIPT: edits})
