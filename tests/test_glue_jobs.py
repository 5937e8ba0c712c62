"""Glue job runs on the stack: scripts from S3 run on the warm Spark worker with our awsglue library.

All tests share one stack and so one Spark worker; the tests that must end a worker (stop, timeout) run last.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request

import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from tests.conftest import admin_headers, client
from tests.gluekit import create_job, log_lines, run_job, upload_script, wait_for_run

pytestmark = pytest.mark.slow

BUCKET = "glue-jobs-test"
ORDERS = [
    {"order_id": 1, "customer": "ana", "amount": "10.5", "day": "2024-01-01"},
    {"order_id": 2, "customer": "bo", "amount": "7", "day": "2024-01-01"},
    {"order_id": 3, "customer": "cy", "amount": "oops", "day": "2024-01-02"},
]

COPY_SCRIPT = '''
import sys
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.transforms import ApplyMapping
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "source", "target"])
glue_context = GlueContext(SparkContext.getOrCreate())
job = Job(glue_context)
job.init(args["JOB_NAME"], args)
orders = glue_context.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [args["source"]]}, format="json", transformation_ctx="orders")
print(f"read {orders.count()} orders")
typed = ApplyMapping.apply(frame=orders, mappings=[
    ("order_id", "long", "order_id", "long"), ("amount", "string", "amount", "double"), ("day", "string", "day", "string")])
glue_context.write_dynamic_frame.from_options(
    frame=typed, connection_type="s3", connection_options={"path": args["target"], "partitionKeys": ["day"]},
    format="parquet", format_options={"compression": "snappy"})
job.commit()
'''


def _put_lines(s3, key: str, records: list[dict]) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body="".join(json.dumps(r) + "\n" for r in records).encode())


def _parquet_rows(s3, prefix: str) -> list[dict]:
    rows = []
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
        if item["Key"].endswith(".parquet"):
            table = pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()))
            day = item["Key"].split("day=")[1].split("/")[0]
            rows += [dict(row, day=day) for row in table.to_pylist()]
    return sorted(rows, key=lambda row: row["order_id"])


@pytest.fixture
def bucket(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def test_a_job_run_reads_s3_writes_partitioned_parquet_and_logs_its_output(clean_stack, bucket):
    _put_lines(bucket, "raw/orders-1.json", ORDERS)
    create_job(clean_stack, "copy-orders", upload_script(clean_stack, BUCKET, "scripts/copy.py", COPY_SCRIPT),
               WorkerType="G.1X", NumberOfWorkers=2, Timeout=30)

    run = run_job(clean_stack, "copy-orders", {"--source": f"s3://{BUCKET}/raw/", "--target": f"s3://{BUCKET}/curated/"})

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert run["Attempt"] == 0 and run["Timeout"] == 30 and run["WorkerType"] == "G.1X" and run["NumberOfWorkers"] == 2
    assert run["CompletedOn"] >= run["StartedOn"] and run["ExecutionTime"] >= 0
    assert run["Arguments"]["--target"] == f"s3://{BUCKET}/curated/"
    keys = [item["Key"] for item in bucket.list_objects_v2(Bucket=BUCKET, Prefix="curated/")["Contents"]]
    assert all(key.endswith(".snappy.parquet") for key in keys) and {k.split("/")[1] for k in keys} == {"day=2024-01-01", "day=2024-01-02"}
    assert _parquet_rows(bucket, "curated/") == [
        {"order_id": 1, "amount": 10.5, "day": "2024-01-01"},
        {"order_id": 2, "amount": 7.0, "day": "2024-01-01"},
        {"order_id": 3, "amount": None, "day": "2024-01-02"},
    ]
    assert "read 3 orders" in log_lines(clean_stack, "/aws-glue/jobs/output", run["Id"])
    runs = client(clean_stack, "glue").get_job_runs(JobName="copy-orders")["JobRuns"]
    assert [r["Id"] for r in runs] == [run["Id"]]


def test_an_exception_in_the_script_fails_the_run_with_its_message_and_traceback(clean_stack, bucket):
    script = 'print("before")\nraise ValueError("amount column missing in s3://x/raw")\n'
    create_job(clean_stack, "broken", upload_script(clean_stack, BUCKET, "scripts/broken.py", script))

    run = run_job(clean_stack, "broken")

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "ValueError: amount column missing in s3://x/raw"
    errors = log_lines(clean_stack, "/aws-glue/jobs/error", run["Id"])
    assert errors[0] == "Traceback (most recent call last):" and errors[-1] == "ValueError: amount column missing in s3://x/raw"
    assert log_lines(clean_stack, "/aws-glue/jobs/output", run["Id"]) == ["before"]


def test_max_retries_starts_a_new_attempt_after_a_failure(clean_stack, bucket):
    create_job(clean_stack, "flaky", upload_script(clean_stack, BUCKET, "scripts/flaky.py", "import sys\nsys.exit(3)\n"), MaxRetries=1)

    first = run_job(clean_stack, "flaky")
    retry = wait_for_run(clean_stack, "flaky", f"{first['Id']}_attempt_1")

    assert first["JobRunState"] == "FAILED" and "status 3" in first["ErrorMessage"]
    assert retry["JobRunState"] == "FAILED" and retry["Attempt"] == 1 and retry["PreviousRunId"] == first["Id"]
    runs = client(clean_stack, "glue").get_job_runs(JobName="flaky")["JobRuns"]
    assert [r["Id"] for r in runs] == [retry["Id"], first["Id"]]


def test_bookmarks_make_a_rerun_read_only_new_objects_until_reset(clean_stack, bucket):
    _put_lines(bucket, "raw/orders-1.json", ORDERS[:2])
    create_job(clean_stack, "incremental", upload_script(clean_stack, BUCKET, "scripts/copy.py", COPY_SCRIPT),
               DefaultArguments={"--job-bookmark-option": "job-bookmark-enable"})
    arguments = {"--source": f"s3://{BUCKET}/raw/", "--target": f"s3://{BUCKET}/curated/"}
    glue = client(clean_stack, "glue")

    first = run_job(clean_stack, "incremental", arguments)
    _put_lines(bucket, "raw/orders-2.json", ORDERS[2:])
    second = run_job(clean_stack, "incremental", arguments)
    bookmark = glue.get_job_bookmark(JobName="incremental")["JobBookmarkEntry"]
    glue.reset_job_bookmark(JobName="incremental")
    third = run_job(clean_stack, "incremental", {**arguments, "--job-bookmark-option": "job-bookmark-disable"})

    assert [r["JobRunState"] for r in (first, second, third)] == ["SUCCEEDED"] * 3
    assert "read 2 orders" in log_lines(clean_stack, "/aws-glue/jobs/output", first["Id"])
    assert "read 1 orders" in log_lines(clean_stack, "/aws-glue/jobs/output", second["Id"])
    assert "read 3 orders" in log_lines(clean_stack, "/aws-glue/jobs/output", third["Id"])
    assert bookmark["RunId"] == second["Id"] and bookmark["PreviousRunId"] == first["Id"] and bookmark["Run"] == 2
    assert set(json.loads(bookmark["JobBookmark"])["orders"]) == {f"s3://{BUCKET}/raw/orders-1.json", f"s3://{BUCKET}/raw/orders-2.json"}
    assert [row["order_id"] for row in _parquet_rows(bucket, "curated/")] == [1, 1, 2, 2, 3, 3]  # run 1: 1, 2; run 2: 3; run 3 (bookmark off): all


def test_unknown_jobs_and_runs_get_aws_errors(clean_stack):
    glue = client(clean_stack, "glue")
    with pytest.raises(ClientError) as missing_job:
        glue.start_job_run(JobName="nope")
    with pytest.raises(ClientError) as missing_run:
        glue.get_job_run(JobName="nope", RunId="jr_0")
    assert missing_job.value.response["Error"]["Code"] == "EntityNotFoundException"
    assert missing_run.value.response["Error"]["Code"] == "EntityNotFoundException"


def test_update_job_replaces_the_definition(clean_stack, bucket):
    location = upload_script(clean_stack, BUCKET, "scripts/a.py", "print('a')\n")
    create_job(clean_stack, "changing", location, Timeout=10)
    glue = client(clean_stack, "glue")

    glue.update_job(JobName="changing", JobUpdate={"Role": "r2", "Command": {"Name": "glueetl", "ScriptLocation": location}, "MaxRetries": 2})

    job = glue.get_job(JobName="changing")["Job"]
    assert job["Role"] == "r2" and job["MaxRetries"] == 2 and job.get("Timeout") != 10


def _worker_pid(settings) -> int | None:
    with urllib.request.urlopen(urllib.request.Request(f"{settings.endpoint_url}/_dealab/glue", headers=admin_headers(settings))) as response:
        return json.loads(response.read())["worker_pid"]


def test_max_concurrent_runs_is_enforced_and_a_stopped_run_is_stopped_in_the_warm_worker(clean_stack, bucket):
    create_job(clean_stack, "slow", upload_script(clean_stack, BUCKET, "scripts/slow.py", "import time\nprint('sleeping')\ntime.sleep(600)\n"),
               ExecutionProperty={"MaxConcurrentRuns": 1})
    glue = client(clean_stack, "glue")
    run_id = glue.start_job_run(JobName="slow")["JobRunId"]
    while glue.get_job_run(JobName="slow", RunId=run_id)["JobRun"]["JobRunState"] != "RUNNING":
        time.sleep(0.1)
    time.sleep(1)  # into the script's sleep
    worker_running = _worker_pid(clean_stack)

    with pytest.raises(ClientError) as refused:
        glue.start_job_run(JobName="slow")
    answer = glue.batch_stop_job_run(JobName="slow", JobRunIds=[run_id, "jr_unknown"])
    run = wait_for_run(clean_stack, "slow", run_id, timeout=60)
    worker_after_stop = _worker_pid(clean_stack)

    assert refused.value.response["Error"]["Code"] == "ConcurrentRunsExceededException"
    assert answer["SuccessfulSubmissions"] == [{"JobName": "slow", "JobRunId": run_id}]
    assert answer["Errors"][0]["JobRunId"] == "jr_unknown"
    assert run["JobRunState"] == "STOPPED"
    assert worker_after_stop is not None and worker_after_stop == worker_running, "the interrupted script must leave the worker warm"
    assert log_lines(clean_stack, "/aws-glue/jobs/output", run_id) == ["sleeping"]
    next_id = glue.start_job_run(JobName="slow")["JobRunId"]  # the stopped run no longer counts
    glue.batch_stop_job_run(JobName="slow", JobRunIds=[next_id])
    assert wait_for_run(clean_stack, "slow", next_id, timeout=5 * 60)["JobRunState"] == "STOPPED"


def test_a_run_past_its_timeout_ends_as_timeout_and_a_script_that_ignores_it_is_killed(clean_stack, bucket):
    stubborn = "import time\nwhile True:\n    try:\n        time.sleep(600)\n    except KeyboardInterrupt:\n        print('ignoring the stop')\n"
    create_job(clean_stack, "too-slow", upload_script(clean_stack, BUCKET, "scripts/too_slow.py", stubborn), Timeout=1)

    run = run_job(clean_stack, "too-slow", timeout=5 * 60)

    assert run["JobRunState"] == "TIMEOUT" and "1 minutes" in run["ErrorMessage"]
    assert _worker_pid(clean_stack) is None  # ended, since the script would not
    assert log_lines(clean_stack, "/aws-glue/jobs/output", run["Id"]) == ["ignoring the stop"]


def test_a_worker_without_the_s3a_jars_says_how_to_install_them(tmp_path, monkeypatch):
    from dealab.engines.glue.worker_process import SparkWorker, WorkerGone

    jarless = tmp_path / "site" / "sagemaker_pyspark"
    (jarless / "jars").mkdir(parents=True)
    (jarless / "__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    worker = SparkWorker("http://127.0.0.1:9", "us-east-1", tmp_path / "worker.log")

    with pytest.raises(WorkerGone) as refused:
        worker.start()

    assert "pip install --no-deps sagemaker-pyspark==1.4.5" in str(refused.value)
    assert not worker.alive()
