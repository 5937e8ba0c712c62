"""Lab 11, part 3: who deleted the curated data, and when? A trail that records who touches the curated bucket,
delivered to an audit bucket with log file validation, and an Athena table and saved query over its files."""

import json  # noqa: F401  (the bucket policy is a JSON document)
import time  # noqa: F401

import boto3

TRAIL, AUDIT_BUCKET, CURATED_BUCKET = "dea-ops-audit", "dea-ops-audit", "dea-ops-curated"
DATABASE, RESULTS = "audit", "s3://dea-ops-athena/audit/"
NAMED_QUERY = "who-deleted-curated"

s3, cloudtrail, athena = boto3.client("s3"), boto3.client("cloudtrail"), boto3.client("athena")
account = boto3.client("sts").get_caller_identity()["Account"]

# TODO 7: the bucket AUDIT_BUCKET with the bucket policy CloudTrail needs to deliver into it.

# TODO 8: the trail TRAIL into AUDIT_BUCKET: log file validation on, object-level (data) events of CURATED_BUCKET
#         recorded, logging started.

# TODO 9: the Athena database DATABASE and the table cloudtrail_logs as the Athena user guide defines it, over
#         s3://AUDIT_BUCKET/AWSLogs/<account>/CloudTrail/.

# TODO 10: the saved (named) query NAMED_QUERY: who (the IAM user) deleted objects of CURATED_BUCKET, and when.
print("audit.py: nothing done yet (see the TODOs)")
