"""Lab-time work that is still pending when the stack is killed comes back with it: an EVENT trigger's open batch
of EventBridge events (its window ends after the restart and starts the run) and a restore still under way
(its s3:ObjectRestore:Completed is raised when the lab clock reaches it after the restart)."""

from __future__ import annotations

import json

from dealab.stack import control
from tests.conftest import client, kill_hard, service_role
from tests.test_glue_event_triggers import ACCOUNT, _put_orders, _wait_for_runs
from tests.test_lifecycle_engine import advance
from tests.test_s3_notifications import _drain, _queue, _records


def test_an_open_event_batch_and_a_pending_restore_survive_kill_9(private_stack):
    settings = private_stack
    glue, events, s3 = client(settings, "glue"), client(settings, "events"), client(settings, "s3")
    glue.create_workflow(Name="landing")
    # the action names no job: the run is made (and ends ERROR), which is all this test looks at
    glue.create_trigger(Name="on-landing", WorkflowName="landing", Type="EVENT", StartOnCreation=True,
                        EventBatchingCondition={"BatchSize": 5, "BatchWindow": 60}, Actions=[{"JobName": "absent"}])
    events.put_rule(Name="orders", EventPattern=json.dumps({"source": ["lab.orders"]}))
    events.put_targets(Rule="orders", Targets=[{"Id": "wf", "Arn": f"arn:aws:glue:{settings.region}:{ACCOUNT}:workflow/landing",
                                                "RoleArn": service_role(settings, "events", "events")}])
    event_ids = _put_orders(settings, 2)

    url, arn = _queue(settings)
    s3.create_bucket(Bucket="archive")
    s3.put_bucket_notification_configuration(Bucket="archive", NotificationConfiguration={"QueueConfigurations": [
        {"Id": "done", "QueueArn": arn, "Events": ["s3:ObjectRestore:Completed"]}]})
    _drain(settings, url, 1)  # the test event
    s3.put_object(Bucket="archive", Key="old.csv", Body=b"1,2\n", StorageClass="GLACIER")
    s3.restore_object(Bucket="archive", Key="old.csv", RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Expedited"}})
    assert glue.get_workflow_runs(Name="landing")["Runs"] == []

    kill_hard(settings)
    control.up(settings)
    advance(settings, "10m")
    run, = _wait_for_runs(settings, "landing", 1)
    assert run["WorkflowRunProperties"]["aws:eventIds"] == f"[{event_ids[0]}, {event_ids[1]}]"
    assert run["StartingEventBatchCondition"] == {"BatchWindow": 60}
    completed, = _records(_drain(settings, url, 1))
    assert completed["eventName"] == "ObjectRestore:Completed" and completed["s3"]["object"]["key"] == "old.csv"
