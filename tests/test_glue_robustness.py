"""Glue runs and crawls that cannot hang or orphan: a kill -9 of the stack leaves no worker or JVM behind, a run's
stop or timeout ends every process of the run (a detached child too), work in flight at a restart ends FAILED
with a reason, and bad files never fail a crawl."""

from __future__ import annotations

import gzip
import json
import os
import signal
import time
from pathlib import Path

import pytest

from dealab.engines.glue import jobs
from dealab.engines.glue.classifiers import Classifiers
from dealab.engines.glue.crawlers import Crawls
from dealab.engines.glue.pyshell import MARK_OWNER, marked_processes
from dealab.stack import control
from tests.conftest import client, make_settings, service_role
from tests.gluekit import FINAL_RUN_STATES, create_job, log_lines, upload_script, wait_for_crawler, wait_for_run

BUCKET = "glue-robustness"

# Starts a detached child (a session of its own, so outside the script's process group), says its pid, then
# sleeps unless told to end at once.
DETACHED_CHILD_SCRIPT = """
import subprocess
import sys
import time

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print(f"detached child {child.pid}", flush=True)
if "--end-at-once" not in sys.argv:
    time.sleep(600)
"""

SPARK_SLEEPER_SCRIPT = """
import subprocess
import sys
import time

from pyspark.context import SparkContext
from awsglue.context import GlueContext

spark = GlueContext(SparkContext.getOrCreate()).spark_session
print(f"rows {spark.range(3).count()}", flush=True)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print(f"detached child {child.pid}", flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan killed in a container whose init does not reap stays a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def detached_child_pid(settings, run_id: str, timeout: float = 60) -> int:
    def from_log():
        try:
            lines = log_lines(settings, "/aws-glue/jobs/output", run_id)
        except Exception:  # the stream is created when the run starts
            return None
        return next((int(line.split()[-1]) for line in lines if line.startswith("detached child ")), None)

    return wait_until(from_log, timeout, f"run {run_id} to log its detached child")


def create_shell_job(settings, name: str, source: str) -> None:
    client(settings, "glue").create_job(
        Name=name, Role=service_role(settings, "glue", "glue"), MaxCapacity=0.0625,
        Command={"Name": "pythonshell", "ScriptLocation": upload_script(settings, BUCKET, f"scripts/{name}.py", source), "PythonVersion": "3.9"},
    )


@pytest.fixture
def bucket(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


# ---- pythonshell: stop, timeout and the script's end take the detached child with them ---------------------
def test_a_stop_ends_a_run_whose_script_left_a_detached_child_and_the_next_run_starts(clean_stack, bucket):
    create_shell_job(clean_stack, "detacher", DETACHED_CHILD_SCRIPT)
    glue = client(clean_stack, "glue")
    run_id = glue.start_job_run(JobName="detacher")["JobRunId"]
    child = detached_child_pid(clean_stack, run_id)
    assert running(child)

    answer = glue.batch_stop_job_run(JobName="detacher", JobRunIds=[run_id])
    assert answer["Errors"] == [] and answer["SuccessfulSubmissions"][0]["JobRunId"] == run_id
    assert wait_for_run(clean_stack, "detacher", run_id, timeout=60)["JobRunState"] == "STOPPED"
    wait_until(lambda: not running(child), 10, f"the detached child {child} to be killed")

    # MaxConcurrentRuns is 1: the stopped run no longer counts.
    later = glue.start_job_run(JobName="detacher", Arguments={"--end-at-once": "yes"})["JobRunId"]
    later_child = detached_child_pid(clean_stack, later)
    assert wait_for_run(clean_stack, "detacher", later, timeout=60)["JobRunState"] == "SUCCEEDED"
    wait_until(lambda: not running(later_child), 10, f"the child {later_child} of a run that ended to be killed")


def test_a_timeout_ends_the_run_and_its_detached_child(aws_env, tmp_path, monkeypatch):
    """Through JobRuns in this process, with the timeout's minute shortened to a second (AWS's least Timeout is
    one minute); the script and its logs go through the stack."""
    s3 = client(aws_env, "s3")
    s3.create_bucket(Bucket=BUCKET)
    location = upload_script(aws_env, BUCKET, "scripts/timeout.py", DETACHED_CHILD_SCRIPT)
    monkeypatch.setattr(jobs, "SECONDS_PER_TIMEOUT_MINUTE", 1.0)
    runs = jobs.JobRuns(tmp_path, aws_env.endpoint_url, aws_env.region, lambda service: client(aws_env, service))
    try:
        job = {"Name": "sleeper", "Command": {"Name": "pythonshell", "ScriptLocation": location}}
        run_id = runs.start(job, {}, {"Timeout": 1})
        child = detached_child_pid(aws_env, run_id)
        run = wait_until(lambda: (r := runs.get("sleeper", run_id))["JobRunState"] in FINAL_RUN_STATES and r, 30, "the run to end")
        assert run["JobRunState"] == "TIMEOUT", run
        assert run["ErrorMessage"] == "Job run timed out after 1 minutes"
        wait_until(lambda: not running(child), 10, f"the detached child {child} to be killed")
        assert not marked_processes({MARK_OWNER: str(tmp_path / "glue")})
    finally:
        runs.close()


# ---- work in flight at a restart ----------------------------------------------------------------------------
def test_a_crawl_running_when_the_stack_stopped_reads_failed_and_the_crawler_ready(tmp_path):
    crawls_file = tmp_path / "glue" / "crawls.json"
    crawls_file.parent.mkdir()
    crawls_file.write_text(json.dumps({
        "first": {"State": "RUNNING", "LastCrawl": None, "Metrics": None, "CrawledFolders": [], "StartedAt": 1.0, "StartTime": 1.0},
        "again": {"State": "STOPPING", "LastCrawl": {"Status": "SUCCEEDED", "StartTime": 0.5}, "Metrics": None, "CrawledFolders": []},
    }))
    crawls = Crawls(tmp_path, lambda service: None, Classifiers(tmp_path))
    for name, state in (("first", "RUNNING"), ("again", "STOPPING")):
        crawler = {"Name": name}
        crawls.describe_into(crawler)
        assert crawler["State"] == "READY"
        assert crawler["LastCrawl"]["Status"] == "FAILED"
        assert crawler["LastCrawl"]["ErrorMessage"] == f"the dealab stack stopped while this crawl was {state}"


def test_spark_stop_and_kill_9_of_the_stack_mid_spark_job_leave_no_process_and_the_run_reads_failed(tmp_path):
    """One Spark worker for both (Spark starts cost ~10-20 s): a stopped run takes its detached child with it;
    then a kill -9 of the stack during the next run leaves no worker, JVM or child."""
    settings = make_settings(tmp_path / "state")
    owner = {MARK_OWNER: str(settings.state_dir / "glue")}
    control.up(settings)
    try:
        client(settings, "s3").create_bucket(Bucket=BUCKET)
        create_job(settings, "sleeper", upload_script(settings, BUCKET, "scripts/sleeper.py", SPARK_SLEEPER_SCRIPT))
        glue = client(settings, "glue")
        stopped_run = glue.start_job_run(JobName="sleeper")["JobRunId"]
        stopped_child = detached_child_pid(settings, stopped_run, timeout=240)
        glue.batch_stop_job_run(JobName="sleeper", JobRunIds=[stopped_run])
        assert wait_for_run(settings, "sleeper", stopped_run, timeout=60)["JobRunState"] == "STOPPED"
        wait_until(lambda: not running(stopped_child), 10, f"the detached child {stopped_child} of a stopped Spark run to be killed")

        run_id = glue.start_job_run(JobName="sleeper")["JobRunId"]
        child = detached_child_pid(settings, run_id, timeout=240)
        processes = marked_processes(owner)
        assert len(processes) >= 3, processes  # the worker, its JVM, the script's detached child

        stack_pid = control.running_pid(settings)
        os.kill(stack_pid, signal.SIGKILL)
        os.waitpid(stack_pid, 0)  # control.up started it from this process
        wait_until(lambda: not marked_processes(owner), 30, f"every Glue process of {settings.state_dir} to end")
        assert not running(child)

        control.up(settings)
        glue = client(settings, "glue")
        run = glue.get_job_run(JobName="sleeper", RunId=run_id)["JobRun"]
        assert run["JobRunState"] == "FAILED"
        assert run["ErrorMessage"] == "the dealab stack stopped while this run was RUNNING"
        assert glue.get_job(JobName="sleeper")["Job"]["Name"] == "sleeper"
    finally:
        control.down(settings)
        for pid in marked_processes(owner):  # should there be any, this test must not leave them behind
            os.kill(pid, signal.SIGKILL)


# ---- the crawler survives bad files -------------------------------------------------------------------------
def test_a_crawl_skips_and_logs_bad_files_and_catalogs_the_good_one(clean_stack, bucket):
    good = b"id,name,amount\n1,ann,2.5\n2,bob,3.75\n3,cy,1.0\n"
    bad = {
        "binary.dat": bytes(range(256)) * 64,
        "nul-header.csv": b"i\x00d,na\x00me\n1,ann\n2,bob\n",
        "deep.json": b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"\n",
        "corrupt.csv.gz": gzip.compress(good)[:20] + b"\x00garbage that is not deflate" * 10,
        "one-huge-line.csv": b"x" * (3 * 1024 * 1024),
    }
    for name, body in {**bad, "good.csv": good}.items():
        bucket.put_object(Bucket=BUCKET, Key=f"mixed/{name}", Body=body)
    glue = client(clean_stack, "glue")
    glue.create_database(DatabaseInput={"Name": "robust"})
    glue.create_crawler(Name="survivor", Role=service_role(clean_stack, "glue", "glue"), DatabaseName="robust",
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/mixed/"}]})
    glue.start_crawler(Name="survivor")

    crawler = wait_for_crawler(clean_stack, "survivor")
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED", crawler["LastCrawl"]
    table = glue.get_table(DatabaseName="robust", Name="mixed")["Table"]
    columns = [(column["Name"], column["Type"]) for column in table["StorageDescriptor"]["Columns"]]
    assert columns == [("id", "bigint"), ("name", "string"), ("amount", "double")]
    names = [t["Name"] for t in glue.get_tables(DatabaseName="robust")["TableList"]]
    assert names == ["mixed"]
    assert not any("\x00" in column for t in glue.get_tables(DatabaseName="robust")["TableList"]
                   for column in (c["Name"] for c in t["StorageDescriptor"]["Columns"]))
    messages = log_lines(clean_stack, "/aws-glue/crawlers", "survivor")
    for name in bad:
        assert any(f"s3://{BUCKET}/mixed/{name}: unreadable (" in message and message.endswith("; skipped") for message in messages), (name, messages)
