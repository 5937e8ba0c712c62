"""A Spark standalone cluster on 127.0.0.1 from the installed pyspark: one master and one worker, for the tests and
the Glue bench that run Glue jobs with DEALAB_SPARK_MASTER."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark

# The installed pyspark is a Spark home; spark-class would otherwise look for it with whichever python3 is first on PATH.
SPARK_HOME = Path(pyspark.__file__).parent
SPARK_CLASS = SPARK_HOME / "bin" / "spark-class"
START_SECONDS = 60
STOP_SECONDS = 10


@dataclass(frozen=True)
class StandaloneCluster:
    master: str  # spark://127.0.0.1:P
    ui_port: int

    def state(self) -> dict:
        """The master's JSON API: its workers, active and completed applications."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as response:
            return json.load(response)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def standalone_cluster(folder: Path, cores: int = 1, memory: str = "1g") -> Iterator[StandaloneCluster]:
    """A master and one worker (`cores`, `memory`) bound to 127.0.0.1, their logs and work folders in `folder`;
    yields once the worker is ALIVE, and stops both (their whole process groups) whatever happens."""
    port, master_ui, worker_ui = free_port(), free_port(), free_port()
    folder.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_MEMORY": "256m",
                   "SPARK_WORKER_DIR": str(folder / "spark-work"), "SPARK_LOG_DIR": str(folder / "spark-logs")}
    commands = [
        [str(SPARK_CLASS), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(master_ui)],
        [str(SPARK_CLASS), "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
         "--webui-port", str(worker_ui), "--cores", str(cores), "--memory", memory],
    ]
    cluster = StandaloneCluster(f"spark://127.0.0.1:{port}", master_ui)
    processes = []
    try:
        for number, command in enumerate(commands):
            with (folder / f"spark-daemon-{number}.log").open("ab") as log:
                processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                  env=environment, start_new_session=True))
        deadline = time.monotonic() + START_SECONDS
        while True:
            with contextlib.suppress(OSError, ValueError):
                if any(worker["state"] == "ALIVE" for worker in cluster.state()["workers"]):
                    break
            if time.monotonic() > deadline or any(process.poll() is not None for process in processes):
                raise RuntimeError(f"the Spark master and worker did not come up; see {folder}/spark-daemon-*.log")
            time.sleep(0.5)
        yield cluster
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
