"""AWS's own metrics of SQS, S3 storage, DynamoDB capacity and Lambda stream mappings, published through
dealab.wire.metrics, stamped in lab time (docs/cloudwatch.md, "Metrics the engines publish")."""

from __future__ import annotations

import datetime
import io
import json
import time
import zipfile

from tests.conftest import client
from tests.test_cloudwatch import alarm_of, statistic_of
from tests.test_events import lab_now
from tests.test_lifecycle_engine import advance


def queue_metric(name: str, queue: str) -> dict:
    return {"Namespace": "AWS/SQS", "MetricName": name, "Dimensions": [{"Name": "QueueName", "Value": queue}]}


def wait_state(cloudwatch, name: str, state: str, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while (found := alarm_of(cloudwatch, name))["StateValue"] != state and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def test_sqs_counts_each_call_and_samples_the_depth_a_read_asks_for(clean_stack):
    sqs = client(clean_stack, "sqs")
    url = sqs.create_queue(QueueName="cw-counted")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="one")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "2", "MessageBody": "two"}, {"Id": "3", "MessageBody": "three"}])
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=600)["Messages"]
    assert len(received) == 2
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
    sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "x", "ReceiptHandle": received[1]["ReceiptHandle"]}])

    queue = {"QueueName": "cw-counted"}
    assert statistic_of(clean_stack, "AWS/SQS", "NumberOfMessagesSent", queue) == 3
    assert statistic_of(clean_stack, "AWS/SQS", "NumberOfMessagesReceived", queue) == 2
    assert statistic_of(clean_stack, "AWS/SQS", "NumberOfMessagesDeleted", queue) == 2
    # no alarm watches the queue: the read itself has it sampled, once, at the lab minute
    assert statistic_of(clean_stack, "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue, "Maximum") == 1
    assert statistic_of(clean_stack, "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue, "SampleCount") == 1


def test_an_alarm_on_queue_depth_alarms_as_messages_pile_up_across_clock_moves(clean_stack):
    sqs, cloudwatch = client(clean_stack, "sqs"), client(clean_stack, "cloudwatch")
    url = sqs.create_queue(QueueName="cw-piling")["QueueUrl"]
    common = {"Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold"}
    cloudwatch.put_metric_alarm(AlarmName="depth", **queue_metric("ApproximateNumberOfMessagesVisible", "cw-piling"), Threshold=2.0, **common)
    cloudwatch.put_metric_alarm(AlarmName="age", **queue_metric("ApproximateAgeOfOldestMessage", "cw-piling"), Threshold=300.0, **common)
    sqs.send_message(QueueUrl=url, MessageBody="first")
    advance(clean_stack, "2m")
    assert wait_state(cloudwatch, "depth", "OK")["StateValue"] == "OK"
    assert wait_state(cloudwatch, "age", "OK")["StateValue"] == "OK"

    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": "more"} for n in range(4)])
    moved = advance(clean_stack, "10m")
    depth = wait_state(cloudwatch, "depth", "ALARM")
    assert depth["StateValue"] == "ALARM" and "[5.0 (" in depth["StateReason"], depth["StateReason"]
    age = wait_state(cloudwatch, "age", "ALARM")  # the first message has waited 12 lab minutes
    assert age["StateValue"] == "ALARM"
    assert 700 <= json.loads(age["StateReasonData"])["recentDatapoints"][0] <= 800
    # sampled once a minute only while time passes: a move is not walked minute by minute
    assert moved["last_move"]["timers_fired"] < 10, moved["last_move"]


def test_s3_daily_storage_metrics_after_a_three_day_move(clean_stack):
    s3, cloudwatch = client(clean_stack, "s3"), client(clean_stack, "cloudwatch")
    s3.create_bucket(Bucket="cw-storage")
    s3.put_bucket_lifecycle_configuration(Bucket="cw-storage", LifecycleConfiguration={"Rules": [
        {"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 365}}]})
    s3.put_object(Bucket="cw-storage", Key="a", Body=b"a" * 1000)
    s3.put_object(Bucket="cw-storage", Key="b", Body=b"b" * 2000)
    s3.put_object(Bucket="cw-storage", Key="ia", Body=b"i" * 1000, StorageClass="STANDARD_IA")
    start = lab_now(clean_stack)
    advance(clean_stack, "3d")
    first_midnight = start.replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=1)

    def daily(name, storage_type, stat):
        answer = cloudwatch.get_metric_statistics(
            Namespace="AWS/S3", MetricName=name, Dimensions=[{"Name": "BucketName", "Value": "cw-storage"}, {"Name": "StorageType", "Value": storage_type}],
            StartTime=first_midnight - datetime.timedelta(days=1), EndTime=first_midnight + datetime.timedelta(days=4), Period=86400, Statistics=[stat])
        return sorted((point["Timestamp"], point[stat]) for point in answer["Datapoints"])

    standard = daily("BucketSizeBytes", "StandardStorage", "Maximum")
    assert [value for _, value in standard] == [3000.0] * 3  # one datapoint a lab day
    assert {stamp.time() for stamp, _ in standard} == {datetime.time(0, 0)}  # stamped at midnight
    assert [value for _, value in daily("BucketSizeBytes", "StandardIAStorage", "Maximum")] == [1000.0] * 3
    assert [value for _, value in daily("BucketSizeBytes", "StandardIASizeOverhead", "Maximum")] == [128 * 1024 - 1000.0] * 3
    assert [value for _, value in daily("NumberOfObjects", "AllStorageTypes", "Maximum")] == [3.0] * 3


def test_dynamodb_consumed_capacity_follows_aws_arithmetic(clean_stack):
    dynamodb = client(clean_stack, "dynamodb")
    dynamodb.create_table(TableName="cw-capacity", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    # "pk"+"a" = 3, "data"+1500 = 1504, "n"+(123.45: 5 significant digits → 3 + 1) = 5: 1512 bytes
    dynamodb.put_item(TableName="cw-capacity", Item={"pk": {"S": "a"}, "data": {"S": "x" * 1500}, "n": {"N": "123.4500"}})  # 2 WCU
    dynamodb.get_item(TableName="cw-capacity", Key={"pk": {"S": "a"}})  # 1512 B → one 4 KB block, eventually consistent: 0.5
    dynamodb.get_item(TableName="cw-capacity", Key={"pk": {"S": "a"}}, ConsistentRead=True, ProjectionExpression="pk")  # the whole item counts: 1
    dynamodb.put_item(TableName="cw-capacity", Item={"pk": {"S": "a"}})  # the larger of before (1512) and after (3): 2
    dynamodb.update_item(TableName="cw-capacity", Key={"pk": {"S": "a"}}, UpdateExpression="SET big = :b",
                         ExpressionAttributeValues={":b": {"S": "y" * 3000}})  # after: 3 + 3 + 3000 = 3006 → 3
    dynamodb.query(TableName="cw-capacity", KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": {"S": "a"}}, ConsistentRead=True)  # 1
    dynamodb.get_item(TableName="cw-capacity", Key={"pk": {"S": "absent"}})  # nothing found still costs 0.5
    dynamodb.delete_item(TableName="cw-capacity", Key={"pk": {"S": "a"}})  # the deleted item's 3006 B: 3
    table = {"TableName": "cw-capacity"}
    deadline = time.monotonic() + 20
    while statistic_of(clean_stack, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", table) != 10 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert statistic_of(clean_stack, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", table) == 2 + 2 + 3 + 3
    assert statistic_of(clean_stack, "AWS/DynamoDB", "ConsumedReadCapacityUnits", table) == 0.5 + 1 + 1 + 0.5
    assert statistic_of(clean_stack, "AWS/DynamoDB", "ConsumedReadCapacityUnits", table, "SampleCount") == 4


def test_a_kinesis_mapping_publishes_the_iterator_age_of_its_batches(clean_stack):
    kinesis, awslambda = client(clean_stack, "kinesis"), client(clean_stack, "lambda")
    kinesis.create_stream(StreamName="cw-aged", ShardCount=1)
    stream = kinesis.describe_stream(StreamName="cw-aged")["StreamDescription"]["StreamARN"]
    kinesis.put_record(StreamName="cw-aged", Data=b"old", PartitionKey="k")
    advance(clean_stack, "1h")  # the record waits an hour before any mapping reads it
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = client(clean_stack, "iam").create_role(RoleName="cw-aged", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    reads = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": stream, "Action": [
        "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream", "kinesis:ListShards"]}]}
    client(clean_stack, "iam").put_role_policy(RoleName="cw-aged", PolicyName="reads", PolicyDocument=json.dumps(reads))  # the mapping polls as the role
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return len(event['Records'])\n")
    awslambda.create_function(FunctionName="cw-aged", Runtime="python3.11", Role=role, Handler="handler.handler", Code={"ZipFile": buffer.getvalue()})
    mapping = awslambda.create_event_source_mapping(FunctionName="cw-aged", EventSourceArn=stream, StartingPosition="TRIM_HORIZON", BatchSize=10)
    try:
        age = statistic_of(clean_stack, "AWS/Lambda", "IteratorAge", {"FunctionName": "cw-aged"}, "Maximum")
        assert age is not None and 3600_000 <= age < 3700_000, age
    finally:
        awslambda.delete_event_source_mapping(UUID=mapping["UUID"])
