"""The gateway's handle on the Spark worker process: start, send a run, read its result, measure, stop; and on
the builder of the JVM class archive (spark.py) that the worker starts faster with."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY
from dealab.engines.glue.pyshell import MARK_OWNER, MARK_ROLE, kill_marked, marks
from dealab.engines.glue.spark import MASTER_VARIABLE, class_archive_wanted

START_TIMEOUT_SECONDS = 180
# How long result() still waits for the last line of a worker that has exited (its reader thread may lag).
LAST_LINE_SECONDS = 0.5
WORKER_ROLE = "spark-worker"
REPO_ROOT = Path(__file__).resolve().parents[3]
# Put on the worker's sys.path only: learner scripts import our `awsglue` from here.
RUNTIME_DIR = REPO_ROOT / "dealab" / "glue_runtime"


class WorkerGone(Exception):
    """The worker process ended; the message says how and where its log is."""


def process_tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and all its descendants (the worker's Python, its JVM, Python UDF workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, pending = 0, [root_pid]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class SparkWorker:
    def __init__(self, endpoint_url: str, region: str, log_path: Path, spark_master: str | None = None):
        self.endpoint_url, self.region, self.log_path = endpoint_url, region, log_path
        self.spark_master = spark_master
        self.process: subprocess.Popen | None = None
        self.runs_served = 0
        self.peak_rss_bytes = 0
        self._results: queue.Queue = queue.Queue()
        self._archive_builder: subprocess.Popen | None = None

    @property
    def owner(self) -> str:
        """The glue state folder, which marks this stack's processes (pyshell.marks)."""
        return str(self.log_path.parent)

    def _environment(self, role: str = WORKER_ROLE) -> dict[str, str]:
        """The worker's environment: the stack's endpoint and credentials, and the cluster its session runs on
        (the stack's setting, whatever the stack's own environment says; spark.SparkCluster reads the rest)."""
        inherited = {key: value for key, value in os.environ.items() if key != MASTER_VARIABLE}
        cluster = {MASTER_VARIABLE: self.spark_master} if self.spark_master and role == WORKER_ROLE else {}
        return {
            **marks(self.owner, role),
            **inherited,
            **cluster,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYTHONPATH": os.pathsep.join([str(RUNTIME_DIR), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        }

    def start(self) -> None:
        self.runs_served = 0
        read_fd, write_fd = os.pipe()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dealab.engines.glue.worker", str(write_fd)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, pass_fds=(write_fd,),
                env=self._environment(), cwd=str(REPO_ROOT), start_new_session=True, text=True,
            )
        os.close(write_fd)
        self._results = queue.Queue()
        threading.Thread(target=self._read_results, args=(read_fd, self._results), daemon=True).start()
        try:
            ready = self.result(START_TIMEOUT_SECONDS)
        except WorkerGone:
            ready = {"error": f"it exited; see {self.log_path}"}
        if ready is None or not ready.get("ready"):
            self.stop()
            reason = ready["error"] if ready else f"no answer within {START_TIMEOUT_SECONDS}s; see {self.log_path}"
            raise WorkerGone(f"the Spark worker could not start: {reason}")

    @staticmethod
    def _read_results(read_fd: int, results: queue.Queue) -> None:
        with os.fdopen(read_fd, "r") as stream:
            for line in stream:
                results.put(json.loads(line))
        results.put(None)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def submit(self, request: dict) -> None:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        self.runs_served += 1

    def interrupt(self, run_id: str) -> None:
        """Asks the worker to end the script of `run_id` (if that is the one running)."""
        if not self.alive():
            return
        try:
            self.process.stdin.write(json.dumps({"stop": run_id}) + "\n")
            self.process.stdin.flush()
        except OSError:  # it ended meanwhile; result() reports that
            pass

    def result(self, timeout: float) -> dict | None:
        """The next line from the worker, None while there is none yet; raises WorkerGone when it ended."""
        try:
            message = self._results.get(timeout=timeout)
        except queue.Empty:
            if self.process is None or self.process.poll() is None:
                return None
            # It exited, yet its result pipe has not ended: a process the script started holds it open.
            try:
                message = self._results.get(timeout=LAST_LINE_SECONDS)
            except queue.Empty:
                message = None
        if message is None:
            code = self.process.wait() if self.process else None
            raise WorkerGone(f"the Spark worker ended (exit status {code}); see {self.log_path}")
        if "run_id" in message and self._archive_builder is None and class_archive_wanted():
            self.build_class_archive()
        return message

    def build_class_archive(self) -> subprocess.Popen:
        """Starts the builder of the class archive: once a run has ended (so it never slows a first run), in a
        process of its own at the lowest CPU priority, outside the worker's process tree (its ~0.5 GB do not count
        towards recycling the worker). About a minute of CPU, once per machine; it ends with the worker."""
        log_path = self.log_path.with_name("spark-class-archive.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self._archive_builder = subprocess.Popen(
                [sys.executable, "-m", "dealab.engines.glue.worker", "--build-class-archive"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self._environment("class-archive-builder"), cwd=str(REPO_ROOT), start_new_session=True,
            )
        return self._archive_builder

    def rss_bytes(self) -> int:
        if not self.alive():
            return 0
        rss = process_tree_rss_bytes(self.process.pid)
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        return rss

    def stop(self) -> None:
        """Ends the worker and everything it started (its JVM and Python UDF workers share its process group), and
        the class archive builder if one runs (a new one starts after the next worker's first run)."""
        if self._archive_builder is not None:
            builder, self._archive_builder = self._archive_builder, None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(builder.pid, signal.SIGKILL)
            builder.wait()
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything of the group that outlived its leader
        except (ProcessLookupError, PermissionError):
            pass
        if process.stdin:
            with contextlib.suppress(OSError):
                process.stdin.close()
        self._wait_for_group_exit(process.pid)
        # What its scripts started outside its process group (start_new_session) is marked as the worker's too.
        kill_marked({MARK_OWNER: self.owner, MARK_ROLE: WORKER_ROLE})

    @staticmethod
    def _wait_for_group_exit(pgid: int, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
