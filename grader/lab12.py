"""Lab 12 checks: the quality gate as it behaves. The grader lands three batches of its own in the landing zone,
one after the other, and runs the learner's job on each: a clean batch (gate at score 1.0: it must pass), a
batch with one planted defect of each kind (gate at 0: it must pass, every defect row must be quarantined by
the rule meant for it and every clean row curated once), and a batch with a single defect (gate at 1.0: the
run must fail and curate nothing). It evaluates the registered ruleset on the clean and the defective batch
with evaluation runs of its own, watches the alarm after the clean and the defective batch, and reads what
reached the topic through a queue of its own subscribed to it. Afterwards the landing zone holds the
learner's first batch again.

The scenario runs once per grading (the first check that needs it runs it; the others read what it saw). A
defect row that is neither caught nor quarantined is blamed on that defect's check alone; the curated check
judges the clean rows and the rows the job itself quarantined.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from dealab.datasets import dq_orders as data
from grader.core import Fail, LabContext, check

RULESET = "orders-gate"
JOB = "orders-dq-gate"
EVALUATION_CONTEXT = "orders_gate"
CURATED_BUCKET = "dea-dq-curated"
CURATED_PREFIX = "curated/orders/"
QUARANTINE_PREFIX = "quarantine/orders/"
TOPIC = "dea-dq-alerts"
ALARM = "orders-dq-rules-failed"
INBOX = "dealab-grader-dq-inbox"   # the grader's own queue, subscribed to the learner's topic
DQ_EVENT = "Data Quality Evaluation Results Available"
REFERENCE_ALIAS = "customers"
EVALUATION_ROLE = "dealab-grader-dq"   # the grader's own role for its evaluation runs
ACTIVE_RUN_STATES = ("STARTING", "RUNNING", "STOPPING", "WAITING")
RUN_WAIT_SECONDS = 240
CLEAN_ROWS = 30
MAX_WINDOW = datetime.timedelta(days=1)
SCENARIO_TIMEOUT = 900
DOCS = "https://docs.aws.amazon.com/glue/latest/dg"

# each batch: the defects planted, the gate's minimum score for its run
BATCHES = {
    "clean": ((), "1.0"),
    "defects": (tuple(data.DEFECTS), "0"),
    "gate": (("unknown_status",), "1.0"),
}
# defect kind → (the rule types meant to catch it, the column they name)
MEANT_RULES = {
    "missing_amount": (("IsComplete", "Completeness"), "amount"),
    "amount_out_of_range": (("ColumnValues",), "amount"),
    "unknown_status": (("ColumnValues",), "status"),
    "duplicate_order_id": (("IsUnique", "Uniqueness", "IsPrimaryKey"), "order_id"),
    "stale_order": (("DataFreshness", "ColumnValues"), "order_ts"),
    "unknown_customer": (("ReferentialIntegrity",), "customer_id"),
}
_scenario_lock = threading.Lock()

# The notices travel job → EventBridge → SNS → the grader's queue, on a machine that may be busy (or through
# another backend's SNS): the wait ends as soon as both have arrived.
NOTICE_WAIT_SECONDS = 20

@dataclass
class Scenario:
    batches: dict[str, dict] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)            # batch → the job run, or {} when none started
    run_errors: dict[str, str] = field(default_factory=dict)       # batch → why no run could be started
    evaluations: dict[str, dict | str] = field(default_factory=dict)  # batch → {rule: PASS/FAIL/ERROR} or why not
    alarm_states: dict[str, str] = field(default_factory=dict)     # batch → the alarm's state after its run
    curated: Counter | str = field(default_factory=Counter)         # order id → times curated, or why unreadable
    quarantined: dict[str, list[dict]] | str = field(default_factory=dict)
    messages: list[dict] = field(default_factory=list)              # what reached the topic, parsed


def _lab_now(ctx: LabContext) -> datetime.datetime:
    return datetime.datetime.fromisoformat(ctx.admin("clock")["now"]).replace(tzinfo=None)


def _alarm(ctx: LabContext) -> dict | None:
    alarms = ctx.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    return alarms[0] if alarms else None


def _topic_arn(ctx: LabContext) -> str | None:
    """The topic's ARN as the backend lists it (its account is the backend's, whatever STS says)."""
    pages = ctx.client("sns").get_paginator("list_topics").paginate()
    return next((topic["TopicArn"] for page in pages for topic in page["Topics"] if topic["TopicArn"].rsplit(":", 1)[-1] == TOPIC), None)


def _inbox(ctx: LabContext) -> str:
    """The grader's queue, subscribed to the topic (once), emptied of what earlier gradings left."""
    sqs = ctx.client("sqs")
    url = sqs.create_queue(QueueName=INBOX)["QueueUrl"]
    topic = _topic_arn(ctx)
    if topic:
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        subscribed = any(s["Endpoint"] == queue_arn for s in ctx.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"])
        if not subscribed:
            ctx.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    _drain(ctx, url)
    return url


def _drain(ctx: LabContext, url: str) -> list[dict]:
    """Every message now in the queue (deleted as read): the published text, parsed as JSON where it is JSON."""
    sqs = ctx.client("sqs")
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        for message in messages:
            try:
                body = json.loads(message["Body"])
                text = body.get("Message", message["Body"]) if isinstance(body, dict) else message["Body"]
                found.append(json.loads(text) if isinstance(text, str) else text)
            except ValueError:
                found.append({"text": message["Body"]})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [item for item in found if isinstance(item, dict)]


def _land(ctx: LabContext, body: bytes, name: str) -> None:
    """The landing zone holds this batch alone, as after an ingestion that moved the previous one on."""
    s3 = ctx.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=data.RAW_BUCKET, Prefix=data.LANDING_PREFIX):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=data.RAW_BUCKET, Key=item["Key"])
    s3.put_object(Bucket=data.RAW_BUCKET, Key=data.LANDING_PREFIX + name, Body=body)


def _evaluation_role(ctx: LabContext) -> str:
    """The grader's role for evaluation runs, as a learner would make one: Glue may assume it, and it may read the
    landing tables, their data and the ruleset, and publish the result. Its ARN."""
    iam, glue_arn = ctx.client("iam"), f"arn:aws:glue:{ctx.settings.region}:{ctx.client('sts').get_caller_identity()['Account']}"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.create_role(RoleName=EVALUATION_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=EVALUATION_ROLE)["Role"]["Arn"]
    iam.put_role_policy(RoleName=EVALUATION_ROLE, PolicyName="evaluate-landing", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{data.RAW_BUCKET}/*"},
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": f"arn:aws:s3:::{data.RAW_BUCKET}"},
        {"Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
         "Resource": [f"{glue_arn}:catalog", f"{glue_arn}:database/{data.DATABASE}", f"{glue_arn}:table/{data.DATABASE}/*"]},
        {"Effect": "Allow", "Action": "glue:GetDataQualityRuleset", "Resource": f"{glue_arn}:dataQualityRuleset/{RULESET}"},
        {"Effect": "Allow", "Action": "glue:PublishDataQuality", "Resource": f"{glue_arn}:dataQualityRuleset/*"},
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"arn:aws:logs:{ctx.settings.region}:*:log-group:/aws-glue/*"},
    ]}))
    return arn


def _evaluate(ctx: LabContext) -> dict | str:
    """The registered ruleset over the landing table, as an evaluation run of the grader's: {rule text: PASS/FAIL/ERROR}."""
    glue = ctx.client("glue")
    try:
        run_id = glue.start_data_quality_ruleset_evaluation_run(
            DataSource={"GlueTable": {"DatabaseName": data.DATABASE, "TableName": data.ORDERS_TABLE}}, Role=_evaluation_role(ctx),
            RulesetNames=[RULESET], AdditionalRunOptions={"CloudWatchMetricsEnabled": False},
            AdditionalDataSources={REFERENCE_ALIAS: {"GlueTable": {"DatabaseName": data.DATABASE, "TableName": data.CUSTOMERS_TABLE}}},
        )["RunId"]
    except ClientError as error:
        return f"an evaluation run of ruleset {RULESET} could not start: {error.response['Error'].get('Message')}"
    deadline = time.monotonic() + 60
    while (run := glue.get_data_quality_ruleset_evaluation_run(RunId=run_id))["Status"] in ("STARTING", "RUNNING") and time.monotonic() < deadline:
        time.sleep(0.2)
    if run["Status"] != "SUCCEEDED":
        return f"the evaluation run of ruleset {RULESET} ended {run['Status']}: {run.get('ErrorString', '')}"
    result = glue.get_data_quality_result(ResultId=run["ResultIds"][0])
    return {rule["Description"]: rule["Result"] for rule in result["RuleResults"]}


def _run_job(ctx: LabContext, min_score: str) -> dict:
    glue = ctx.client("glue")
    run_id = glue.start_job_run(JobName=JOB, Arguments={"--min_score": min_score})["JobRunId"]
    deadline = time.monotonic() + RUN_WAIT_SECONDS
    while (run := glue.get_job_run(JobName=JOB, RunId=run_id)["JobRun"])["JobRunState"] in ACTIVE_RUN_STATES and time.monotonic() < deadline:
        time.sleep(0.3)
    return run


def _settled_alarm_state(ctx: LabContext, hoped: str) -> str:
    """The alarm's state once its evaluation of the run's datapoint is done (a short wait for `hoped`)."""
    deadline = time.monotonic() + 5
    while (state := (_alarm(ctx) or {}).get("StateValue", "absent")) != hoped and time.monotonic() < deadline:
        time.sleep(0.2)
    return state


def _clear_alarm_window(ctx: LabContext) -> None:
    """Moves the lab clock past the alarm's evaluation range, so earlier runs' datapoints no longer count."""
    alarm = _alarm(ctx)
    if alarm:
        window = datetime.timedelta(seconds=alarm.get("Period", 60) * (alarm.get("EvaluationPeriods", 1) + 2))
        ctx.admin("clock", {"action": "advance", "by": f"{math.ceil(min(window, MAX_WINDOW).total_seconds() / 60)}m"})


def _read_zone(ctx: LabContext, prefix: str) -> list[tuple[str, bytes]]:
    s3 = ctx.client("s3")
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=CURATED_BUCKET, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])
                if item["Size"] > 0 and not item["Key"].rsplit("/", 1)[-1].startswith(("_", "."))]
    except s3.exceptions.NoSuchBucket:
        raise Fail(f"bucket {CURATED_BUCKET} does not exist") from None
    return [(key, s3.get_object(Bucket=CURATED_BUCKET, Key=key)["Body"].read()) for key in keys]


def _curated(ctx: LabContext, ours: set[str]) -> Counter:
    counts = Counter()
    for key, body in _read_zone(ctx, CURATED_PREFIX):
        try:
            table = pq.read_table(io.BytesIO(body))
        except Exception as error:  # pyarrow raises several types for bytes that are not Parquet
            raise Fail(f"s3://{CURATED_BUCKET}/{key} is not a Parquet file ({type(error).__name__})") from None
        if "order_id" not in table.column_names:
            raise Fail(f"s3://{CURATED_BUCKET}/{key} has no order_id column (columns {table.column_names[:8]})")
        counts.update(order_id for order_id in table.column("order_id").to_pylist() if order_id in ours)
    return counts


def _quarantined(ctx: LabContext, ours: set[str]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for key, body in _read_zone(ctx, QUARANTINE_PREFIX):
        for line in body.decode(errors="replace").splitlines():
            try:
                record = json.loads(line) if line.strip() else None
            except ValueError:
                raise Fail(f"s3://{CURATED_BUCKET}/{key} is not JSON lines") from None
            if isinstance(record, dict) and record.get("order_id") in ours:
                found.setdefault(record["order_id"], []).append(record)
    return found


def _run_scenario(ctx: LabContext) -> Scenario:
    scenario = Scenario()
    glue = ctx.client("glue")
    try:
        glue.get_job(JobName=JOB)
    except glue.exceptions.EntityNotFoundException:
        scenario.run_errors = {name: f"job {JOB} does not exist" for name in BATCHES}
        return scenario
    inbox = _inbox(ctx)
    _clear_alarm_window(ctx)
    now = _lab_now(ctx)
    stamp = format(int(now.timestamp()), "x").upper()
    customers = ctx.dataset["customer_ids"]
    try:
        for name, (defects, min_score) in BATCHES.items():
            label = f"G{stamp}{name[0].upper()}"
            scenario.batches[name] = drawn = data.batch(ctx.seed, label, _lab_now(ctx), customers, CLEAN_ROWS, defects)
            _land(ctx, data.json_lines(drawn["rows"]), f"orders-{label}.json")
            if name != "gate":
                scenario.evaluations[name] = _evaluate(ctx)
            try:
                scenario.runs[name] = _run_job(ctx, min_score)
            except ClientError as error:
                scenario.run_errors[name] = f"job {JOB} could not start: {error.response['Error'].get('Message')}"
                continue
            if name != "gate":
                scenario.alarm_states[name] = _settled_alarm_state(ctx, "ALARM" if name == "defects" else "OK")
    finally:
        first = ctx.data_dir / "landing" / "orders-initial.json"
        if first.exists():
            _land(ctx, first.read_bytes(), first.name)
    ours = {row["order_id"] for drawn in scenario.batches.values() for row in drawn["rows"]}
    for attribute, reader in (("curated", _curated), ("quarantined", _quarantined)):
        try:
            setattr(scenario, attribute, reader(ctx, ours))
        except Fail as failure:
            setattr(scenario, attribute, str(failure))
    deadline = time.monotonic() + NOTICE_WAIT_SECONDS
    while time.monotonic() < deadline and not _notices(scenario):
        scenario.messages += _drain(ctx, inbox)
        time.sleep(0.3)
    scenario.messages += _drain(ctx, inbox)
    return scenario


def _notices(scenario: Scenario) -> bool:
    """Whether the alarm's notice and the defective batch's result event have both arrived."""
    run_id = scenario.runs.get("defects", {}).get("Id")
    return any(message.get("AlarmName") == ALARM for message in scenario.messages) and \
        any((message.get("detail") or {}).get("context", {}).get("jobRunId") == run_id for message in scenario.messages)


def _scenario(ctx: LabContext) -> Scenario:
    with _scenario_lock:
        if "scenario" not in ctx.__dict__:
            ctx.__dict__["scenario"] = _run_scenario(ctx)
    return ctx.__dict__["scenario"]


def _run_of(scenario: Scenario, name: str, expected: str = "SUCCEEDED") -> dict:
    if name in scenario.run_errors:
        raise Fail(scenario.run_errors[name])
    run = scenario.runs[name]
    defects, min_score = BATCHES[name]
    if run["JobRunState"] != expected:
        error = " ".join((run.get("ErrorMessage") or "").split())[:300]
        raise Fail(f"job {JOB} on the grader's {name} batch (--min_score {min_score}) ended {run['JobRunState']}, expected {expected}"
                   + (f": {error}" if error else ""))
    return run


def _zone(found: Counter | dict | str):
    if isinstance(found, str):
        raise Fail(found)
    return found


def _rule_matches(rule: str, types: tuple[str, ...], column: str) -> bool:
    return re.match(rf'\s*\(?\s*({"|".join(types)})\s+"{re.escape(column)}"', rule) is not None


def _caught(ctx: LabContext, kind: str) -> str:
    scenario = _scenario(ctx)
    _run_of(scenario, "defects")
    quarantined = _zone(scenario.quarantined)
    types, column = MEANT_RULES[kind]
    meant = " or ".join(f'{rule_type} "{column}"' for rule_type in types)
    catching = set()
    for order_id in scenario.batches["defects"]["defects"][kind]:
        records = quarantined.get(order_id)
        if not records:
            raise Fail(f"order {order_id} ({data.DEFECTS[kind]}) is not in s3://{CURATED_BUCKET}/{QUARANTINE_PREFIX}: no rule of ruleset "
                       f"{RULESET} failed it in job {JOB}")
        failed = [rule for record in records for rule in (record.get("DataQualityRulesFail") or [])]
        if "DataQualityRulesFail" not in records[0]:
            raise Fail(f"order {order_id} is quarantined without its DataQualityRulesFail column: nobody can see which rule it broke")
        matching = [rule for rule in failed if _rule_matches(rule, types, column)]
        if not matching:
            raise Fail(f"order {order_id} ({data.DEFECTS[kind]}) is quarantined, but the rules it failed are {failed}: none is {meant}")
        catching.update(matching)
    return f"the grader's rows where {data.DEFECTS[kind]} were quarantined by {' and '.join(sorted(catching))}"


def _hints(concept: str, rule: str) -> tuple[str, str, str]:
    return (concept,
            "A DQDL rule with row-level results marks each row that breaks it (DataQualityRulesFail); EvaluateDataQuality().process_rows "
            "returns them in rowLevelOutcomes, and the job routes the rows whose DataQualityEvaluationResult is Failed to the quarantine.",
            f"In the ruleset: {rule}")


@check("L12-01", "Ruleset orders-gate is registered on table dq_lab.orders_landing", points=1, task="3.4",
       hints=("A Glue Data Quality ruleset is a named DQDL document attached to a catalog table, so it can be evaluated on that table by itself and reused by jobs.",
              "Glue CreateDataQualityRuleset with Name, Ruleset (DQDL) and TargetTable (DatabaseName, TableName).",
              "glue.create_data_quality_ruleset(Name='orders-gate', Ruleset='Rules = [ ... ]', TargetTable={'DatabaseName': 'dq_lab', 'TableName': 'orders_landing'})"),
       docs=f"{DOCS}/data-quality-getting-started.html")
def ruleset_registered(ctx: LabContext) -> str:
    glue = ctx.client("glue")
    try:
        ruleset = glue.get_data_quality_ruleset(Name=RULESET)
    except glue.exceptions.EntityNotFoundException:
        raise Fail(f"ruleset {RULESET} does not exist") from None
    target = ruleset.get("TargetTable") or {}
    if (target.get("DatabaseName"), target.get("TableName")) != (data.DATABASE, data.ORDERS_TABLE):
        raise Fail(f"ruleset {RULESET} targets {target.get('DatabaseName')}.{target.get('TableName')}, not {data.DATABASE}.{data.ORDERS_TABLE}")
    return f"ruleset {RULESET} is attached to {data.DATABASE}.{data.ORDERS_TABLE}"


@check("L12-02", "The ruleset, evaluated on the table by itself, passes a clean batch and fails a defective one", points=2, task="3.4",
       timeout=SCENARIO_TIMEOUT,
       hints=("A ruleset must hold on good data and break on bad data: evaluation runs over the catalog table show which rules pass before any job uses them. A rule that fails clean data (a bound too tight, a set too small) quarantines good orders.",
              "StartDataQualityRulesetEvaluationRun over the table with AdditionalDataSources {'customers': the customers table}, then GetDataQualityResult's RuleResults; DQDL's between is exclusive.",
              "glue.start_data_quality_ruleset_evaluation_run(DataSource={'GlueTable': {'DatabaseName': 'dq_lab', 'TableName': 'orders_landing'}}, Role=..., RulesetNames=['orders-gate'], AdditionalDataSources={'customers': {'GlueTable': {'DatabaseName': 'dq_lab', 'TableName': 'customers'}}})"),
       docs=f"{DOCS}/data-quality-gs-studio-notebooks.html")
def ruleset_evaluates(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    if not scenario.evaluations:
        raise Fail(f"no batch could be evaluated: {next(iter(scenario.run_errors.values()), 'the scenario did not run')}")
    clean, defects = scenario.evaluations["clean"], scenario.evaluations["defects"]
    for outcome in (clean, defects):
        if isinstance(outcome, str):
            raise Fail(outcome)
    not_passing = {rule: result for rule, result in clean.items() if result != "PASS"}
    if not_passing:
        rule, result = next(iter(not_passing.items()))
        raise Fail(f"ruleset {RULESET} on a clean batch of {data.ORDERS_TABLE}: {len(not_passing)} rule(s) did not pass, e.g. {rule} → {result}")
    if all(result == "PASS" for result in defects.values()):
        raise Fail(f"ruleset {RULESET} passed every rule on a batch with one defect of each kind: it checks nothing that was planted")
    return f"ruleset {RULESET}: all {len(clean)} rules pass a clean batch; {sum(r == 'FAIL' for r in defects.values())} fail the defective one"


@check("L12-03", "A missing amount is caught by a completeness rule and quarantined", points=1, task="3.4", timeout=SCENARIO_TIMEOUT,
       hints=_hints("Required columns must be present in every row: completeness rules say which columns are required.", 'IsComplete "amount" (and one for each required column)'),
       docs=f"{DOCS}/dqdl-rule-types-IsComplete.html")
def missing_amount(ctx: LabContext) -> str:
    return _caught(ctx, "missing_amount")


@check("L12-04", "Amounts of 0.00 and above 5,000.00 are caught by a value rule and quarantined", points=1, task="3.4", timeout=SCENARIO_TIMEOUT,
       hints=_hints("A range check lives or dies at its edges: 0.00 is not a valid amount, 5,000.00 is. Which comparison keeps each edge on the right side?", 'ColumnValues "amount" > 0 and ColumnValues "amount" <= 5000'),
       docs=f"{DOCS}/dqdl-rule-types-ColumnValues.html")
def amount_range(ctx: LabContext) -> str:
    return _caught(ctx, "amount_out_of_range")


@check("L12-05", "A status outside the agreed set is caught by a value rule and quarantined", points=1, task="3.4", timeout=SCENARIO_TIMEOUT,
       hints=_hints("A column with a closed set of values is checked against that set.", 'ColumnValues "status" in ["placed", "paid", "shipped", "delivered", "cancelled"]'),
       docs=f"{DOCS}/dqdl-rule-types-ColumnValues.html")
def status_set(ctx: LabContext) -> str:
    return _caught(ctx, "unknown_status")


@check("L12-06", "A duplicated order id is caught by a uniqueness rule and both rows quarantined", points=1, task="3.4", timeout=SCENARIO_TIMEOUT,
       hints=_hints("An order id identifies one order: two rows with one id cannot both be right, so both wait in the quarantine for someone to decide.", 'IsUnique "order_id"'),
       docs=f"{DOCS}/dqdl-rule-types-IsUnique.html")
def duplicate_order_id(ctx: LabContext) -> str:
    return _caught(ctx, "duplicate_order_id")


@check("L12-07", "A stale order (order_ts days old) is caught by a freshness rule and quarantined", points=1, task="3.4", timeout=SCENARIO_TIMEOUT,
       hints=_hints("Freshness is about when the order happened, not when the file landed: a batch that arrives today can carry last week's orders.", 'DataFreshness "order_ts" <= 24 hours'),
       docs=f"{DOCS}/dqdl-rule-types-DataFreshness.html")
def stale_order(ctx: LabContext) -> str:
    return _caught(ctx, "stale_order")


@check("L12-08", "An unknown customer id is caught by referential integrity against the customers table and quarantined", points=1,
       task="3.4", timeout=SCENARIO_TIMEOUT,
       hints=("Referential integrity compares the batch with a reference dataset: the customers table, passed to the evaluation under the alias the rule names.",
              "In a job, EvaluateDataQuality().process_rows(..., additional_data_sources={'customers': <the customers frame>}); the frame comes from the catalog table dq_lab.customers.",
              'ReferentialIntegrity "customer_id" "customers.customer_id" = 1.0, with customers = glue_context.create_dynamic_frame.from_catalog(database="dq_lab", table_name="customers")'),
       docs=f"{DOCS}/dqdl-rule-types-ReferentialIntegrity.html")
def unknown_customer(ctx: LabContext) -> str:
    return _caught(ctx, "unknown_customer")


@check("L12-09", "Clean rows are curated exactly once, and no quarantined row is curated", points=2, task="1.2", timeout=SCENARIO_TIMEOUT,
       hints=("The gate splits a batch in two: rows that passed every rule go to the curated zone, the others to the quarantine, never both and never twice.",
              "rowLevelOutcomes has DataQualityEvaluationResult 'Passed' or 'Failed' per row: filter on it for each side, drop the four outcome columns before curating.",
              "passing = rows.where(F.col('DataQualityEvaluationResult') == 'Passed').drop('DataQualityRulesPass', 'DataQualityRulesFail', 'DataQualityRulesSkip', 'DataQualityEvaluationResult'), written as Parquet to s3://dea-dq-curated/curated/orders/"),
       docs=f"{DOCS}/data-quality-gs-studio-notebooks.html")
def curated_once(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    for name in ("clean", "defects"):
        _run_of(scenario, name)
    curated = _zone(scenario.curated)
    quarantined = _zone(scenario.quarantined)
    clean = [order_id for name in ("clean", "defects") for order_id in scenario.batches[name]["clean"]]
    wrong = {order_id: curated[order_id] for order_id in clean if curated[order_id] != 1}
    if wrong:
        order_id, times = next(iter(wrong.items()))
        raise Fail(f"{len(wrong)} of the {len(clean)} clean orders of the grader's batches are not curated exactly once in "
                   f"s3://{CURATED_BUCKET}/{CURATED_PREFIX}, e.g. {order_id} ×{times}" + (f" (it was quarantined)" if order_id in quarantined else ""))
    both = sorted(order_id for order_id in quarantined if curated[order_id])
    if both:
        raise Fail(f"{len(both)} orders are both quarantined and curated, e.g. {both[0]}: failing rows reached s3://{CURATED_BUCKET}/{CURATED_PREFIX}")
    return f"the {len(clean)} clean orders of the grader's batches are curated once each; no quarantined row is curated"


@check("L12-10", "A batch below --min_score fails the job run and curates nothing", points=2, task="1.2", timeout=SCENARIO_TIMEOUT,
       hints=("A gate stops the pipeline when a batch is too bad to publish: the data quality score (rules passed / rules) below the minimum fails the run, so schedulers and alarms see it.",
              "Read ruleOutcomes (Outcome 'Passed' / 'Failed'), compute the score, compare it with the job argument --min_score before writing anything, and raise to fail the run.",
              "score = passed / len(outcomes); if score < float(args['min_score']): raise Exception(f'data quality score {score} below {args[\"min_score\"]}')"),
       docs=f"{DOCS}/data-quality-gs-studio-notebooks.html")
def gate_fails_run(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    _run_of(scenario, "clean")
    _run_of(scenario, "defects")
    _run_of(scenario, "gate", expected="FAILED")
    curated = _zone(scenario.curated)
    leaked = sorted(order_id for order_id in scenario.batches["gate"]["clean"] if curated[order_id])
    if leaked:
        raise Fail(f"job {JOB}'s run on a batch below --min_score failed, but {len(leaked)} of its orders reached "
                   f"s3://{CURATED_BUCKET}/{CURATED_PREFIX} (e.g. {leaked[0]}): the gate opened before it judged")
    return f"job {JOB} failed the run on a batch below --min_score 1.0 and curated none of it; runs at or above it succeeded"


@check("L12-11", "Alarm orders-dq-rules-failed goes to ALARM when rules fail, not on a clean batch", points=2, task="3.3", timeout=SCENARIO_TIMEOUT,
       hints=("Glue Data Quality publishes glue.data.quality.rules.passed and glue.data.quality.rules.failed per evaluation (namespace 'Glue Data Quality'); an alarm on the failed count tells people a batch broke rules.",
              "The job publishes with publishing_options enableDataQualityCloudWatchMetrics; its metrics carry the dimensions JobName and EvaluationContext. PutMetricAlarm on that exact dimension set.",
              "cloudwatch.put_metric_alarm(AlarmName='orders-dq-rules-failed', Namespace='Glue Data Quality', MetricName='glue.data.quality.rules.failed', Dimensions=[{'Name': 'JobName', 'Value': 'orders-dq-gate'}, {'Name': 'EvaluationContext', 'Value': 'orders_gate'}], Statistic='Maximum', Period=300, EvaluationPeriods=1, Threshold=1, ComparisonOperator='GreaterThanOrEqualToThreshold', AlarmActions=[topic_arn])"),
       docs="https://docs.aws.amazon.com/glue/latest/dg/data-quality-alerts.html")
def alarm_behaviour(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    if ctx.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"] == []:
        raise Fail(f"alarm {ALARM} does not exist")
    _run_of(scenario, "clean")
    _run_of(scenario, "defects")
    if scenario.alarm_states.get("clean") == "ALARM":
        raise Fail(f"alarm {ALARM} was in ALARM after job {JOB} ran on a clean batch where every rule passed: it would page people for nothing")
    if scenario.alarm_states.get("defects") != "ALARM":
        raise Fail(f"alarm {ALARM} was {scenario.alarm_states.get('defects')} after job {JOB} ran on a batch that failed rules, expected ALARM")
    return f"alarm {ALARM}: {scenario.alarm_states['clean']} after the clean batch, ALARM after the defective one"


@check("L12-12", "The alarm's notice reached topic dea-dq-alerts", points=1, task="3.3", timeout=SCENARIO_TIMEOUT,
       hints=("An alarm acts on a state change through its actions: an SNS topic fans the notice out to people and systems.",
              "PutMetricAlarm AlarmActions with the topic's ARN (and ActionsEnabled, the default).",
              "cloudwatch.put_metric_alarm(..., AlarmActions=[sns.create_topic(Name='dea-dq-alerts')['TopicArn']])"),
       docs="https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-actions.html")
def alarm_notice(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    if _topic_arn(ctx) is None:
        raise Fail(f"topic {TOPIC} does not exist")
    _run_of(scenario, "defects")
    notices = [m for m in scenario.messages if m.get("AlarmName") == ALARM and m.get("NewStateValue") == "ALARM"]
    if not notices:
        raise Fail(f"no ALARM notice of alarm {ALARM} reached topic {TOPIC} while the grader's defective batch ran")
    return f"alarm {ALARM}'s ALARM notice reached topic {TOPIC}"


@check("L12-13", "The job's data quality result event reached topic dea-dq-alerts through an EventBridge rule", points=2, task="3.3",
       timeout=SCENARIO_TIMEOUT,
       hints=("Glue Data Quality puts an event on the default bus after each evaluation (source aws.glue-dataquality); a rule routes it to whoever must know, with the score and the rules that failed.",
              "EventBridge PutRule with an EventPattern on source and detail-type (the detail-type is AWS's exact words), PutTargets with the topic (whose policy lets events.amazonaws.com publish).",
              "events.put_rule(Name='orders-dq-results', EventPattern=json.dumps({'source': ['aws.glue-dataquality'], 'detail-type': ['Data Quality Evaluation Results Available']})); events.put_targets(Rule='orders-dq-results', Targets=[{'Id': 'dq-alerts', 'Arn': topic_arn}])"),
       docs="https://docs.aws.amazon.com/glue/latest/dg/data-quality-alerts.html")
def result_event(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    if _topic_arn(ctx) is None:
        raise Fail(f"topic {TOPIC} does not exist")
    run = _run_of(scenario, "defects")
    events = [m for m in scenario.messages if m.get("detail-type") == DQ_EVENT]
    ours = [m for m in events if (m.get("detail") or {}).get("context", {}).get("jobRunId") == run["Id"]]
    if not ours:
        raise Fail(f"the data quality result event of job {JOB}'s run {run['Id'][:16]}… did not reach topic {TOPIC}"
                   + (f" ({len(events)} other result events did)" if events else ""))
    detail = ours[0]["detail"]
    return f"the result event of the defective batch's run (score {detail.get('score')}, {detail.get('rulesFailed')} rules failed) reached topic {TOPIC}"
