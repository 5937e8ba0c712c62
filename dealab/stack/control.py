"""Starting, stopping and asking after the background stack process (pid file and log in the state folder)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dealab.config import Settings
from dealab.stack.server import EXIT_PORT_TAKEN
from dealab.wire.store import write_atomic

# A start that restores a large state takes as long as it takes; one that shows no progress this long is stuck.
STALL_SECONDS = 180
# A stop takes a last snapshot; a stack that has not exited after this long is killed (the journal has everything).
STOP_TIMEOUT_SECONDS = 60

StartProgress = Callable[[str, int, "int | None"], None]


class StackError(Exception):
    """A one-line, actionable reason the stack could not do what was asked."""


def pid_file(settings: Settings) -> Path:
    return settings.state_dir / "stack.pid"


def log_file(settings: Settings) -> Path:
    return settings.state_dir / "stack.log"


def health(settings: Settings, timeout: float = 2.0) -> dict | None:
    """The running stack's health document, or None when no ready dealab answers on the port."""
    document = health_document(settings, timeout)
    return document if document and document.get("status") == "ok" else None


def health_document(settings: Settings, timeout: float = 2.0) -> dict | None:
    """Whatever dealab answers on its health endpoint: status "ok", or "starting" with restore progress."""
    try:
        with urllib.request.urlopen(f"{settings.endpoint_url}/_dealab/health", timeout=timeout) as response:
            document = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def running_pid(settings: Settings) -> int | None:
    """The pid in the pid file if that process is alive; a stale pid file is removed."""
    path = pid_file(settings)
    try:
        pid = int(path.read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError:
        path.unlink(missing_ok=True)
        return None
    if not _alive(pid):
        path.unlink(missing_ok=True)
        return None
    return pid


def _alive(pid: int) -> bool:
    try:
        # A stack started by this very process (as in tests) stays a zombie until reaped.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A port P with P and P+1 free on 127.0.0.1, drawn below the kernel's ephemeral range: a port from that
    range can be taken by any outgoing connection's local end between a stack's stop and its restart."""
    try:
        ephemeral_start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_start = 32768
    chooser = random.Random()
    for _ in range(200):
        port = chooser.randrange(10_000, ephemeral_start - 2)
        if _port_free(port) and _port_free(port + 1):
            return port
    raise StackError("no two adjacent free ports on 127.0.0.1 below the ephemeral range")


def up(settings: Settings, progress: StartProgress | None = None) -> dict:
    """Starts the stack unless it already runs; returns its health document once it answers as ready.
    `progress(stage, done, total)` hears how far restoring saved state has come."""
    if settings.classroom_url:  # a classroom learner's stack is the front door's to start, on their first request
        document = health(settings)
        if document is None:
            raise StackError(f"the classroom endpoint {settings.classroom_url} (DEALAB_ENDPOINT_URL) does not answer; ask your instructor")
        return document
    pid = running_pid(settings)
    if pid is not None:
        document = health_document(settings)
        if document and document.get("pid") == pid:
            return document if document.get("status") == "ok" else _wait_until_ready(settings, pid, None, progress)
    for port in (settings.port, settings.insecure_port):
        if not _port_free(port):
            raise StackError(
                f"port {port} on 127.0.0.1 is taken by another program; stop it, or pick free ports with "
                f"DEALAB_PORT={settings.port + 100} (the plain-HTTP twin uses the next port)"
            )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "dealab.stack.server",
        "--port", str(settings.port),
        "--insecure-port", str(settings.insecure_port),
        "--state-dir", str(settings.state_dir),
        "--region", settings.region,
    ]
    if settings.backend_url:
        command += ["--backend-url", settings.backend_url]
    if settings.spark_master:
        command += ["--spark-master", settings.spark_master]
    with log_file(settings).open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    write_atomic(pid_file(settings), str(process.pid))
    return _wait_until_ready(settings, process.pid, process, progress)


def _wait_until_ready(settings: Settings, pid: int, process: subprocess.Popen | None, progress: StartProgress | None) -> dict:
    """Waits for the stack to answer as ready for as long as its start makes progress: restoring a large
    state may take a while, but a start that shows no progress for STALL_SECONDS is stopped and reported."""
    last_seen, last_change = None, time.monotonic()
    while True:
        code = process.poll() if process is not None else (None if _alive(pid) else -1)
        if code is not None:
            pid_file(settings).unlink(missing_ok=True)
            raise StackError(_failure_reason(settings, code))
        document = health_document(settings, timeout=1.0)
        if document and document.get("pid") == pid:
            if document.get("status") == "ok":
                return document
            restore = document.get("restore") or {}
            seen = (restore.get("stage"), restore.get("done"))
            if seen != last_seen:
                last_seen, last_change = seen, time.monotonic()
                if progress:
                    progress(restore.get("stage") or "starting", restore.get("done") or 0, restore.get("total"))
        if time.monotonic() - last_change > STALL_SECONDS:
            down(settings)
            raise StackError(f"the stack made no progress for {STALL_SECONDS}s while starting; see {log_file(settings)}")
        time.sleep(0.05)


def _failure_reason(settings: Settings, code: int) -> str:
    lines = [line for line in log_file(settings).read_text(errors="replace").splitlines() if line.startswith("dealab:")]
    if code == EXIT_PORT_TAKEN and lines:
        return lines[-1].removeprefix("dealab: ")
    return f"the stack exited with status {code} while starting; the end of {log_file(settings)} says why"


def reset_state_folder(state_dir: Path) -> None:
    """What a reset empties, done on the files: the journal (snapshots included) and every engine's folder.
    The learner's seed, hints and scores are the CLI's and stay."""
    from dealab.engines import ENGINE_NAMES, USED_FILE

    for name in ["journal", *ENGINE_NAMES]:
        shutil.rmtree(state_dir / name, ignore_errors=True)
    (state_dir / USED_FILE).unlink(missing_ok=True)  # an emptied folder's next start builds engines on first use again


def down(settings: Settings) -> bool:
    """Stops the stack; True if one was running."""
    pid = running_pid(settings)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    if not _gone_within(pid, STOP_TIMEOUT_SECONDS):
        log_line = f"the stack did not stop within {STOP_TIMEOUT_SECONDS}s and was killed (its journal has every request)"
        with log_file(settings).open("a") as log:
            log.write(f"dealab: {log_line}\n")
        os.kill(pid, signal.SIGKILL)
        _gone_within(pid, 10)  # its ports are free only once it is gone
    pid_file(settings).unlink(missing_ok=True)
    return True


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def reset(settings: Settings) -> None:
    """Empties every service and engine (and the journal with them), through the running stack, or straight
    from the state folder when it is down, so a stack that cannot start can still be emptied."""
    if running_pid(settings) is None:
        reset_state_folder(settings.state_dir)
        return
    from dealab.wire.admintoken import admin_headers

    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/reset", method="POST", data=b"", headers=admin_headers(settings.state_dir))
    try:
        urllib.request.urlopen(request, timeout=60).read()
    except urllib.error.HTTPError as error:
        raise StackError(json.loads(error.read() or b"{}").get("message", str(error))) from None
    except (urllib.error.URLError, OSError):
        raise StackError("the stack is not running; start it with `make up`") from None
