"""Lab 12, part 3 — tell people when the gate finds bad data: an alarm on the failed-rules metric and the data
quality result event, both to one SNS topic."""

import boto3

TOPIC = "dea-dq-alerts"
ALARM = "orders-dq-rules-failed"
EVENT_RULE = "orders-dq-results"
JOB = "orders-dq-gate"
EVALUATION_CONTEXT = "orders_gate"

sns = boto3.client("sns")
cloudwatch = boto3.client("cloudwatch")
events = boto3.client("events")

if __name__ == "__main__":
    topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
    # TODO: let EventBridge publish to the topic (its access policy)
    # TODO: alarm ALARM on the job's glue.data.quality.rules.failed (namespace "Glue Data Quality", dimensions
    #       JobName and EvaluationContext) → the topic
    # TODO: rule EVENT_RULE matching Glue Data Quality's result event → the topic
    print(f"topic {topic_arn}")
