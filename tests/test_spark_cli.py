"""`dealab spark-submit`: a plain PySpark script reads and writes the lab's S3 through s3:// and s3a:// with nothing
configured by the script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import client

pytestmark = pytest.mark.slow

BUCKET = "spark-cli"
SCRIPT = '''
import sys
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

source, target = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("totals").getOrCreate()
orders = spark.read.json(source)
orders.groupBy("customer").agg(F.sum("amount").alias("total")).coalesce(1).write.mode("overwrite").json(target)
spark.stop()
'''


def test_spark_submit_runs_a_plain_script_against_the_labs_s3(clean_stack, tmp_path):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket=BUCKET)
    orders = [{"customer": "ana", "amount": 10}, {"customer": "bo", "amount": 5}, {"customer": "ana", "amount": 2}]
    s3.put_object(Bucket=BUCKET, Key="orders/o.json", Body="".join(json.dumps(o) + "\n" for o in orders).encode())
    script = tmp_path / "totals.py"
    script.write_text(SCRIPT)
    dealab = Path(sys.executable).parent / "dealab"

    finished = subprocess.run([str(dealab), "spark-submit", str(script), f"s3://{BUCKET}/orders/", f"s3a://{BUCKET}/totals/"],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)

    assert finished.returncode == 0, finished.stderr[-3000:]
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="totals/")["Contents"] if item["Key"].endswith(".json")]
    rows = [json.loads(line) for key in keys for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()]
    assert sorted((row["customer"], row["total"]) for row in rows) == [("ana", 12), ("bo", 5)]
