"""The logs engine end to end, boto3 at a real stack: Insights queries over several groups with their statuses,
metric filters producing datapoints, subscriptions to Lambda, Kinesis and Firehose with AWS's payload, retention
on a clock move, an export task to S3, and `dealab logs tail`."""

from __future__ import annotations

import base64
import gzip
import io
import json
import time
import zipfile

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from tests.conftest import client, service_role
from tests.test_events import drain, queue
from tests.test_lifecycle_engine import advance

MINUTE = 60_000


def _now_ms(settings) -> int:
    from tests.test_lifecycle_engine import admin
    import datetime

    moment = datetime.datetime.fromisoformat(admin(settings, "clock")["now"])
    moment = moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)


def _group(logs, name: str, stream: str, messages: list[str], start: int) -> None:
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName=stream)
    logs.put_log_events(logGroupName=name, logStreamName=stream,
                        logEvents=[{"timestamp": start + number * MINUTE, "message": message} for number, message in enumerate(messages)])


def _query(logs, query: str, start: int, end: int, **where) -> dict:
    query_id = logs.start_query(queryString=query, startTime=start // 1000, endTime=end // 1000, **where)["queryId"]
    statuses = set()
    for _ in range(200):
        answer = logs.get_query_results(queryId=query_id)
        statuses.add(answer["status"])
        if answer["status"] not in ("Scheduled", "Running"):
            answer["seen"] = statuses
            answer["queryId"] = query_id
            return answer
        time.sleep(0.05)
    raise AssertionError(f"query {query} never finished")


def _rows(answer: dict) -> list[dict]:
    return [{cell["field"]: cell["value"] for cell in row if cell["field"] != "@ptr"} for row in answer["results"]]


def test_insights_over_two_groups_by_name_and_arn(clean_stack):
    logs = client(clean_stack, "logs")
    now = _now_ms(clean_stack)
    start = now - 30 * MINUTE
    _group(logs, "/app/orders", "i-1", [json.dumps({"level": level, "ms": ms}) for level, ms in
                                        [("INFO", 10), ("ERROR", 250), ("INFO", 30), ("ERROR", 90)]], start)
    _group(logs, "/app/payments", "i-2", [json.dumps({"level": "ERROR", "ms": 400})], start)
    arn = logs.describe_log_groups(logGroupNamePrefix="/app/payments")["logGroups"][0]["arn"]
    answer = _query(logs, "filter level = 'ERROR' | stats count(*) as errors, max(ms) as worst by @log | sort @log",
                    start, now, logGroupIdentifiers=["/app/orders", arn])
    assert answer["status"] == "Complete"
    assert _rows(answer) == [{"@log": "123456789012:/app/orders", "errors": "2", "worst": "250"},
                             {"@log": "123456789012:/app/payments", "errors": "1", "worst": "400"}]
    assert answer["statistics"]["recordsScanned"] == 5.0 and answer["statistics"]["recordsMatched"] == 3.0
    described = logs.describe_queries(logGroupName="/app/orders")["queries"]
    assert [(query["queryId"], query["status"]) for query in described] == [(answer["queryId"], "Complete")]
    with pytest.raises(ClientError) as refused:
        logs.stop_query(queryId=answer["queryId"])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    # the time range: only the first two minutes' events
    early = _query(logs, "fields ms | sort ms asc", start, start + MINUTE, logGroupName="/app/orders")
    assert _rows(early) == [{"ms": "10"}, {"ms": "250"}]


def test_a_malformed_query_is_refused_with_its_position(clean_stack):
    logs = client(clean_stack, "logs")
    logs.create_log_group(logGroupName="/app/bad")
    with pytest.raises(ClientError) as refused:
        logs.start_query(logGroupName="/app/bad", startTime=0, endTime=10, queryString="fields @message | stats count(*) by")
    error = refused.value.response
    assert error["Error"]["Code"] == "MalformedQueryException"
    assert "position 35" in error["Error"]["Message"]
    assert error["queryCompileError"]["location"] == {"startCharOffset": 35, "endCharOffset": 35}
    with pytest.raises(ClientError) as missing:
        logs.start_query(logGroupName="/app/none", startTime=0, endTime=10, queryString="fields @message")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_metric_filters_of_each_kind_make_datapoints_at_the_events_times(clean_stack):
    logs, cloudwatch = client(clean_stack, "logs"), client(clean_stack, "cloudwatch")
    logs.create_log_group(logGroupName="/web")
    logs.create_log_stream(logGroupName="/web", logStreamName="a")
    filters = {
        "errors": ("ERROR", {"metricValue": "1"}),
        "slow": ('{ $.latency > 100 }', {"metricValue": "$.latency", "unit": "Milliseconds", "dimensions": {"Route": "$.route"}}),
        "bytes5xx": ("[ip, user, ..., status=5*, bytes]", {"metricValue": "$bytes"}),
        "quiet": ("NEVERPRESENT", {"metricValue": "1", "defaultValue": 0}),
    }
    for name, (pattern, transformation) in filters.items():
        logs.put_metric_filter(logGroupName="/web", filterName=name, filterPattern=pattern,
                               metricTransformations=[{"metricName": name, "metricNamespace": "Web", **transformation}])
    now = _now_ms(clean_stack)
    stamp = now - 2 * 3600 * 1000  # two hours ago: the datapoints carry the events' time, not the arrival's
    logs.put_log_events(logGroupName="/web", logStreamName="a", logEvents=[
        {"timestamp": stamp, "message": "ERROR boom"},
        {"timestamp": stamp + 1, "message": json.dumps({"latency": 150, "route": "/buy"})},
        {"timestamp": stamp + 2, "message": json.dumps({"latency": 50, "route": "/buy"})},
        {"timestamp": stamp + 3, "message": json.dumps({"latency": 300, "route": "/buy"})},
        {"timestamp": stamp + 4, "message": '10.0.0.1 - "GET /x" 503 2048'},
        {"timestamp": stamp + 5, "message": '10.0.0.1 - "GET /x" 200 999'},
        {"timestamp": stamp + 6, "message": "ERROR again"},
    ])

    def total(metric: str, **extra) -> float:
        points = cloudwatch.get_metric_statistics(Namespace="Web", MetricName=metric, StartTime=(stamp - MINUTE) / 1000,
                                                  EndTime=(stamp + MINUTE) / 1000, Period=3600, Statistics=["Sum", "SampleCount"], **extra)
        return sum(point["Sum"] for point in points["Datapoints"])

    assert total("errors") == 2
    assert total("slow", Dimensions=[{"Name": "Route", "Value": "/buy"}]) == 450
    assert total("bytes5xx") == 2048
    assert total("quiet") == 0 and cloudwatch.list_metrics(Namespace="Web", MetricName="quiet")["Metrics"]
    with pytest.raises(ClientError) as refused:
        logs.put_metric_filter(logGroupName="/web", filterName="bad", filterPattern="{ $.a = ",
                               metricTransformations=[{"metricName": "m", "metricNamespace": "Web", "metricValue": "1"}])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def test_test_metric_filter_answers_with_the_same_matcher(clean_stack):
    logs = client(clean_stack, "logs")
    answer = logs.test_metric_filter(filterPattern="[ip, user, ..., status=4*, bytes]",
                                     logEventMessages=["1.2.3.4 - x 404 10", "1.2.3.4 - x 200 10", "5.6.7.8 bob 401 7"])
    assert answer["matches"] == [
        {"eventNumber": 1, "eventMessage": "1.2.3.4 - x 404 10", "extractedValues": {"$ip": "1.2.3.4", "$user": "-", "$status": "404", "$bytes": "10"}},
        {"eventNumber": 3, "eventMessage": "5.6.7.8 bob 401 7", "extractedValues": {"$ip": "5.6.7.8", "$user": "bob", "$status": "401", "$bytes": "7"}},
    ]


def _decoded(data: bytes) -> dict:
    return json.loads(gzip.decompress(data))


def test_a_subscription_to_kinesis_sends_the_control_message_then_matching_events(clean_stack):
    logs, kinesis = client(clean_stack, "logs"), client(clean_stack, "kinesis")
    kinesis.create_stream(StreamName="log-feed", ShardCount=1)
    stream_arn = kinesis.describe_stream_summary(StreamName="log-feed")["StreamDescriptionSummary"]["StreamARN"]
    logs.create_log_group(logGroupName="/svc")
    logs.create_log_stream(logGroupName="/svc", logStreamName="host-1")
    logs.put_subscription_filter(logGroupName="/svc", filterName="errors", filterPattern='{ $.level = "ERROR" }', destinationArn=stream_arn,
                                 roleArn=service_role(clean_stack, "cwl", "logs"))
    assert [found["filterName"] for found in logs.describe_subscription_filters(logGroupName="/svc")["subscriptionFilters"]] == ["errors"]
    now = _now_ms(clean_stack)
    logs.put_log_events(logGroupName="/svc", logStreamName="host-1", logEvents=[
        {"timestamp": now, "message": json.dumps({"level": "INFO"})}, {"timestamp": now + 1, "message": json.dumps({"level": "ERROR", "n": 1})}])
    shard = kinesis.get_shard_iterator(StreamName="log-feed", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = [_decoded(record["Data"]) for record in kinesis.get_records(ShardIterator=shard)["Records"]]
    assert [record["messageType"] for record in records] == ["CONTROL_MESSAGE", "DATA_MESSAGE"]
    data = records[1]
    assert {key: data[key] for key in ("owner", "logGroup", "logStream", "subscriptionFilters")} == {
        "owner": "123456789012", "logGroup": "/svc", "logStream": "host-1", "subscriptionFilters": ["errors"]}
    assert [(event["timestamp"], json.loads(event["message"])) for event in data["logEvents"]] == [(now + 1, {"level": "ERROR", "n": 1})]
    assert len(data["logEvents"][0]["id"]) == 56
    with pytest.raises(ClientError) as refused:
        logs.put_subscription_filter(logGroupName="/svc", filterName="gone", filterPattern="", destinationArn=stream_arn.replace("log-feed", "nope"))
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def test_a_subscription_to_firehose_delivers_the_gzipped_record(clean_stack):
    from tests.test_firehose import BUCKET, clock, destination, objects

    client(clean_stack, "s3").create_bucket(Bucket=BUCKET)
    service_role(clean_stack, "firehose-delivery", "firehose")  # the role destination() names
    firehose, logs = client(clean_stack, "firehose"), client(clean_stack, "logs")
    arn = firehose.create_delivery_stream(DeliveryStreamName="logs-out", ExtendedS3DestinationConfiguration=destination(
        Prefix="cwl/", ErrorOutputPrefix="err/", CompressionFormat="UNCOMPRESSED"))["DeliveryStreamARN"]
    logs.create_log_group(logGroupName="/fh")
    logs.create_log_stream(logGroupName="/fh", logStreamName="s")
    logs.put_subscription_filter(logGroupName="/fh", filterName="all", filterPattern="", destinationArn=arn)
    logs.put_log_events(logGroupName="/fh", logStreamName="s", logEvents=[{"timestamp": _now_ms(clean_stack), "message": "hello"}])
    clock(clean_stack, {"action": "advance", "by": "61s"})
    body = b"".join(objects(clean_stack, "cwl/", wait_for=1).values())
    # Firehose concatenates the gzipped records as they came: each member is one CloudWatch Logs record
    members = gzip.decompress(body).decode()
    assert '"messageType": "CONTROL_MESSAGE"' in members and '"messageType": "DATA_MESSAGE"' in members
    assert '"message": "hello"' in members


def _forwarder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "import json, boto3\n"
                         "def handler(event, context):\n"
                         "    sqs = boto3.client('sqs')\n"
                         "    url = sqs.get_queue_url(QueueName='cwl-to-lambda')['QueueUrl']\n"
                         "    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))\n")
    return buffer.getvalue()


def test_a_subscription_to_lambda_invokes_it_with_awslogs_data(clean_stack):
    logs, sqs, awslambda = client(clean_stack, "logs"), client(clean_stack, "sqs"), client(clean_stack, "lambda")
    url, _ = queue(sqs, "cwl-to-lambda")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = client(clean_stack, "iam").create_role(RoleName="cwl-lambda", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    client(clean_stack, "iam").put_role_policy(RoleName="cwl-lambda", PolicyName="send", PolicyDocument=json.dumps(  # the function runs as its role
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"], "Resource": "*"}]}))
    function = awslambda.create_function(FunctionName="cwl-handler", Runtime="python3.11", Role=role, Handler="handler.handler",
                                         Code={"ZipFile": _forwarder_zip()})["FunctionArn"]
    logs.create_log_group(logGroupName="/lam")
    logs.create_log_stream(logGroupName="/lam", logStreamName="s")
    logs.put_subscription_filter(logGroupName="/lam", filterName="warn", filterPattern="?WARN ?ERROR", destinationArn=function)
    now = _now_ms(clean_stack)
    logs.put_log_events(logGroupName="/lam", logStreamName="s", logEvents=[
        {"timestamp": now, "message": "INFO fine"}, {"timestamp": now + 1, "message": "WARN disk"}])
    [message] = drain(sqs, url, 1) or drain(sqs, url, 1)
    event = json.loads(message["Body"])
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    assert data["messageType"] == "DATA_MESSAGE" and data["logGroup"] == "/lam" and data["subscriptionFilters"] == ["warn"]
    assert [entry["message"] for entry in data["logEvents"]] == ["WARN disk"]


def test_retention_removes_old_events_as_the_clock_moves(clean_stack):
    logs = client(clean_stack, "logs")
    now = _now_ms(clean_stack)
    _group(logs, "/kept", "s", ["old one", "old two"], now - 2 * MINUTE)
    logs.put_retention_policy(logGroupName="/kept", retentionInDays=30)
    advance(clean_stack, "20d")
    logs.put_log_events(logGroupName="/kept", logStreamName="s", logEvents=[{"timestamp": _now_ms(clean_stack), "message": "new"}])
    assert [event["message"] for event in logs.filter_log_events(logGroupName="/kept")["events"]] == ["old one", "old two", "new"]
    advance(clean_stack, "20d")  # day 40: the first two are past 30 days
    assert [event["message"] for event in logs.filter_log_events(logGroupName="/kept")["events"]] == ["new"]
    assert [event["message"] for event in logs.get_log_events(logGroupName="/kept", logStreamName="s", startFromHead=True)["events"]] == ["new"]
    end = _now_ms(clean_stack)
    answer = _query(logs, "stats count(*) as n", end - 60 * 86400 * 1000, end, logGroupName="/kept")
    assert _rows(answer) == [{"n": "1"}]
    logs.delete_retention_policy(logGroupName="/kept")  # what was deleted stays deleted
    assert [event["message"] for event in logs.filter_log_events(logGroupName="/kept")["events"]] == ["new"]


def test_an_export_task_writes_aws_key_layout(clean_stack):
    logs, s3 = client(clean_stack, "logs"), client(clean_stack, "s3")
    s3.create_bucket(Bucket="log-archive")
    now = _now_ms(clean_stack)
    _group(logs, "/exp", "web-1", ["first", "second", "third"], now - 10 * MINUTE)
    task_id = logs.create_export_task(logGroupName="/exp", fromTime=now - 10 * MINUTE, to=now - 9 * MINUTE,
                                      destination="log-archive", destinationPrefix="exports")["taskId"]
    for _ in range(100):
        [task] = logs.describe_export_tasks(taskId=task_id)["exportTasks"]
        if task["status"]["code"] == "COMPLETED":
            break
        time.sleep(0.05)
    assert task["status"]["code"] == "COMPLETED"
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket="log-archive")["Contents"]}
    assert keys == {"exports/aws-logs-write-test", f"exports/{task_id}/web-1/000000.gz"}
    lines = gzip.decompress(s3.get_object(Bucket="log-archive", Key=f"exports/{task_id}/web-1/000000.gz")["Body"].read()).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["first", "second"]
    assert lines[0].split(" ", 1)[0].endswith("Z")
    with pytest.raises(ClientError) as refused:
        logs.create_export_task(logGroupName="/exp", fromTime=0, to=1, destination="no-such-bucket")
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def test_dealab_logs_tail_prints_filtered_events(clean_stack):
    from dealab.cli import _mount_command_groups, app

    logs = client(clean_stack, "logs")
    now = _now_ms(clean_stack)
    _group(logs, "/tail", "s1", [json.dumps({"level": "ERROR", "msg": "broken"}), "INFO all fine", "ERROR plain"], now - 5 * MINUTE)
    _group(logs, "/tail-old", "s1", ["ERROR too old"], now - 3 * 3600 * 1000)
    _mount_command_groups()
    runner = CliRunner()
    shown = runner.invoke(app, ["logs", "tail", "/tail", "--since", "1h", "--filter-pattern", '{ $.level = "ERROR" }'])
    assert shown.exit_code == 0, shown.output
    assert "broken" in shown.output and "all fine" not in shown.output and "ERROR plain" not in shown.output
    everything = runner.invoke(app, ["logs", "tail", "/tail", "--since", "1h"])
    assert [line.split(" ", 2)[2] for line in everything.output.strip().splitlines()] == [
        json.dumps({"level": "ERROR", "msg": "broken"}), "INFO all fine", "ERROR plain"]
    assert "too old" not in runner.invoke(app, ["logs", "tail", "/tail-old", "--since", "1h"]).output
    missing = runner.invoke(app, ["logs", "tail", "/nope"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
