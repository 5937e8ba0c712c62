"""Lab 10 checks: the nightly pipeline as it behaves. The grader drops three nights of raw files, moves the lab
clock through those nights (a transient Glue fault injected on the second), then through a fourth night on
which Glue fails for good, then runs the first night again; the checks judge the executions the schedule
started, their histories, the curated data and the daily aggregate (recomputed from the learner's seed), and
the notices and alerts that reached the operations queues.

The scenario runs once per grading (the first check runs it; the others read what it saw). A night whose
execution did not succeed is blamed on L10-04/L10-05 alone: the data checks judge the nights that ran through.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from dealab.datasets import nightly_sales as sales
from grader.core import Fail, LabContext, check

MACHINE = "dea-nightly-pipeline"
JOB = "dea-clean-sales"
ACTIVE_RUN_STATES = ("STARTING", "RUNNING", "STOPPING", "WAITING")
JOB_RUN_WAIT_SECONDS = 120
DATABASE = "pipeline"
CURATED_TABLE, DAILY_TABLE = "curated_sales", "daily_sales"
RESULTS = "s3://dea-pipeline-athena/grader/"
NIGHTLY_AT = datetime.time(2, 0)
# The grader moves to half past the hour: the run fires at 02:00 and the move waits for it to end or sleep.
CHECKPOINT = datetime.timedelta(hours=2, minutes=30)
# Rates and seeds are the faults engine's: with this seed the first StartJobRun the rule sees fails (throttled)
# and the following ones pass, so a pipeline that retries gets through its night.
TRANSIENT_FAULT = "glue:StartJobRun rate=0.5 error=throttling seed=night-2"
PERMANENT_FAULT = "glue:StartJobRun rate=1 error=throttling"
GOOD_NIGHTS = (1, 2, 3)
FAULTED_NIGHT, FAILING_NIGHT, RERUN_NIGHT = 2, 4, 1
# An execution still RUNNING after its night's move sleeps in a long Wait: the clock is nudged this far, this often.
NUDGE, NUDGES = "10m", 36
AMOUNT_TOLERANCE = 0.005
SCENARIO_TIMEOUT = 900
SFN_DOCS = "https://docs.aws.amazon.com/step-functions/latest/dg"


@dataclass
class Scenario:
    nights: dict[int, datetime.date]
    machine_arn: str | None
    executions: list[dict] = field(default_factory=list)     # started by the schedule in the graded window
    histories: dict[str, list[dict]] = field(default_factory=dict)
    rerun: dict | None = None                                 # the grader's own re-run of night 1
    aggregate_after_nights: dict | str = ""                   # night → rows, or why it could not be read
    aggregate_after_rerun: dict | str = ""
    curated: dict | str = ""
    notices: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)


def _lab_now(ctx: LabContext) -> datetime.datetime:
    return datetime.datetime.fromisoformat(ctx.admin("clock")["now"]).replace(tzinfo=None)


def _machine_arn(ctx: LabContext) -> str | None:
    sfn = ctx.client("stepfunctions")
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == MACHINE:
                return machine["stateMachineArn"]
    return None


def _all_executions(ctx: LabContext, machine_arn: str | None) -> list[dict]:
    if machine_arn is None:
        return []
    sfn = ctx.client("stepfunctions")
    return [execution for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine_arn) for execution in page["executions"]]


def _drain(ctx: LabContext, queue: str) -> list[str]:
    """Every message now in the queue (deleted as read), as the text that was published: an SNS envelope's
    Message, or the raw body."""
    sqs = ctx.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    texts = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return texts
        for message in messages:
            try:
                body = json.loads(message["Body"])
                texts.append(str(body.get("Message", message["Body"])) if isinstance(body, dict) else message["Body"])
            except ValueError:
                texts.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _drop_night(ctx: LabContext, night: int, date: datetime.date) -> None:
    s3 = ctx.client("s3")
    for path in sorted((ctx.data_dir / sales.night_folder(night)).glob("*.csv")):
        s3.upload_file(str(path), sales.RAW_BUCKET, sales.raw_key(date.isoformat(), path.name))


def _job_running(ctx: LabContext) -> bool:
    glue = ctx.client("glue")
    try:
        return any(run["JobRunState"] in ACTIVE_RUN_STATES for run in glue.get_job_runs(JobName=JOB)["JobRuns"])
    except glue.exceptions.EntityNotFoundException:
        return False


def _settle(ctx: LabContext, machine_arn: str | None) -> None:
    """Lets the night's work end before the next night, as the day between them would: moves the clock on a little
    while an execution still runs (a Wait longer than the checkpoint leaves it asleep; real time alone would take
    as long as the Wait), and waits for the job runs it started (a run nobody waits for goes on in real time)."""
    for _ in range(NUDGES):
        if not any(execution["status"] == "RUNNING" for execution in _all_executions(ctx, machine_arn)):
            break
        ctx.admin("clock", {"action": "advance", "by": NUDGE})
        time.sleep(0.2)
    deadline = time.monotonic() + JOB_RUN_WAIT_SECONDS
    while _job_running(ctx) and time.monotonic() < deadline:
        time.sleep(0.2)


def _live_night(ctx: LabContext, scenario: Scenario, night: int, fault: str | None) -> None:
    date = scenario.nights[night]
    _drop_night(ctx, night, date)
    if fault:
        ctx.admin("faults", {"action": "set", "rules": [fault]})
    try:
        ctx.admin("clock", {"action": "set", "to": (datetime.datetime.combine(date, datetime.time()) + CHECKPOINT).isoformat()})
        _settle(ctx, scenario.machine_arn)
    finally:
        if fault:
            ctx.admin("faults", {"action": "clear", "targets": [fault.split()[0]]})


def _query(ctx: LabContext, sql: str) -> list[list[str]]:
    athena = ctx.client("athena")
    query_id = athena.start_query_execution(QueryString=sql, ResultConfiguration={"OutputLocation": RESULTS})["QueryExecutionId"]
    while (status := athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"])["State"] in ("QUEUED", "RUNNING"):
        time.sleep(0.1)
    if status["State"] != "SUCCEEDED":
        raise Fail(f"Athena could not read {sql.split(' FROM ')[1].split()[0]}: {status.get('StateChangeReason', status['State'])}")
    rows, kwargs = [], {"QueryExecutionId": query_id}
    while True:
        page = athena.get_query_results(**kwargs)
        rows += [[cell.get("VarCharValue") for cell in row["Data"]] for row in page["ResultSet"]["Rows"]]
        if not page.get("NextToken"):
            return rows[1:]  # the header row
        kwargs["NextToken"] = page["NextToken"]


def _read_table(ctx: LabContext, table: str, columns: str, dates: list[datetime.date]) -> dict | str:
    """night → rows of `table` (its columns in the lab's order), or the reason it could not be read."""
    nights = ", ".join(f"'{date.isoformat()}'" for date in dates)
    try:
        rows = _query(ctx, f"SELECT {columns}, night FROM {DATABASE}.{table} WHERE night IN ({nights})")
    except Fail as failure:
        return str(failure)
    except ClientError as error:
        return f"Athena could not read {DATABASE}.{table}: {error.response['Error'].get('Message', error)}"
    by_night: dict = {}
    for row in rows:
        by_night.setdefault(row[-1], []).append(row[:-1])
    return by_night


def _aggregate(ctx: LabContext, dates: list[datetime.date]) -> dict | str:
    return _read_table(ctx, DAILY_TABLE, "store, sales, units, revenue", dates)


def _history(ctx: LabContext, execution_arn: str) -> list[dict]:
    sfn = ctx.client("stepfunctions")
    return [event for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn) for event in page["events"]]


def _finish(ctx: LabContext, execution_arn: str) -> dict:
    sfn = ctx.client("stepfunctions")
    for _ in range(NUDGES * 5):
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        ctx.admin("clock", {"action": "advance", "by": "1m"})
        time.sleep(0.2)
    return sfn.describe_execution(executionArn=execution_arn)


def _run_scenario(ctx: LabContext) -> Scenario:
    started = _lab_now(ctx)
    # the first night is tomorrow, whatever the hour: a schedule that fires early in the day (a wrong cron) still
    # finds that night's files dropped before it fires
    first = started.date() + datetime.timedelta(days=1)
    scenario = Scenario({night: first + datetime.timedelta(days=night - 1) for night in (*GOOD_NIGHTS, FAILING_NIGHT)}, _machine_arn(ctx))
    ctx.admin("faults", {"action": "clear", "targets": []})
    # A lab started between midnight and 02:00 UTC passes today's 02:00 on its way to the first night: that
    # execution (of a night without data) ends here, with the job run it started, before the queues are drained
    # and the nights begin, so neither its run nor its notice reaches the graded nights.
    ctx.admin("clock", {"action": "set", "to": datetime.datetime.combine(first, datetime.time()).isoformat()})
    _settle(ctx, scenario.machine_arn)
    for queue in (sales.NOTICES_QUEUE, sales.ALERTS_QUEUE):
        _drain(ctx, queue)  # what earlier tries left there is not this grading's
    good_dates = [scenario.nights[night] for night in GOOD_NIGHTS]
    for night in GOOD_NIGHTS:
        _live_night(ctx, scenario, night, TRANSIENT_FAULT if night == FAULTED_NIGHT else None)
    scenario.aggregate_after_nights = _aggregate(ctx, good_dates)
    _live_night(ctx, scenario, FAILING_NIGHT, PERMANENT_FAULT)
    scenario.executions = [execution for execution in _all_executions(ctx, scenario.machine_arn)
                           if execution["startDate"].replace(tzinfo=None) >= started]
    rerun_of = _execution_of(scenario, RERUN_NIGHT)
    if rerun_of is not None:
        sfn = ctx.client("stepfunctions")
        night_input = sfn.describe_execution(executionArn=rerun_of["executionArn"])["input"]
        arn = sfn.start_execution(stateMachineArn=scenario.machine_arn, name=f"grader-rerun-{int(time.time() * 1000)}", input=night_input)["executionArn"]
        scenario.rerun = _finish(ctx, arn)
        scenario.aggregate_after_rerun = _aggregate(ctx, good_dates)
    for execution in scenario.executions:
        scenario.histories[execution["executionArn"]] = _history(ctx, execution["executionArn"])
    scenario.curated = _read_table(ctx, CURATED_TABLE, "sale_id, store, sku, quantity, unit_price, amount", good_dates)
    scenario.notices = _drain(ctx, sales.NOTICES_QUEUE)
    scenario.alerts = _drain(ctx, sales.ALERTS_QUEUE)
    return scenario


def _scenario(ctx: LabContext) -> Scenario:
    if "scenario" not in ctx.__dict__:
        ctx.__dict__["scenario"] = _run_scenario(ctx)
    scenario = ctx.__dict__["scenario"]
    if scenario.machine_arn is None:
        raise Fail(f"state machine {MACHINE} does not exist")
    return scenario


def _execution_of(scenario: Scenario, night: int) -> dict | None:
    """The execution the schedule started on that night's date (the first, if several)."""
    date = scenario.nights[night]
    on_date = [execution for execution in scenario.executions if execution["startDate"].date() == date]
    return min(on_date, key=lambda execution: execution["startDate"]) if on_date else None


def _night_execution(scenario: Scenario, night: int) -> dict:
    execution = _execution_of(scenario, night)
    if execution is None:
        raise Fail(f"state machine {MACHINE}: no execution started on {scenario.nights[night]}, so night {night}'s data was never processed")
    return execution


def _succeeded_nights(scenario: Scenario) -> list[int]:
    nights = [night for night in GOOD_NIGHTS if (_execution_of(scenario, night) or {}).get("status") == "SUCCEEDED"]
    if not nights:
        raise Fail(f"state machine {MACHINE}: no night's execution SUCCEEDED, so there is no night's output to judge")
    return nights


def _tasks(history: list[dict], service: str, action: str) -> list[tuple[int, dict]]:
    """(position, event) of the history's task events calling service:action (optimised or aws-sdk, any pattern)."""
    found = []
    for position, event in enumerate(history):
        details = next((value for key, value in event.items() if key.startswith("task") and key.endswith("EventDetails")), None)
        if details and details.get("resourceType", "").removeprefix("aws-sdk:") == service and details.get("resource", "").split(".")[0] == action:
            found.append((position, event))
    return found


def _task_output(event: dict) -> dict:
    try:
        return json.loads(event["taskSucceededEventDetails"].get("output") or "{}")
    except ValueError:
        return {}


@check("L10-01", "The nightly schedule starts one execution per night at 02:00 UTC", points=2, task="1.3", timeout=SCENARIO_TIMEOUT,
       hints=("A nightly batch is started by a schedule, not by hand: an EventBridge rule (or an EventBridge Scheduler schedule) whose cron fires once a day at the agreed time, in UTC.",
              "EventBridge cron has six fields: minutes hours day-of-month month day-of-week year, with ? in one of the two day fields; PutRule ScheduleExpression + PutTargets with the state machine's ARN and a role events may assume.",
              "events.put_rule(Name=..., ScheduleExpression='cron(0 2 * * ? *)'); events.put_targets(Rule=..., Targets=[{'Id': 'pipeline', 'Arn': machine_arn, 'RoleArn': events_role_arn, ...}])"),
       docs="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html")
def schedule_timing(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    for night, date in scenario.nights.items():
        started = sorted(execution["startDate"] for execution in scenario.executions if execution["startDate"].date() == date)
        if len(started) != 1:
            raise Fail(f"state machine {MACHINE}: {len(started)} executions started on {date}, expected one (at 02:00 UTC)"
                       + (f"; at {', '.join(moment.strftime('%H:%M') for moment in started[:4])}" if started else ""))
        moment = started[0].replace(tzinfo=None)
        if abs(moment - datetime.datetime.combine(date, NIGHTLY_AT)) > datetime.timedelta(minutes=1):
            raise Fail(f"state machine {MACHINE}: the execution of {date} started at {moment:%H:%M} UTC, expected 02:00 UTC")
    return f"one execution per night at 02:00 UTC on {', '.join(str(date) for date in scenario.nights.values())}"


@check("L10-02", "Each execution's input carries its night's date", points=1, task="3.1", timeout=SCENARIO_TIMEOUT,
       hints=("An execution must know which night it processes; the scheduled event's `time` says when the schedule fired, so the target passes it on as the execution's input.",
              "A rule target's InputTransformer (InputPathsMap + InputTemplate) shapes the event into the input; the state machine derives the date (YYYY-MM-DD) from it and passes it to the job as --night.",
              "InputTransformer={'InputPathsMap': {'time': '$.time'}, 'InputTemplate': '{\"time\": <time>}'}; in the machine, \"night.$\": \"States.ArrayGetItem(States.StringSplit($.time, 'T'), 0)\" and Arguments {\"--night.$\": \"$.night\"}"),
       docs="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html")
def input_carries_the_night(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    for night in GOOD_NIGHTS:
        execution = _night_execution(scenario, night)
        date = scenario.nights[night].isoformat()
        scheduled = [event for _, event in _tasks(scenario.histories[execution["executionArn"]], "glue", "startJobRun") if event["type"] == "TaskScheduled"]
        if not scheduled:
            raise Fail(f"execution {execution['name']} of {date} never started a Glue job run")
        arguments = json.loads(scheduled[0]["taskScheduledEventDetails"].get("parameters") or "{}").get("Arguments") or {}
        if arguments.get("--night") != date:
            raise Fail(f"execution {execution['name']} of {date} ran the Glue job with --night {arguments.get('--night')!r}, expected {date!r}")
    return f"each night's execution ran the job for its own night ({', '.join(str(scenario.nights[n]) for n in GOOD_NIGHTS)})"


@check("L10-03", "The crawler has finished before the job starts", points=2, task="1.3", timeout=SCENARIO_TIMEOUT,
       hints=("StartCrawler only starts a crawl: the raw zone's catalog is current once GetCrawler says the crawler is READY again. Step Functions has no .sync for crawlers, so a pipeline polls.",
              "aws-sdk:glue:startCrawler, then a loop: Wait → aws-sdk:glue:getCrawler → Choice on $.Crawler.State (READY goes on, anything else waits again).",
              "\"GetCrawler\": {\"Type\": \"Task\", \"Resource\": \"arn:aws:states:::aws-sdk:glue:getCrawler\", \"Parameters\": {\"Name\": \"dea-raw-sales\"}, \"ResultSelector\": {\"state.$\": \"$.Crawler.State\"}, \"ResultPath\": \"$.crawler\", \"Next\": \"CrawlerDone\"} with a Choice on $.crawler.state"),
       docs=f"{SFN_DOCS}/sample-etl-orchestration.html")
def crawler_awaited(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    for night in GOOD_NIGHTS:
        execution = _night_execution(scenario, night)
        history = scenario.histories[execution["executionArn"]]
        started = [position for position, event in _tasks(history, "glue", "startCrawler") if event["type"] == "TaskSucceeded"]
        if not started:
            raise Fail(f"execution {execution['name']} of {scenario.nights[night]} never started the crawler")
        job = [position for position, event in _tasks(history, "glue", "startJobRun") if event["type"] == "TaskScheduled"]
        job_at = job[0] if job else len(history)
        ready = [position for position, event in _tasks(history, "glue", "getCrawler")
                 if event["type"] == "TaskSucceeded" and started[0] < position < job_at and _task_output(event).get("Crawler", {}).get("State") == "READY"]
        if not ready:
            raise Fail(f"execution {execution['name']} of {scenario.nights[night]} went on to the Glue job without GetCrawler having "
                       f"seen crawler dea-raw-sales READY after it started: the catalog may not hold the night yet")
    return "every night's execution waited for the crawler to be READY before the job"


@check("L10-04", "Every night's execution SUCCEEDED", points=1, task="1.3", timeout=SCENARIO_TIMEOUT,
       hints=("A night succeeds when every step did its work: crawler, job, aggregate, notice. A FAILED execution's history names the state and the error.",
              "DescribeExecution (status, error, cause) and GetExecutionHistory of the night's execution show where it stopped.",
              "aws stepfunctions get-execution-history --execution-arn <arn> --query 'events[?contains(type, `Failed`)]'"),
       docs=f"{SFN_DOCS}/concepts-state-machine-executions.html")
def nights_succeeded(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    for night in GOOD_NIGHTS:
        execution = _night_execution(scenario, night)
        if execution["status"] != "SUCCEEDED":
            failed = [event for event in scenario.histories[execution["executionArn"]] if event["type"].endswith("Failed")]
            details = next((value for key, value in failed[0].items() if key.endswith("EventDetails")), {}) if failed else {}
            raise Fail(f"execution {execution['name']} of {scenario.nights[night]} is {execution['status']}"
                       + (f": {failed[0]['type']} {details.get('error', '')}" if failed else ""))
    return f"the executions of nights {', '.join(str(scenario.nights[n]) for n in GOOD_NIGHTS)} SUCCEEDED"


@check("L10-05", "A transient Glue failure is retried, and the night still succeeds", points=2, task="1.3", timeout=SCENARIO_TIMEOUT,
       hints=("Throttling and concurrency limits pass: a task that meets them should try again after a pause, with backoff, instead of failing the night.",
              "A Retry on the Glue task: ErrorEquals naming Glue's transient errors (Glue.ThrottlingException, Glue.ConcurrentRunsExceededException, ...) or States.TaskFailed, with IntervalSeconds, BackoffRate and MaxAttempts.",
              "\"Retry\": [{\"ErrorEquals\": [\"Glue.ThrottlingException\", \"Glue.ConcurrentRunsExceededException\"], \"IntervalSeconds\": 60, \"BackoffRate\": 2, \"MaxAttempts\": 3}]"),
       docs=f"{SFN_DOCS}/concepts-error-handling.html")
def transient_fault_retried(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    execution = _night_execution(scenario, FAULTED_NIGHT)
    date = scenario.nights[FAULTED_NIGHT]
    history = scenario.histories[execution["executionArn"]]
    glue = _tasks(history, "glue", "startJobRun")
    failed = [position for position, event in glue if event["type"] == "TaskFailed"]
    if not failed:
        raise Fail(f"execution {execution['name']} of {date}: the throttled StartJobRun injected that night never failed its Glue task")
    error = glue[[position for position, _ in glue].index(failed[0])][1]["taskFailedEventDetails"].get("error")
    again = [position for position, event in glue if event["type"] == "TaskScheduled" and position > failed[0]]
    if not again:
        raise Fail(f"execution {execution['name']} of {date}: its Glue task failed once with {error} (a transient fault) and was not "
                   f"tried again; the execution is {execution['status']}")
    if execution["status"] != "SUCCEEDED":
        raise Fail(f"execution {execution['name']} of {date}: the Glue task was tried again after {error}, but the execution is {execution['status']}")
    return f"night {date}: the Glue task failed with {error}, was retried, and the night SUCCEEDED"


def _curated_expected(ctx: LabContext, night: int) -> dict[str, dict]:
    return ctx.dataset["nights"][night - 1]["curated"]


@check("L10-06", "Each night's curated sales are the cleaned raw data", points=2, task="3.1", timeout=SCENARIO_TIMEOUT,
       hints=("The job cleans one night: invalid rows out (missing store, quantity not a whole number >= 1, price not a number >= 0), a sale sent twice kept once, amount = quantity x unit_price; a re-run replaces the night rather than adding to it.",
              "A Python shell job reads s3://dea-pipeline-raw/sales/night=<night>/ with boto3, writes s3://dea-pipeline-curated/sales/night=<night>/ and registers that partition of pipeline.curated_sales (CreatePartition).",
              "getResolvedOptions(sys.argv, ['night', ...]); s3.put_object(Bucket='dea-pipeline-curated', Key=f'sales/night={night}/sales.csv', Body=...) (one fixed key per night); glue.create_partition(DatabaseName='pipeline', TableName='curated_sales', PartitionInput={'Values': [night], ...})"),
       docs="https://docs.aws.amazon.com/glue/latest/dg/add-job-python.html")
def curated_sales(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    if isinstance(scenario.curated, str):
        raise Fail(scenario.curated)
    nights = _succeeded_nights(scenario)
    for night in nights:
        date = scenario.nights[night].isoformat()
        rows = scenario.curated.get(date, [])
        expected = _curated_expected(ctx, night)
        got = [row[0] for row in rows]
        if len(got) != len(set(got)):
            twice = next(sale for sale in got if got.count(sale) > 1)
            raise Fail(f"{DATABASE}.{CURATED_TABLE} night {date}: sale {twice} appears {got.count(twice)} times ({len(got)} rows for {len(set(got))} sales)")
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected), key=str)
        if missing or extra:
            raise Fail(f"{DATABASE}.{CURATED_TABLE} night {date} has {len(set(got))} sales, expected {len(expected)}"
                       + (f"; missing e.g. {missing[:3]}" if missing else "") + (f"; not valid or not that night's, e.g. {extra[:3]}" if extra else ""))
        for sale_id, store, sku, quantity, unit_price, amount in rows:
            want = expected[sale_id]
            try:
                same = (store, sku, int(quantity)) == (want["store"], want["sku"], want["quantity"]) \
                    and abs(float(unit_price) - want["unit_price"]) <= AMOUNT_TOLERANCE and abs(float(amount) - want["amount"]) <= AMOUNT_TOLERANCE
            except (TypeError, ValueError):
                same = False
            if not same:
                raise Fail(f"{DATABASE}.{CURATED_TABLE} night {date}, sale {sale_id}: {[store, sku, quantity, unit_price, amount]}, expected "
                           f"{[want['store'], want['sku'], want['quantity'], want['unit_price'], want['amount']]}")
    return f"nights {', '.join(scenario.nights[n].isoformat() for n in nights)}: every valid sale curated once, with its amount"


def _aggregate_problem(ctx: LabContext, scenario: Scenario, aggregate: dict | str, night: int) -> str | None:
    if isinstance(aggregate, str):
        return aggregate
    date = scenario.nights[night].isoformat()
    rows = aggregate.get(date, [])
    stores = [row[0] for row in rows]
    if len(stores) != len(set(stores)):
        twice = next(store for store in stores if stores.count(store) > 1)
        return f"{DATABASE}.{DAILY_TABLE} night {date}: store {twice} has {stores.count(twice)} rows, expected one"
    expected = ctx.dataset["nights"][night - 1]["aggregate"]
    if set(stores) != set(expected):
        return f"{DATABASE}.{DAILY_TABLE} night {date} has rows for {sorted(stores) or 'no store'}, expected {sorted(expected)}"
    for store, count, units, revenue in rows:
        want = expected[store]
        try:
            same = int(count) == want["sales"] and int(units) == want["units"] and abs(float(revenue) - want["revenue"]) <= 0.011
        except (TypeError, ValueError):
            same = False
        if not same:
            return (f"{DATABASE}.{DAILY_TABLE} night {date}, store {store}: sales {count}, units {units}, revenue {revenue}; "
                    f"expected {want['sales']}, {want['units']}, {want['revenue']:.2f}")
    return None


@check("L10-07", "The daily aggregate has each night's totals per store", points=2, task="3.1", timeout=SCENARIO_TIMEOUT,
       hints=("The aggregate is built from the curated night once the job has finished writing it: one row per store and night (sales, units, revenue).",
              "An Athena INSERT INTO pipeline.daily_sales SELECT ... GROUP BY store, night run by arn:aws:states:::athena:startQueryExecution.sync after the Glue .sync task.",
              "INSERT INTO pipeline.daily_sales SELECT store, count(*), sum(quantity), round(sum(amount), 2), night FROM pipeline.curated_sales WHERE ... GROUP BY store, night"),
       docs=f"{SFN_DOCS}/connect-athena.html")
def daily_aggregate(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    nights = _succeeded_nights(scenario)
    for night in nights:
        problem = _aggregate_problem(ctx, scenario, scenario.aggregate_after_nights, night)
        if problem:
            raise Fail(problem + " (after the nights ran)")
    return f"{DATABASE}.{DAILY_TABLE}: each store's totals for nights {', '.join(scenario.nights[n].isoformat() for n in nights)}"


def _naming(texts: list[str], date: datetime.date) -> list[str]:
    return [text for text in texts if date.isoformat() in text]


@check("L10-08", "A success notice reaches operations for each night", points=1, task="1.3", timeout=SCENARIO_TIMEOUT,
       hints=("Operations learn that a night is done from a notice: the last state publishes to an SNS topic, and the operations queue subscribes to it.",
              "arn:aws:states:::sns:publish with a Message naming the night; SNS CreateTopic, Subscribe (Protocol sqs, the queue's ARN) and a queue policy letting the topic send.",
              "sns.subscribe(TopicArn=notices_topic_arn, Protocol='sqs', Endpoint=<ARN of queue dea-pipeline-notices>); \"Message.$\": \"States.Format('night {} is done', $.night)\""),
       docs="https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html")
def success_notices(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    nights = _succeeded_nights(scenario)
    for night in nights:
        if not _naming(scenario.notices, scenario.nights[night]):
            raise Fail(f"queue {sales.NOTICES_QUEUE} received {len(scenario.notices)} messages, none naming the night {scenario.nights[night]} that SUCCEEDED")
    failed_night = scenario.nights[FAILING_NIGHT]
    if _naming(scenario.notices, failed_night):
        raise Fail(f"queue {sales.NOTICES_QUEUE} received a success notice naming {failed_night}, a night whose Glue job could not run")
    return f"queue {sales.NOTICES_QUEUE} has a notice for each night that succeeded, none for the failed one"


@check("L10-09", "A failing night raises an alert and the execution FAILS", points=2, task="1.3", timeout=SCENARIO_TIMEOUT,
       hints=("When a step fails for good (retries spent), the pipeline should tell someone and end FAILED, so the failure shows in the console, in metrics and to a redrive.",
              "A Catch on each task (ErrorEquals States.ALL, ResultPath $.error) leading to an sns:publish to the alerts topic, then a Fail state.",
              "\"Catch\": [{\"ErrorEquals\": [\"States.ALL\"], \"ResultPath\": \"$.error\", \"Next\": \"Alert\"}]; \"Alert\": {... \"Resource\": \"arn:aws:states:::sns:publish\", ..., \"Next\": \"Failed\"}, \"Failed\": {\"Type\": \"Fail\", \"Error\": \"...\"}"),
       docs=f"{SFN_DOCS}/state-fail.html")
def failure_alert(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    execution = _night_execution(scenario, FAILING_NIGHT)
    date = scenario.nights[FAILING_NIGHT]
    if execution["status"] != "FAILED":
        raise Fail(f"execution {execution['name']} of {date}, when every StartJobRun was throttled, ended {execution['status']}, expected FAILED")
    if not _naming(scenario.alerts, date):
        raise Fail(f"queue {sales.ALERTS_QUEUE} received {len(scenario.alerts)} messages, none naming the failed night {date}")
    history = scenario.histories[execution["executionArn"]]
    if not any(event["type"] == "FailStateEntered" for event in history):
        raise Fail(f"execution {execution['name']} of {date} FAILED on the error itself, not through a Fail state after the alert")
    return f"night {date} raised an alert in {sales.ALERTS_QUEUE} and FAILED through a Fail state"


@check("L10-10", "Running a night again changes no night's aggregate", points=2, task="3.1", timeout=SCENARIO_TIMEOUT,
       hints=("Nights get re-run (a redrive, a manual restart): each step must give the same result the second time, so an aggregate must not add rows it already has.",
              "The Athena statement adds only nights the aggregate does not have yet (or replaces the night it runs for), and the job overwrites its night.",
              "INSERT INTO pipeline.daily_sales SELECT ... FROM pipeline.curated_sales WHERE night NOT IN (SELECT DISTINCT night FROM pipeline.daily_sales) GROUP BY store, night"),
       docs="https://docs.aws.amazon.com/athena/latest/ug/insert-into.html")
def rerun_is_idempotent(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    date = scenario.nights[RERUN_NIGHT]
    _night_execution(scenario, RERUN_NIGHT)
    if scenario.rerun["status"] != "SUCCEEDED":
        raise Fail(f"a new execution with the input of night {date} ended {scenario.rerun['status']}: {scenario.rerun.get('error', '')}")
    for aggregate in (scenario.aggregate_after_nights, scenario.aggregate_after_rerun):
        if isinstance(aggregate, str):
            raise Fail(aggregate)
    if not scenario.aggregate_after_nights.get(date.isoformat()):
        raise Fail(f"{DATABASE}.{DAILY_TABLE} had no rows for night {date} before it ran again, so a second run could not be judged")
    for night in GOOD_NIGHTS:
        key = scenario.nights[night].isoformat()
        before, after = scenario.aggregate_after_nights.get(key, []), scenario.aggregate_after_rerun.get(key, [])
        if sorted(before) != sorted(after):
            raise Fail(f"{DATABASE}.{DAILY_TABLE} night {key}: {len(before)} rows before night {date} ran again, {len(after)} after")
    return f"night {date} ran again: the aggregate rows of every night are unchanged"


@check("L10-11", "The Glue and Athena steps wait for their work (.sync)", points=1, task="1.3", timeout=SCENARIO_TIMEOUT,
       hints=("A request-response task ends when the job or query has been started; the next step then reads data that is not written yet. Run a job and wait for it instead.",
              "The .sync integration pattern: arn:aws:states:::glue:startJobRun.sync and arn:aws:states:::athena:startQueryExecution.sync end when the run or query ends, and fail if it failed.",
              "\"Resource\": \"arn:aws:states:::glue:startJobRun.sync\" (and athena:startQueryExecution.sync)"),
       docs=f"{SFN_DOCS}/connect-to-resource.html#connect-sync")
def steps_wait(ctx: LabContext) -> str:
    scenario = _scenario(ctx)
    for night in _succeeded_nights(scenario):
        execution = _night_execution(scenario, night)
        history = scenario.histories[execution["executionArn"]]
        for service, action, state_of in (("glue", "startJobRun", lambda out: out.get("JobRunState")),
                                          ("athena", "startQueryExecution", lambda out: out.get("QueryExecution", {}).get("Status", {}).get("State"))):
            done = [event for _, event in _tasks(history, service, action) if event["type"] == "TaskSucceeded"]
            ended = [state_of(_task_output(event)) for event in done]
            if not done or ended[-1] != "SUCCEEDED":
                raise Fail(f"execution {execution['name']} of {scenario.nights[night]}: its {service} {action} task ended "
                           + ("without the run's end state: the next step started while it was still running" if done else "never"))
    return "each night's Glue task ended with its run SUCCEEDED and its Athena task with its query SUCCEEDED"
