"""Starting, stopping and asking after the background stack process (pid file and log in the state folder)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from dealab.config import Settings
from dealab.stack.server import EXIT_PORT_TAKEN, EXIT_STATE_DAMAGED

START_TIMEOUT_SECONDS = 120


class StackError(Exception):
    """A one-line, actionable reason the stack could not do what was asked."""


def pid_file(settings: Settings) -> Path:
    return settings.state_dir / "stack.pid"


def log_file(settings: Settings) -> Path:
    return settings.state_dir / "stack.log"


def health(settings: Settings, timeout: float = 2.0) -> dict | None:
    """The running stack's health document, or None when nothing dealab answers on the port."""
    try:
        with urllib.request.urlopen(f"{settings.endpoint_url}/_dealab/health", timeout=timeout) as response:
            document = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return document if document.get("status") == "ok" else None


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


def up(settings: Settings) -> dict:
    """Starts the stack unless it already runs; returns its health document once it answers."""
    pid = running_pid(settings)
    if pid is not None:
        document = health(settings)
        if document and document.get("pid") == pid:
            return document
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
    with log_file(settings).open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file(settings).write_text(str(process.pid))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            pid_file(settings).unlink(missing_ok=True)
            raise StackError(_failure_reason(settings, code))
        document = health(settings, timeout=1.0)
        if document and document.get("pid") == process.pid:
            return document
        time.sleep(0.05)
    down(settings)
    raise StackError(f"the stack did not answer within {START_TIMEOUT_SECONDS}s; see {log_file(settings)}")


def _failure_reason(settings: Settings, code: int) -> str:
    lines = [line for line in log_file(settings).read_text(errors="replace").splitlines() if line.startswith("dealab:")]
    if code in (EXIT_PORT_TAKEN, EXIT_STATE_DAMAGED) and lines:
        return lines[-1].removeprefix("dealab: ")
    return f"the stack exited with status {code} while starting; the end of {log_file(settings)} says why"


def down(settings: Settings) -> bool:
    """Stops the stack; True if one was running."""
    pid = running_pid(settings)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file(settings).unlink(missing_ok=True)
    return True


def reset(settings: Settings) -> None:
    """Empties every service and engine of the running stack (and the journal with them)."""
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/reset", method="POST", data=b"")
    try:
        urllib.request.urlopen(request, timeout=60).read()
    except urllib.error.HTTPError as error:
        raise StackError(json.loads(error.read() or b"{}").get("message", str(error))) from None
    except (urllib.error.URLError, OSError):
        raise StackError("the stack is not running; start it with `make up`") from None
