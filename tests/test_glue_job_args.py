"""Glue's special job parameters on the stack: --extra-py-files, --additional-python-modules, --extra-files,
--conf and the refused or noted ones, for Spark and pythonshell jobs, written as AWS's Glue examples write them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile

import pytest

from tests.conftest import client, service_role
from tests.gluekit import create_job, log_lines, run_job, upload_script

pytestmark = pytest.mark.slow

BUCKET = "glue-job-args"
HELPER = '''
def shout(text):
    return text.upper() + "!"
'''
ZIPPED = '''
GREETING = "hello from a zip"
'''
CONFIG = {"threshold": 2}

SPARK_SCRIPT = '''
import json
import sys

import boto3
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.transforms import Map
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

import helpers                       # --extra-py-files: a .py in S3
from zipped_pkg import settings      # --extra-py-files: a .zip in S3
import tinymath                      # --additional-python-modules: a wheel in S3

args = getResolvedOptions(sys.argv, ["JOB_NAME", "bucket"])
glue_context = GlueContext(SparkContext.getOrCreate())
spark = glue_context.spark_session
job = Job(glue_context)
job.init(args["JOB_NAME"], args)

with open("config.json") as config_file:  # --extra-files: copied into the working folder
    config = json.load(config_file)
frame = glue_context.create_dynamic_frame.from_options(
    connection_type="s3", connection_options={"paths": [f"s3://{args['bucket']}/words/"]}, format="json")
shouted = Map.apply(frame=frame, f=lambda record: {"word": helpers.shout(record["word"])})  # the helper runs in Spark's tasks
report = {
    "shouted": sorted(row["word"] for row in shouted.toDF().collect()),
    "zipped": settings.GREETING,
    "tinymath": tinymath.double(21),
    "config": config,
    "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
}
boto3.client("s3").put_object(Bucket=args["bucket"], Key="report.json", Body=json.dumps(report).encode())
job.commit()
'''

PROBE_SCRIPT = '''
import json
import sys

import boto3
from awsglue.utils import getResolvedOptions
from pyspark.sql import SparkSession

args = getResolvedOptions(sys.argv, ["bucket"])
found = []
for name in ("helpers", "tinymath", "zipped_pkg"):
    try:
        __import__(name)
        found.append(name)
    except ModuleNotFoundError:
        pass
report = {"importable": found, "shuffle_partitions": SparkSession.builder.getOrCreate().conf.get("spark.sql.shuffle.partitions")}
boto3.client("s3").put_object(Bucket=args["bucket"], Key="probe.json", Body=json.dumps(report).encode())
'''

SHELL_SCRIPT = '''
import json
import sys

import boto3
import helpers
import tinymath
from awsglue.utils import getResolvedOptions

args = getResolvedOptions(sys.argv, ["bucket"])
with open("config.json") as config_file:
    config = json.load(config_file)
report = {"shout": helpers.shout("shell"), "tinymath": tinymath.double(5), "config": config}
boto3.client("s3").put_object(Bucket=args["bucket"], Key="shell-report.json", Body=json.dumps(report).encode())
'''


def tiny_wheel() -> bytes:
    """A pure-Python wheel (tinymath 1.0) as pip builds them: the module, METADATA, WHEEL and RECORD."""
    files = {
        "tinymath/__init__.py": b"def double(value):\n    return 2 * value\n",
        "tinymath-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinymath\nVersion: 1.0\n",
        "tinymath-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, body in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(body)}")
    record.append("tinymath-1.0.dist-info/RECORD,,")
    files["tinymath-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def zipped_package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("zipped_pkg/__init__.py", "")
        archive.writestr("zipped_pkg/settings.py", ZIPPED)
    return buffer.getvalue()


@pytest.fixture
def files_in_s3(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="lib/helpers.py", Body=HELPER.encode())
    s3.put_object(Bucket=BUCKET, Key="lib/zipped.zip", Body=zipped_package())
    s3.put_object(Bucket=BUCKET, Key="wheels/tinymath-1.0-py3-none-any.whl", Body=tiny_wheel())
    s3.put_object(Bucket=BUCKET, Key="conf/config.json", Body=json.dumps(CONFIG).encode())
    s3.put_object(Bucket=BUCKET, Key="words/w.json", Body=b'{"word": "ab"}\n{"word": "cd"}\n')
    return s3


ARGUMENTS = {
    "--extra-py-files": f"s3://{BUCKET}/lib/helpers.py,s3://{BUCKET}/lib/zipped.zip",
    "--additional-python-modules": f"s3://{BUCKET}/wheels/tinymath-1.0-py3-none-any.whl,boto3",
    "--extra-files": f"s3://{BUCKET}/conf/config.json",
    "--bucket": BUCKET,
}


def _report(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_pythonshell_job_imports_extra_py_files_and_s3_wheels_and_reads_extra_files(clean_stack, files_in_s3):
    script = upload_script(clean_stack, BUCKET, "scripts/shell.py", SHELL_SCRIPT)
    client(clean_stack, "glue").create_job(Name="shell-args", Role=service_role(clean_stack, "glue", "glue"),
                                           Command={"Name": "pythonshell", "ScriptLocation": script, "PythonVersion": "3.9"},
                                           DefaultArguments={**ARGUMENTS, "--conf": "spark.sql.shuffle.partitions=7"})

    run = run_job(clean_stack, "shell-args", {})

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert _report(files_in_s3, "shell-report.json") == {"shout": "SHELL!", "tinymath": 10, "config": CONFIG}
    notes = log_lines(clean_stack, "/aws-glue/jobs/error", run["Id"])
    assert any("boto3 is satisfied by boto3" in line for line in notes), notes
    assert any("--conf: no effect in a Python shell job" in line for line in notes), notes
    installed = list((clean_stack.state_dir / "glue" / "python-modules").iterdir())
    assert len(installed) == 1 and (installed[0] / "tinymath" / "__init__.py").is_file()
    assert not (clean_stack.state_dir / "glue" / "runs" / run["Id"]).exists()


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"--additional-python-modules": "pyarrow==7"},
     "JobArgumentError: --additional-python-modules: pyarrow==7 cannot be installed: dealab works offline (no PyPI) and the dealab environment has pyarrow "),
    ({"--additional-python-modules": "no-such-module-anywhere"},
     "JobArgumentError: --additional-python-modules: no-such-module-anywhere cannot be installed: dealab works offline (no PyPI) and the dealab environment has no no-such-module-anywhere; "),
    ({"--extra-py-files": f"s3://{BUCKET}/lib/missing.py"},
     f"JobArgumentError: --extra-py-files: s3://{BUCKET}/lib/missing.py cannot be read (NoSuchKey)"),
    ({"--extra-jars": f"s3://{BUCKET}/lib/driver.jar"},
     "JobArgumentError: --extra-jars cannot be honoured: the Spark worker's JVM is already running with a fixed class path"),
])
def test_arguments_that_cannot_be_honoured_fail_the_run_with_one_line(clean_stack, files_in_s3, arguments, expected):
    create_job(clean_stack, "refused", upload_script(clean_stack, BUCKET, "scripts/noop.py", "print('never runs')\n"))

    run = run_job(clean_stack, "refused", arguments)

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith(expected), run["ErrorMessage"]
    assert "\n" not in run["ErrorMessage"]


def test_spark_job_gets_its_arguments_and_the_next_run_of_another_job_does_not(clean_stack, files_in_s3):
    create_job(clean_stack, "with-args", upload_script(clean_stack, BUCKET, "scripts/spark.py", SPARK_SCRIPT))
    create_job(clean_stack, "probe", upload_script(clean_stack, BUCKET, "scripts/probe.py", PROBE_SCRIPT))
    create_job(clean_stack, "bad-conf", upload_script(clean_stack, BUCKET, "scripts/noop.py", "print('never runs')\n"))

    run = run_job(clean_stack, "with-args", {**ARGUMENTS, "--conf": "spark.sql.shuffle.partitions=7", "--enable-metrics": "true"})
    probe = run_job(clean_stack, "probe", {"--bucket": BUCKET})
    bad_conf = run_job(clean_stack, "bad-conf", {"--conf": "spark.sql.shuffle.partitions=3 --conf spark.executor.memory=8g"})

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert _report(files_in_s3, "report.json") == {
        "shouted": ["AB!", "CD!"], "zipped": "hello from a zip", "tinymath": 42, "config": CONFIG, "shuffle_partitions": "7",
    }
    notes = log_lines(clean_stack, "/aws-glue/jobs/error", run["Id"])
    assert any("--enable-metrics: no effect in dealab" in line for line in notes), notes
    assert any("tinymath-1.0-py3-none-any.whl installed from" in line for line in notes), notes
    assert probe["JobRunState"] == "SUCCEEDED", probe.get("ErrorMessage")
    assert _report(files_in_s3, "probe.json") == {"importable": [], "shuffle_partitions": "4"}
    assert bad_conf["JobRunState"] == "FAILED"
    assert bad_conf["ErrorMessage"].startswith("JobArgumentError: --conf spark.executor.memory=8g cannot be honoured"), bad_conf["ErrorMessage"]
