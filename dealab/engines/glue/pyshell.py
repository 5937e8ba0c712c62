"""pythonshell job runs: each script in a plain Python process of its own, never near Spark.

Engine side (`PythonShellProcess`): the script is fetched from its ScriptLocation, written to a fresh
temporary folder, and started there as `python -P pyshell.py RESULT_FD SCRIPT ARGS...` with the venv's
interpreter and dealab/glue_runtime on PYTHONPATH; its stdout goes to CloudWatch Logs /aws-glue/jobs/output
and its stderr to /aws-glue/jobs/error (stream = run id, sent every second, as for Spark runs).

Job side (`main`, this file run as a program): runs the script as `python script.py` would, with the
environment of a Glue Python shell — `awsglue.utils` imports, pyspark does not exist — and writes how it
ended as one JSON line to RESULT_FD. It is started by path, not with -m, so the job's process imports
nothing but the standard library before the script: the imports below must stay that way.

Process lifetimes (used by the Spark worker too): every process the engine starts for Glue carries marks in
its environment (MARK_OWNER = the stack's glue state folder, MARK_ROLE, and MARK_RUN = the run id for the
processes of one run), and its children inherit them, even a child that left the process group with
start_new_session. A run that ends, stops or times out kills every process marked with its run id, so a
detached child can no longer keep its run RUNNING; a stack that starts kills whatever its earlier life left
behind. The job's process watches the stack (its parent) and, once it is gone, kills its run's processes and
itself: a `kill -9` of the stack leaves no job running.
"""

from __future__ import annotations

import codecs
import contextlib
import importlib.abc
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "glue_runtime"
LOG_FLUSH_SECONDS = 1.0
READ_CHUNK_BYTES = 65536
# Environment variables that mark the processes of the glue engine, inherited by everything they start.
MARK_OWNER = "DEALAB_GLUE_OWNER"  # the glue state folder of the stack that started the process
MARK_ROLE = "DEALAB_GLUE_ROLE"  # pythonshell, spark-worker or class-archive-builder
MARK_RUN = "DEALAB_GLUE_RUN"  # the job run whose script started it
MARK_PARENT = "DEALAB_GLUE_PARENT_PID"  # the stack's pid, which the process watches
PARENT_CHECK_SECONDS = 0.25
# After the last process's end, how long the log pumps may still wait for a pipe that an unmarked (escaped)
# descendant holds open; the run ends anyway.
PUMP_JOIN_SECONDS = 5.0
PR_SET_PDEATHSIG = 1


# ---- process lifetimes (both sides; standard library only) ---------------------------------------------
def die_with_parent(signal_number: int) -> None:
    """Asks Linux to send this process `signal_number` when the thread that started it ends (PR_SET_PDEATHSIG,
    kept across exec, cleared in children). A no-op on other systems."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0)


def _proc_stat(pid: str) -> list[str] | None:
    """The fields after the command name of /proc/PID/stat: state, ppid, pgrp, ..."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].decode().split()
    except (OSError, IndexError):
        return None


def _pids() -> list[str]:
    try:
        return [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]
    except OSError:  # no /proc: nothing to find
        return []


def process_tree(root_pid: int) -> set[int]:
    """A process and all its descendants (by parent pid, as they are now)."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        fields = _proc_stat(pid)
        if fields:
            children.setdefault(int(fields[1]), []).append(int(pid))
    tree, pending = set(), [root_pid]
    while pending:
        pid = pending.pop()
        if pid not in tree:
            tree.add(pid)
            pending.extend(children.get(pid, []))
    return tree


def marked_processes(marks: dict[str, str]) -> set[int]:
    """Live processes (of this user) whose environment holds every NAME=value of `marks`; never this one."""
    wanted = [f"{name}={value}".encode() for name, value in marks.items()]
    found = set()
    for pid in _pids():
        if int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ_file:
                environ = environ_file.read().split(b"\0")
        except OSError:  # gone, or another user's
            continue
        if all(mark in environ for mark in wanted):
            found.add(int(pid))
    return found


def kill_marked(marks: dict[str, str], spare: frozenset[int] = frozenset(), rounds: int = 50) -> set[int]:
    """SIGKILLs every process marked with `marks` (but those in `spare`) until none is left, since one may start
    another while being killed; returns the pids killed. A killed process's environment reads empty (a zombie)."""
    killed: set[int] = set()
    for _ in range(rounds):
        pids = marked_processes(marks) - spare
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        time.sleep(0.02)
    return killed


def end_own_group(grace_seconds: float) -> None:
    """Ends every other process of this process group: SIGTERM, then SIGKILL for those alive after the grace."""
    group = str(os.getpgrp())

    def members() -> set[int]:
        return {int(pid) for pid in _pids() if int(pid) != os.getpid() and (fields := _proc_stat(pid)) and fields[2] == group and fields[0] != "Z"}

    for number in (signal.SIGTERM, signal.SIGKILL):
        for pid in members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, number)
        deadline = time.monotonic() + grace_seconds
        while members() and time.monotonic() < deadline:
            time.sleep(0.05)


def watch_parent(parent_pid: int, when_gone: Callable[[], None]) -> threading.Thread:
    """Calls `when_gone` (in a thread) as soon as this process's parent is no longer `parent_pid`: it ended, even
    by kill -9, and this process was handed to another (init or a subreaper)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        when_gone()

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def marks(owner: Path | str, role: str, run_id: str = "") -> dict[str, str]:
    """The environment marks of a process the engine starts."""
    return {MARK_OWNER: str(owner), MARK_ROLE: role, MARK_PARENT: str(os.getpid()), **({MARK_RUN: run_id} if run_id else {})}


# ---- engine side ----------------------------------------------------------------------------------------
class PythonShellProcess:
    """The process of one pythonshell run: started, polled for its end, killed on a stop or timeout."""

    def __init__(self, run_id: str, s3, logs, environment: dict[str, str]):
        from dealab.engines.glue.worker import ERROR_LOG_GROUP, OUTPUT_LOG_GROUP, LogStream
        from dealab.wire import labtime

        def lab_time_ms() -> int:
            return int(labtime.unix_time() * 1000)

        self.run_id, self._s3, self._environment = run_id, s3, environment
        self.output = LogStream(logs, OUTPUT_LOG_GROUP, run_id, lab_time_ms)
        self.error = LogStream(logs, ERROR_LOG_GROUP, run_id, lab_time_ms)
        self.process: subprocess.Popen | None = None
        self._folder = ""
        self._result_fd = -1
        self._pumps: list[threading.Thread] = []
        self._ended = threading.Event()

    def start(self, script_location: str, arguments: list[str], extra_files: Path | None = None) -> None:
        """Fetches the script and starts it, in a fresh folder holding the files of `extra_files` (--extra-files);
        raises what the fetch raised (e.g. NoSuchKey) without starting."""
        parts = urlsplit(script_location)
        body = self._s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
        self._folder = tempfile.mkdtemp(prefix="dealab-pythonshell-")
        if extra_files is not None:
            shutil.copytree(extra_files, self._folder, dirs_exist_ok=True)
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

    def _run_marks(self) -> dict[str, str]:
        return {name: self._environment[name] for name in (MARK_OWNER, MARK_RUN) if name in self._environment}

    def result(self, timeout: float) -> dict | None:
        """How the run ended ({"state", "error_message"}), or None while the process is still running."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        # The run ends with its script, as on AWS: whatever the script left running (a detached child too) goes.
        if MARK_RUN in self._environment:
            kill_marked(self._run_marks())
        self._ended.set()
        for pump in self._pumps:
            pump.join(PUMP_JOIN_SECONDS)
        self.output.send(final=True)
        self.error.send(final=True)
        reported = _read_available(self._result_fd)
        shutil.rmtree(self._folder, ignore_errors=True)
        if reported:
            return json.loads(reported)
        # Ended without reporting: killed, or os._exit() in the script.
        return {"state": "SUCCEEDED" if code == 0 else "FAILED", "error_message": "" if code == 0 else f"the script's process ended with exit status {code}"}

    def send_signal(self, number: int) -> None:
        """Sends a signal to the script, every process of its process group, and every process of its run that
        left the group (marked in its environment)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, number)
        if MARK_RUN in self._environment:
            for pid in marked_processes(self._run_marks()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, number)


def _read_available(fd: int) -> str:
    """What a pipe holds now, without waiting for its end: a process the script started with os.fork or a shell
    may still hold the write end open."""
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, READ_CHUNK_BYTES):
            chunks.append(chunk)
    except BlockingIOError:  # nothing more now; the script's process wrote its line before it ended
        pass
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", errors="replace").strip()


def _pump(stream, log_stream) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while chunk := stream.read1(READ_CHUNK_BYTES):
        log_stream.write(decoder.decode(chunk))
    log_stream.write(decoder.decode(b"", final=True))


def environment(endpoint_url: str, region: str, credentials: dict[str, str], python_paths: Sequence[str] = ()) -> dict[str, str]:
    """The job process's environment: AWS calls reach the stack with `credentials` (the run's role session:
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN); `awsglue` and the run's `python_paths`
    (--extra-py-files, --additional-python-modules) are importable; output is unbuffered so each print reaches
    the log while the script runs."""
    return {
        **{key: value for key, value in os.environ.items() if key != "AWS_SESSION_TOKEN"},
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **credentials,
        "PYTHONPATH": os.pathsep.join([*python_paths, str(RUNTIME_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
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
        # a SyntaxError in the script has no frame of it (it never started): its line and caret alone, as
        # `python script.py` shows it, without the runner's frames; any other error outside it keeps them all
        if frames is None and not (isinstance(error, SyntaxError) and error.filename == script):
            frames = error.__traceback__
        traceback.print_exception(type(error), error, frames)
        return "FAILED", f"{type(error).__name__}: {error}".strip()
    return "SUCCEEDED", ""


def _end_run_when_the_stack_is_gone() -> None:
    """Started first in the job's process: once the stack is gone (even by kill -9), kill every process of this
    run, this one included."""
    parent = os.environ.get(MARK_PARENT, "")
    if not parent.isdigit() or MARK_RUN not in os.environ:
        return
    run_marks = {MARK_OWNER: os.environ.get(MARK_OWNER, ""), MARK_RUN: os.environ[MARK_RUN]}

    def end_run() -> None:
        kill_marked(run_marks)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    watch_parent(int(parent), end_run)


def main(argv: list[str]) -> int:
    _end_run_when_the_stack_is_gone()
    os.set_inheritable(int(argv[1]), False)  # a child started through a shell must not hold the result pipe open
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
