"""Lab 05 proves its grader: the solution gets full marks, the starter does not, each realistic mistake in the
solution fails exactly the check that names it (a FAIL, never an ERROR), and other correct spellings of the
solution (cron forms, policy key order, targets) keep full marks."""

import datetime

import pytest

from dealab.wire.awscron import next_times
from tests.labkit import explain, fresh_lab, grade_lab, prove_breakage, prove_variant, run_solution, solution_report, starter_report

pytestmark = pytest.mark.slow

SCHEDULE_LINE = '        "Schedule": "cron(0 2 * * ? *)",\n'
EVOLVE_POLICY = '    glue.update_crawler(Name=CRAWLER, SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"})'
EVOLVE_MAIN = '''    upload_new_day()
    follow_schema_changes()
    print(f"crawl {crawl_and_wait(CRAWLER)['Status']}")'''


def schedule(expression: str) -> dict:
    return {"catalog.py": [(SCHEDULE_LINE, f'        "Schedule": "{expression}",\n')]}


MUTANTS = {
    "schema policy left at LOG": ({"L05-06"}, {"evolve.py": [(EVOLVE_POLICY, "    pass")]}),
    "policy changed only after the second crawl": ({"L05-06"}, {"evolve.py": [(EVOLVE_MAIN, '''    upload_new_day()
    print(f"crawl {crawl_and_wait(CRAWLER)['Status']}")
    follow_schema_changes()''')]}),
    "new day uploaded but never crawled": ({"L05-04", "L05-06", "L05-07"}, {"evolve.py": [(EVOLVE_MAIN, '''    upload_new_day()
    follow_schema_changes()''')]}),
    "crawler over the readings folder only": ({"L05-05"}, {"catalog.py": [('RAW_PATH = "s3://dea-catalog-raw/raw/"', 'RAW_PATH = "s3://dea-catalog-raw/raw/readings/"')]}),
    "deletes follow the files (DELETE_FROM_DATABASE)": ({"L05-09"}, {"evolve.py": [(EVOLVE_POLICY, EVOLVE_POLICY.replace('"DeleteBehavior": "LOG"', '"DeleteBehavior": "DELETE_FROM_DATABASE"'))]}),
    "deletes deprecate tables (DEPRECATE_IN_DATABASE)": ({"L05-09"}, {"catalog.py": [('"DeleteBehavior": "LOG"', '"DeleteBehavior": "DEPRECATE_IN_DATABASE"')],
                                                                       "evolve.py": [(EVOLVE_POLICY, EVOLVE_POLICY.replace('"DeleteBehavior": "LOG"', '"DeleteBehavior": "DEPRECATE_IN_DATABASE"'))]}),
    "no schedule": ({"L05-08"}, {"catalog.py": [(SCHEDULE_LINE, "")]}),
    "02:00 in local time (CEST), not UTC": ({"L05-08"}, schedule("cron(0 0 * * ? *)")),
    "minutes and hours swapped": ({"L05-08"}, schedule("cron(2 0 * * ? *)")),
    "weekdays only": ({"L05-08"}, schedule("cron(0 2 ? * MON-FRI *)")),
    "Unix day-of-week 0-6 read as AWS 1-7 (skips Saturday)": ({"L05-08"}, schedule("cron(0 2 ? * 1-6 *)")),
}

VARIANTS = {
    "day-of-week wildcard instead of day-of-month": schedule("cron(0 2 ? * * *)"),
    "every weekday spelled by name, zero-padded time": schedule("cron(00 02 ? * SUN-SAT *)"),
    "every day as a step, AWS numeric weekdays": schedule("cron(0 2 */1 * ? *)"),
    "policy keys in the other order, database without description": {
        "evolve.py": [(EVOLVE_POLICY, '    glue.update_crawler(Name=CRAWLER, SchemaChangePolicy={"DeleteBehavior": "LOG", "UpdateBehavior": "UPDATE_IN_DATABASE"})')],
        "catalog.py": [('DatabaseInput={"Name": DATABASE, "Description": "Raw sensor telemetry, catalogued by crawler"}', 'DatabaseInput={"Name": DATABASE}')],
    },
}


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
    assert not [r for r in report.results if r.status not in ("PASS", "FAIL")], explain(report)


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_exactly_its_checks(aws_env, tmp_path, name):
    check_ids, edits = MUTANTS[name]
    prove_breakage(fresh_lab(5, aws_env), aws_env, tmp_path, check_ids, edits)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(5, aws_env), aws_env, tmp_path, VARIANTS[name])


def test_aws_cron_reads_day_of_week_from_sunday_and_the_sixth_field_as_the_year():
    start = datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc)  # a Friday
    assert [t.strftime("%a") for t in next_times("cron(0 2 ? * 1 *)", start, 2)] == ["Sun", "Sun"]
    assert [t.strftime("%a") for t in next_times("cron(0 2 ? * 2-6 *)", start, 2)] == ["Fri", "Mon"]
    assert next_times("cron(0 2 * * ? 2027)", start, 400)[-1].year == 2027
    assert len(next_times("cron(0 2 * * ? 2027)", start, 400)) == 365
