"""Service events on EventBridge as AWS emits them ("Glue Job State Change", "Athena Query State Change", "Step
Functions Execution Status Change", "Glue Crawler State Change"), and the metrics the same runs publish."""

from __future__ import annotations

import json
import time

from tests.conftest import client, service_role
from tests.gluekit import run_job, upload_script
from tests.test_cloudwatch import statistic_of
from tests.test_events import drain, queue
from tests.test_lifecycle_engine import advance

BUCKET = "service-events-test"


def _capture(settings, name: str, detail_types: list[str]) -> str:
    sqs, events = client(settings, "sqs"), client(settings, "events")
    url, arn = queue(sqs, name)
    events.put_rule(Name=f"{name}-rule", EventPattern=json.dumps({"detail-type": detail_types}))
    events.put_targets(Rule=f"{name}-rule", Targets=[{"Id": "q", "Arn": arn}])
    return url


def _events(settings, url: str, expected: int) -> list[dict]:
    sqs = client(settings, "sqs")
    found: list[dict] = []
    deadline = time.monotonic() + 30
    while len(found) < expected and time.monotonic() < deadline:
        found += [json.loads(message["Body"]) for message in drain(sqs, url, expected - len(found))]
    return found


def test_glue_athena_and_step_functions_emit_their_state_changes_and_metrics(clean_stack):
    url = _capture(clean_stack, "svc-events", ["Glue Job State Change", "Athena Query State Change", "Step Functions Execution Status Change"])
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket=BUCKET)

    glue = client(clean_stack, "glue")
    script = upload_script(clean_stack, BUCKET, "scripts/ok.py", "print('fine')\n")
    glue.create_job(Name="svc-ok", Role=service_role(clean_stack, "glue", "glue"), MaxCapacity=0.0625,
                    Command={"Name": "pythonshell", "ScriptLocation": script, "PythonVersion": "3.9"})
    failing = upload_script(clean_stack, BUCKET, "scripts/bad.py", "raise SystemExit(3)\n")
    glue.create_job(Name="svc-bad", Role=service_role(clean_stack, "glue", "glue"), MaxCapacity=0.0625,
                    Command={"Name": "pythonshell", "ScriptLocation": failing, "PythonVersion": "3.9"})
    ok_run = run_job(clean_stack, "svc-ok")
    bad_run = run_job(clean_stack, "svc-bad")

    athena = client(clean_stack, "athena")
    query = athena.start_query_execution(QueryString="SELECT 1", ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena/"})["QueryExecutionId"]
    deadline = time.monotonic() + 60
    while athena.get_query_execution(QueryExecutionId=query)["QueryExecution"]["Status"]["State"] in ("QUEUED", "RUNNING") and time.monotonic() < deadline:
        time.sleep(0.05)

    sfn = client(clean_stack, "stepfunctions")
    machine = sfn.create_state_machine(name="svc-machine", roleArn=service_role(clean_stack, "sfn", "states"), definition=json.dumps(
        {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Nope", "Cause": "on purpose"}}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="run-1", input='{"n": 1}')["executionArn"]

    found = _events(clean_stack, url, 7)
    by_kind = {}
    for event in found:
        by_kind.setdefault(event["detail-type"], []).append(event)

    jobs = {event["detail"]["jobName"]: event for event in by_kind["Glue Job State Change"]}
    assert jobs["svc-ok"]["source"] == "aws.glue"
    assert jobs["svc-ok"]["detail"] == {"jobName": "svc-ok", "severity": "INFO", "state": "SUCCEEDED", "jobRunId": ok_run["Id"], "message": "Job run succeeded"}
    assert jobs["svc-bad"]["detail"]["state"] == "FAILED" and jobs["svc-bad"]["detail"]["severity"] == "ERROR"
    assert jobs["svc-bad"]["detail"]["message"] == bad_run["ErrorMessage"]

    queries = [event["detail"] for event in by_kind["Athena Query State Change"]]
    final = next(detail for detail in queries if detail["currentState"] == "SUCCEEDED")
    assert final["queryExecutionId"] == query and final["workgroupName"] == "primary" and final["previousState"] == "RUNNING"
    assert set(final) == {"currentState", "previousState", "queryExecutionId", "sequenceNumber", "statementType", "versionId", "workgroupName"}

    statuses = {event["detail"]["status"]: event for event in by_kind["Step Functions Execution Status Change"]}
    assert set(statuses) == {"RUNNING", "FAILED"}
    failed = statuses["FAILED"]
    assert failed["source"] == "aws.states" and failed["resources"] == [execution]
    assert failed["detail"]["executionArn"] == execution and failed["detail"]["stateMachineArn"] == machine and failed["detail"]["name"] == "run-1"
    assert failed["detail"]["error"] == "Nope" and failed["detail"]["cause"] == "on purpose" and failed["detail"]["input"] == '{"n": 1}'
    assert isinstance(failed["detail"]["startDate"], int) and failed["detail"]["stopDate"] >= failed["detail"]["startDate"]

    counted = {"JobName": "svc-ok", "JobRunId": "ALL", "Type": "count"}
    assert statistic_of(clean_stack, "Glue", "glue.driver.aggregate.numCompletedTasks", counted) == 1
    assert statistic_of(clean_stack, "Glue", "glue.driver.aggregate.numFailedTasks", {**counted, "JobName": "svc-bad"}) == 1
    athena_metrics = client(clean_stack, "cloudwatch").list_metrics(Namespace="AWS/Athena", MetricName="TotalExecutionTime")["Metrics"]
    assert sorted(len(metric["Dimensions"]) for metric in athena_metrics) == [1, 3]  # per WorkGroup, and per state, type and work group
    assert statistic_of(clean_stack, "AWS/Athena", "ProcessedBytes", {"QueryState": "SUCCEEDED", "QueryType": "DML", "WorkGroup": "primary"}, "SampleCount") == 1
    assert statistic_of(clean_stack, "AWS/States", "ExecutionsFailed", {"StateMachineArn": machine}) == 1


def test_a_crawler_run_emits_started_and_succeeded(clean_stack):
    url = _capture(clean_stack, "svc-crawler", ["Glue Crawler State Change"])
    s3, glue = client(clean_stack, "s3"), client(clean_stack, "glue")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/orders/part-0.csv", Body=b"id,total\n1,10\n2,20\n")
    glue.create_database(DatabaseInput={"Name": "svc_db"})
    glue.create_crawler(Name="svc-crawler", Role=service_role(clean_stack, "glue", "glue"), DatabaseName="svc_db",
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/data/"}]})
    glue.start_crawler(Name="svc-crawler")
    found = [event["detail"] for event in _events(clean_stack, url, 2)]
    assert [detail["state"] for detail in found] == ["Started", "Succeeded"]
    assert found[0]["crawlerName"] == "svc-crawler" and found[0]["message"] == "Crawler Started"
    assert found[1]["message"] == "Crawler Succeeded" and found[1]["tablesCreated"] == "1"


def test_firehose_delivery_publishes_its_metrics(clean_stack):
    s3, firehose = client(clean_stack, "s3"), client(clean_stack, "firehose")
    s3.create_bucket(Bucket=BUCKET)
    firehose.create_delivery_stream(DeliveryStreamName="svc-clicks", ExtendedS3DestinationConfiguration={
        "RoleARN": service_role(clean_stack, "firehose", "firehose"), "BucketARN": f"arn:aws:s3:::{BUCKET}",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}})
    firehose.put_record(DeliveryStreamName="svc-clicks", Record={"Data": b'{"n": 1}\n'})
    advance(clean_stack, "61s")
    stream = {"DeliveryStreamName": "svc-clicks"}
    assert statistic_of(clean_stack, "AWS/Firehose", "DeliveryToS3.Success", stream) == 1
    assert statistic_of(clean_stack, "AWS/Firehose", "DeliveryToS3.DataFreshness", stream, "Maximum") >= 60


def test_an_event_no_rule_would_take_is_not_sent(monkeypatch):
    """The sender asks the events engine's audience first: the bus would drop the event, so the call is skipped."""
    import queue as queues

    from dealab.wire import serviceevents

    sent: list[tuple[str, str]] = []
    queued: queues.Queue = queues.Queue()
    monkeypatch.setattr(serviceevents, "_queue", queued)  # this test's events only, whatever else runs here
    monkeypatch.setattr(serviceevents, "_sender", lambda region, entry: sent.append((region, entry["DetailType"])))
    monkeypatch.setattr(serviceevents, "_audience", None)

    def audience(region: str, entry: dict) -> bool:
        return json.loads(entry["Detail"])["state"] == "wanted"

    def send_queued() -> None:  # what the sender's thread does with each queued event
        while not queued.empty():
            serviceevents._send(*queued.get_nowait())

    serviceevents.listen(audience)
    serviceevents.publish("aws.glue", "Glue Job State Change", {"state": "unwanted"}, region="eu-west-1")
    serviceevents.publish("aws.glue", "Glue Job State Change", {"state": "wanted"}, region="eu-west-1")
    send_queued()
    assert sent == [("eu-west-1", "Glue Job State Change")]

    serviceevents.forget(audience)  # with no audience (no events engine in the stack) every event is sent
    serviceevents.publish("aws.glue", "Glue Job State Change", {"state": "unwanted"}, region="eu-west-1")
    send_queued()
    assert len(sent) == 2
