"""Lab 11 reference solution, part 2: which record does dea-ops-ingest fail on? A Logs Insights query over the
function's log group, over the day before its latest log event."""

import time

import boto3

LOG_GROUP = "/aws/lambda/dea-ops-ingest"
QUERY = """fields @timestamp, event_id, sequence_number, error
| filter level = "ERROR"
| stats count(*) as failures, min(@timestamp) as first_seen by event_id, sequence_number, error"""

logs = boto3.client("logs")
latest = logs.describe_log_streams(logGroupName=LOG_GROUP, orderBy="LastEventTime", descending=True, limit=1)["logStreams"][0]
until = latest["lastEventTimestamp"] // 1000 + 60
query_id = logs.start_query(logGroupName=LOG_GROUP, startTime=until - 24 * 3600, endTime=until, queryString=QUERY)["queryId"]
while (answer := logs.get_query_results(queryId=query_id))["status"] in ("Scheduled", "Running"):
    time.sleep(0.5)
for row in answer["results"]:
    print({cell["field"]: cell["value"] for cell in row})
