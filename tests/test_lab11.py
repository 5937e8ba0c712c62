"""Lab 11 proves its grader: the solution gets full marks, the starter does not, each realistic mistake of a learner
(a mutant of the solution) fails exactly the checks it should, and other correct ways (variants) get full marks.
One stack for the file; every case starts from an empty one, as labkit does."""

import pytest

from tests.labkit import FAIL, explain, fresh_lab, prove_breakage, prove_variant, solution_report, starter_report

MONITOR, INVESTIGATE, AUDIT = "monitor.py", "investigate.py", "audit.py"

SUBSCRIBE = 'sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)\n'
SELECTORS = """cloudtrail.put_event_selectors(TrailName=TRAIL, EventSelectors=[{
    "ReadWriteType": "All", "IncludeManagementEvents": True,
    "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{CURATED_BUCKET}/"]}]}])
"""
DELETES_ONLY = """WHERE eventsource = 's3.amazonaws.com'
  AND eventname IN ('DeleteObject', 'DeleteObjects')"""

MUTANTS = {
    # a count of datapoints per minute never reaches 300,000: the alarm never fires, so nothing pages
    "alarm on SampleCount": ({"L11-01", "L11-02"}, {MONITOR: [('Statistic="Maximum"', 'Statistic="SampleCount"')]}),
    "missing data treated as breaching": ({"L11-04"}, {MONITOR: [('TreatMissingData="notBreaching"', 'TreatMissingData="breaching"')]}),
    "alarm without actions": ({"L11-02"}, {MONITOR: [("AlarmActions=[topic_arn], OKActions=[topic_arn]", "OKActions=[topic_arn]")]}),
    "rule on the crawler's events": ({"L11-05"}, {MONITOR: [('"detail-type": ["Glue Job State Change"]', '"detail-type": ["Glue Crawler State Change"]')]}),
    "rule on every job state": ({"L11-06"}, {MONITOR: [(', "state": ["FAILED", "TIMEOUT"]', "")]}),
    "on-call queue not subscribed": ({"L11-02", "L11-05"}, {MONITOR: [(SUBSCRIBE, "")]}),
    "Insights query on the warnings": ({"L11-07"}, {INVESTIGATE: [('| filter level = "ERROR"', '| filter level = "WARN"')]}),
    # JSON pattern values are case-sensitive: the function logs "ERROR"
    "metric filter pattern that matches nothing": ({"L11-08"}, {MONITOR: [("""filterPattern='{ $.level = "ERROR" }'""", """filterPattern='{ $.level = "error" }'""")]}),
    # a term pattern also matches the runtime's own "[ERROR] ValueError ..." line of each failed invocation
    "metric filter on the term ERROR": ({"L11-08"}, {MONITOR: [("""filterPattern='{ $.level = "ERROR" }'""", """filterPattern='ERROR'""")]}),
    "trail without data events": ({"L11-09", "L11-11", "L11-12"}, {AUDIT: [(SELECTORS, "")]}),
    "trail without log file validation": ({"L11-10"}, {AUDIT: [("create_trail(Name=TRAIL, S3BucketName=AUDIT_BUCKET, EnableLogFileValidation=True",
                                                                 "create_trail(Name=TRAIL, S3BucketName=AUDIT_BUCKET, EnableLogFileValidation=False")]}),
    "Athena query on management events only": ({"L11-11", "L11-12"}, {AUDIT: [(DELETES_ONLY, "WHERE managementevent = true\n  AND eventname LIKE 'Delete%'")]}),
    "Athena query on every S3 call": ({"L11-11", "L11-12"}, {AUDIT: [(DELETES_ONLY, "WHERE eventsource = 's3.amazonaws.com'")]}),
    "Athena query without the time": ({"L11-12"}, {AUDIT: [("useridentity.arn AS principal, eventtime AS deleted_at,", "useridentity.arn AS principal,")]}),
}

PROJECTED_TABLE = (
    "LOCATION 's3://{AUDIT_BUCKET}/AWSLogs/{account}/CloudTrail/'\nTBLPROPERTIES ('classification'='cloudtrail')",
    "PARTITIONED BY (`timestamp` string)\n"
    "LOCATION 's3://{AUDIT_BUCKET}/AWSLogs/{account}/CloudTrail/{region}'\n"
    "TBLPROPERTIES ('projection.enabled'='true', 'projection.timestamp.format'='yyyy/MM/dd', 'projection.timestamp.interval'='1', "
    "'projection.timestamp.interval.unit'='DAYS', 'projection.timestamp.range'='2024/01/01,NOW', 'projection.timestamp.type'='date', "
    "'storage.location.template'='s3://{AUDIT_BUCKET}/AWSLogs/{account}/CloudTrail/{region}/${{timestamp}}')")

VARIANTS = {
    "missing data treated as missing": {MONITOR: [('TreatMissingData="notBreaching"', 'TreatMissingData="missing"')]},
    "two of three minutes behind": {MONITOR: [("Period=60, EvaluationPeriods=1,", "Period=60, EvaluationPeriods=3, DatapointsToAlarm=2,")]},
    "advanced event selectors on deletes only": {AUDIT: [(SELECTORS, """cloudtrail.put_event_selectors(TrailName=TRAIL, AdvancedEventSelectors=[
    {"Name": "management", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
    {"Name": "curated deletes", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                                   {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                                                   {"Field": "eventName", "Equals": ["DeleteObject", "DeleteObjects"]},
                                                   {"Field": "resources.ARN", "StartsWith": [f"arn:aws:s3:::{CURATED_BUCKET}/"]}]}])
""")]},
    "partition-projected cloudtrail_logs": {AUDIT: [PROJECTED_TABLE]},
    "Insights query with a regex parse, raw message delivery": {
        INVESTIGATE: [('fields @timestamp, event_id, sequence_number, error\n| filter level = "ERROR"\n| stats count(*) as failures, min(@timestamp) as first_seen by event_id, sequence_number, error',
                       'filter @message like /"level": "ERROR"/\n| parse @message /"event_id": "(?<bad_record>[^"]+)"/\n| dedup bad_record\n| display bad_record')],
        MONITOR: [(SUBSCRIBE, 'sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})\n')]},
}


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
