"""Lab 11, part 1: page on-call when the pipeline falls behind or its curation job fails, and count the
function's ERROR lines as a metric. boto3 only (no endpoint: AWS_ENDPOINT_URL points at the lab); safe to run
again."""

import json  # noqa: F401  (event patterns and policies are JSON documents)

import boto3

FUNCTION, JOB = "dea-ops-ingest", "dea-ops-curate"
LOG_GROUP = f"/aws/lambda/{FUNCTION}"
TOPIC, ONCALL_QUEUE = "dea-ops-pages", "dea-ops-oncall"
ALARM, RULE, METRIC_FILTER = "dea-ops-ingest-iterator-age", "dea-ops-curate-failed", "dea-ops-ingest-errors"

sns, sqs = boto3.client("sns"), boto3.client("sqs")
cloudwatch, events, logs = boto3.client("cloudwatch"), boto3.client("events"), boto3.client("logs")

# TODO 1: the topic TOPIC, with the queue ONCALL_QUEUE subscribed (the queue's policy must let the topic send),
#         and a topic policy that lets EventBridge publish.

# TODO 2: the alarm ALARM: page through the topic when the mapping of FUNCTION is more than 5 minutes behind its
#         stream (check it each minute), and stay quiet while the stream is idle.

# TODO 3: the rule RULE: a run of JOB that fails pages through the same topic (with the event, so on-call sees the run).

# TODO 4: the metric filter METRIC_FILTER on LOG_GROUP: each ERROR-level JSON line counts 1 in DEA/Ops IngestErrors.
print("monitor.py: nothing done yet (see the TODOs)")
