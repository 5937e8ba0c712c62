"""Glue EVENT triggers started by EventBridge: a rule whose target is a workflow hands its events to Glue
(NotifyEvent); the workflow's EVENT trigger batches them by BatchSize and BatchWindow (on the lab clock) and the
run carries the batch's event ids in `aws:eventIds` and its StartingEventBatchCondition.
The batching logic is tested on its own first (no stack), then end to end with one pythonshell job."""

from __future__ import annotations

import datetime
import json
import time

import pytest
from botocore.exceptions import ClientError

from dealab.engines.glue.eventbatches import EventBatches, batching_problem, event_ids_text
from dealab.engines.glue.jobs import GlueError
from dealab.wire import labtime
from dealab.wire.timers import timers
from tests.conftest import client, service_role
from tests.test_glue_crawlers import _advance_clock
from tests.test_glue_workflows import BUCKET, _bucket, _job, _wait_for_workflow_run

ACCOUNT = "123456789012"
# Reads the batch's event ids from the run's properties, as AWS's guide shows, and writes them back.
READS_EVENT_IDS = """
import sys, boto3
from awsglue.utils import getResolvedOptions
args = getResolvedOptions(sys.argv, ["WORKFLOW_NAME", "WORKFLOW_RUN_ID"])
glue = boto3.client("glue")
properties = glue.get_workflow_run_properties(Name=args["WORKFLOW_NAME"], RunId=args["WORKFLOW_RUN_ID"])["RunProperties"]
glue.put_workflow_run_properties(Name=args["WORKFLOW_NAME"], RunId=args["WORKFLOW_RUN_ID"], RunProperties={"seen": properties["aws:eventIds"]})
"""


def _trigger(size: int, window: int | None = None, state: str = "ACTIVATED") -> dict:
    condition = {"BatchSize": size, **({"BatchWindow": window} if window else {})}
    return {"Name": "on-event", "Type": "EVENT", "State": state, "EventBatchingCondition": condition}


class _Runs:
    def __init__(self):
        self.started: list[tuple] = []

    def start(self, workflow, properties, trigger, condition) -> str:
        self.started.append((workflow, properties, trigger, condition))
        return f"wr_{len(self.started)}"


def _batches(tmp_path, trigger: dict, runs: _Runs) -> EventBatches:
    return EventBatches(tmp_path, lambda workflow: [trigger], runs.start, lambda run_id: True)


def test_a_batch_starts_a_run_at_its_size_or_when_its_window_ends_on_the_lab_clock(tmp_path):
    runs = _Runs()
    batches = _batches(tmp_path, _trigger(3, 60), runs)
    try:
        assert batches.notify("wf", "e1") is None and batches.notify("wf", "e2") is None
        assert batches.notify("wf", "e3") == "wr_1"
        assert runs.started == [("wf", {"aws:eventIds": "[e1, e2, e3]"}, "on-event", {"BatchSize": 3})]

        assert batches.notify("wf", "e4") is None
        opened = labtime.live_now()
        assert timers.due_at("glue", "event-batch/wf") == datetime.datetime.fromisoformat(
            json.loads((tmp_path / "glue" / "event-batches.json").read_text())["wf"]["FirstAt"]) + datetime.timedelta(seconds=60)
        timers.fire_due(opened + datetime.timedelta(seconds=59))
        assert len(runs.started) == 1  # the window has not ended
        # the open batch is in the store: an engine made anew (a restart) arms its window again and keeps adding
        batches = _batches(tmp_path, _trigger(3, 60), runs)
        assert batches.pending("wf") == ["e4"] and timers.due_at("glue", "event-batch/wf") is not None
        assert batches.notify("wf", "e5") is None
        timers.fire_due(opened + datetime.timedelta(seconds=61))
        assert runs.started[1] == ("wf", {"aws:eventIds": "[e4, e5]"}, "on-event", {"BatchWindow": 60})
        assert batches.pending("wf") == [] and timers.due_at("glue", "event-batch/wf") is None
    finally:
        batches.reset()


def test_default_window_inactive_trigger_and_refused_conditions(tmp_path):
    runs = _Runs()
    batches = _batches(tmp_path, _trigger(2), runs)
    try:
        batches.notify("wf", "only")
        due = timers.due_at("glue", "event-batch/wf")
        assert due is not None and (due - labtime.live_now()).total_seconds() == pytest.approx(900, abs=5)
    finally:
        batches.reset()
    with pytest.raises(GlueError) as inactive:
        _batches(tmp_path, _trigger(1, state="CREATED"), runs).notify("wf", "e")
    assert inactive.value.code == "InvalidInputException" and "ACTIVATED EVENT trigger" in inactive.value.message
    assert batching_problem({"BatchSize": 0}) and batching_problem({"BatchSize": 5, "BatchWindow": 901}) and batching_problem({"BatchWindow": 5})
    assert batching_problem({"BatchSize": 100, "BatchWindow": 900}) is None and batching_problem(None) is None
    assert event_ids_text(["a"]) == "[a]"


def _event_workflow(settings, size: int, window: int) -> None:
    _bucket(settings)
    glue, events = client(settings, "glue"), client(settings, "events")
    _job(settings, "on-orders", READS_EVENT_IDS)
    glue.create_workflow(Name="orders-arrive", DefaultRunProperties={"kept": "yes"})
    glue.create_trigger(Name="orders-event", WorkflowName="orders-arrive", Type="EVENT", StartOnCreation=True,
                        EventBatchingCondition={"BatchSize": size, "BatchWindow": window}, Actions=[{"JobName": "on-orders"}])
    events.put_rule(Name="orders-landed", EventPattern=json.dumps({"source": ["lab.orders"]}))
    events.put_targets(Rule="orders-landed", Targets=[{
        "Id": "workflow", "Arn": f"arn:aws:glue:{settings.region}:{ACCOUNT}:workflow/orders-arrive",
        "RoleArn": service_role(settings, "eventbridge-glue", "events")}])


def _put_orders(settings, count: int) -> list[str]:
    entries = [{"Source": "lab.orders", "DetailType": "Order landed", "Detail": json.dumps({"n": n})} for n in range(count)]
    return [entry["EventId"] for entry in client(settings, "events").put_events(Entries=entries)["Entries"]]


def _wait_for_runs(settings, workflow: str, count: int, timeout: float = 30) -> list[dict]:
    glue = client(settings, "glue")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = glue.get_workflow_runs(Name=workflow)["Runs"]
        if len(runs) >= count:
            return sorted(runs, key=lambda run: run["StartedOn"])
        time.sleep(0.1)
    raise AssertionError(f"{workflow} has {len(runs)} runs, not {count}")


def test_an_eventbridge_rule_starts_a_workflow_run_by_batch_size_then_by_window(clean_stack):
    settings = clean_stack
    _event_workflow(settings, size=2, window=120)
    glue = client(settings, "glue")

    ids = _put_orders(settings, 2)
    run = _wait_for_workflow_run(settings, "orders-arrive", _wait_for_runs(settings, "orders-arrive", 1)[0]["WorkflowRunId"])
    assert run["Status"] == "COMPLETED" and run["StartingEventBatchCondition"] == {"BatchSize": 2}
    properties = run["WorkflowRunProperties"]
    assert properties["aws:eventIds"] == f"[{ids[0]}, {ids[1]}]" and properties["seen"] == properties["aws:eventIds"]
    assert properties["kept"] == "yes"
    trigger_node = next(node for node in run["Graph"]["Nodes"] if node["Type"] == "TRIGGER")
    assert trigger_node["Name"] == "orders-event"

    # one event waits for its window, which runs on the lab clock: a clock move past it starts the run
    late = _put_orders(settings, 1)
    time.sleep(0.5)
    assert len(glue.get_workflow_runs(Name="orders-arrive")["Runs"]) == 1
    _advance_clock(settings, "3m")
    window_run = _wait_for_runs(settings, "orders-arrive", 2)[-1]
    window_run = _wait_for_workflow_run(settings, "orders-arrive", window_run["WorkflowRunId"])
    assert window_run["StartingEventBatchCondition"] == {"BatchWindow": 120}
    assert window_run["WorkflowRunProperties"]["aws:eventIds"] == f"[{late[0]}]"

    # a workflow target needs a role, as on AWS
    with pytest.raises(ClientError) as no_role:
        client(settings, "events").put_targets(Rule="orders-landed", Targets=[
            {"Id": "bare", "Arn": f"arn:aws:glue:{settings.region}:{ACCOUNT}:workflow/orders-arrive"}])
    assert no_role.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as bad_batch:
        glue.create_trigger(Name="too-big", WorkflowName="orders-arrive", Type="EVENT",
                            EventBatchingCondition={"BatchSize": 101}, Actions=[{"JobName": "on-orders"}])
    assert bad_batch.value.response["Error"]["Code"] == "InvalidInputException"
