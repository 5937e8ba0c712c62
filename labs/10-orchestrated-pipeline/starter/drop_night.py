"""Lab 10 — drop night k's raw files into the raw zone under a date, as the store system does each night.

    python drop_night.py 1 2026-12-07     # data/nights/night-1/*.csv → s3://dea-pipeline-raw/sales/night=2026-12-07/

Then move the lab clock past 02:00 of that date (`dealab clock set 2026-12-07T03:00`) and the schedule runs
the pipeline for it; or start an execution yourself with the input {"time": "2026-12-07T02:00:00Z"}.
"""

import sys
from pathlib import Path

import boto3

RAW_BUCKET = "dea-pipeline-raw"

if __name__ == "__main__":
    night, date = sys.argv[1], sys.argv[2]
    s3 = boto3.client("s3")
    for path in sorted(Path(f"data/nights/night-{night}").glob("*.csv")):
        s3.upload_file(str(path), RAW_BUCKET, f"sales/night={date}/{path.name}")
        print(f"s3://{RAW_BUCKET}/sales/night={date}/{path.name}")
