"""Lab 11, part 2: which record does dea-ops-ingest fail on? Ask CloudWatch Logs Insights, over the function's log
group, and print what the query returns."""

import time  # noqa: F401  (a query runs asynchronously: poll its results)

import boto3

LOG_GROUP = "/aws/lambda/dea-ops-ingest"
QUERY = ""  # TODO 5: a Logs Insights query whose results name the record the function fails on (and only that one)

logs = boto3.client("logs")
# TODO 6: start the query over LOG_GROUP for a time range covering the function's logs, wait until it is
#         Complete, and print its rows.
print("investigate.py: nothing done yet (see the TODOs)")
