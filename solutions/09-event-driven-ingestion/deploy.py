"""Lab 09 reference solution: the event-driven ingestion pipeline, created with boto3 only and safe to run again.

S3 (landing/*.jsonl) → EventBridge rule → validator Lambda → SQS → loader Lambda → DynamoDB
                                            └─ quarantine bucket + SNS alert      └─ DLQ after 5 receives
"""

import io
import json
import time
import zipfile
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

RAW, QUARANTINE, TABLE = "dea-ingest-raw", "dea-ingest-quarantine", "dea-ingest-records"
QUEUE, DLQ, OPS_QUEUE, TOPIC = "dea-ingest-records", "dea-ingest-records-dlq", "dea-ingest-ops", "dea-ingest-alerts"
RULE, VALIDATOR, LOADER, ROLE = "dea-ingest-landing", "dea-ingest-validate", "dea-ingest-load", "dea-ingest-lambda"
LOADER_TIMEOUT = 10  # seconds; the queue's visibility timeout is six times this, as Lambda's SQS guide asks
HERE = Path(__file__).parent

iam, s3, sqs, sns = boto3.client("iam"), boto3.client("s3"), boto3.client("sqs"), boto3.client("sns")
dynamodb, awslambda, events = boto3.client("dynamodb"), boto3.client("lambda"), boto3.client("events")


def queue(name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    if attributes:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def role() -> str:
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    iam.put_role_policy(RoleName=ROLE, PolicyName="ingest", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{RAW}/landing/*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{QUARANTINE}/*"},
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
         "Resource": queue_arn},
        {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": table_arn},
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn},
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"},
    ]}))
    return arn


def function(name: str, source: str, timeout: int, variables: dict) -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(HERE / source, source)
    handler = f"{Path(source).stem}.handler"
    settings = {"Runtime": "python3.12", "Handler": handler, "Role": role_arn, "Timeout": timeout, "Environment": {"Variables": variables}}
    for attempt in range(10):  # a new role takes a few seconds to be usable by Lambda on AWS
        try:
            try:
                arn = awslambda.create_function(FunctionName=name, Code={"ZipFile": archive.getvalue()}, **settings)["FunctionArn"]
            except awslambda.exceptions.ResourceConflictException:
                awslambda.update_function_code(FunctionName=name, ZipFile=archive.getvalue())
                awslambda.get_waiter("function_updated_v2").wait(FunctionName=name)
                arn = awslambda.update_function_configuration(FunctionName=name, **settings)["FunctionArn"]
            break
        except awslambda.exceptions.InvalidParameterValueException:
            if attempt == 9:
                raise
            time.sleep(3)
    awslambda.get_waiter("function_active_v2").wait(FunctionName=name)
    awslambda.get_waiter("function_updated_v2").wait(FunctionName=name)
    return arn


# The table: one item per record, keyed by its id so a conditional put can refuse a second load.
try:
    dynamodb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "record_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "record_id", "AttributeType": "S"}])
except dynamodb.exceptions.ResourceInUseException:
    pass
dynamodb.get_waiter("table_exists").wait(TableName=TABLE)
table_arn = dynamodb.describe_table(TableName=TABLE)["Table"]["TableArn"]

# Queues: records, their dead letters (poison moves there after 5 receives), and the operators' inbox.
_, dlq_arn = queue(DLQ, MessageRetentionPeriod=str(14 * 24 * 3600))
queue_url, queue_arn = queue(QUEUE, VisibilityTimeout=str(6 * LOADER_TIMEOUT),
                             RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}))
ops_url, ops_arn = queue(OPS_QUEUE)

# Alerts: one topic, the operators' queue subscribed (the queue's policy lets the topic send).
topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
sqs.set_queue_attributes(QueueUrl=ops_url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": ops_arn,
     "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]})})
sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=ops_arn)

role_arn = role()
validator_arn = function(VALIDATOR, "validator.py", 30,
                         {"QUEUE_URL": queue_url, "QUARANTINE_BUCKET": QUARANTINE, "TOPIC_ARN": topic_arn})
# A validator that fails all its attempts (an object it cannot read) tells the operators through the topic.
awslambda.put_function_event_invoke_config(FunctionName=VALIDATOR, MaximumRetryAttempts=2,
                                           DestinationConfig={"OnFailure": {"Destination": topic_arn}})
function(LOADER, "loader.py", LOADER_TIMEOUT, {"TABLE": TABLE})

mappings = awslambda.list_event_source_mappings(EventSourceArn=queue_arn, FunctionName=LOADER)["EventSourceMappings"]
if mappings:
    awslambda.update_event_source_mapping(UUID=mappings[0]["UUID"], BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
else:
    awslambda.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=LOADER, BatchSize=10,
                                          FunctionResponseTypes=["ReportBatchItemFailures"])

# S3 → EventBridge → validator, for JSON-lines objects under landing/ only.
s3.put_bucket_notification_configuration(Bucket=RAW, NotificationConfiguration={"EventBridgeConfiguration": {}})
pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"],
           "detail": {"bucket": {"name": [RAW]}, "object": {"key": [{"wildcard": "landing/*.jsonl"}]}}}
rule_arn = events.put_rule(Name=RULE, EventPattern=json.dumps(pattern))["RuleArn"]
try:
    awslambda.add_permission(FunctionName=VALIDATOR, StatementId="eventbridge-landing", Action="lambda:InvokeFunction",
                             Principal="events.amazonaws.com", SourceArn=rule_arn)
except awslambda.exceptions.ResourceConflictException:
    pass
events.put_targets(Rule=RULE, Targets=[{"Id": "validator", "Arn": validator_arn}])
print(f"pipeline ready: s3://{RAW}/landing/*.jsonl → {RULE} → {VALIDATOR} → {QUEUE} → {LOADER} → {TABLE}")
