"""Lab 12, part 3 — tell people when the gate finds bad data: an alarm on the failed-rules metric and the data
quality result event, both to one SNS topic (reference solution)."""

import json

import boto3

TOPIC = "dea-dq-alerts"
ALARM = "orders-dq-rules-failed"
EVENT_RULE = "orders-dq-results"
JOB = "orders-dq-gate"
EVALUATION_CONTEXT = "orders_gate"

sns = boto3.client("sns")
cloudwatch = boto3.client("cloudwatch")
events = boto3.client("events")
account = boto3.client("sts").get_caller_identity()["Account"]

if __name__ == "__main__":
    topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
    # EventBridge publishes to the topic only if the topic's policy lets events.amazonaws.com do so
    sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "owner", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
             "Action": "sns:*", "Resource": topic_arn},
            {"Sid": "eventbridge", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
             "Action": "sns:Publish", "Resource": topic_arn},
        ],
    }))

    # the job publishes its rule counts with the dimensions JobName and EvaluationContext
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        AlarmDescription="A batch of orders failed data quality rules",
        Namespace="Glue Data Quality",
        MetricName="glue.data.quality.rules.failed",
        Dimensions=[{"Name": "JobName", "Value": JOB}, {"Name": "EvaluationContext", "Value": EVALUATION_CONTEXT}],
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic_arn],
    )

    events.put_rule(
        Name=EVENT_RULE,
        EventPattern=json.dumps({"source": ["aws.glue-dataquality"],
                                 "detail-type": ["Data Quality Evaluation Results Available"]}),
        State="ENABLED",
    )
    events.put_targets(Rule=EVENT_RULE, Targets=[{"Id": "dq-alerts", "Arn": topic_arn}])
    print(f"alarm {ALARM} and rule {EVENT_RULE} → {topic_arn}")
