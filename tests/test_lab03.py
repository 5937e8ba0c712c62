"""Lab 03 proves its grader: the solution gets full marks under faults, the starter does not, and each small
breakage of the solution fails the matching check and only it."""

import json
import urllib.request

import pytest

from tests.conftest import admin_headers
from tests.labkit import explain, fresh_lab, grade_lab, prove_breakage, solution_report, starter_report

SCRIPT = "delivery.py"


def test_solution_gets_full_marks_under_faults(aws_env):
    lab = fresh_lab(3, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    with urllib.request.urlopen(urllib.request.Request(f"{aws_env.endpoint_url}/_dealab/faults", headers=admin_headers(aws_env))) as response:
        rules = {rule["target"]: rule for rule in json.loads(response.read())["rules"]}
    assert rules["firehose:PutRecordBatch"]["injected"] > 100  # the retries really ran
    assert grade_lab(lab, aws_env).full_marks  # grading again changes nothing


def test_untouched_starter_does_not_get_full_marks(aws_env):
    report = starter_report(fresh_lab(3, aws_env), aws_env)
    assert report.score == 0, explain(report)


BREAKAGES = {
    "no error output prefix": ({"L03-01"}, [
        ('"ErrorOutputPrefix": "errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/",',
         '"ErrorOutputPrefix": "failed/!{firehose:error-output-type}/",')]),
    "five-minute buffer": ({"L03-02"}, [('"IntervalInSeconds": 60', '"IntervalInSeconds": 300')]),
    "uncompressed": ({"L03-03"}, [('"CompressionFormat": "GZIP"', '"CompressionFormat": "UNCOMPRESSED"')]),
    "prefix without namespaces": ({"L03-04"}, [
        ('"Prefix": "events/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",', '"Prefix": "events/",')]),
    "failed records not resent": ({"L03-05"}, [
        ('        pending = [record for record, result in zip(pending, response["RequestResponses"]) if "ErrorCode" in result]\n',
         "        return\n")]),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_each_breakage_fails_its_check_and_only_it(aws_env, tmp_path, name):
    check_ids, edits = BREAKAGES[name]
    prove_breakage(fresh_lab(3, aws_env), aws_env, tmp_path, check_ids, {SCRIPT: edits})


def test_a_long_buffer_near_the_end_of_an_hour_only_fails_the_buffering_check(aws_env, tmp_path):
    """Records that arrive at hh:58 and wait a 300 s buffer are written in the next hour: their keys still
    belong to the hour they arrived in, so only L03-02 may fail (found failing in CI at 14:57)."""
    import datetime

    lab = fresh_lab(3, aws_env)
    now = datetime.datetime.fromisoformat(_admin(aws_env, "clock")["now"])
    near_the_hour = now.replace(minute=58, second=0, microsecond=0)
    if near_the_hour <= now:
        near_the_hour += datetime.timedelta(hours=1)
    _admin(aws_env, "clock", {"action": "set", "to": near_the_hour.isoformat()})
    check_ids, edits = BREAKAGES["five-minute buffer"]
    prove_breakage(lab, aws_env, tmp_path, check_ids, {SCRIPT: edits})


def _admin(settings, path: str, payload: dict | None = None) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/{path}", data=data, method="POST" if data else "GET",
                                     headers=admin_headers(settings))
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())
