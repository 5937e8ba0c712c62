"""Lab 08 proves its grader: the solution gets full marks, the starter does not, each realistic mistake of a
learner (a mutant of the solution) fails exactly the checks it should, and other correct ways of writing the
solution (variants) still get full marks."""

import pytest

from tests.labkit import FAIL, assert_fails_only, edited_solution, explain, fresh_lab, grade_lab, prove_breakage, prove_variant, run_solution, solution_report, starter_report

LOADER, CHANGE_LOG = "loader.py", "change_log.py"
SESSION_EXPIRY = 'str(now + int(session["ttl_hours"] * 3600))'
CONDITION = '            ConditionExpression="attribute_not_exists(order_key) OR #version < :version",\n'

MUTANTS = {
    "unconditional put": ({"L08-04"}, {LOADER: [(CONDITION + '            ExpressionAttributeNames={"#version": "version"},\n'
                                                 '            ExpressionAttributeValues={":version": {"N": str(order["version"])}},\n', "")]}),
    "condition keeps the oldest version": ({"L08-04"}, {LOADER: [("OR #version < :version", "OR #version > :version")]}),
    "sort key without the date first": ({"L08-02"}, {LOADER: [("""{"S": f"{order['order_date']}#{order['order_id']}"}""",
                                                               """{"S": f"{order['order_id']}#{order['order_date']}"}""")]}),
    "index projects only keys": ({"L08-03"}, {LOADER: [('"Projection": {"ProjectionType": "ALL"}', '"Projection": {"ProjectionType": "KEYS_ONLY"}')]}),
    "index projects the order id only": ({"L08-03"}, {LOADER: [('"Projection": {"ProjectionType": "ALL"}',
                                                                 '"Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["order_id"]}')]}),
    "amount stored as a string": ({"L08-04"}, {LOADER: [('"amount": {"N": order["amount"]}', '"amount": {"S": order["amount"]}')]}),
    "index keyed on status alone": ({"L08-03"}, {LOADER: [('"KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}, {"AttributeName": "order_date", "KeyType": "RANGE"}],',
                                                           '"KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],'),
                                                          ('        {"AttributeName": "order_date", "AttributeType": "S"},\n', "")]}),
    # the case: expected survivors must come from the seed's ttl_hours, not the learner's own expires_at
    "TTL of ttl_hours seconds, not hours": ({"L08-05"}, {LOADER: [(SESSION_EXPIRY, 'str(now + int(session["ttl_hours"]))')]}),
    # a TTL attribute TTL cannot read means nothing ever expires: L08-05's blame, and the stream has no deletion
    "expires_at in milliseconds": ({"L08-05", "L08-06"}, {LOADER: [(SESSION_EXPIRY, 'str((now + int(session["ttl_hours"] * 3600)) * 1000)')]}),
    "expires_at stored as a string": ({"L08-05", "L08-06"}, {LOADER: [('"expires_at": {"N": ' + SESSION_EXPIRY, '"expires_at": {"S": ' + SESSION_EXPIRY)]}),
    "TTL on another attribute": ({"L08-05", "L08-06"}, {LOADER: [("""{"Enabled": True, "AttributeName": "expires_at"}""",
                                                                   """{"Enabled": True, "AttributeName": "ttl"}""")]}),
    "no stream on sessions": ({"L08-06"}, {LOADER: [('    StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},\n', "")]}),
    "change log keeps only inserts": ({"L08-07"}, {CHANGE_LOG: [('        for record in page["Records"]:\n',
                                                                 '        for record in [r for r in page["Records"] if r["eventName"] == "INSERT"]:\n')]}),
    "change log reads from LATEST": ({"L08-07"}, {CHANGE_LOG: [('ShardIteratorType="TRIM_HORIZON"', 'ShardIteratorType="LATEST"')]}),
}

# mistakes that show only when the learner runs their code again, as `make run-8` twice does
RERUN_MUTANTS = {
    "change log adds a new object each run": ({"L08-07"}, {CHANGE_LOG: [("import json\n", "import json\nimport uuid\n"),
                                                                       ('Key=f"{PREFIX}{shard[\'ShardId\']}.jsonl"', 'Key=f"{PREFIX}{shard[\'ShardId\']}-{uuid.uuid4()}.jsonl"')]}),
}

VARIANTS = {
    "expiry computed with datetime": {LOADER: [("now = int(time.time())\n", "import datetime\nnow = datetime.datetime.now(datetime.timezone.utc)\n"),
                                               (SESSION_EXPIRY, 'str(int((now + datetime.timedelta(hours=session["ttl_hours"])).timestamp()))')]},
    "sessions stream with new images": {LOADER: [('"StreamViewType": "KEYS_ONLY"', '"StreamViewType": "NEW_AND_OLD_IMAGES"')]},
    "orders stream with new images only": {LOADER: [('"StreamViewType": "NEW_AND_OLD_IMAGES"', '"StreamViewType": "NEW_IMAGE"')]},
    "condition on the partition key, version unaliased": {LOADER: [("attribute_not_exists(order_key) OR #version < :version",
                                                                    "attribute_not_exists(customer_id) OR version < :version"),
                                                                   ('            ExpressionAttributeNames={"#version": "version"},\n', "")]},
}


def test_solution_gets_full_marks_and_the_loader_is_idempotent(aws_env):
    lab = fresh_lab(8, aws_env)
    run_solution(lab, aws_env)
    report = solution_report(lab, aws_env)  # a second run changes nothing and lands no change twice
    assert report.full_marks, explain(report)
    regraded = grade_lab(lab, aws_env)  # grading moved the clock 3 days: the sessions left still judge fairly
    assert regraded.full_marks, explain(regraded)


def test_untouched_starter_scores_nothing_and_every_check_fails_naming_what_is_missing(aws_env):
    report = starter_report(fresh_lab(8, aws_env), aws_env)
    assert report.score == 0, explain(report)
    assert all(result.status == FAIL for result in report.results), explain(report)
    for check_id in ("L08-04", "L08-05"):
        message = next(r.message for r in report.results if r.id == check_id)
        assert "does not exist" in message and "dea-" in message, message


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_exactly_its_checks(aws_env, tmp_path, name):
    check_ids, edits = MUTANTS[name]
    prove_breakage(fresh_lab(8, aws_env), aws_env, tmp_path, check_ids, edits)


@pytest.mark.parametrize("name", RERUN_MUTANTS)
def test_each_rerun_mutant_fails_exactly_its_checks_on_the_second_run(aws_env, tmp_path, name):
    check_ids, edits = RERUN_MUTANTS[name]
    lab = fresh_lab(8, aws_env)
    folder = edited_solution(lab, tmp_path, edits)
    run_solution(lab, aws_env, folder)
    assert_fails_only(solution_report(lab, aws_env, folder), check_ids)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(8, aws_env), aws_env, tmp_path, VARIANTS[name])
