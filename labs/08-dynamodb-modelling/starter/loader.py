"""Lab 08, part 1 — design the tables and load them. Work through the TODOs from top to bottom.

Plain AWS code: never pass endpoint_url. Run it with `make run-8` (it runs loader.py, then change_log.py).
Access patterns the orders table must answer with a Query (never a Scan):
  1. a customer's orders between two dates;
  2. all orders in a given status.
"""

import json
import time
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

ORDERS, SESSIONS, STATUS_INDEX = "dea-orders", "dea-sessions", "status-index"
dynamodb = boto3.client("dynamodb")

# TODO 1: create ORDERS (on-demand) with partition key customer_id (S) and sort key order_key (S),
#         a GSI STATUS_INDEX keyed on status (S) and order_date (S) projecting ALL, and a stream
#         (NEW_AND_OLD_IMAGES). Make it safe to run twice (ResourceInUseException).

# TODO 2: create SESSIONS with partition key session_id (S) and a stream (KEYS_ONLY is enough),
#         and enable TTL on its attribute expires_at.

for line in Path("data/orders.jsonl").read_text().splitlines():
    order = json.loads(line)
    # TODO 3: write the order with order_key = f"{order['order_date']}#{order['order_id']}", amount as a
    #         Number, version as a Number — but only if the table holds no newer version of it
    #         (a conditional put; a ConditionalCheckFailedException means "older, skip it").
    pass

now = int(time.time())
for line in Path("data/sessions.jsonl").read_text().splitlines():
    session = json.loads(line)
    # TODO 4: write the session with expires_at = now + ttl_hours hours, in epoch seconds (a Number).
    pass
