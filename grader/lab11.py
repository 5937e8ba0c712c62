"""Lab 11 checks: operating and auditing a running pipeline, judged by what happens when things go wrong.

The grader runs one scenario per grading (the first check runs it; the others read what it saw), on the lab clock:
1. healthy traffic through the stream, with one record the function cannot read (its ERROR lines feed the metric
   filter check);
2. the function throttled (its reserved concurrency set to 0) while events keep arriving: the mapping falls
   behind a minute per lab minute, then the throttle is lifted and traffic flows again;
3. an idle quarter of an hour;
4. a successful run of the curation job, then a run that fails on a corrupt raw object;
5. as the team's IAM users (access keys of their own): one reads curated objects, another deletes some; the clock
   moves on until the trail has delivered and digested.
The checks judge the alarm's states and the pages that reached the on-call queue in each phase, the learner's Logs
Insights query, the metric filter's datapoints, the trail's files and digests, and the saved Athena query's answer.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import time
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from dealab.datasets import ops_audit as lab
from grader.core import Fail, LabContext, check

ALARM, RULE, METRIC_FILTER = "dea-ops-ingest-iterator-age", "dea-ops-curate-failed", "dea-ops-ingest-errors"
TRAIL, NAMED_QUERY = "dea-ops-audit", "who-deleted-curated"
BEHIND = datetime.timedelta(minutes=5)
THROTTLED_MINUTES = 8      # the mapping ends about 8 minutes behind: past the 5 the alarm is about
# minutes of traffic after the throttle is lifted: an alarm on M of N minutes (N up to 3) is back to OK by then
RECOVERY_MINUTES = 4
IDLE = "15m"
DELIVERED_AFTER = "6m"     # CloudTrail delivers within 5 minutes of lab time
DIGESTED_AFTER = "61m"     # and writes the digest an hour after a delivery
SETTLE_SECONDS = 1.5       # a clock move's retry reaches the function and its metrics are flushed in this time
PROCESS_WAIT_SECONDS = 60
JOB_WAIT_SECONDS = 120
PAGE_WAIT_SECONDS = 20
DELETED_WITHIN = datetime.timedelta(minutes=1)
RESULTS = "s3://dea-ops-athena/grader/"
SCENARIO_TIMEOUT = 900
CW_DOCS = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring"
CT_DOCS = "https://docs.aws.amazon.com/awscloudtrail/latest/userguide"


@dataclass
class Scenario:
    started: datetime.datetime
    alarm: dict | None                                        # DescribeAlarms' entry, None when it does not exist
    throttled_from: datetime.datetime | None = None
    states_throttled: list[str] = field(default_factory=list)  # states the alarm went into while the function was throttled
    pages_throttled: list[str] = field(default_factory=list)
    state_recovered: str = ""
    states_idle: list[str] = field(default_factory=list)
    pages_idle: list[str] = field(default_factory=list)
    job_runs: dict[str, dict] = field(default_factory=dict)   # "success" / "failure" → the run
    pages_after_success: list[str] = field(default_factory=list)
    pages_after_failure: list[str] = field(default_factory=list)
    traffic_until: datetime.datetime | None = None
    deleted_keys: list[str] = field(default_factory=list)
    deleted_at: datetime.datetime | None = None
    audit_error: str = ""                                     # why the grader could not act as the team's users


def _lab_now(ctx: LabContext) -> datetime.datetime:
    return datetime.datetime.fromisoformat(ctx.admin("clock")["now"]).replace(tzinfo=None)


def _advance(ctx: LabContext, by: str) -> None:
    ctx.admin("clock", {"action": "advance", "by": by})
    time.sleep(SETTLE_SECONDS)


def _alarm(ctx: LabContext) -> dict | None:
    alarms = ctx.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    return alarms[0] if alarms else None


def _states_since(ctx: LabContext, since: datetime.datetime) -> list[str]:
    """The states the alarm went into from `since` (lab time) on, oldest first."""
    history = ctx.client("cloudwatch").describe_alarm_history(AlarmName=ALARM, HistoryItemType="StateUpdate",
                                                              StartDate=since, ScanBy="TimestampAscending")["AlarmHistoryItems"]
    return [json.loads(item["HistoryData"])["newState"]["stateValue"] for item in history]


def _page_text(body: str) -> str:
    """What was published: an SNS envelope's Message, or the raw body."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return body
    return str(envelope.get("Message", body)) if isinstance(envelope, dict) and envelope.get("Type") == "Notification" else body


def _drain(ctx: LabContext, wait_for=None) -> list[str]:
    """Every page now in the on-call queue (deleted as read); with `wait_for`, waits up to PAGE_WAIT_SECONDS for a
    page it accepts to arrive."""
    sqs = ctx.client("sqs")
    url = sqs.get_queue_url(QueueName=lab.ONCALL_QUEUE)["QueueUrl"]
    pages: list[str] = []
    deadline = time.monotonic() + (PAGE_WAIT_SECONDS if wait_for else 0)
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for message in messages:
            pages.append(_page_text(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if not messages:
            if not wait_for or any(wait_for(page) for page in pages) or time.monotonic() > deadline:
                return pages
            time.sleep(0.5)


def _alarm_pages(pages: list[str], state: str) -> list[str]:
    """Pages that are CloudWatch's notification of the alarm entering `state`."""
    found = []
    for page in pages:
        try:
            message = json.loads(page)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("AlarmName") == ALARM and message.get("NewStateValue") == state:
            found.append(page)
    return found


def _failures_discarded(ctx: LabContext) -> int:
    sqs = ctx.client("sqs")
    url = sqs.get_queue_url(QueueName=lab.FAILURES_QUEUE)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(value) for value in attributes["Attributes"].values())


def _send(ctx: LabContext, purpose: str, count: int, bad: int = 0) -> None:
    """Sends `count` events and waits until the function has stored the good ones and the mapping gave up the bad."""
    sent = lab.events(ctx.seed, purpose, count, bad=bad)
    stored, discarded = lab.processed(ctx), _failures_discarded(ctx)
    lab.put_events(ctx.client("kinesis"), sent["records"])
    deadline = time.monotonic() + PROCESS_WAIT_SECONDS
    while time.monotonic() < deadline:
        if lab.processed(ctx) >= stored + count - bad and _failures_discarded(ctx) >= discarded + bad:
            return
        time.sleep(0.3)


def _run_job(ctx: LabContext) -> dict:
    glue = ctx.client("glue")
    run_id = glue.start_job_run(JobName=lab.JOB)["JobRunId"]
    deadline = time.monotonic() + JOB_WAIT_SECONDS
    while (run := glue.get_job_run(JobName=lab.JOB, RunId=run_id)["JobRun"])["JobRunState"] in ("STARTING", "RUNNING", "STOPPING", "WAITING"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return run


def _user_client(ctx: LabContext, user: str, service: str, keys: dict):
    key = ctx.client("iam").create_access_key(UserName=user)["AccessKey"]
    keys[user] = key["AccessKeyId"]
    return boto3.client(service, endpoint_url=ctx.settings.endpoint_url, region_name=ctx.settings.region,
                        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                        config=Config(retries={"max_attempts": 2}))


def _act_as_team(ctx: LabContext, scenario: Scenario) -> None:
    """The reader reads two curated objects, the deleter deletes two others, each with an access key of their own."""
    team, keys = ctx.dataset, {}
    curated = team["curated_keys"]
    try:
        reader = _user_client(ctx, team["reader"], "s3", keys)
        for key in curated[:2]:
            reader.get_object(Bucket=lab.CURATED_BUCKET, Key=key)["Body"].read()
        deleter = _user_client(ctx, team["deleter"], "s3", keys)
        scenario.deleted_at = _lab_now(ctx)
        for key in curated[-2:]:
            deleter.delete_object(Bucket=lab.CURATED_BUCKET, Key=key)
        scenario.deleted_keys = curated[-2:]
    except ClientError as error:
        scenario.audit_error = f"the stack refused the team's own access keys ({error.response['Error'].get('Code')}), so nobody deleted curated data"
    finally:
        iam = ctx.client("iam")
        for user, key_id in keys.items():
            iam.delete_access_key(UserName=user, AccessKeyId=key_id)


def _run_scenario(ctx: LabContext) -> Scenario:
    scenario = Scenario(_lab_now(ctx), _alarm(ctx))
    ctx.admin("faults", {"action": "clear", "targets": []})
    _drain(ctx)
    awslambda = ctx.client("lambda")
    # 1. healthy traffic, one record the function fails on
    _send(ctx, "healthy", 12, bad=1)
    # 2. the function throttled: the mapping retries the same batch, each minute a minute further behind
    scenario.throttled_from = _lab_now(ctx)
    awslambda.put_function_concurrency(FunctionName=lab.FUNCTION, ReservedConcurrentExecutions=0)
    try:
        lab.put_events(ctx.client("kinesis"), lab.events(ctx.seed, "throttled", 4)["records"])
        for _ in range(THROTTLED_MINUTES):
            _advance(ctx, "1m")
    finally:
        awslambda.delete_function_concurrency(FunctionName=lab.FUNCTION)
    scenario.states_throttled = _states_since(ctx, scenario.throttled_from)
    scenario.pages_throttled = _drain(ctx)
    _advance(ctx, "1m")  # the mapping's next retry gets through, and the backlog after it
    for minute in range(RECOVERY_MINUTES):
        _send(ctx, f"recovered-{minute}", 3)
        _advance(ctx, "1m")
    scenario.state_recovered = (_alarm(ctx) or {}).get("StateValue", "")
    scenario.traffic_until = _lab_now(ctx)
    # 3. idle
    idle_from = _lab_now(ctx)
    _drain(ctx)
    _advance(ctx, IDLE)
    scenario.states_idle = _states_since(ctx, idle_from)
    scenario.pages_idle = _drain(ctx)
    # 4. the curation job: a good run, then one that fails on a corrupt raw object
    scenario.job_runs["success"] = _run_job(ctx)
    scenario.pages_after_success = _drain(ctx)
    s3 = ctx.client("s3")
    corrupt = f"{lab.RAW_PREFIX}corrupt-{int(time.time())}.jsonl"
    s3.put_object(Bucket=lab.RAW_BUCKET, Key=corrupt, Body=b'{"event_id": "evt-cut-off", "amount": 12.5, "curr')
    try:
        failed = scenario.job_runs["failure"] = _run_job(ctx)
    finally:
        s3.delete_object(Bucket=lab.RAW_BUCKET, Key=corrupt)
    scenario.pages_after_failure = _drain(ctx, wait_for=lambda page: failed["Id"] in page)
    # 5. the team's users touch curated data; the trail delivers, then digests
    _act_as_team(ctx, scenario)
    _advance(ctx, DELIVERED_AFTER)
    _advance(ctx, DIGESTED_AFTER)
    return scenario


def _scenario(ctx: LabContext) -> Scenario:
    if "scenario" not in ctx.__dict__:
        ctx.__dict__["scenario"] = _run_scenario(ctx)
    return ctx.__dict__["scenario"]


def _with_alarm(ctx: LabContext) -> Scenario:
    scenario = _scenario(ctx)
    if scenario.alarm is None:
        raise Fail(f"alarm {ALARM} does not exist")
    return scenario


ALARM_HINTS = ("A Lambda function reading a stream through an event source mapping falls behind when it cannot keep up or is throttled; "
               "the mapping's IteratorAge metric (AWS/Lambda, by FunctionName) is how far behind it is, in milliseconds.",
               "CloudWatch PutMetricAlarm on AWS/Lambda IteratorAge with the Maximum statistic over 1-minute periods, a threshold in "
               "milliseconds, and the topic in AlarmActions.",
               "cloudwatch.put_metric_alarm(AlarmName='dea-ops-ingest-iterator-age', Namespace='AWS/Lambda', MetricName='IteratorAge', "
               "Dimensions=[{'Name': 'FunctionName', 'Value': 'dea-ops-ingest'}], Statistic='Maximum', Period=60, EvaluationPeriods=1, "
               "Threshold=300000, ComparisonOperator='GreaterThanThreshold', TreatMissingData='notBreaching', AlarmActions=[topic_arn])")


@check("L11-01", "The iterator-age alarm fires when the mapping falls more than 5 minutes behind", points=2, task="3.3",
       timeout=SCENARIO_TIMEOUT, hints=ALARM_HINTS, docs=f"{CW_DOCS}/AlarmThatSendsEmail.html")
def alarm_fires(ctx: LabContext) -> str:
    scenario = _with_alarm(ctx)
    if "ALARM" not in scenario.states_throttled:
        described = scenario.alarm
        seen = ", ".join(scenario.states_throttled) or "no state change"
        raise Fail(f"alarm {ALARM} ({described.get('Namespace')} {described.get('MetricName')}, {described.get('Statistic') or described.get('ExtendedStatistic')}"
                   f" over {described.get('Period')} s, threshold {described.get('Threshold')}) saw {seen} while {lab.FUNCTION} was throttled for "
                   f"{THROTTLED_MINUTES} minutes and its mapping fell {THROTTLED_MINUTES} minutes behind")
    return f"alarm {ALARM} went to ALARM while the mapping fell behind"


@check("L11-02", "The alarm pages on-call through the topic", points=2, task="3.3", timeout=SCENARIO_TIMEOUT,
       hints=("An alarm pages nobody by itself: its AlarmActions name an SNS topic, and the topic must have a subscriber (here the queue "
              "dea-ops-oncall, standing for the pager).",
              "SNS CreateTopic + Subscribe (protocol sqs, the queue's ARN; the queue's policy lets the topic send), and the topic's ARN in the "
              "alarm's AlarmActions.",
              "sns.subscribe(TopicArn=topic_arn, Protocol='sqs', Endpoint=queue_arn); cloudwatch.put_metric_alarm(..., AlarmActions=[topic_arn])"),
       docs="https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html")
def alarm_pages(ctx: LabContext) -> str:
    scenario = _with_alarm(ctx)
    if "ALARM" not in scenario.states_throttled:
        raise Fail(f"alarm {ALARM} never went to ALARM while the mapping fell behind, so nothing could page")
    if not _alarm_pages(scenario.pages_throttled, "ALARM"):
        raise Fail(f"alarm {ALARM} went to ALARM but queue {lab.ONCALL_QUEUE} got no ALARM notification of it "
                   f"({len(scenario.pages_throttled)} other message(s)); actions: {scenario.alarm.get('AlarmActions') or 'none'}")
    return f"queue {lab.ONCALL_QUEUE} was paged when alarm {ALARM} fired"


@check("L11-03", "The alarm is back to OK once the mapping has caught up", points=1, task="3.3", timeout=SCENARIO_TIMEOUT,
       hints=ALARM_HINTS[:1] + ("An alarm goes back to OK when its most recent evaluated periods are within the threshold again; a period, "
                                "statistic or number of evaluation periods much larger than the problem keeps it in ALARM long after.",
                                ALARM_HINTS[2]), docs=f"{CW_DOCS}/AlarmThatSendsEmail.html#alarm-evaluation")
def alarm_recovers(ctx: LabContext) -> str:
    scenario = _with_alarm(ctx)
    if scenario.state_recovered != "OK":
        raise Fail(f"alarm {ALARM} is {scenario.state_recovered or 'gone'} {RECOVERY_MINUTES} minutes after the throttle was lifted, "
                   "while events flow and the mapping is seconds behind, expected OK")
    return f"alarm {ALARM} was OK again once the mapping caught up"


@check("L11-04", "The alarm stays quiet while the stream is idle", points=2, task="3.3", timeout=SCENARIO_TIMEOUT,
       hints=("An idle stream sends the function nothing, so the mapping publishes no IteratorAge at all: missing data there means "
              "'nothing to be behind on', not trouble.",
              "PutMetricAlarm's TreatMissingData says what a period without datapoints counts as: breaching, notBreaching, ignore or missing.",
              "cloudwatch.put_metric_alarm(..., TreatMissingData='notBreaching')"),
       docs=f"{CW_DOCS}/AlarmThatSendsEmail.html#alarms-and-missing-data")
def alarm_quiet_when_idle(ctx: LabContext) -> str:
    scenario = _with_alarm(ctx)
    pages = _alarm_pages(scenario.pages_idle, "ALARM")
    if "ALARM" in scenario.states_idle or pages:
        raise Fail(f"alarm {ALARM} went to ALARM (and paged {len(pages)} time(s)) during {IDLE} in which stream {lab.STREAM} received "
                   f"nothing (TreatMissingData {scenario.alarm.get('TreatMissingData', 'missing')})")
    return f"alarm {ALARM} stayed quiet through {IDLE} of an idle stream"


RULE_HINTS = ("Glue sends a 'Glue Job State Change' event to EventBridge's default bus whenever a job run ends; a rule with an event "
              "pattern picks the failed ones and targets the topic.",
              "EventBridge PutRule with EventPattern on source aws.glue, detail-type 'Glue Job State Change', detail.jobName and "
              "detail.state; PutTargets with the topic's ARN (the topic's policy lets events.amazonaws.com publish).",
              "events.put_rule(Name='dea-ops-curate-failed', EventPattern=json.dumps({'source': ['aws.glue'], 'detail-type': "
              "['Glue Job State Change'], 'detail': {'jobName': ['dea-ops-curate'], 'state': ['FAILED']}})); "
              "events.put_targets(Rule='dea-ops-curate-failed', Targets=[{'Id': 'pages', 'Arn': topic_arn}])")


def _job_run(scenario: Scenario, outcome: str, state: str) -> dict:
    run = scenario.job_runs.get(outcome) or {}
    if run.get("JobRunState") != state:
        raise Fail(f"the grader's {outcome} run of job {lab.JOB} ended {run.get('JobRunState', 'unstarted')}, not {state}: "
                   f"{run.get('ErrorMessage', '')} (is the seeded job intact? `dealab lab reset 11` restores it)")
    return run


@check("L11-05", "A failed run of the curation job pages on-call", points=2, task="3.3", timeout=SCENARIO_TIMEOUT, hints=RULE_HINTS,
       docs="https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html")
def job_failure_pages(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    run = _job_run(scenario, "failure", "FAILED")
    if not any(run["Id"] in page for page in scenario.pages_after_failure):
        raise Fail(f"run {run['Id']} of job {lab.JOB} FAILED and queue {lab.ONCALL_QUEUE} got no page naming it "
                   f"({len(scenario.pages_after_failure)} other message(s))")
    return f"queue {lab.ONCALL_QUEUE} was paged with the failed run {run['Id']} of {lab.JOB}"


@check("L11-06", "A successful run pages nobody", points=1, task="3.3", timeout=SCENARIO_TIMEOUT, hints=RULE_HINTS,
       docs="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html")
def job_success_quiet(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    run = _job_run(scenario, "success", "SUCCEEDED")
    try:
        ctx.client("events").describe_rule(Name=RULE)
    except ClientError:  # without the rule nothing pages at all, which says nothing of how it tells runs apart
        raise Fail(f"rule {RULE} does not exist") from None
    if any(run["Id"] in page for page in scenario.pages_after_success):
        raise Fail(f"queue {lab.ONCALL_QUEUE} was paged about run {run['Id']} of job {lab.JOB}, which SUCCEEDED")
    return f"the successful run {run['Id']} of {lab.JOB} paged nobody"


@check("L11-07", "The Logs Insights query finds the record the function fails on", points=2, task="3.3", timeout=SCENARIO_TIMEOUT,
       hints=("The function logs JSON lines with a level; Logs Insights discovers their fields, so a query can filter on them and show "
              "the record each ERROR line names.",
              "CloudWatch Logs StartQuery on the log group /aws/lambda/dea-ops-ingest (a time range covering the seeded run), then "
              "GetQueryResults until Complete; `filter` and `fields`/`stats` in the query.",
              "logs.start_query(logGroupName='/aws/lambda/dea-ops-ingest', startTime=..., endTime=..., queryString='fields @timestamp, "
              "event_id, error | filter level = \"ERROR\"')"),
       docs="https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AnalyzingLogData.html")
def insights_finds_bad_record(ctx: LabContext) -> str:
    logs = ctx.client("logs")
    queries = [query for query in logs.describe_queries(logGroupName=lab.LOG_GROUP)["queries"] if query["status"] == "Complete"]
    if not queries:
        raise Fail(f"no Logs Insights query over log group {lab.LOG_GROUP} has completed")
    latest = max(queries, key=lambda query: query["createTime"])
    rows = logs.get_query_results(queryId=latest["queryId"])["results"]
    named = {cell["value"] for row in rows for cell in row} & set(ctx.dataset["event_ids"])
    bad = ctx.dataset["bad_event_id"]
    if bad not in named:
        raise Fail(f"the latest query over {lab.LOG_GROUP} ({len(rows)} row(s)) does not name the record the function fails on"
                   + (f"; it names {', '.join(sorted(named)[:3])}" if named else ""))
    if named != {bad}:
        raise Fail(f"the latest query over {lab.LOG_GROUP} names {len(named)} records; only one makes the function fail")
    return f"the latest query over {lab.LOG_GROUP} names {bad}, the record the function fails on"


@check("L11-08", "The metric filter counts the function's ERROR lines", points=2, task="3.3", timeout=SCENARIO_TIMEOUT,
       hints=("A metric filter turns log events that match a pattern into datapoints of a custom metric, from the moment it exists: an "
              "alarm or a dashboard can then count errors the function only logged.",
              "CloudWatch Logs PutMetricFilter on /aws/lambda/dea-ops-ingest: a JSON filter pattern on the level field, and a "
              "metricTransformation (namespace DEA/Ops, name IngestErrors, value 1).",
              "logs.put_metric_filter(logGroupName='/aws/lambda/dea-ops-ingest', filterName='dea-ops-ingest-errors', "
              "filterPattern='{ $.level = \"ERROR\" }', metricTransformations=[{'metricNamespace': 'DEA/Ops', 'metricName': "
              "'IngestErrors', 'metricValue': '1'}])"),
       docs="https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html")
def metric_filter_counts_errors(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    logs = ctx.client("logs")
    filters = logs.describe_metric_filters(logGroupName=lab.LOG_GROUP, filterNamePrefix=METRIC_FILTER)["metricFilters"]
    found = next((item for item in filters if item["filterName"] == METRIC_FILTER), None)
    if found is None:
        raise Fail(f"log group {lab.LOG_GROUP} has no metric filter {METRIC_FILTER}")
    transformation = found["metricTransformations"][0]
    start, end = int(scenario.started.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000), int(
        scenario.traffic_until.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    error_lines = 0
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=lab.LOG_GROUP, startTime=start, endTime=end):
        for event in page["events"]:
            try:
                error_lines += json.loads(event["message"]).get("level") == "ERROR"
            except (ValueError, AttributeError):
                continue
    datapoints = ctx.client("cloudwatch").get_metric_statistics(
        Namespace=transformation["metricNamespace"], MetricName=transformation["metricName"], Statistics=["Sum"], Period=60,
        StartTime=scenario.started - datetime.timedelta(minutes=1), EndTime=scenario.traffic_until + datetime.timedelta(minutes=1))["Datapoints"]
    counted = sum(point["Sum"] for point in datapoints)
    if error_lines == 0:
        raise Fail(f"function {lab.FUNCTION} logged no ERROR line while the grader's bad record ran, so the filter could not be judged")
    if counted != error_lines:
        raise Fail(f"metric {transformation['metricNamespace']}/{transformation['metricName']} of filter {METRIC_FILTER} "
                   f"(pattern {found['filterPattern']!r}) counted {counted:g} while {lab.FUNCTION} logged {error_lines} ERROR line(s)")
    return f"filter {METRIC_FILTER} counted the {error_lines} ERROR line(s) the function logged"


def _trail(ctx: LabContext) -> dict:
    trails = ctx.client("cloudtrail").describe_trails(trailNameList=[TRAIL])["trailList"]
    if not trails:
        raise Fail(f"trail {TRAIL} does not exist")
    return trails[0]


def _trail_objects(ctx: LabContext, trail: dict, kind: str) -> dict[str, bytes]:
    """key → uncompressed content of the trail's files of `kind` (CloudTrail or CloudTrail-Digest)."""
    s3 = ctx.client("s3")
    account = ctx.client("sts").get_caller_identity()["Account"]
    prefix = f"{trail['S3KeyPrefix'] + '/' if trail.get('S3KeyPrefix') else ''}AWSLogs/{account}/{kind}/"
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=trail["S3BucketName"], Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = gzip.decompress(s3.get_object(Bucket=trail["S3BucketName"], Key=item["Key"])["Body"].read())
    return found


def _deletion_files(ctx: LabContext, scenario: Scenario, trail: dict) -> dict[str, bytes]:
    """The trail's log files holding the grader's deletions of curated objects."""
    if scenario.audit_error:
        raise Fail(scenario.audit_error)
    deleter = ctx.dataset["deleter"]
    holding = {}
    for key, content in _trail_objects(ctx, trail, "CloudTrail").items():
        for record in json.loads(content).get("Records", []):
            if (record.get("eventName") == "DeleteObject" and (record.get("userIdentity") or {}).get("userName") == deleter
                    and (record.get("requestParameters") or {}).get("key") in scenario.deleted_keys):
                holding[key] = content
    return holding


@check("L11-09", "The trail delivers the deletions of curated objects to the audit bucket", points=2, task="4.4", timeout=SCENARIO_TIMEOUT,
       hints=("CloudTrail records management events by default; reads and writes of S3 objects are data events, recorded only for the "
              "buckets a trail's event selectors name, and delivered to the trail's bucket every few minutes.",
              "CloudTrail CreateTrail (the audit bucket's policy lets cloudtrail.amazonaws.com write), PutEventSelectors with an "
              "AWS::S3::Object data resource for the curated bucket, StartLogging.",
              "cloudtrail.put_event_selectors(TrailName='dea-ops-audit', EventSelectors=[{'ReadWriteType': 'All', 'IncludeManagementEvents': "
              "True, 'DataResources': [{'Type': 'AWS::S3::Object', 'Values': ['arn:aws:s3:::dea-ops-curated/']}]}])"),
       docs=f"{CT_DOCS}/logging-data-events-with-cloudtrail.html")
def trail_records_deletions(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    trail = _trail(ctx)
    holding = _deletion_files(ctx, scenario, trail)
    if not holding:
        selectors = ctx.client("cloudtrail").get_event_selectors(TrailName=TRAIL)
        kind = "advanced" if selectors.get("AdvancedEventSelectors") else "basic"
        delivered = len(_trail_objects(ctx, trail, "CloudTrail"))
        raise Fail(f"trail {TRAIL} delivered {delivered} log file(s) to bucket {trail['S3BucketName']} and none records "
                   f"{ctx.dataset['deleter']}'s DeleteObject of {', '.join(scenario.deleted_keys)} ({kind} event selectors)")
    return f"trail {TRAIL} delivered {ctx.dataset['deleter']}'s deletions to {trail['S3BucketName']} ({next(iter(holding))})"


@check("L11-10", "The trail's log files can be validated with its digests", points=1, task="4.4", timeout=SCENARIO_TIMEOUT,
       hints=("With log file integrity validation, CloudTrail delivers an hourly digest file listing the SHA-256 hash of each log file it "
              "delivered, so a log file changed or removed afterwards can be detected.",
              "CreateTrail / UpdateTrail EnableLogFileValidation=True; digests appear under AWSLogs/<account>/CloudTrail-Digest/.",
              "cloudtrail.update_trail(Name='dea-ops-audit', EnableLogFileValidation=True)"),
       docs=f"{CT_DOCS}/cloudtrail-log-file-validation-intro.html")
def trail_digests(ctx: LabContext) -> str:
    trail = _trail(ctx)
    logs = _trail_objects(ctx, trail, "CloudTrail")
    if not logs:
        raise Fail(f"trail {TRAIL} has delivered no log file to bucket {trail['S3BucketName']}")
    digested = {}
    for content in _trail_objects(ctx, trail, "CloudTrail-Digest").values():
        for entry in json.loads(content).get("logFiles", []):
            digested[entry["s3Object"]] = entry["hashValue"]
    covered = [key for key, content in logs.items() if digested.get(key) == hashlib.sha256(content).hexdigest()]
    if not covered:
        raise Fail(f"none of the {len(logs)} log file(s) trail {TRAIL} delivered is listed with its hash in a digest file "
                   f"(log file validation {'on' if trail.get('LogFileValidationEnabled') else 'off'})")
    return f"{len(covered)} of trail {TRAIL}'s {len(logs)} log file(s) are listed with matching hashes in its digests"


def _audit_rows(ctx: LabContext) -> list[list[str]]:
    """The rows the saved query answers now (its header left out)."""
    scenario = _scenario(ctx)
    if scenario.audit_error:
        raise Fail(scenario.audit_error)
    if "audit_rows" in ctx.__dict__:
        return ctx.__dict__["audit_rows"]
    athena = ctx.client("athena")
    named = [query for page in athena.get_paginator("list_named_queries").paginate() if page["NamedQueryIds"]
             for query in athena.batch_get_named_query(NamedQueryIds=page["NamedQueryIds"])["NamedQueries"] if query["Name"] == NAMED_QUERY]
    if not named:
        raise Fail(f"there is no saved (named) Athena query {NAMED_QUERY}")
    query = named[-1]
    query_id = athena.start_query_execution(QueryString=query["QueryString"], QueryExecutionContext={"Database": query["Database"]},
                                            ResultConfiguration={"OutputLocation": RESULTS})["QueryExecutionId"]
    while (status := athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"])["State"] in ("QUEUED", "RUNNING"):
        time.sleep(0.2)
    if status["State"] != "SUCCEEDED":
        raise Fail(f"saved query {NAMED_QUERY} {status['State']}: {status.get('StateChangeReason', '')}")
    rows = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        rows += [[cell.get("VarCharValue") or "" for cell in row["Data"]] for row in page["ResultSet"]["Rows"]]
    ctx.__dict__["audit_rows"] = rows[1:]
    return rows[1:]


def _names(cell: str, user: str) -> bool:
    return cell == user or cell.endswith(f":user/{user}")


def _deleter_rows(ctx: LabContext) -> list[list[str]]:
    deleter, reader = ctx.dataset["deleter"], ctx.dataset["reader"]
    rows = _audit_rows(ctx)
    if any(_names(cell, reader) for row in rows for cell in row):
        raise Fail(f"saved query {NAMED_QUERY} names {reader}, who only read curated objects")
    found = [row for row in rows if any(_names(cell, deleter) for cell in row)]
    if not found:
        raise Fail(f"saved query {NAMED_QUERY} answers {len(rows)} row(s), none naming the IAM user who deleted curated objects")
    return found


AUDIT_HINTS = ("CloudTrail log files are JSON; Athena reads them through the table AWS documents (CloudTrailInputFormat), where a "
               "data event's requestparameters hold the bucket and key and useridentity says who called.",
               "Athena CREATE EXTERNAL TABLE cloudtrail_logs (the user guide's definition) over s3://<audit bucket>/AWSLogs/<account>/CloudTrail/, "
               "then CreateNamedQuery with a SELECT filtering eventname and the bucket.",
               "SELECT useridentity.username, eventtime FROM cloudtrail_logs WHERE eventname = 'DeleteObject' AND "
               "json_extract_scalar(requestparameters, '$.bucketName') = 'dea-ops-curated'")


@check("L11-11", "The saved Athena query answers who deleted curated data", points=2, task="4.4", timeout=SCENARIO_TIMEOUT, hints=AUDIT_HINTS,
       docs="https://docs.aws.amazon.com/athena/latest/ug/cloudtrail-logs.html")
def audit_answers_who(ctx: LabContext) -> str:
    _deleter_rows(ctx)
    return f"saved query {NAMED_QUERY} names {ctx.dataset['deleter']}, who deleted curated objects"


def _moment(cell: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(cell.replace("Z", "+00:00").replace(" UTC", "")).replace(tzinfo=None)
    except ValueError:
        return None


@check("L11-12", "The saved Athena query answers when curated data was deleted", points=1, task="4.4", timeout=SCENARIO_TIMEOUT,
       hints=AUDIT_HINTS[:2] + (AUDIT_HINTS[2] + " (eventtime is when, in UTC)",), docs="https://docs.aws.amazon.com/athena/latest/ug/cloudtrail-logs.html")
def audit_answers_when(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    rows = _deleter_rows(ctx)
    moments = [moment for row in rows for cell in row if (moment := _moment(cell))]
    if not any(abs(moment - scenario.deleted_at) <= DELETED_WITHIN for moment in moments):
        raise Fail(f"saved query {NAMED_QUERY}'s rows naming {ctx.dataset['deleter']} give "
                   f"{', '.join(sorted({m.isoformat() for m in moments})[:3]) or 'no time'}; the deletion was at {scenario.deleted_at:%Y-%m-%dT%H:%M}Z")
    return f"saved query {NAMED_QUERY} dates the deletion at {scenario.deleted_at:%Y-%m-%dT%H:%M}Z"
