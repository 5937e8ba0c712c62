"""`dealab pyspark` and `dealab spark-submit SCRIPT [ARGS]`: plain Spark (the venv's pyspark 3.5) whose `s3://` and
`s3a://` paths are the lab's S3, with nothing to configure.

The settings are the Glue worker's own (dealab/engines/glue/spark.py builds them, for both): local[2], the S3A
connector's jars on the driver's class path, path-style plain HTTP to the stack, credentials test/test; they go
to Spark as `--conf` options, so a script's own `--conf` (given after them) wins.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dealab.config import settings
from dealab.engines.glue.spark import spark_conf
from dealab.labs import learner_env

PROGRAMS = ("pyspark", "spark-submit")


def command(program: str, arguments: list[str]) -> list[str]:
    """The command line: the venv's `program` with the stack's Spark settings, then the user's arguments."""
    conf = spark_conf(settings().endpoint_url, f"dealab-{program}")
    options = [token for key, value in conf.items() for token in ("--conf", f"{key}={value}")]
    return [str(Path(sys.executable).parent / program), *options, *arguments]


def run(program: str, arguments: list[str]) -> int:
    """Runs `program` in the learner's environment (AWS clients in the script reach the stack too); its exit status."""
    environment = learner_env(settings(), extra_env={"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                                                     "SPARK_LOCAL_IP": "127.0.0.1"})
    return subprocess.call(command(program, arguments), env=environment)
