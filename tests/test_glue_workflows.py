"""Glue workflows and triggers, executed: runs, their graphs and statistics, run properties read by a job,
SCHEDULED triggers on the lab clock, MaxConcurrentRuns, StopWorkflowRun, ResumeWorkflowRun, restarts.
pythonshell jobs throughout (fast, no Spark)."""

from __future__ import annotations

import datetime
import json
import time

import pytest
from botocore.exceptions import ClientError

from dealab.stack import control
from tests.conftest import client, kill_hard, service_role
from tests.gluekit import FINAL_RUN_STATES, upload_script, wait_for_run
from tests.test_glue_crawlers import _advance_clock

BUCKET = "glue-workflow-test"

PASSES = "print('ok')\n"
FAILS = "raise RuntimeError('bad input')\n"
SLEEPS = "import time\ntime.sleep(120)\n"
# Reads the run's properties through the workflow arguments, as on AWS, and writes one back.
READS_PROPERTIES = """
import sys, boto3
from awsglue.utils import getResolvedOptions
args = getResolvedOptions(sys.argv, ["WORKFLOW_NAME", "WORKFLOW_RUN_ID"])
glue = boto3.client("glue")
properties = glue.get_workflow_run_properties(Name=args["WORKFLOW_NAME"], RunId=args["WORKFLOW_RUN_ID"])["RunProperties"]
glue.put_workflow_run_properties(Name=args["WORKFLOW_NAME"], RunId=args["WORKFLOW_RUN_ID"],
                                 RunProperties={"seen_target": properties["target"], "recovered": "yes"})
"""


def _bucket(settings) -> None:
    s3 = client(settings, "s3")
    s3.create_bucket(Bucket=BUCKET)


def _job(settings, name: str, source: str, **definition) -> None:
    client(settings, "glue").create_job(
        Name=name, Role=service_role(settings, "glue", "glue"),
        Command={"Name": "pythonshell", "ScriptLocation": upload_script(settings, BUCKET, f"scripts/{name}.py", source), "PythonVersion": "3.9"},
        **definition,
    )


def _wait_for_workflow_run(settings, workflow: str, run_id: str, timeout: float = 120) -> dict:
    glue = client(settings, "glue")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = glue.get_workflow_run(Name=workflow, RunId=run_id, IncludeGraph=True)["Run"]
        if run["Status"] not in ("RUNNING", "STOPPING"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"workflow run {run_id} of {workflow} did not finish within {timeout}s: {run['Status']} {run['Statistics']}")


def _nodes(run: dict) -> dict[str, dict]:
    return {node["Name"]: node for node in run["Graph"]["Nodes"]}


@pytest.fixture
def etl_workflow(clean_stack):
    """start (ON_DEMAND) → crawler; on crawler SUCCEEDED → load (fails); ANY load FAILED → recover (reads run
    properties); load SUCCEEDED → publish (never, here)."""
    settings = clean_stack
    _bucket(settings)
    s3, glue = client(settings, "s3"), client(settings, "glue")
    s3.put_object(Bucket=BUCKET, Key="raw/orders/part-0.json", Body=b'{"id": 1, "amount": 9.5}\n{"id": 2, "amount": 3.0}\n')
    glue.create_database(DatabaseInput={"Name": "sales"})
    glue.create_crawler(Name="raw-orders", Role=service_role(clean_stack, "glue", "glue"), DatabaseName="sales", Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/raw/"}]})
    _job(settings, "load", FAILS)
    _job(settings, "recover", READS_PROPERTIES, DefaultArguments={"--mode": "default", "--extra": "kept"})
    _job(settings, "publish", PASSES)
    glue.create_workflow(Name="etl", DefaultRunProperties={"target": "s3://curated/"})
    glue.create_trigger(Name="start", WorkflowName="etl", Type="ON_DEMAND", Actions=[{"CrawlerName": "raw-orders"}])
    glue.create_trigger(Name="after-crawl", WorkflowName="etl", Type="CONDITIONAL", StartOnCreation=True,
                        Predicate={"Conditions": [{"LogicalOperator": "EQUALS", "CrawlerName": "raw-orders", "CrawlState": "SUCCEEDED"}]},
                        Actions=[{"JobName": "load"}])
    glue.create_trigger(Name="on-failure", WorkflowName="etl", Type="CONDITIONAL", StartOnCreation=True,
                        Predicate={"Logical": "ANY", "Conditions": [
                            {"LogicalOperator": "EQUALS", "JobName": "load", "State": "FAILED"},
                            {"LogicalOperator": "EQUALS", "JobName": "load", "State": "TIMEOUT"}]},
                        Actions=[{"JobName": "recover", "Arguments": {"--mode": "recovery"}, "Timeout": 7}])
    glue.create_trigger(Name="on-success", WorkflowName="etl", Type="CONDITIONAL", StartOnCreation=True,
                        Predicate={"Conditions": [{"LogicalOperator": "EQUALS", "JobName": "load", "State": "SUCCEEDED"}]},
                        Actions=[{"JobName": "publish"}])
    return settings


def test_a_workflow_runs_crawler_then_conditional_jobs_with_graph_statistics_and_properties(etl_workflow):
    settings = etl_workflow
    glue = client(settings, "glue")
    run_id = glue.start_workflow_run(Name="etl", RunProperties={"target": "s3://curated/orders/"})["RunId"]
    run = _wait_for_workflow_run(settings, "etl", run_id)

    assert run["Status"] == "COMPLETED" and run["WorkflowRunId"] == run_id
    assert run["Statistics"] == {"TotalActions": 3, "SucceededActions": 2, "FailedActions": 1, "TimeoutActions": 0,
                                 "StoppedActions": 0, "RunningActions": 0, "ErroredActions": 0, "WaitingActions": 0}
    nodes = _nodes(run)
    assert {name: node["Type"] for name, node in nodes.items()} == {
        "start": "TRIGGER", "after-crawl": "TRIGGER", "on-failure": "TRIGGER", "on-success": "TRIGGER",
        "raw-orders": "CRAWLER", "load": "JOB", "recover": "JOB", "publish": "JOB"}
    assert [crawl["State"] for crawl in nodes["raw-orders"]["CrawlerDetails"]["Crawls"]] == ["SUCCEEDED"]
    assert glue.get_table(DatabaseName="sales", Name="orders")["Table"]["Name"] == "orders"  # the crawl really ran
    [load] = nodes["load"]["JobDetails"]["JobRuns"]
    assert load["JobRunState"] == "FAILED" and "RuntimeError: bad input" in load["ErrorMessage"] and load["TriggerName"] == "after-crawl"
    [recover] = nodes["recover"]["JobDetails"]["JobRuns"]
    assert recover["JobRunState"] == "SUCCEEDED" and recover["Timeout"] == 7 and recover["TriggerName"] == "on-failure"
    # the action's Arguments over the job's defaults, and the workflow's own arguments
    assert recover["Arguments"] == {"--mode": "recovery", "--extra": "kept", "--WORKFLOW_NAME": "etl", "--WORKFLOW_RUN_ID": run_id}
    assert not nodes["publish"].get("JobDetails", {}).get("JobRuns")  # its condition never held
    ids = {name: node["UniqueId"] for name, node in nodes.items()}
    edges = {(edge["SourceId"], edge["DestinationId"]) for edge in run["Graph"]["Edges"]}
    assert {(ids["start"], ids["raw-orders"]), (ids["raw-orders"], ids["after-crawl"]), (ids["after-crawl"], ids["load"]),
            (ids["load"], ids["on-failure"]), (ids["on-failure"], ids["recover"]), (ids["load"], ids["on-success"]),
            (ids["on-success"], ids["publish"])} == edges

    # the job read the run's properties (given at start, over the workflow's defaults) and wrote them back
    assert glue.get_workflow_run_properties(Name="etl", RunId=run_id)["RunProperties"] == {
        "target": "s3://curated/orders/", "seen_target": "s3://curated/orders/", "recovered": "yes"}
    workflow = glue.get_workflow(Name="etl", IncludeGraph=True)["Workflow"]
    assert workflow["LastRun"]["WorkflowRunId"] == run_id and len(workflow["Graph"]["Nodes"]) == 8
    assert [r["WorkflowRunId"] for r in glue.get_workflow_runs(Name="etl")["Runs"]] == [run_id]

    # ResumeWorkflowRun: the failed node and what follows it run again in a new run; the crawl is kept, not repeated
    resumed = glue.resume_workflow_run(Name="etl", RunId=run_id, NodeIds=[ids["load"]])
    assert resumed["NodeIds"] == [ids["load"]] and resumed["RunId"] != run_id
    again = _wait_for_workflow_run(settings, "etl", resumed["RunId"])
    assert again["PreviousRunId"] == run_id and again["Status"] == "COMPLETED"
    assert again["Statistics"]["TotalActions"] == 2 and again["Statistics"]["FailedActions"] == 1
    assert len(_nodes(again)["raw-orders"]["CrawlerDetails"]["Crawls"]) == 1
    assert len(glue.get_job_runs(JobName="load")["JobRuns"]) == 2
    with pytest.raises(ClientError) as not_attempted:
        glue.resume_workflow_run(Name="etl", RunId=run_id, NodeIds=[ids["publish"]])
    assert not_attempted.value.response["Error"]["Code"] == "InvalidInputException"


def test_a_scheduled_trigger_starts_a_run_at_each_due_time_of_a_clock_move(clean_stack):
    settings = clean_stack
    _bucket(settings)
    glue = client(settings, "glue")
    _job(settings, "nightly-load", PASSES)
    glue.create_workflow(Name="nightly")
    glue.create_trigger(Name="at-two", WorkflowName="nightly", Type="SCHEDULED", Schedule="cron(0 2 * * ? *)", StartOnCreation=True,
                        Actions=[{"JobName": "nightly-load"}])
    time.sleep(1)  # no due time passes in real time
    assert glue.get_workflow_runs(Name="nightly")["Runs"] == []

    _advance_clock(settings, "3d")
    runs = sorted(glue.get_workflow_runs(Name="nightly", IncludeGraph=True)["Runs"], key=lambda run: run["StartedOn"])
    assert len(runs) == 3 and all(run["Status"] == "COMPLETED" for run in runs)  # each settled before the clock moved on
    started = [run["StartedOn"].astimezone(datetime.timezone.utc) for run in runs]
    assert [(moment.hour, moment.minute) for moment in started] == [(2, 0)] * 3
    assert [later.date() - earlier.date() for earlier, later in zip(started, started[1:])] == [datetime.timedelta(days=1)] * 2
    job_runs = [_nodes(run)["nightly-load"]["JobDetails"]["JobRuns"][0] for run in runs]
    assert all(job_run["JobRunState"] == "SUCCEEDED" and job_run["TriggerName"] == "at-two" for job_run in job_runs)

    glue.stop_trigger(Name="at-two")
    _advance_clock(settings, "2d")
    assert len(glue.get_workflow_runs(Name="nightly")["Runs"]) == 3

    # UpdateTrigger changes the schedule and keeps the rest; started again, it fires at the new time
    updated = glue.update_trigger(Name="at-two", TriggerUpdate={"Schedule": "cron(30 6 * * ? *)"})["Trigger"]
    assert updated["Schedule"] == "cron(30 6 * * ? *)" and updated["WorkflowName"] == "nightly" and updated["State"] == "DEACTIVATED"
    glue.start_trigger(Name="at-two")
    _advance_clock(settings, "1d")
    latest = max(glue.get_workflow_runs(Name="nightly")["Runs"], key=lambda run: run["StartedOn"])
    assert len(glue.get_workflow_runs(Name="nightly")["Runs"]) == 4
    assert (latest["StartedOn"].astimezone(datetime.timezone.utc).hour, latest["StartedOn"].minute) == (6, 30)
    with pytest.raises(ClientError) as bad_schedule:
        glue.create_trigger(Name="too-often", Type="SCHEDULED", Schedule="cron(* * * * ? *)", Actions=[{"JobName": "nightly-load"}])
    assert bad_schedule.value.response["Error"]["Code"] == "InvalidInputException"


def test_max_concurrent_runs_and_stop_workflow_run(clean_stack):
    settings = clean_stack
    _bucket(settings)
    glue = client(settings, "glue")
    _job(settings, "slow", SLEEPS, ExecutionProperty={"MaxConcurrentRuns": 2})
    glue.create_workflow(Name="single", MaxConcurrentRuns=1)
    glue.create_trigger(Name="go", WorkflowName="single", Type="ON_DEMAND", Actions=[{"JobName": "slow"}])
    run_id = glue.start_workflow_run(Name="single")["RunId"]
    with pytest.raises(ClientError) as exceeded:
        glue.start_workflow_run(Name="single")
    assert exceeded.value.response["Error"]["Code"] == "ConcurrentRunsExceededException"

    deadline = time.monotonic() + 30
    while glue.get_workflow_run(Name="single", RunId=run_id)["Run"]["Statistics"]["RunningActions"] != 1:
        assert time.monotonic() < deadline, "the workflow's job never started"
        time.sleep(0.2)
    glue.stop_workflow_run(Name="single", RunId=run_id)
    run = _wait_for_workflow_run(settings, "single", run_id, timeout=60)
    assert run["Status"] == "STOPPED" and run["Statistics"]["StoppedActions"] == 1 and run["Statistics"]["TotalActions"] == 1
    assert _nodes(run)["slow"]["JobDetails"]["JobRuns"][0]["JobRunState"] == "STOPPED"
    with pytest.raises(ClientError) as not_running:
        glue.stop_workflow_run(Name="single", RunId=run_id)
    assert not_running.value.response["Error"]["Code"] == "IllegalWorkflowStateException"
    assert glue.start_workflow_run(Name="single")["RunId"] != run_id  # the stopped run no longer counts


def test_start_trigger_fires_an_on_demand_trigger_outside_workflows(clean_stack):
    settings = clean_stack
    _bucket(settings)
    glue = client(settings, "glue")
    _job(settings, "first", PASSES)
    _job(settings, "second", PASSES)
    glue.create_trigger(Name="kick", Type="ON_DEMAND", Actions=[{"JobName": "first", "Arguments": {"--day": "1"}}])
    glue.create_trigger(Name="then", Type="CONDITIONAL", StartOnCreation=True,
                        Predicate={"Conditions": [{"LogicalOperator": "EQUALS", "JobName": "first", "State": "SUCCEEDED"}]},
                        Actions=[{"JobName": "second"}])
    with pytest.raises(ClientError) as bad_state:
        glue.create_trigger(Name="never", Type="CONDITIONAL", Actions=[{"JobName": "second"}],
                            Predicate={"Conditions": [{"LogicalOperator": "EQUALS", "JobName": "first", "State": "RUNNING"}]})
    assert bad_state.value.response["Error"]["Code"] == "InvalidInputException" and "RUNNING" in bad_state.value.response["Error"]["Message"]
    glue.start_trigger(Name="kick")
    deadline = time.monotonic() + 60
    while not glue.get_job_runs(JobName="second")["JobRuns"]:
        assert time.monotonic() < deadline, "the CONDITIONAL trigger never started job second"
        time.sleep(0.2)
    [first] = glue.get_job_runs(JobName="first")["JobRuns"]
    assert first["JobRunState"] == "SUCCEEDED" and first["Arguments"] == {"--day": "1"} and first["TriggerName"] == "kick"
    [second] = glue.get_job_runs(JobName="second")["JobRuns"]
    assert wait_for_run(settings, "second", second["Id"])["JobRunState"] == "SUCCEEDED"


def test_a_restart_keeps_finished_runs_and_ends_one_in_flight_as_error(private_stack, monkeypatch):
    settings = private_stack
    for key, value in settings.client_env().items():
        monkeypatch.setenv(key, value)
    _bucket(settings)
    glue = client(settings, "glue")
    _job(settings, "quick", PASSES)
    _job(settings, "long", SLEEPS)
    glue.create_workflow(Name="kept")
    glue.create_trigger(Name="kept-start", WorkflowName="kept", Type="ON_DEMAND", Actions=[{"JobName": "quick"}])
    glue.create_workflow(Name="cut")
    glue.create_trigger(Name="cut-start", WorkflowName="cut", Type="ON_DEMAND", Actions=[{"JobName": "long"}])
    finished_id = glue.start_workflow_run(Name="kept", RunProperties={"day": "1"})["RunId"]
    finished = _wait_for_workflow_run(settings, "kept", finished_id)
    cut_id = glue.start_workflow_run(Name="cut")["RunId"]
    deadline = time.monotonic() + 30
    while glue.get_workflow_run(Name="cut", RunId=cut_id)["Run"]["Statistics"]["RunningActions"] != 1:
        assert time.monotonic() < deadline, "the long job never started"
        time.sleep(0.2)

    kill_hard(settings)
    control.up(settings)
    glue = client(settings, "glue")
    after = glue.get_workflow_run(Name="kept", RunId=finished_id, IncludeGraph=True)["Run"]
    assert after["Status"] == "COMPLETED" and after["Statistics"] == finished["Statistics"]
    assert after["WorkflowRunProperties"] == {"day": "1"}
    assert _nodes(after)["quick"]["JobDetails"]["JobRuns"][0]["JobRunState"] == "SUCCEEDED"
    cut = glue.get_workflow_run(Name="cut", RunId=cut_id, IncludeGraph=True)["Run"]
    assert cut["Status"] == "ERROR" and "stack stopped" in cut["ErrorMessage"]
    assert cut["Statistics"]["FailedActions"] == 1 and cut["Statistics"]["RunningActions"] == 0
    assert _nodes(cut)["long"]["JobDetails"]["JobRuns"][0]["JobRunState"] in FINAL_RUN_STATES
