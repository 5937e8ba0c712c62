"""Lab 09, part 1 — build the pipeline. Work through the TODOs from top to bottom; make every step safe to
run twice (`make run-9` runs this, then drop.py).

Plain AWS code: never pass endpoint_url. The two handlers are validator.py and loader.py beside this file;
zip each one and create a function from it.

S3 (landing/*.jsonl) → EventBridge rule → validator Lambda → SQS → loader Lambda → DynamoDB
                                            └─ quarantine bucket + SNS alert      └─ DLQ
"""

import io
import json
import zipfile
from pathlib import Path

import boto3

RAW, QUARANTINE, TABLE = "dea-ingest-raw", "dea-ingest-quarantine", "dea-ingest-records"
QUEUE, DLQ, OPS_QUEUE, TOPIC = "dea-ingest-records", "dea-ingest-records-dlq", "dea-ingest-ops", "dea-ingest-alerts"
RULE, VALIDATOR, LOADER, ROLE = "dea-ingest-landing", "dea-ingest-validate", "dea-ingest-load", "dea-ingest-lambda"
HERE = Path(__file__).parent

# TODO 1: create the table TABLE keyed by record_id (S), on demand.

# TODO 2: create the DLQ, then QUEUE with a redrive policy to it (maxReceiveCount) and a visibility timeout
#         of at least six times the loader's timeout; create OPS_QUEUE, the operators' inbox.

# TODO 3: create the topic TOPIC and subscribe OPS_QUEUE to it (protocol sqs; on AWS the queue's policy must
#         let the topic send).

# TODO 4: create the role ROLE Lambda can assume, then the two functions from validator.py and loader.py
#         (environment variables tell them the queue URL, quarantine bucket, topic ARN and table). Give the
#         validator an on-failure destination: the topic.

# TODO 5: map QUEUE to the loader (create_event_source_mapping), reporting partial batch failures.

# TODO 6: turn on EventBridge notifications for RAW; create the rule RULE matching objects created under
#         landing/ whose key ends .jsonl; let EventBridge invoke the validator; make it the rule's target.
