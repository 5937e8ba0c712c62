"""Lab 03 proves its grader: the solution gets full marks under faults, the starter does not, each realistic
mistake (a mutant of the solution) fails the matching check and only it, and other correct spellings get full marks."""

import datetime
import json
import urllib.request

import pytest

from tests.conftest import admin_headers
from tests.labkit import explain, fresh_lab, grade_lab, prove_breakage, prove_variant, solution_report, starter_report

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


PREFIX = '"Prefix": "events/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",'
RESEND_FAILED = '        pending = [record for record, result in zip(pending, response["RequestResponses"]) if "ErrorCode" in result]\n'
GIVE_UP_QUIETLY = [("MAX_ATTEMPTS = 10", "MAX_ATTEMPTS = 3"),
                   ('raise RuntimeError(f"{len(pending)} records still failing after {MAX_ATTEMPTS} attempts")',
                    'print(f"{len(pending)} records still failing, moving on")')]

# Realistic mistakes, each with the check(s) it must fail and only those.
MUTANTS = {
    "error output outside errors/": ({"L03-01"}, {SCRIPT: [
        ('"ErrorOutputPrefix": "errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/",',
         '"ErrorOutputPrefix": "failed/!{firehose:error-output-type}/",')]}),
    "five-minute buffer": ({"L03-02"}, {SCRIPT: [('"IntervalInSeconds": 60', '"IntervalInSeconds": 300')]}),
    "five-megabyte buffer": ({"L03-02"}, {SCRIPT: [('"SizeInMBs": 1,', '"SizeInMBs": 5,')]}),
    "uncompressed": ({"L03-03"}, {SCRIPT: [('"CompressionFormat": "GZIP"', '"CompressionFormat": "UNCOMPRESSED"')]}),
    "prefix without namespaces": ({"L03-04"}, {SCRIPT: [(PREFIX, '"Prefix": "events/",')]}),
    "daily partitions, no hour folder": ({"L03-04"}, {SCRIPT: [(PREFIX, PREFIX.replace("hour=!{timestamp:HH}/", ""))]}),
    "prefix without its trailing slash": ({"L03-04"}, {SCRIPT: [(PREFIX, PREFIX.replace("!{timestamp:HH}/", "!{timestamp:HH}"))]}),
    # found case L03-04 (it crashed the grader): mm is the minute in Java date patterns; see also the tests at fixed minutes below
    "minutes in the month folder": ({"L03-04"}, {SCRIPT: [(PREFIX, PREFIX.replace("month=!{timestamp:MM}", "month=!{timestamp:mm}"))]}),
    # H writes hour=9 before 10:00 and what HH writes after: the grader's probe moment (07:52) shows it at any hour
    "unpadded hour folder": ({"L03-04"}, {SCRIPT: [(PREFIX, PREFIX.replace("hour=!{timestamp:HH}", "hour=!{timestamp:H}"))]}),
    "failed records not resent": ({"L03-05"}, {SCRIPT: [(RESEND_FAILED, "        return\n")]}),
    # these two never reach FailedPutCount 0 under faults: the sender gives up quietly after 3 tries instead of raising
    "whole batch resent after a partial failure": ({"L03-05"}, {SCRIPT: [(RESEND_FAILED, ""), *GIVE_UP_QUIETLY]}),
    "successful records resent instead of the failed ones": ({"L03-05"}, {SCRIPT: [
        (RESEND_FAILED, RESEND_FAILED.replace('if "ErrorCode" in result', 'if "ErrorCode" not in result')), *GIVE_UP_QUIETLY]}),
    "records without a newline": ({"L03-05"}, {SCRIPT: [('record = {"Data": (line + "\\n").encode()}', 'record = {"Data": line.encode()}')]}),
    "last partial batch never sent": ({"L03-05"}, {SCRIPT: [("    if batch:\n        yield batch\n", "")]}),
}

# Other correct ways to write the solution: each gets full marks.
VARIANTS = {
    "one timestamp expression with quoted literals": {SCRIPT: [
        (PREFIX, "\"Prefix\": \"events/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/\",")]},
    "shortest error output prefix and batches of 100": {SCRIPT: [
        ('"ErrorOutputPrefix": "errors/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/",',
         '"ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",'),
        ("MAX_BATCH_RECORDS = 500", "MAX_BATCH_RECORDS = 100")]},
    "failed entries found by index, fixed backoff": {SCRIPT: [
        (RESEND_FAILED, '        pending = [pending[i] for i, result in enumerate(response["RequestResponses"]) if result.get("ErrorCode")]\n'),
        ("time.sleep(random.uniform(0, min(2.0, 0.02 * 2**attempt)))", "time.sleep(0.05)")]},
}


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_its_check_and_only_it(aws_env, tmp_path, name):
    check_ids, edits = MUTANTS[name]
    prove_breakage(fresh_lab(3, aws_env), aws_env, tmp_path, check_ids, edits)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(3, aws_env), aws_env, tmp_path, VARIANTS[name])


def _clock_forward_to_minute(settings, minute: int) -> None:
    """Moves the lab clock forward (never back) to the next hh:<minute>:00."""
    now = datetime.datetime.fromisoformat(_admin(settings, "clock")["now"])
    target = now.replace(minute=minute, second=0, microsecond=0)
    if target <= now:
        target += datetime.timedelta(hours=1)
    _admin(settings, "clock", {"action": "set", "to": target.isoformat()})


def test_minutes_in_the_month_folder_fail_the_prefix_check_past_minute_12(aws_env, tmp_path):
    """month=!{timestamp:mm} at hh:37 writes month=37: once a ValueError that crashed the grader, now a FAIL."""
    lab = fresh_lab(3, aws_env)
    _clock_forward_to_minute(aws_env, 37)
    check_ids, edits = MUTANTS["minutes in the month folder"]
    prove_breakage(lab, aws_env, tmp_path, check_ids, edits)


def test_minutes_in_the_month_folder_fail_the_prefix_check_at_a_plausible_month(aws_env, tmp_path):
    """At hh:05 (hh:07 in May) month=05 is a real month, just not this one: the folders name the wrong hour."""
    lab = fresh_lab(3, aws_env)
    now = datetime.datetime.fromisoformat(_admin(aws_env, "clock")["now"])
    _clock_forward_to_minute(aws_env, 7 if now.month == 5 else 5)
    check_ids, edits = MUTANTS["minutes in the month folder"]
    prove_breakage(lab, aws_env, tmp_path, check_ids, edits)


def test_minutes_in_the_month_folder_fail_the_prefix_check_when_the_minute_is_the_month(aws_env, tmp_path):
    """At hh:12 in December month=!{timestamp:mm} writes month=12: every delivered object is in the right folder,
    and only the stream's answer for another moment shows the mistake (found passing in a CI rehearsal at 06:12)."""
    lab = fresh_lab(3, aws_env)
    now = datetime.datetime.fromisoformat(_admin(aws_env, "clock")["now"])
    _clock_forward_to_minute(aws_env, now.month)
    check_ids, edits = MUTANTS["minutes in the month folder"]
    prove_breakage(lab, aws_env, tmp_path, check_ids, edits)


def test_a_long_buffer_near_the_end_of_an_hour_only_fails_the_buffering_check(aws_env, tmp_path):
    """Records that arrive at hh:58 and wait a 300 s buffer are written in the next hour: their keys still
    belong to the hour they arrived in, so only L03-02 may fail (found failing in CI at 14:57)."""
    lab = fresh_lab(3, aws_env)
    _clock_forward_to_minute(aws_env, 58)
    check_ids, edits = MUTANTS["five-minute buffer"]
    prove_breakage(lab, aws_env, tmp_path, check_ids, edits)


def _admin(settings, path: str, payload: dict | None = None) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/{path}", data=data, method="POST" if data else "GET",
                                     headers=admin_headers(settings))
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())
