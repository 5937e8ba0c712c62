"""Lab 08 proves its grader: the solution gets full marks, the starter does not, and each small breakage
of the solution fails the matching check and only it."""

import pytest

from tests.labkit import explain, fresh_lab, prove_breakage, run_solution, solution_report, starter_report


def test_solution_gets_full_marks_and_the_loader_is_idempotent(aws_env):
    lab = fresh_lab(8, aws_env)
    run_solution(lab, aws_env)
    report = solution_report(lab, aws_env)  # a second run changes nothing and lands no change twice
    assert report.full_marks, explain(report)


def test_untouched_starter_does_not_get_full_marks(aws_env):
    report = starter_report(fresh_lab(8, aws_env), aws_env)
    assert report.score == 0, explain(report)


BREAKAGES = {
    "unconditional put": ("L08-04", {"loader.py": [('            ConditionExpression="attribute_not_exists(order_key) OR #version < :version",\n'
                                                    '            ExpressionAttributeNames={"#version": "version"},\n'
                                                    '            ExpressionAttributeValues={":version": {"N": str(order["version"])}},\n', "")]}),
    "index projects only keys": ("L08-03", {"loader.py": [('"Projection": {"ProjectionType": "ALL"}', '"Projection": {"ProjectionType": "KEYS_ONLY"}')]}),
    "no stream on sessions": ("L08-06", {"loader.py": [('    StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},\n', "")]}),
    "change log keeps only inserts": ("L08-07", {"change_log.py": [('        for record in page["Records"]:\n',
                                                                   '        for record in [r for r in page["Records"] if r["eventName"] == "INSERT"]:\n')]}),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_each_breakage_fails_its_check_and_only_it(aws_env, tmp_path, name):
    check_id, edits = BREAKAGES[name]
    prove_breakage(fresh_lab(8, aws_env), aws_env, tmp_path, {check_id}, edits)
