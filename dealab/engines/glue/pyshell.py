"""pythonshell job runs: each script in a plain Python process of its own, never near Spark.

Engine side (`PythonShellProcess`): the script is fetched from its ScriptLocation, written to a fresh
temporary folder, and started there as `python -P pyshell.py RESULT_FD SCRIPT ARGS...` with the venv's
interpreter and dealab/glue_runtime on PYTHONPATH; its stdout goes to CloudWatch Logs /aws-glue/jobs/output
and its stderr to /aws-glue/jobs/error (stream = run id, sent every second, as for Spark runs).

Job side (`main`, this file run as a program): runs the script as `python script.py` would, with the
environment of a Glue Python shell — `awsglue.utils` imports, pyspark does not exist — and writes how it
ended as one JSON line to RESULT_FD. It is started by path, not with -m, so the job's process imports
nothing but the standard library before the script: the imports below must stay that way.
"""

from __future__ import annotations

import codecs
import importlib.abc
import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "glue_runtime"
LOG_FLUSH_SECONDS = 1.0
READ_CHUNK_BYTES = 65536


# ---- engine side ----------------------------------------------------------------------------------------
class PythonShellProcess:
    """The process of one pythonshell run: started, polled for its end, killed on a stop or timeout."""

    def __init__(self, run_id: str, s3, logs, environment: dict[str, str]):
        from dealab.engines.glue.worker import ERROR_LOG_GROUP, OUTPUT_LOG_GROUP, LogStream

        self.run_id, self._s3, self._environment = run_id, s3, environment
        self.output = LogStream(logs, OUTPUT_LOG_GROUP, run_id)
        self.error = LogStream(logs, ERROR_LOG_GROUP, run_id)
        self.process: subprocess.Popen | None = None
        self._folder = ""
        self._result_fd = -1
        self._pumps: list[threading.Thread] = []
        self._ended = threading.Event()

    def start(self, script_location: str, arguments: list[str]) -> None:
        """Fetches the script and starts it; raises what the fetch raised (e.g. NoSuchKey) without starting."""
        parts = urlsplit(script_location)
        body = self._s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
        self._folder = tempfile.mkdtemp(prefix="dealab-pythonshell-")
        script = Path(self._folder) / (parts.path.rsplit("/", 1)[-1] or "script.py")
        script.write_bytes(body)
        self._result_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-P", __file__, str(write_fd), str(script), *arguments],
            cwd=self._folder, env=self._environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(write_fd,), start_new_session=True,
        )
        os.close(write_fd)
        self._pumps = [
            threading.Thread(target=_pump, args=(self.process.stdout, self.output), daemon=True),
            threading.Thread(target=_pump, args=(self.process.stderr, self.error), daemon=True),
            threading.Thread(target=self._send_periodically, daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _send_periodically(self) -> None:
        while not self._ended.wait(LOG_FLUSH_SECONDS):
            self.output.send()
            self.error.send()

    def result(self, timeout: float) -> dict | None:
        """How the run ended ({"state", "error_message"}), or None while the process is still running."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._ended.set()
        for pump in self._pumps:
            pump.join()
        self.output.send(final=True)
        self.error.send(final=True)
        with os.fdopen(self._result_fd) as results:
            reported = results.read().strip()
        shutil.rmtree(self._folder, ignore_errors=True)
        if reported:
            return json.loads(reported)
        # Ended without reporting: killed, or os._exit() in the script.
        return {"state": "SUCCEEDED" if code == 0 else "FAILED", "error_message": "" if code == 0 else f"the script's process ended with exit status {code}"}

    def send_signal(self, number: int) -> None:
        """Sends a signal to the script and every process it started (they share its process group)."""
        try:
            os.killpg(self.process.pid, number)
        except ProcessLookupError:
            pass


def _pump(stream, log_stream) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while chunk := stream.read1(READ_CHUNK_BYTES):
        log_stream.write(decoder.decode(chunk))
    log_stream.write(decoder.decode(b"", final=True))


def environment(endpoint_url: str, region: str, access_key: str, secret_key: str) -> dict[str, str]:
    """The job process's environment: AWS calls reach the stack; `awsglue` is importable; output is unbuffered
    so each print reaches the log while the script runs."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "PYTHONPATH": os.pathsep.join([str(RUNTIME_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "PYTHONUNBUFFERED": "1",
    }


# ---- job side -------------------------------------------------------------------------------------------
class _NoSpark(importlib.abc.MetaPathFinder):
    """A Glue Python shell has no Spark: `import pyspark` fails there as it does on AWS."""

    def find_spec(self, name, path=None, target=None):
        if name == "pyspark" or name.startswith("pyspark."):
            raise ModuleNotFoundError(f"No module named {name!r} (a Glue Python shell job has no Spark; use a glueetl job)", name=name)
        return None


def script_outcome(run: Callable[[], object], script: str) -> tuple[str, str]:
    """Calls `run`, which runs a job script, and says how the script ended, as its job run records it:
    ("SUCCEEDED", ""), an exit with status 0 included as for `python script.py`, or ("FAILED", one line
    naming the error). The traceback goes to stderr (the run's error log), from the script's own first frame
    on when it has one. The Spark worker reports its runs with this too."""
    try:
        run()
    except SystemExit as exit_:
        if exit_.code in (None, 0):
            return "SUCCEEDED", ""
        message = f"SystemExit: the script exited with status {exit_.code}"
        print(message, file=sys.stderr)
        return "FAILED", message
    except BaseException as error:  # the learner's script may raise anything; the run reports it
        frames = error.__traceback__
        while frames is not None and frames.tb_frame.f_code.co_filename != script:  # runners' frames before it
            frames = frames.tb_next
        traceback.print_exception(type(error), error, frames or error.__traceback__)
        return "FAILED", f"{type(error).__name__}: {error}".strip()
    return "SUCCEEDED", ""


def main(argv: list[str]) -> int:
    results = os.fdopen(int(argv[1]), "w")
    script = argv[2]
    sys.argv = argv[2:]
    sys.path.insert(0, os.path.dirname(script))  # as `python script.py` would (-P kept this module's folder out)
    sys.meta_path.insert(0, _NoSpark())
    state, error_message = script_outcome(lambda: runpy.run_path(script, run_name="__main__"), script)
    sys.stdout.flush()
    sys.stderr.flush()
    results.write(json.dumps({"state": state, "error_message": error_message}) + "\n")
    results.close()
    return 0 if state == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
