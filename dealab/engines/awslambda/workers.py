"""Warm worker processes: one per execution environment of a function version, reused across invocations.

A worker is `runner.py` in a process of its own (its own session, so a recycle ends whatever the handler
started too), spoken to over two pipes; its stdout and stderr are the function's log, read by a pump thread,
stamped with lab time, and sent to CloudWatch Logs `/aws/lambda/<name>` in a stream of its own
(`YYYY/MM/DD/[<version>]<id>`), as each execution environment of AWS Lambda has.

Limits, as the OS allows them:
- Timeout: the engine waits for the answer until the function's Timeout, then SIGKILLs the worker's process
  group and answers `Task timed out after N.NN seconds`.
- Memory: the worker's resident set (VmRSS) is watched while it runs and its peak (VmHWM) checked at the end;
  beyond MemorySize the worker is killed and the invocation answers Runtime.OutOfMemory. RSS rather than
  RLIMIT_AS, because AWS's limit is on memory used, and a Python process with boto3 maps several times the
  memory it uses: an address-space limit of 128 MB would refuse `import boto3`.
- Every worker is started from one long-lived thread, so PR_SET_PDEATHSIG (set in the runner) kills it when the
  stack dies, even by kill -9 (the signal follows the starting *thread*, and request threads come and go).
"""

from __future__ import annotations

import datetime
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dealab.engines.awslambda import runner
from dealab.wire import labtime, rolesessions

RUNNER = Path(runner.__file__).resolve()
# What the engine keeps of one invocation's output for CloudWatch Logs; the rest is counted, not kept, so a
# handler printing gigabytes cannot fill the stack's memory.
MAX_LOG_BYTES_PER_INVOCATION = 1024 * 1024
# A line longer than this is cut into events of this size (CloudWatch Logs' event limit is 256 KB).
MAX_EVENT_BYTES = 256 * 1024
TAIL_BYTES = 4096  # LogType=Tail: the last 4 KB of the log
INIT_LIMIT_SECONDS = 10.0  # Lambda's init phase limit for on-demand functions
LOG_END_WAIT_SECONDS = 2.0  # how long the answer waits for the pump to read the log up to the end mark
MEMORY_POLL_SECONDS = 0.05
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class FunctionSpec:
    """One version of a function as a worker runs it; workers are shared by equal specs only."""

    name: str
    version: str
    handler: str
    runtime: str
    memory_mb: int
    timeout_s: float
    code_folder: str
    opt_folder: str
    environment: tuple[tuple[str, str], ...]
    code_sha: str


@dataclass
class LogCapture:
    """The log lines of one invocation (or of an init), each stamped with lab time in ms."""

    events: list[dict] = field(default_factory=list)
    kept_bytes: int = 0
    dropped_bytes: int = 0
    tail: bytearray = field(default_factory=bytearray)
    done: threading.Event = field(default_factory=threading.Event)

    def add(self, line: str) -> None:
        encoded = line.encode("utf-8", "replace")
        self.tail += encoded + b"\n"
        del self.tail[:-TAIL_BYTES]
        if self.kept_bytes + len(encoded) > MAX_LOG_BYTES_PER_INVOCATION:
            self.dropped_bytes += len(encoded) + 1
            return
        self.kept_bytes += len(encoded) + 1
        self.events.append({"timestamp": lab_ms(), "message": line})

    def note(self, line: str) -> None:
        """A line of the platform's own (START, END, REPORT): always kept."""
        self.tail += line.encode() + b"\n"
        del self.tail[:-TAIL_BYTES]
        self.events.append({"timestamp": lab_ms(), "message": line})

    def close_with(self, lines: list[str]) -> None:
        """Adds the platform's closing lines, after a note of what was dropped."""
        if self.dropped_bytes:
            self.note(f"[dealab] {self.dropped_bytes} bytes of output were left out of this log (more than "
                      f"{MAX_LOG_BYTES_PER_INVOCATION // 1024} KB in one invocation)")
        for line in lines:
            self.note(line)

    def absorb(self, other: LogCapture) -> None:
        self.events.extend(other.events)
        self.kept_bytes += other.kept_bytes
        self.dropped_bytes += other.dropped_bytes
        self.tail += other.tail
        del self.tail[:-TAIL_BYTES]


def lab_ms() -> int:
    return int(labtime.unix_time() * 1000)


@dataclass
class Outcome:
    """How one invocation ended: the payload Invoke answers, and the function error (None on success)."""

    payload: bytes
    function_error: str | None
    log: LogCapture
    worker_lost: bool = False


class WorkerStartError(Exception):
    pass


class Worker:
    def __init__(self, spec: FunctionSpec, environment: dict[str, str], sys_path: list[str], spawn, send_logs, lease=None):
        self.spec = spec
        self.lease = lease  # the execution role's session (dealab.wire.rolesessions.Lease), released when the worker ends
        self.log_group = f"/aws/lambda/{spec.name}"
        self.log_stream = f"{labtime.live_now():%Y/%m/%d}/[{spec.version}]{uuid.uuid4().hex}"
        self._send_logs = send_logs
        self.last_used = time.monotonic()
        self.retired = False
        self.ready = False  # the handler imported
        self.init_ms: float | None = None  # set on the cold start, reported once with the first invocation
        self._capture = LogCapture()  # the lines of the init, then of the invocation running
        self._carry = LogCapture()  # lines that came while no invocation ran
        self._init_lines_taken = False
        self._capture_lock = threading.Lock()
        request_read, self._request_write = os.pipe()
        self._response_read, response_write = os.pipe()
        env = {**environment, **(lease.environment() if lease is not None else {}),
               "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream, "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group}
        started = time.monotonic()
        try:
            self.process: subprocess.Popen = spawn(
                [sys.executable, "-P", str(RUNNER), str(request_read), str(response_write), spec.handler, json.dumps(sys_path)],
                cwd=spec.code_folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(request_read, response_write), start_new_session=True,
            )
        finally:
            os.close(request_read)
            os.close(response_write)
        self._pump = threading.Thread(target=self._read_output, name=f"lambda-log-{spec.name}", daemon=True)
        self._pump.start()
        self._started = started

    # ---- the init phase ------------------------------------------------------------------------------
    def initialize(self, runtime_warning: str | None) -> dict | None:
        """Waits for the handler's import; returns None when ready, else the init error payload (the worker
        has then ended). The init's log lines go to the first invocation's log, as on AWS."""
        if runtime_warning:
            self._capture.add(runtime_warning)
        message = self._await_message(time.monotonic() + max(INIT_LIMIT_SECONDS, self.spec.timeout_s))
        self.init_ms = (time.monotonic() - self._started) * 1000
        self._capture.done.wait(LOG_END_WAIT_SECONDS)
        if message is not None and message.get("ready"):
            self.ready = True
            return None
        self.kill()
        if message is not None and "init_error" in message:
            return message["init_error"]
        return {"errorMessage": f"RequestId: init Error: Runtime exited with error: {self._exit_reason()}", "errorType": "Runtime.ExitError"}

    # ---- one invocation ------------------------------------------------------------------------------
    def invoke(self, request_id: str, event: bytes, invoked_arn: str, client_context: str | None) -> Outcome:
        spec = self.spec
        capture = self._new_capture()
        capture.note(f"START RequestId: {request_id} Version: {spec.version}")
        started = time.monotonic()
        deadline = started + spec.timeout_s
        message: dict | None = None
        try:
            runner.write_message(_Fd(self._request_write), {
                "id": request_id, "event": event.decode("utf-8", "replace"), "arn": invoked_arn,
                "remaining_ms": int(spec.timeout_s * 1000), "client_context": client_context,
            })
            message = self._await_message(deadline)
        except OSError:  # the worker was gone before the request reached it
            message = None
        duration_ms = (time.monotonic() - started) * 1000
        peak_mb = message["peak_mb"] if message and "peak_mb" in message else self._peak_memory_mb()
        ended_by: str | None = None
        if message is None:
            if self._out_of_memory:
                ended_by = "memory"
            elif self.process.poll() is None and time.monotonic() >= deadline:
                ended_by = "timeout"
            else:  # the process ended (sys.exit, os._exit, a crash): its status says how, as AWS reports it
                ended_by = self._exit_reason()
            self.kill()
        elif peak_mb > spec.memory_mb:
            ended_by, message = "memory", None
            self.kill()
        else:
            capture.done.wait(LOG_END_WAIT_SECONDS)
        closing = [f"END RequestId: {request_id}", self._report(request_id, duration_ms, peak_mb)]
        if message is not None and "result" in message:
            capture.close_with(closing)
            return Outcome(message["result"].encode(), None, capture)
        if message is not None:
            capture.close_with(closing)
            return Outcome(json.dumps(message["error"]).encode(), "Unhandled", capture)
        payload = self._lost_payload(request_id, ended_by)
        stamp = f"{labtime.live_now():%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"
        if ended_by == "timeout":
            closing.insert(0, f"{stamp} {request_id} Task timed out after {spec.timeout_s:.2f} seconds")
        else:
            closing.insert(0, f"{stamp} {request_id} Error: {payload['errorMessage'].split(' Error: ', 1)[-1]}")
        capture.close_with(closing)
        return Outcome(json.dumps(payload).encode(), "Unhandled", capture, worker_lost=True)

    def init_failure(self, request_id: str, payload: dict) -> Outcome:
        """The outcome of an invocation whose environment failed to start: the init's lines and its error."""
        capture = self._new_capture()
        capture.note(f"START RequestId: {request_id} Version: {self.spec.version}")
        capture.close_with([f"END RequestId: {request_id}", self._report(request_id, 0.0, self._peak_memory_mb()) + "Status: error\tError Type: " + payload["errorType"]])
        return Outcome(json.dumps(payload).encode(), "Unhandled", capture, worker_lost=True)

    def _lost_payload(self, request_id: str, ended_by: str) -> dict:
        """`ended_by`: "timeout", "memory", or how the process exited."""
        if ended_by == "timeout":
            return {"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: {request_id} Error: Task timed out after {self.spec.timeout_s:.2f} seconds"}
        if ended_by == "memory":
            return {"errorType": "Runtime.OutOfMemory", "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"}
        return {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {ended_by}"}

    def _report(self, request_id: str, duration_ms: float, peak_mb: int) -> str:
        fields = [f"REPORT RequestId: {request_id}", f"Duration: {duration_ms:.2f} ms", f"Billed Duration: {max(1, int(duration_ms + 0.999))} ms",
                  f"Memory Size: {self.spec.memory_mb} MB", f"Max Memory Used: {peak_mb} MB"]
        if self.init_ms is not None:
            fields.append(f"Init Duration: {self.init_ms:.2f} ms")
            self.init_ms = None
        return "\t".join(fields) + "\t"

    def _exit_reason(self) -> str:
        try:
            code = self.process.wait(2)
        except subprocess.TimeoutExpired:
            return "signal: killed"
        if code == 0:
            return "exit status 0 (Runtime exited without providing a reason)"
        return f"signal: {signal.Signals(-code).name.lower().removeprefix('sig')}" if code < 0 else f"exit status {code}"

    # ---- inside --------------------------------------------------------------------------------------
    def _await_message(self, deadline: float) -> dict | None:
        """The runner's next message; None when the worker ended, ran out of memory, or the deadline passed."""
        self._out_of_memory = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([self._response_read], [], [], min(left, MEMORY_POLL_SECONDS))
            if readable:
                return runner.read_message(_Fd(self._response_read))
            if self._resident_mb() > self.spec.memory_mb:
                self._out_of_memory = True
                return None

    def _new_capture(self) -> LogCapture:
        """Starts the next invocation's log with what came before it: the init's lines on the first one, and
        lines printed between invocations (a handler's thread) on any."""
        with self._capture_lock:
            fresh = LogCapture()
            if not self._init_lines_taken:
                fresh.absorb(self._capture)
                self._init_lines_taken = True
            fresh.absorb(self._carry)
            self._carry = LogCapture()
            self._capture = fresh
            return fresh

    def _read_output(self) -> None:
        stream = self.process.stdout
        partial = b""
        while chunk := stream.read1(65536):
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()
            while len(partial) > MAX_EVENT_BYTES:
                lines.append(partial[:MAX_EVENT_BYTES])
                partial = partial[MAX_EVENT_BYTES:]
            for line in lines:
                self._take_line(line.decode("utf-8", "replace"))
        if partial:
            self._take_line(partial.decode("utf-8", "replace"))
        with self._capture_lock:
            self._capture.done.set()

    def _take_line(self, line: str) -> None:
        with self._capture_lock:
            if line.startswith(runner.END_MARK):
                self._capture.done.set()
            elif line:
                (self._carry if self._capture.done.is_set() else self._capture).add(line)

    def _resident_mb(self) -> int:
        try:
            with open(f"/proc/{self.process.pid}/statm") as statm:
                return int(statm.read().split()[1]) * PAGE_BYTES // (1024 * 1024)
        except (OSError, IndexError, ValueError):
            return 0

    def _peak_memory_mb(self) -> int:
        return runner.peak_memory_mb(str(self.process.pid))

    def alive(self) -> bool:
        return self.process.poll() is None

    def pss_mb(self) -> float:
        """Proportional set size (what the worker costs the machine, shared pages divided among their users)."""
        try:
            with open(f"/proc/{self.process.pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def kill(self) -> None:
        """Ends the worker and everything its handler started (its own session)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self._request_write, self._response_read):
            try:
                os.close(fd)
            except OSError:
                pass
        self._request_write = self._response_read = -1
        if self.lease is not None:
            self.lease.release()

    def flush_logs(self, capture: LogCapture) -> None:
        if capture.events:
            self._send_logs(self.log_group, self.log_stream, capture.events)


class _Fd:
    """A raw pipe end as the file-like object runner.read_message / write_message expect."""

    def __init__(self, fd: int):
        self.fd = fd

    def read(self, size: int) -> bytes:
        return os.read(self.fd, size)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]


class WorkerPool:
    """Idle warm workers by spec; new ones started from one long-lived thread; idle ones reaped."""

    def __init__(self, send_logs, idle_seconds: float, max_workers: int):
        self._send_logs = send_logs
        self.idle_seconds = idle_seconds
        self.max_workers = max_workers
        self._idle: dict[FunctionSpec, deque[Worker]] = {}
        self._busy: set[Worker] = set()
        self._lock = threading.Lock()
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="lambda-spawner")
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap_idle, name="lambda-reaper", daemon=True)
        self._reaper.start()

    def acquire(self, spec: FunctionSpec, environment: dict[str, str], sys_path: list[str], lease_for=None) -> Worker | None:
        """A warm worker of `spec`, or a new one (not yet initialised: `init_ms is None` until initialize) whose
        environment adds the keys of `lease_for()` (a role session, held for the worker's life); None when the
        stack runs as many workers as it may and none is idle to make room."""
        with self._lock:
            idle = self._idle.get(spec)
            while idle:
                worker = idle.pop()
                if worker.alive():
                    self._busy.add(worker)
                    return worker
            if len(self._busy) + self._idle_count() >= self.max_workers and not self._evict_oldest_idle():
                return None
        lease = lease_for() if lease_for is not None else rolesessions.Lease(None, None)  # none: the account root's keys
        try:
            worker = Worker(spec, environment, sys_path, lambda *a, **k: self._spawner.submit(subprocess.Popen, *a, **k).result(), self._send_logs, lease)
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        with self._lock:
            self._busy.add(worker)
        return worker

    def release(self, worker: Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if worker.retired or not worker.alive() or self._closed.is_set():
                keep = False
            else:
                worker.last_used = time.monotonic()
                self._idle.setdefault(worker.spec, deque()).append(worker)
                keep = True
        if not keep:
            worker.kill()

    def retire(self, function_name: str, version: str | None = None) -> None:
        """Recycles a function's workers (all versions, or one): idle ones end now, busy ones when done."""
        ending = []
        with self._lock:
            for spec in list(self._idle):
                if spec.name == function_name and version in (None, spec.version):
                    ending.extend(self._idle.pop(spec))
            for worker in self._busy:
                if worker.spec.name == function_name and version in (None, worker.spec.version):
                    worker.retired = True
        for worker in ending:
            worker.kill()

    def workers(self) -> list[Worker]:
        with self._lock:
            return [*self._busy, *(w for idle in self._idle.values() for w in idle)]

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            everyone = [*self._busy, *(w for idle in self._idle.values() for w in idle)]
            self._idle.clear()
        for worker in everyone:
            worker.kill()
        self._spawner.shutdown(wait=False)

    def _idle_count(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    def _evict_oldest_idle(self) -> bool:
        candidates = [(worker.last_used, spec, worker) for spec, idle in self._idle.items() for worker in idle]
        if not candidates:
            return False
        _, spec, worker = min(candidates, key=lambda entry: entry[0])
        self._idle[spec].remove(worker)
        threading.Thread(target=worker.kill, daemon=True).start()
        return True

    def _reap_idle(self) -> None:
        while not self._closed.wait(min(5.0, self.idle_seconds / 2)):
            now = time.monotonic()
            ending = []
            with self._lock:
                for spec, idle in list(self._idle.items()):
                    for worker in list(idle):
                        if now - worker.last_used > self.idle_seconds:
                            idle.remove(worker)
                            ending.append(worker)
                    if not idle:
                        del self._idle[spec]
            for worker in ending:
                worker.kill()
