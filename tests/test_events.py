"""The events engine end to end: PutEvents to each kind of target, retries and dead letters, cron rules and
Scheduler schedules firing on `dealab clock advance`, the catch-up bound, S3 → EventBridge, a restart."""

from __future__ import annotations

import base64
import datetime
import io
import json
import zipfile

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dealab.stack import control
from tests.conftest import client, service_role
from tests.test_lifecycle_engine import admin, advance


def queue(sqs, name: str, **attributes) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def drain(sqs, url: str, expected: int | None = None) -> list[dict]:
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                    WaitTimeSeconds=1 if expected and len(messages) < expected else 0).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def lab_now(settings) -> datetime.datetime:
    return datetime.datetime.fromisoformat(admin(settings, "clock")["now"].replace("Z", "+00:00"))


def test_put_events_reaches_each_kind_of_target_through_its_transform(clean_stack):
    events, sqs, sns, kinesis, logs = (client(clean_stack, name) for name in ("events", "sqs", "sns", "kinesis", "logs"))
    plain_url, plain_arn = queue(sqs, "ev-plain")
    fifo_url, fifo_arn = queue(sqs, "ev-orders.fifo", FifoQueue="true")
    fanout_url, fanout_arn = queue(sqs, "ev-fanout")
    other_url, other_arn = queue(sqs, "ev-other-bus")
    topic = sns.create_topic(Name="ev-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=fanout_arn, Attributes={"RawMessageDelivery": "true"})
    kinesis.create_stream(StreamName="ev-stream", ShardCount=1)
    stream_arn = kinesis.describe_stream_summary(StreamName="ev-stream")["StreamDescriptionSummary"]["StreamARN"]
    logs.create_log_group(logGroupName="/aws/events/orders")
    bus = events.create_event_bus(Name="audit")["EventBusArn"]
    events.put_rule(Name="audit-all", EventBusName="audit", EventPattern=json.dumps({"source": ["shop.orders"]}))
    events.put_targets(Rule="audit-all", EventBusName="audit", Targets=[{"Id": "q", "Arn": other_arn}])

    events.put_rule(Name="big-orders", EventPattern=json.dumps({"source": ["shop.orders"], "detail": {"total": [{"numeric": [">=", 100]}]}}))
    events.put_targets(Rule="big-orders", Targets=[
        {"Id": "plain", "Arn": plain_arn},
        {"Id": "fifo", "Arn": fifo_arn, "SqsParameters": {"MessageGroupId": "orders"}, "InputPath": "$.detail"},
        {"Id": "topic", "Arn": topic, "InputTransformer": {"InputPathsMap": {"id": "$.detail.order-id", "total": "$.detail.total"},
                                                           "InputTemplate": '"order <id> totals <total>"'}},
        {"Id": "stream", "Arn": stream_arn, "KinesisParameters": {"PartitionKeyPath": "$.detail.order-id"},
         "RoleArn": service_role(clean_stack, "ev-to-kinesis", "events", ("kinesis:PutRecord",))},
        {"Id": "logs", "Arn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/events/orders"},
        {"Id": "bus", "Arn": bus},
    ])
    with pytest.raises(events.exceptions.ClientError, match="SqsParameters"):
        events.put_targets(Rule="big-orders", Targets=[{"Id": "bad", "Arn": fifo_arn}])
    answer = events.put_events(Entries=[
        {"Source": "shop.orders", "DetailType": "Order Placed", "Detail": json.dumps({"order-id": "o-1", "total": 250})},
        {"Source": "shop.orders", "DetailType": "Order Placed", "Detail": json.dumps({"order-id": "o-2", "total": 5})},
        {"Source": "shop.orders", "DetailType": "Order Placed", "Detail": "not json"},
    ])
    assert answer["FailedEntryCount"] == 1 and answer["Entries"][2]["ErrorCode"] == "MalformedDetail"

    [message] = drain(sqs, plain_url, 1)
    event = json.loads(message["Body"])
    assert event["id"] == answer["Entries"][0]["EventId"] and event["detail-type"] == "Order Placed" and event["detail"]["total"] == 250
    assert [json.loads(m["Body"]) for m in drain(sqs, fifo_url, 1)] == [{"order-id": "o-1", "total": 250}]
    assert [m["Body"] for m in drain(sqs, fanout_url, 1)] == ['"order o-1 totals 250"']
    shard = kinesis.get_shard_iterator(StreamName="ev-stream", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    [record] = kinesis.get_records(ShardIterator=shard)["Records"]
    assert record["PartitionKey"] == "o-1" and json.loads(record["Data"])["id"] == event["id"]
    [logged] = logs.filter_log_events(logGroupName="/aws/events/orders")["events"]
    assert json.loads(logged["message"])["id"] == event["id"]
    [crossed] = drain(sqs, other_url, 1)
    assert json.loads(crossed["Body"])["detail"]["order-id"] == "o-1"  # the small order matched no rule

    pattern = json.dumps({"detail": {"total": [{"numeric": [">", 100]}]}})
    assert events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"] is True
    with pytest.raises(events.exceptions.InvalidEventPatternException, match=r'Reason: Unrecognized match type regex at \[Source'):
        events.put_rule(Name="bad", EventPattern=json.dumps({"source": [{"regex": ".*"}]}))
    with pytest.raises(events.exceptions.ClientError, match="OperationDisabled"):
        events.create_archive(ArchiveName="a", EventSourceArn=bus)


def test_a_missing_target_is_retried_then_dead_lettered(clean_stack):
    events, sqs = client(clean_stack, "events"), client(clean_stack, "sqs")
    dlq_url, dlq_arn = queue(sqs, "ev-dlq")
    events.put_rule(Name="to-nowhere", EventPattern=json.dumps({"source": ["app"]}))
    missing = "arn:aws:sqs:us-east-1:123456789012:ev-never-made"
    events.put_targets(Rule="to-nowhere", Targets=[{"Id": "gone", "Arn": missing, "RetryPolicy": {"MaximumRetryAttempts": 2},
                                                    "DeadLetterConfig": {"Arn": dlq_arn}}])
    events.put_events(Entries=[{"Source": "app", "DetailType": "t", "Detail": "{}"}])
    assert drain(sqs, dlq_url) == []  # first attempt failed; two retries are due on the lab clock
    advance(clean_stack, "2m")
    assert drain(sqs, dlq_url) == []  # first retry (after 1 minute) failed; the second waits 2 more
    advance(clean_stack, "10m")
    [dead] = drain(sqs, dlq_url, 1)
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes["RULE_ARN"].endswith(":rule/to-nowhere") and attributes["TARGET_ARN"] == missing
    assert attributes["ERROR_CODE"] == "RESOURCE_NOT_FOUND" and "ev-never-made" not in attributes["RULE_ARN"]
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttemptsExhausted" and attributes["RETRY_ATTEMPTS"] == "2"
    assert json.loads(dead["Body"])["source"] == "app"


def test_a_cron_rule_fires_at_each_due_lab_time_in_order(clean_stack):
    events, sqs = client(clean_stack, "events"), client(clean_stack, "sqs")
    url, arn = queue(sqs, "ev-hourly")
    with pytest.raises(events.exceptions.ClientError, match="ScheduleExpression is not valid"):
        events.put_rule(Name="bad", ScheduleExpression="cron(0 * * * * *)")
    rule_arn = events.put_rule(Name="hourly", ScheduleExpression="cron(0 * * * ? *)")["RuleArn"]
    events.put_targets(Rule="hourly", Targets=[{"Id": "q", "Arn": arn}])
    start = lab_now(clean_stack)
    moved = advance(clean_stack, "3h")["last_move"]
    assert moved["timers_fired"] >= 3
    fired = [json.loads(m["Body"]) for m in drain(sqs, url, 3)]
    times = sorted(datetime.datetime.fromisoformat(event["time"].replace("Z", "+00:00")) for event in fired)
    first_hour = (start + datetime.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    assert times == [first_hour + datetime.timedelta(hours=n) for n in range(3)]
    assert {(e["source"], e["detail-type"], tuple(e["resources"])) for e in fired} == {("aws.events", "Scheduled Event", (rule_arn,))}
    events.disable_rule(Name="hourly")
    advance(clean_stack, "2h")
    assert drain(sqs, url) == []


def test_a_long_move_fires_at_most_100_runs_per_schedule_and_reports_the_rest(clean_stack):
    events, sqs = client(clean_stack, "events"), client(clean_stack, "sqs")
    url, arn = queue(sqs, "ev-every-minute")
    events.put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule="every-minute", Targets=[{"Id": "q", "Arn": arn}])
    moved = advance(clean_stack, "2d")["last_move"]
    assert moved["skipped"] == {"events:rule/us-east-1/default/every-minute": 2 * 1440 - 100}
    fired = drain(sqs, url, 100)
    assert len(fired) == 100
    last = max(json.loads(m["Body"])["time"] for m in fired)
    assert abs(datetime.datetime.fromisoformat(last.replace("Z", "+00:00")) - lab_now(clean_stack)) < datetime.timedelta(minutes=2)


def test_scheduler_at_rate_and_cron_fire_and_a_one_time_schedule_goes(clean_stack):
    scheduler, sqs = client(clean_stack, "scheduler"), client(clean_stack, "sqs")
    url, arn = queue(sqs, "ev-scheduled")
    role = service_role(clean_stack, "scheduler", "scheduler")
    start = lab_now(clean_stack)
    once = (start + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler.create_schedule_group(Name="reports")
    scheduler.create_schedule(Name="once", ScheduleExpression=f"at({once})", FlexibleTimeWindow={"Mode": "OFF"},
                              ActionAfterCompletion="DELETE",
                              Target={"Arn": arn, "RoleArn": role, "Input": '{"kind": "once", "at": "<aws.scheduler.scheduled-time>"}'})
    scheduler.create_schedule(Name="six-hourly", GroupName="reports", ScheduleExpression="rate(6 hours)", FlexibleTimeWindow={"Mode": "OFF"},
                              Target={"Arn": arn, "RoleArn": role, "Input": '{"kind": "rate"}'})
    scheduler.create_schedule(Name="nightly", ScheduleExpression="cron(30 1 * * ? *)", ScheduleExpressionTimezone="Europe/Paris",
                              FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
                              Target={"Arn": "arn:aws:scheduler:::aws-sdk:sqs:sendMessage", "RoleArn": role,
                                      "Input": json.dumps({"QueueUrl": url, "MessageBody": '{"kind": "cron"}'})})
    with pytest.raises(scheduler.exceptions.ClientError, match="Invalid Schedule Expression"):
        scheduler.create_schedule(Name="bad", ScheduleExpression="rate(1 minutes)", FlexibleTimeWindow={"Mode": "OFF"},
                                  Target={"Arn": arn, "RoleArn": role})
    advance(clean_stack, "1d")
    kinds = [json.loads(m["Body"])["kind"] for m in drain(sqs, url, 6)]
    assert kinds.count("once") == 1 and kinds.count("rate") == 4 and kinds.count("cron") == 1
    names = {s["Name"] for s in scheduler.list_schedules()["Schedules"]}
    assert "once" not in names and {"six-hourly", "nightly"} <= names
    scheduler.delete_schedule_group(Name="reports")
    advance(clean_stack, "1d")
    assert [json.loads(m["Body"])["kind"] for m in drain(sqs, url, 1)] == ["cron"]


def test_s3_events_go_to_the_default_bus_when_the_bucket_says_so(clean_stack):
    s3, events, sqs = client(clean_stack, "s3"), client(clean_stack, "events"), client(clean_stack, "sqs")
    url, arn = queue(sqs, "ev-s3")
    s3.create_bucket(Bucket="ev-landing")
    events.put_rule(Name="landing", EventPattern=json.dumps({"source": ["aws.s3"], "detail": {"bucket": {"name": ["ev-landing"]},
                                                                                                "object": {"key": [{"prefix": "raw/"}]}}}))
    events.put_targets(Rule="landing", Targets=[{"Id": "q", "Arn": arn}])
    s3.put_object(Bucket="ev-landing", Key="raw/before.csv", Body=b"a")
    assert drain(sqs, url) == []  # no EventBridgeConfiguration yet
    s3.put_bucket_notification_configuration(Bucket="ev-landing", NotificationConfiguration={"EventBridgeConfiguration": {}})
    s3.put_object(Bucket="ev-landing", Key="raw/orders.csv", Body=b"id,total\n1,5\n")
    s3.copy_object(Bucket="ev-landing", Key="raw/copy.csv", CopySource={"Bucket": "ev-landing", "Key": "raw/orders.csv"})
    s3.put_object(Bucket="ev-landing", Key="other/skip.csv", Body=b"x")
    s3.delete_object(Bucket="ev-landing", Key="raw/orders.csv")
    received = [json.loads(m["Body"]) for m in drain(sqs, url, 3)]
    by_reason = {event["detail"]["reason"]: event for event in received}
    assert set(by_reason) == {"PutObject", "CopyObject", "DeleteObject"}
    created = by_reason["PutObject"]
    assert created["source"] == "aws.s3" and created["detail-type"] == "Object Created"
    assert created["resources"] == ["arn:aws:s3:::ev-landing"]
    assert created["detail"]["object"]["key"] == "raw/orders.csv" and created["detail"]["object"]["size"] == 13
    assert created["detail"]["object"]["etag"] and created["detail"]["object"]["sequencer"]
    assert by_reason["DeleteObject"]["detail-type"] == "Object Deleted"
    assert by_reason["DeleteObject"]["detail"]["deletion-type"] == "Permanently Deleted"


def _lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "import json, boto3\n"
                         "def handler(event, context):\n"
                         "    sqs = boto3.client('sqs')\n"
                         "    url = sqs.get_queue_url(QueueName='ev-from-lambda')['QueueUrl']\n"
                         "    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))\n")
    return buffer.getvalue()


def test_a_lambda_target_is_invoked_asynchronously(clean_stack):
    events, sqs, awslambda = client(clean_stack, "events"), client(clean_stack, "sqs"), client(clean_stack, "lambda")
    url, _ = queue(sqs, "ev-from-lambda")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = client(clean_stack, "iam").create_role(RoleName="ev-lambda", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    client(clean_stack, "iam").put_role_policy(RoleName="ev-lambda", PolicyName="send", PolicyDocument=json.dumps(  # the function runs as its role
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"], "Resource": "*"}]}))
    function = awslambda.create_function(FunctionName="ev-handler", Runtime="python3.11", Role=role,
                                         Handler="handler.handler", Code={"ZipFile": _lambda_zip()})["FunctionArn"]
    events.put_rule(Name="to-lambda", EventPattern=json.dumps({"detail-type": [{"wildcard": "Order *"}]}))
    events.put_targets(Rule="to-lambda", Targets=[{"Id": "fn", "Arn": function}])
    sent = events.put_events(Entries=[{"Source": "shop", "DetailType": "Order Shipped", "Detail": json.dumps({"id": 7})}])
    [message] = drain(sqs, url, 1) or drain(sqs, url, 1)
    assert json.loads(message["Body"])["id"] == sent["Entries"][0]["EventId"]


def test_a_restart_keeps_pending_retries(private_stack):
    events, sqs = client(private_stack, "events"), client(private_stack, "sqs")
    target = "arn:aws:sqs:us-east-1:123456789012:ev-late"
    events.put_rule(Name="late", EventPattern=json.dumps({"source": ["app"]}))
    events.put_targets(Rule="late", Targets=[{"Id": "q", "Arn": target, "RetryPolicy": {"MaximumRetryAttempts": 5}}])
    events.put_events(Entries=[{"Source": "app", "DetailType": "t", "Detail": json.dumps({"n": 1})}])
    control.down(private_stack)
    control.up(private_stack)
    events, sqs = client(private_stack, "events"), client(private_stack, "sqs")
    url, _ = queue(sqs, "ev-late")  # the target exists now: the retry that survived the restart delivers
    advance(private_stack, "5m")
    [message] = drain(sqs, url, 1)
    assert json.loads(message["Body"])["detail"] == {"n": 1}


def test_a_kinesis_target_is_called_as_its_role(clean_stack):
    """EventBridge calls a Kinesis target with the target's RoleArn: a role without kinesis:PutRecord fails the
    delivery with NO_PERMISSIONS (dead-lettered); once the role may put, the record arrives."""
    events, sqs, kinesis, iam = (client(clean_stack, name) for name in ("events", "sqs", "kinesis", "iam"))
    kinesis.create_stream(StreamName="ev-role-stream", ShardCount=1)
    stream = kinesis.describe_stream(StreamName="ev-role-stream")["StreamDescription"]["StreamARN"]
    dlq_url, dlq_arn = queue(sqs, "ev-role-dlq")
    role = service_role(clean_stack, "ev-to-stream", "events", ("sqs:SendMessage",))  # anything but kinesis:PutRecord
    events.put_rule(Name="to-stream", EventPattern=json.dumps({"source": ["app"]}))
    events.put_targets(Rule="to-stream", Targets=[{"Id": "s", "Arn": stream, "RoleArn": role, "RetryPolicy": {"MaximumRetryAttempts": 0},
                                                   "DeadLetterConfig": {"Arn": dlq_arn}}])
    events.put_events(Entries=[{"Source": "app", "DetailType": "t", "Detail": json.dumps({"n": 1})}])
    [dead] = drain(sqs, dlq_url, 1)
    assert dead["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "NO_PERMISSIONS"

    iam.put_role_policy(RoleName="ev-to-stream", PolicyName="put", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": stream}]}))
    events.put_events(Entries=[{"Source": "app", "DetailType": "t", "Detail": json.dumps({"n": 2})}])
    shard = kinesis.list_shards(StreamName="ev-role-stream")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="ev-role-stream", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [json.loads(r["Data"])["detail"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]] == [{"n": 2}]
    assert drain(sqs, dlq_url) == []


def test_targets_eventbridge_calls_as_a_role_need_one(clean_stack):
    """PutTargets refuses a Step Functions, Kinesis or Glue workflow target without RoleArn, in AWS's words."""
    events = client(clean_stack, "events")
    events.put_rule(Name="roleless", EventPattern=json.dumps({"source": ["app"]}))
    for arn in ("arn:aws:states:us-east-1:123456789012:stateMachine:nightly", "arn:aws:kinesis:us-east-1:123456789012:stream/s",
                "arn:aws:glue:us-east-1:123456789012:workflow/landing"):
        with pytest.raises(ClientError) as refused:
            events.put_targets(Rule="roleless", Targets=[{"Id": "t", "Arn": arn}])
        assert refused.value.response["Error"] == {"Code": "ValidationException", "Message": f"RoleArn is required for target {arn}."}
    assert events.list_targets_by_rule(Rule="roleless")["Targets"] == []


def test_a_schedule_acts_as_its_role_and_dead_letters_as_scheduler_does(clean_stack):
    """Scheduler calls every target, and sends its dead letters, as the schedule's Target.RoleArn: a role that may
    send only to the DLQ dead-letters the run with SQS's own error; a role that may send to both delivers; a role
    that does not trust Scheduler loses the run (Scheduler cannot even reach the DLQ), as on AWS."""
    scheduler, sqs, iam = (client(clean_stack, name) for name in ("scheduler", "sqs", "iam"))
    target_url, target_arn = queue(sqs, "sch-target")
    dlq_url, dlq_arn = queue(sqs, "sch-dlq")
    role = service_role(clean_stack, "sch-role", "scheduler")
    untrusting = service_role(clean_stack, "sch-events-only", "events")

    def may_send_to(*queues: str) -> None:
        iam.put_role_policy(RoleName="sch-role", PolicyName="access", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": list(queues)}]}))

    def once(name: str, role_arn: str) -> str:
        at = (lab_now(clean_stack) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
        return scheduler.create_schedule(Name=name, ScheduleExpression=f"at({at})", FlexibleTimeWindow={"Mode": "OFF"}, Target={
            "Arn": target_arn, "RoleArn": role_arn, "Input": json.dumps({"run": name}), "RetryPolicy": {"MaximumRetryAttempts": 1},
            "DeadLetterConfig": {"Arn": dlq_arn}})["ScheduleArn"]

    may_send_to(dlq_arn)
    refused = once("sch-refused", role)
    advance(clean_stack, "2h")  # the run at +1h and its one retry a minute later
    [dead] = drain(sqs, dlq_url, 1)
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert json.loads(dead["Body"]) == {"run": "sch-refused"}
    assert "AccessDenied" in attributes["ERROR_CODE"] and "sqs:SendMessage" in attributes["ERROR_MESSAGE"], attributes
    assert {name: attributes[name] for name in ("SCHEDULE_ARN", "TARGET_ARN", "EXHAUSTED_RETRY_CONDITION", "RETRY_ATTEMPTS", "IS_PAYLOAD_TRUNCATED")} == {
        "SCHEDULE_ARN": refused, "TARGET_ARN": target_arn, "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts", "RETRY_ATTEMPTS": "1",
        "IS_PAYLOAD_TRUNCATED": "false"}
    assert attributes["EXECUTION_ID"] and attributes["SCHEDULED_TIME"].endswith("Z")
    assert drain(sqs, target_url) == []

    may_send_to(dlq_arn, target_arn)
    once("sch-allowed", role)
    advance(clean_stack, "2h")
    assert [json.loads(m["Body"]) for m in drain(sqs, target_url, 1)] == [{"run": "sch-allowed"}]

    once("sch-untrusted", untrusting)
    advance(clean_stack, "2h")
    assert drain(sqs, target_url) == [] and drain(sqs, dlq_url) == []


def test_a_schedule_needs_a_role(clean_stack):
    """Target.RoleArn is required by Scheduler's API: a request without it (an SDK refuses to send one) is refused."""
    scheduler = boto3.client("scheduler", endpoint_url=clean_stack.endpoint_url, region_name=clean_stack.region, aws_access_key_id="test",
                             aws_secret_access_key="test", config=Config(parameter_validation=False))
    _, arn = queue(client(clean_stack, "sqs"), "sch-roleless")
    with pytest.raises(ClientError) as refused:
        scheduler.create_schedule(Name="roleless", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"}, Target={"Arn": arn})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "target.roleArn" in refused.value.response["Error"]["Message"]
    assert client(clean_stack, "scheduler").list_schedules()["Schedules"] == []
