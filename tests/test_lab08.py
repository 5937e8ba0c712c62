"""Lab 08 proves its grader: the solution gets full marks, the starter does not, and each small breakage
of the solution fails the matching check and only it."""

import pytest

from tests.labkit import broken_solution, explain, failing_ids, fresh_lab, grade_lab, run_solution, run_starter


def test_solution_gets_full_marks_and_the_loader_is_idempotent(aws_env):
    lab = fresh_lab(8, aws_env)
    run_solution(lab, aws_env)
    run_solution(lab, aws_env)  # a second run changes nothing and lands no change twice
    report = grade_lab(lab, aws_env)
    assert report.full_marks, explain(report)


def test_untouched_starter_does_not_get_full_marks(aws_env):
    lab = fresh_lab(8, aws_env)
    run_starter(lab, aws_env)
    report = grade_lab(lab, aws_env)
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
    lab = fresh_lab(8, aws_env)
    run_solution(lab, aws_env, broken_solution(lab, tmp_path, edits))
    report = grade_lab(lab, aws_env)
    assert failing_ids(report) == {check_id}, explain(report)
    failed = next(r for r in report.results if r.id == check_id)
    assert failed.message and "\n" not in failed.message
