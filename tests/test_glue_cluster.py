"""Glue jobs on a Spark standalone cluster (DEALAB_SPARK_MASTER): a master and one worker started from the installed
pyspark on 127.0.0.1, a stack started with the master setting, one job reading CSV from S3 and writing Parquet to S3
there, with its bookmark, logs and metrics as on the local worker; and the cluster settings' own rules."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
import urllib.request

import pyarrow.parquet as pq
import pytest

from dealab.engines.glue.spark import SparkCluster, SparkSetupError, spark_conf
from dealab.engines.glue.worker import check_executors, executor_failure
from dealab.stack import control
from tests.conftest import admin_headers, client, make_settings
from tests.gluekit import create_job, log_lines, run_job, upload_script
from tests.sparkcluster import free_port, standalone_cluster

JOB_SCRIPT = """
import sys
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "source", "target"])
context = GlueContext(SparkContext())
job = Job(context)
job.init(args["JOB_NAME"], args)
orders = context.create_dynamic_frame.from_options(
    "s3", {"paths": [args["source"]]}, format="csv", format_options={"withHeader": True}, transformation_ctx="orders")
print(f"master {context.spark_session.sparkContext.master}, {orders.count()} new orders")
# A Python function run by the executors: the record's values typed by the glue runtime shipped to them.
large = orders.filter(lambda order: order["amount"] >= 10)
context.write_dynamic_frame.from_options(large, "s3", {"path": args["target"]}, format="parquet")
job.commit()
"""


@pytest.fixture
def spark_cluster(tmp_path):
    with standalone_cluster(tmp_path / "cluster") as cluster:
        yield cluster


@pytest.mark.slow
def test_a_glue_job_runs_on_the_standalone_cluster(spark_cluster, tmp_path):
    master = spark_cluster.master
    settings = dataclasses.replace(make_settings(tmp_path / "state"), spark_master=master)
    control.up(settings)
    try:
        s3 = client(settings, "s3")
        s3.create_bucket(Bucket="shop")
        s3.put_object(Bucket="shop", Key="raw/orders-1.csv", Body=b"id,amount\n1,5\n2,12.5\n3,40\n")
        create_job(settings, "orders-to-parquet", upload_script(settings, "shop", "scripts/orders.py", JOB_SCRIPT),
                   DefaultArguments={"--source": "s3://shop/raw/", "--target": "s3://shop/curated/", "--job-bookmark-option": "job-bookmark-enable"})

        first = run_job(settings, "orders-to-parquet", timeout=150)
        assert first["JobRunState"] == "SUCCEEDED", first.get("ErrorMessage")
        assert f"master {master}, 3 new orders" in log_lines(settings, "/aws-glue/jobs/output", first["Id"])
        applications = spark_cluster.state()["activeapps"]
        assert [application["name"] for application in applications] == ["dealab-glue-worker"]
        assert (tmp_path / "cluster" / "spark-work" / applications[0]["id"]).is_dir()  # its executor ran on the worker
        request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/glue", headers=admin_headers(settings))
        with urllib.request.urlopen(request) as response:
            assert json.load(response)["spark_master"] == master

        # The bookmark, kept by the driver, skips the file the first run read.
        s3.put_object(Bucket="shop", Key="raw/orders-2.csv", Body=b"id,amount\n4,99\n")
        s3.put_object(Bucket="shop", Key="lib/helpers.py", Body=b"LIMIT = 10\n")
        second = run_job(settings, "orders-to-parquet", {"--extra-py-files": "s3://shop/lib/helpers.py"}, timeout=120)
        assert second["JobRunState"] == "SUCCEEDED", second.get("ErrorMessage")
        assert f"master {master}, 1 new orders" in log_lines(settings, "/aws-glue/jobs/output", second["Id"])
        assert any(f"the executors of {master} find them only if they share this machine's files" in line
                   for line in log_lines(settings, "/aws-glue/jobs/error", second["Id"]))
        assert not any("share this machine's files" in line for line in log_lines(settings, "/aws-glue/jobs/error", first["Id"]))

        keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket="shop", Prefix="curated/")["Contents"]]
        assert keys and all(key.endswith(".parquet") for key in keys), keys
        tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket="shop", Key=key)["Body"].read())) for key in keys]
        assert sorted(row["id"] for table in tables for row in table.to_pylist()) == [2, 3, 4]

        metrics = client(settings, "cloudwatch").list_metrics(Namespace="Glue", MetricName="glue.driver.aggregate.numCompletedTasks")["Metrics"]
        assert {"Name": "JobName", "Value": "orders-to-parquet"} in [dimension for metric in metrics for dimension in metric["Dimensions"]]
    finally:
        control.down(settings)
    # The stack took its worker down, and with it the application it held on the cluster.
    deadline = time.monotonic() + 20
    while not any(application["name"] == "dealab-glue-worker" for application in spark_cluster.state()["completedapps"]):
        assert time.monotonic() < deadline, spark_cluster.state()
        time.sleep(0.5)


def test_a_job_on_a_master_that_does_not_answer_ends_as_error_naming_it(tmp_path):
    master = f"spark://127.0.0.1:{free_port()}"  # nothing listens there
    settings = dataclasses.replace(make_settings(tmp_path / "state"), spark_master=master)
    control.up(settings)
    try:
        s3 = client(settings, "s3")
        s3.create_bucket(Bucket="shop")
        create_job(settings, "nowhere", upload_script(settings, "shop", "scripts/nowhere.py", "print('never runs')\n"))
        run = run_job(settings, "nowhere", timeout=60)
    finally:
        control.down(settings)
    assert run["JobRunState"] == "ERROR"
    assert f"SparkSetupError: the Spark master {master} does not answer" in run["ErrorMessage"]


def test_cluster_settings_reach_executors():
    cluster = SparkCluster("spark://spark-master:7077", driver_host="dealab", s3_endpoint="http://dealab:4566")
    conf = spark_conf("http://127.0.0.1:4566", "job", cluster=cluster, credentials=("AKIDLEARNER", "secret"))
    assert conf["spark.master"] == "spark://spark-master:7077"
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "dealab"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == conf["spark.executorEnv.AWS_ENDPOINT_URL"] == "http://dealab:4566"
    assert conf["spark.hadoop.fs.s3a.access.key"] == conf["spark.executorEnv.AWS_ACCESS_KEY_ID"] == "AKIDLEARNER"
    assert conf["spark.executor.extraClassPath"] == conf["spark.driver.extraClassPath"]
    assert conf["spark.cores.max"] == "2"
    local = spark_conf("http://127.0.0.1:4566", "job")
    assert local["spark.master"] == "local[2]" and "spark.cores.max" not in local and local["spark.hadoop.fs.s3a.access.key"] == "test"


def test_cluster_comes_from_the_environment():
    assert SparkCluster.from_environment({}) is None
    cluster = SparkCluster.from_environment({"DEALAB_SPARK_MASTER": "spark://a:7077,b:7078"})
    assert cluster == SparkCluster("spark://a:7077,b:7078", "127.0.0.1", None)
    assert cluster.masters() == [("a", 7077), ("b", 7078)]


@pytest.mark.parametrize("url", ["local[2]", "spark://host", "http://host:7077", "spark://host:port"])
def test_a_master_url_that_is_not_standalone_is_refused(url):
    with pytest.raises(SparkSetupError, match="is not a Spark standalone master URL"):
        SparkCluster(url).masters()


def test_a_master_that_does_not_answer_is_named():
    port = free_port()  # closed again: nothing listens there
    with pytest.raises(SparkSetupError, match=rf"the Spark master spark://127.0.0.1:{port} does not answer \(127.0.0.1:{port}: "):
        SparkCluster(f"spark://127.0.0.1:{port}").check_master()


def test_an_executor_failure_is_one_line():
    trace = ("An error occurred while calling z:org.apache.spark.api.python.PythonRDD.collectAndServe.\n"
             ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 0.0 failed\n"
             "pyspark.errors.exceptions.base.PySparkRuntimeError: [PYTHON_VERSION_MISMATCH] Python in worker has different "
             "version (3, 10) than that in driver 3.11, PySpark cannot run with different minor versions.\n\tat org.apache...")
    assert executor_failure(Exception(trace)).startswith("pyspark.errors.exceptions.base.PySparkRuntimeError: [PYTHON_VERSION_MISMATCH]")


class ClusterWithoutExecutors:
    """Stands in for a session on a cluster: its one job waits for an executor until its tag is cancelled, as
    Spark's does when no worker has a free core; or fails at once with `failure`."""

    def __init__(self, failure: str | None = None):
        self.failure, self.cancelled, self.tags = failure, threading.Event(), set()
        self.sparkContext = self

    def addJobTag(self, tag):
        self.tags.add(tag)

    def removeJobTag(self, tag):
        self.tags.discard(tag)

    def cancelJobsWithTag(self, tag):
        assert tag in self.tags
        self.cancelled.set()

    def parallelize(self, values, slices):
        return self

    def map(self, function):
        return self

    def collect(self):
        if self.failure:
            raise Exception(self.failure)
        assert self.cancelled.wait(10), "the check never gave up"
        raise Exception("org.apache.spark.SparkException: Job 0 cancelled")


def test_the_executor_check_gives_up_on_a_cluster_that_grants_no_executor():
    session = ClusterWithoutExecutors()
    with pytest.raises(SparkSetupError, match=r"the Spark cluster spark://m:7077 gave this job no executor within 0s: are its workers up"):
        check_executors(session, SparkCluster("spark://m:7077"), wait_seconds=0.2)
    assert session.tags == set()  # later jobs are not in the check's group


def test_the_executor_check_reports_what_the_executor_could_not_do():
    session = ClusterWithoutExecutors(failure="Job aborted\nModuleNotFoundError: No module named 'awsglue'\n\tat org.apache")
    with pytest.raises(SparkSetupError, match=r"executors of the Spark cluster spark://m:7077 cannot run Glue scripts: ModuleNotFoundError: No module named 'awsglue'$"):
        check_executors(session, SparkCluster("spark://m:7077"), wait_seconds=5)
    assert not session.cancelled.is_set()
