"""Lab 04 — lifecycle rules for a versioned bucket. Work through the TODOs from top to bottom.

Plain AWS code: never pass endpoint_url. Run it with `make run-4`, then fast-forward time with
`dealab clock advance 31d` and look at what your rules did (StorageClass in list-objects-v2, the
versions in list-object-versions, `dealab storage report`).
"""

import json
from pathlib import Path

import boto3

BUCKET = "dea-lifecycle-lab"
PLAN = Path("data/plan.json")  # what `make lab-4` seeded: every object's key, age, size and tags

s3 = boto3.client("s3")

rules = []

# TODO 1: raw/ objects move to STANDARD_IA at 30 days and to GLACIER_IR at 90 days, and expire at 365 days.
#         Objects tagged retention=legal-hold must never be touched: filter on the tag retention=standard.

# TODO 2: tmp/ objects (retention=standard) expire after 7 days.

# TODO 3: noncurrent versions expire 30 days after they become noncurrent, keeping the 3 newest.

# TODO 4: incomplete multipart uploads are aborted 7 days after they began.

if rules:
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": rules})
    print(json.dumps(s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"], indent=2))
else:
    print(f"no rules yet; the plan of what is in {BUCKET} is in {PLAN}")
