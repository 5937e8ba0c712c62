"""Lab 11 reference solution, part 1: page the on-call queue when the pipeline falls behind or its job fails, and
count the function's ERROR lines as a metric. boto3 only; safe to run again."""

import json

import boto3

FUNCTION, JOB = "dea-ops-ingest", "dea-ops-curate"
LOG_GROUP = f"/aws/lambda/{FUNCTION}"
TOPIC, ONCALL_QUEUE = "dea-ops-pages", "dea-ops-oncall"
ALARM, RULE, METRIC_FILTER = "dea-ops-ingest-iterator-age", "dea-ops-curate-failed", "dea-ops-ingest-errors"
BEHIND_MS = 5 * 60 * 1000  # the mapping may be at most five minutes behind the stream

sns, sqs = boto3.client("sns"), boto3.client("sqs")
cloudwatch, events, logs = boto3.client("cloudwatch"), boto3.client("events"), boto3.client("logs")

# One topic pages on-call; the queue standing for the pager is subscribed, and its policy lets the topic send.
topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
queue_url = sqs.get_queue_url(QueueName=ONCALL_QUEUE)["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": queue_arn,
    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]})})
sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
# EventBridge may publish to the topic (CloudWatch alarms in the same account need no statement).
sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "owner", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{topic_arn.split(':')[4]}:root"}, "Action": "sns:*", "Resource": topic_arn},
    {"Sid": "eventbridge", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish", "Resource": topic_arn}]}))

# The mapping falls behind when its IteratorAge grows: page when the oldest batch it sends is over five minutes old.
# An idle stream sends nothing, and nothing is not a reason to page.
cloudwatch.put_metric_alarm(
    AlarmName=ALARM, AlarmDescription=f"{FUNCTION}'s Kinesis mapping is more than 5 minutes behind the stream",
    Namespace="AWS/Lambda", MetricName="IteratorAge", Dimensions=[{"Name": "FunctionName", "Value": FUNCTION}],
    Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=BEHIND_MS, ComparisonOperator="GreaterThanThreshold",
    TreatMissingData="notBreaching", AlarmActions=[topic_arn], OKActions=[topic_arn])

# A failed run of the curation job pages through the same topic.
pattern = {"source": ["aws.glue"], "detail-type": ["Glue Job State Change"],
           "detail": {"jobName": [JOB], "state": ["FAILED", "TIMEOUT"]}}
events.put_rule(Name=RULE, EventPattern=json.dumps(pattern), Description=f"a run of {JOB} failed")
events.put_targets(Rule=RULE, Targets=[{"Id": "pages", "Arn": topic_arn}])

# Every ERROR-level JSON line of the function counts once.
logs.put_metric_filter(logGroupName=LOG_GROUP, filterName=METRIC_FILTER, filterPattern='{ $.level = "ERROR" }',
                       metricTransformations=[{"metricNamespace": "DEA/Ops", "metricName": "IngestErrors", "metricValue": "1", "unit": "Count"}])
print(f"alarm {ALARM}, rule {RULE} and metric filter {METRIC_FILTER} page through {topic_arn}")
