"""CloudWatch alarms on a running stack: state changes, reasons, history, actions to SNS, Lambda and EventBridge,
composite alarms, missing data on the lab clock, a restart; and the engines' own metrics."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

from dealab.stack import control
from tests.conftest import client, kill_hard, service_role
from tests.test_events import drain, lab_now, queue
from tests.test_lifecycle_engine import advance

DIMENSIONS = [{"Name": "Job", "Value": "nightly"}]


def put_alarm(cloudwatch, name, **overrides):
    params = {"AlarmName": name, "Namespace": "Lab", "MetricName": "failures", "Dimensions": DIMENSIONS, "Statistic": "Maximum",
              "Period": 60, "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold", **overrides}
    cloudwatch.put_metric_alarm(**params)


def put_value(cloudwatch, value, metric="failures"):
    cloudwatch.put_metric_data(Namespace="Lab", MetricData=[{"MetricName": metric, "Dimensions": DIMENSIONS, "Value": value}])


def alarm_of(cloudwatch, name, kind="MetricAlarms"):
    answer = cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    [found] = answer[kind]
    return found


def test_an_alarm_on_a_metric_that_never_arrives_stays_insufficient_data(clean_stack):
    cloudwatch = client(clean_stack, "cloudwatch")
    put_alarm(cloudwatch, "never", MetricName="absent")
    assert alarm_of(cloudwatch, "never")["StateValue"] == "INSUFFICIENT_DATA"
    advance(clean_stack, "1h")
    found = alarm_of(cloudwatch, "never")
    assert found["StateValue"] == "INSUFFICIENT_DATA" and found["StateReason"] == "Unchecked: Initial alarm creation"


def test_a_datapoint_over_the_threshold_alarms_with_aws_reason_history_and_sns_message(clean_stack):
    cloudwatch, sns, sqs = client(clean_stack, "cloudwatch"), client(clean_stack, "sns"), client(clean_stack, "sqs")
    url, arn = queue(sqs, "cw-alarms")
    topic = sns.create_topic(Name="cw-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "false"})
    put_alarm(cloudwatch, "failures", AlarmActions=[topic], OKActions=[topic], AlarmDescription="nightly job failures")
    put_value(cloudwatch, 5.0)
    found = alarm_of(cloudwatch, "failures")
    assert found["StateValue"] == "ALARM"
    assert found["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [5.0 (")
    assert found["StateReason"].endswith("] was greater than the threshold (1.0) (minimum 1 datapoint for INSUFFICIENT_DATA -> ALARM transition).")
    assert json.loads(found["StateReasonData"])["recentDatapoints"] == [5.0]
    assert [a["AlarmName"] for a in cloudwatch.describe_alarms(StateValue="ALARM")["MetricAlarms"]] == ["failures"]
    assert cloudwatch.describe_alarms(StateValue="OK")["MetricAlarms"] == []

    [envelope] = drain(sqs, url, 1)
    notification = json.loads(envelope["Body"])
    assert notification["Subject"] == 'ALARM: "failures" in US East (N. Virginia)'
    message = json.loads(notification["Message"])
    assert message["NewStateValue"] == "ALARM" and message["OldStateValue"] == "INSUFFICIENT_DATA"
    assert message["AlarmDescription"] == "nightly job failures" and message["NewStateReason"] == found["StateReason"]
    assert message["Trigger"]["MetricName"] == "failures" and message["Trigger"]["Statistic"] == "MAXIMUM"
    assert message["Trigger"]["Dimensions"] == [{"value": "nightly", "name": "Job"}]

    history = cloudwatch.describe_alarm_history(AlarmName="failures")["AlarmHistoryItems"]
    updates = [item for item in history if item["HistoryItemType"] == "StateUpdate"]
    assert updates[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    data = json.loads(updates[0]["HistoryData"])
    assert data["oldState"]["stateValue"] == "INSUFFICIENT_DATA" and data["newState"]["stateValue"] == "ALARM"
    assert any(item["HistoryItemType"] == "Action" and topic in item["HistorySummary"] for item in history)

    # missing data: after the range has moved past the datapoint, the alarm has nothing: INSUFFICIENT_DATA
    advance(clean_stack, "5m")
    assert alarm_of(cloudwatch, "failures")["StateValue"] == "INSUFFICIENT_DATA"


def test_treat_missing_data_moves_state_on_the_lab_clock(clean_stack):
    cloudwatch = client(clean_stack, "cloudwatch")
    put_alarm(cloudwatch, "quiet-is-bad", TreatMissingData="breaching", EvaluationPeriods=2)
    put_alarm(cloudwatch, "quiet-is-fine", TreatMissingData="notBreaching", EvaluationPeriods=2)
    put_alarm(cloudwatch, "quiet-keeps", TreatMissingData="ignore", EvaluationPeriods=2)
    assert alarm_of(cloudwatch, "quiet-is-bad")["StateValue"] == "ALARM"
    assert alarm_of(cloudwatch, "quiet-is-fine")["StateValue"] == "OK"
    assert alarm_of(cloudwatch, "quiet-keeps")["StateValue"] == "INSUFFICIENT_DATA"
    put_value(cloudwatch, 0.0)
    assert alarm_of(cloudwatch, "quiet-is-bad")["StateValue"] == "OK"  # 1 real not breaching + 1 filled as breaching: 1 of 2
    assert alarm_of(cloudwatch, "quiet-keeps")["StateValue"] == "OK"  # even a breaching fill could not alarm 2 of 2
    advance(clean_stack, "10m")
    assert alarm_of(cloudwatch, "quiet-is-bad")["StateValue"] == "ALARM"  # the datapoint left the range: all filled
    assert alarm_of(cloudwatch, "quiet-is-fine")["StateValue"] == "OK"
    assert alarm_of(cloudwatch, "quiet-keeps")["StateValue"] == "OK"


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "import json, boto3\n"
                         "def handler(event, context):\n"
                         "    sqs = boto3.client('sqs')\n"
                         "    url = sqs.get_queue_url(QueueName='cw-from-lambda')['QueueUrl']\n"
                         "    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))\n")
    return buffer.getvalue()


def test_lambda_and_eventbridge_actions_composites_and_set_alarm_state(clean_stack):
    cloudwatch, sqs, events = client(clean_stack, "cloudwatch"), client(clean_stack, "sqs"), client(clean_stack, "events")
    lambda_url, _ = queue(sqs, "cw-from-lambda")
    events_url, events_arn = queue(sqs, "cw-events")
    events.put_rule(Name="alarm-changes", EventPattern=json.dumps({"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}))
    events.put_targets(Rule="alarm-changes", Targets=[{"Id": "q", "Arn": events_arn}])
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = client(clean_stack, "iam").create_role(RoleName="cw-lambda", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    client(clean_stack, "iam").put_role_policy(RoleName="cw-lambda", PolicyName="send", PolicyDocument=json.dumps(  # the function runs as its role
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"], "Resource": "*"}]}))
    function = client(clean_stack, "lambda").create_function(FunctionName="cw-handler", Runtime="python3.11", Role=role,
                                                              Handler="handler.handler", Code={"ZipFile": _function_zip()})["FunctionArn"]
    put_alarm(cloudwatch, "cpu", AlarmActions=[function], ActionsEnabled=True)
    put_alarm(cloudwatch, "disk", MetricName="disk", ActionsEnabled=False, AlarmActions=[function])
    cloudwatch.put_composite_alarm(AlarmName="both", AlarmRule='ALARM("cpu") AND ALARM(disk)')
    assert alarm_of(cloudwatch, "both", "CompositeAlarms")["StateValue"] == "OK"

    put_value(cloudwatch, 9.0)
    put_value(cloudwatch, 9.0, metric="disk")
    assert alarm_of(cloudwatch, "both", "CompositeAlarms")["StateValue"] == "ALARM"

    [invoked] = drain(sqs, lambda_url, 1)  # "disk" has its actions disabled: only "cpu" invoked the function
    event = json.loads(invoked["Body"])
    assert event["source"] == "aws.cloudwatch" and event["alarmArn"].endswith(":alarm:cpu")
    assert event["alarmData"]["state"]["value"] == "ALARM" and event["alarmData"]["previousState"]["value"] == "INSUFFICIENT_DATA"
    assert event["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"] == {"namespace": "Lab", "name": "failures", "dimensions": {"Job": "nightly"}}

    changes = [json.loads(m["Body"]) for m in drain(sqs, events_url, 3)]
    by_alarm = {change["detail"]["alarmName"]: change for change in changes}
    assert set(by_alarm) >= {"cpu", "disk", "both"}  # EventBridge hears every transition, actions enabled or not
    assert by_alarm["cpu"]["detail-type"] == "CloudWatch Alarm State Change" and by_alarm["cpu"]["resources"] == [event["alarmArn"]]

    cloudwatch.set_alarm_state(AlarmName="cpu", StateValue="OK", StateReason="testing the runbook")
    found = alarm_of(cloudwatch, "cpu")
    assert found["StateValue"] == "OK" and found["StateReason"] == "testing the runbook"
    composite = alarm_of(cloudwatch, "both", "CompositeAlarms")
    assert composite["StateValue"] == "OK"
    history = cloudwatch.describe_alarm_history(AlarmName="both", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert [item["HistorySummary"] for item in history] == [
        "Alarm updated from ALARM to OK", "Alarm updated from OK to ALARM", "Alarm updated from INSUFFICIENT_DATA to OK"]


def test_anomaly_detection_is_refused_in_one_clear_line(clean_stack):
    cloudwatch = client(clean_stack, "cloudwatch")
    with pytest.raises(cloudwatch.exceptions.ClientError, match="Anomaly detection is not supported by dealab"):
        cloudwatch.put_metric_alarm(AlarmName="band", EvaluationPeriods=1, ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold",
                                    ThresholdMetricId="ad1", Metrics=[
                                        {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "Lab", "MetricName": "x"}, "Period": 60, "Stat": "Average"}},
                                        {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"}])
    with pytest.raises(cloudwatch.exceptions.ClientError, match="anomaly detection is not supported"):
        cloudwatch.put_anomaly_detector(SingleMetricAnomalyDetector={"Namespace": "Lab", "MetricName": "x", "Stat": "Average"})


def test_a_restart_and_a_kill_keep_alarm_state(private_stack):
    cloudwatch = client(private_stack, "cloudwatch")
    put_alarm(cloudwatch, "kept", EvaluationPeriods=2, DatapointsToAlarm=1)
    put_value(cloudwatch, 7.0)
    before = alarm_of(cloudwatch, "kept")
    assert before["StateValue"] == "ALARM"
    kill_hard(private_stack)
    control.up(private_stack)
    cloudwatch = client(private_stack, "cloudwatch")
    after = alarm_of(cloudwatch, "kept")
    assert (after["StateValue"], after["StateReason"]) == ("ALARM", before["StateReason"])
    assert cloudwatch.describe_alarm_history(AlarmName="kept", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    advance(private_stack, "10m")  # the datapoint survived too: the alarm still leaves ALARM on the lab clock
    assert alarm_of(cloudwatch, "kept")["StateValue"] == "INSUFFICIENT_DATA"


def statistic_of(settings, namespace, name, dimensions, stat="Sum"):
    """The metric's `stat` over the last lab hour, once it has arrived (engines' metrics are flushed in batches)."""
    cloudwatch = client(settings, "cloudwatch")
    deadline = time.monotonic() + 20
    while True:
        now = lab_now(settings)
        points = cloudwatch.get_metric_statistics(Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
                                                  StartTime=now.timestamp() - 3600, EndTime=now.timestamp() + 3600, Period=7200, Statistics=[stat])["Datapoints"]
        if points or time.monotonic() > deadline:
            return sum(p[stat] for p in points) if points else None
        time.sleep(0.3)


def test_engines_publish_their_aws_metrics(clean_stack):
    cloudwatch, kinesis, sfn = client(clean_stack, "cloudwatch"), client(clean_stack, "kinesis"), client(clean_stack, "stepfunctions")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = client(clean_stack, "iam").create_role(RoleName="cw-metrics", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    if event.get('fail'):\n        raise ValueError('no')\n    return 1\n")
    awslambda = client(clean_stack, "lambda")
    awslambda.create_function(FunctionName="cw-metered", Runtime="python3.11", Role=role, Handler="handler.handler", Code={"ZipFile": buffer.getvalue()})
    awslambda.invoke(FunctionName="cw-metered", Payload=b"{}")
    awslambda.invoke(FunctionName="cw-metered", Payload=b'{"fail": true}')

    kinesis.create_stream(StreamName="cw-stream", ShardCount=1)
    kinesis.put_records(StreamName="cw-stream", Records=[{"Data": b"abcd", "PartitionKey": "k"}, {"Data": b"ef", "PartitionKey": "k"}])

    machine = sfn.create_state_machine(name="cw-machine", roleArn=service_role(clean_stack, "sfn", "states"),
                                       definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)

    function = {"FunctionName": "cw-metered"}
    assert statistic_of(clean_stack, "AWS/Lambda", "Invocations", function) == 2
    assert statistic_of(clean_stack, "AWS/Lambda", "Errors", function) == 1
    assert statistic_of(clean_stack, "AWS/Lambda", "Duration", function, "Maximum") > 0
    assert statistic_of(clean_stack, "AWS/Lambda", "ConcurrentExecutions", function, "Maximum") == 1
    assert statistic_of(clean_stack, "AWS/Kinesis", "IncomingRecords", {"StreamName": "cw-stream"}) == 2
    assert statistic_of(clean_stack, "AWS/Kinesis", "IncomingBytes", {"StreamName": "cw-stream"}) == 6
    assert statistic_of(clean_stack, "AWS/States", "ExecutionsSucceeded", {"StateMachineArn": machine}) == 1
    assert statistic_of(clean_stack, "AWS/States", "ExecutionsStarted", {"StateMachineArn": machine}) == 1
    listed = {(m["Namespace"], m["MetricName"]) for m in cloudwatch.list_metrics()["Metrics"]}
    assert ("AWS/Lambda", "Throttles") not in listed  # nothing throttled, nothing published


def test_a_two_year_clock_move_costs_what_the_datapoints_cost(clean_stack):
    cloudwatch = client(clean_stack, "cloudwatch")
    for n in range(20):
        put_alarm(cloudwatch, f"long-{n}", EvaluationPeriods=3, DatapointsToAlarm=2)
    quiet = advance(clean_stack, "730d")["last_move"]["timers_fired"]  # other engines' own (daily) timers
    for _ in range(3):
        cloudwatch.put_metric_data(Namespace="Lab", MetricData=[{"MetricName": "failures", "Dimensions": DIMENSIONS, "Value": 9.0}])
    assert alarm_of(cloudwatch, "long-0")["StateValue"] == "ALARM"
    moved = advance(clean_stack, "730d")["last_move"]
    # one lab timer per period boundary while a datapoint is still in some alarm's range (3 + 2 periods), then
    # nothing: not one evaluation per minute of the 1,051,200 moved
    assert moved["timers_fired"] - quiet <= 8, (quiet, moved)
    states = {alarm["StateValue"] for alarm in cloudwatch.describe_alarms(AlarmNamePrefix="long-")["MetricAlarms"]}
    assert states == {"INSUFFICIENT_DATA"}
