"""Backend conformance: every lab's reference solution and grader, run through the gateway in front of another
AWS-compatible backend, as `make conformance BACKEND=ministack` does.

The README promises that any AWS-compatible endpoint works behind the gateway; this proves it lab by lab.
It lives in the package (not under bench/ or tests/) because it is the product's own claim, run by a make
target like `make solve-N`, and it runs a lab exactly as they do: `labrun.start`, `labrun.solve`, and the
grader's `grade`. Each lab gets a fresh backend process and a fresh stack with its own state folder and
ports, so labs cannot lean on each other's leftovers, and every process started here is stopped on success,
failure, Ctrl-C and SIGTERM.

Backends and the checks a backend cannot satisfy are data (BACKENDS, EXCEPTIONS); a documented exception
names the reason, and one that passes again is reported so the table does not outlive its cause.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dealab import labrun
from dealab.config import REPO_ROOT, Settings
from dealab.datasets import learner_seed
from dealab.labs import Lab, all_labs
from dealab.stack import control
from grader.runner import PASS, Report, grade

CONFORMANCE_DIR = REPO_ROOT / ".conformance"
READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Backend:
    """An AWS-compatible emulator installed from the package index into a venv of its own (it pins its own
    botocore, which must not meet dealab's) and started on a loopback port."""

    name: str
    requirement: str  # what pip installs, pinned: the table in the README is about this version
    console_script: str
    health_path: str
    # environment that binds it to 127.0.0.1:{port} and keeps its state in memory and its files in {home}
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def venv(self) -> Path:
        return CONFORMANCE_DIR / f"{self.name}-venv"

    @property
    def embedded(self) -> bool:
        """The default backend, moto inside the stack's process: nothing to install or start."""
        return not self.console_script


BACKENDS = {
    backend.name: backend for backend in [
        # the same table for the default backend, measured the same way, for the README's comparison
        Backend("embedded", "embedded moto", "", ""),
        # ministack reads its bind address and port from BIND_HOST/GATEWAY_PORT (ministack/app.py main) and
        # writes its pid file and logs under TMPDIR; PERSIST_STATE/S3_PERSIST=0 keep every lab's state in memory.
        Backend("ministack", "ministack==1.5.33", "ministack", "/_ministack/health", {
            "BIND_HOST": "127.0.0.1", "GATEWAY_PORT": "{port}", "TMPDIR": "{home}", "PERSIST_STATE": "0",
            "S3_PERSIST": "0", "LOG_LEVEL": "WARNING",
        }),
    ]
}

# backend → {check id: why that backend cannot give the check what it needs}. The lab decides what its grader
# checks; a backend that cannot produce something is named here, never answered by a weaker check.
EXCEPTIONS: dict[str, dict[str, str]] = {
    "embedded": {},
    "ministack": {
        # ministack keeps SQS visibility timeouts on its own (real) clock: moving the lab clock does not return a
        # message the loader failed, so a poison message is not received maxReceiveCount times (and redriven to
        # the DLQ) within a grading. The lab clock would have to reach the backend's SQS for this.
        "L09-06": "SQS visibility timeouts run on ministack's real clock; `clock advance` cannot redrive a poison message to the DLQ",
    },
}


class ConformanceError(Exception):
    """A one-line reason the conformance run could not go on (install, start)."""


def install(backend: Backend, console: Console) -> Path | None:
    """The backend's console script, installing its pinned package into its venv unless a finished install of
    that very requirement is there already (None for the embedded backend)."""
    if backend.embedded:
        return None
    stamp = backend.venv / ".installed"
    script = backend.venv / "bin" / backend.console_script
    if stamp.exists() and stamp.read_text() == backend.requirement and script.exists():
        return script
    console.print(f"installing {backend.requirement} into {backend.venv.relative_to(REPO_ROOT)} ...")
    for command in ([sys.executable, "-m", "venv", "--clear", str(backend.venv)],
                    [str(backend.venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                     backend.requirement]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise ConformanceError(f"`{' '.join(command)}` failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    stamp.write_text(backend.requirement)
    return script


class BackendProcess:
    """One running backend, in a process group of its own so that stopping it stops everything it started."""

    def __init__(self, backend: Backend, script: Path, home: Path):
        self.backend = backend
        self.port = control.free_port_pair()
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        values = {"port": str(self.port), "home": str(home)}
        env = {**os.environ, **{key: value.format(**values) for key, value in backend.environment.items()}}
        self.log_path = home / f"{backend.name}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([str(script)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConformanceError(f"{self.backend.name} exited with status {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + self.backend.health_path, timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise ConformanceError(f"{self.backend.name} did not answer on {self.url} within {READY_TIMEOUT_SECONDS}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # what it started and left behind
        except (ProcessLookupError, PermissionError):
            pass


@dataclass(frozen=True)
class LabOutcome:
    lab: Lab
    seconds: float
    report: Report | None = None
    problem: str = ""  # why the lab could not be graded (a solution script failed, the stack did not start)
    excused: dict[str, str] = field(default_factory=dict)  # failing check id → documented reason
    stale: tuple[str, ...] = ()  # documented exceptions of this lab whose checks pass now

    @property
    def failing(self) -> list[str]:
        return [] if self.report is None else [r.id for r in self.report.results if r.status != PASS]

    @property
    def unexcused(self) -> list[str]:
        return [check_id for check_id in self.failing if check_id not in self.excused]

    @property
    def conforms(self) -> bool:
        return self.report is not None and not self.problem and not self.unexcused and not self.stale


def judge(lab: Lab, report: Report, exceptions: dict[str, str], seconds: float) -> LabOutcome:
    """A lab conforms at full marks, or when only checks documented as the backend's exceptions fail and
    every documented exception of the lab still fails (a stale one must be removed from the table)."""
    prefix = f"L{lab.number:02d}-"
    mine = {check_id: reason for check_id, reason in exceptions.items() if check_id.startswith(prefix)}
    failing = {r.id for r in report.results if r.status != PASS}
    return LabOutcome(lab, seconds, report, excused={c: mine[c] for c in failing if c in mine},
                      stale=tuple(sorted(set(mine) - failing)))


def run_lab(lab: Lab, backend: Backend, script: Path | None, workdir: Path) -> LabOutcome:
    """A fresh backend and stack, the lab started, its reference solution run and graded, both stopped."""
    started = time.monotonic()
    home = workdir / f"lab{lab.number:02d}"
    process = None if backend.embedded else BackendProcess(backend, script, home / backend.name)
    settings = None
    try:
        if process is not None:
            process.wait_until_ready()
        port = control.free_port_pair()
        settings = Settings(home / "state", port, port + 1, "us-east-1", process.url if process else None)
        control.up(settings)
        labrun.start(lab, settings)
        failed = [run for run in labrun.solve(lab, settings) if not run.ok]
        if failed:
            tail = failed[0].output.strip().splitlines()[-1:] or ["(no output)"]
            return LabOutcome(lab, time.monotonic() - started,
                              problem=f"{failed[0].script.name} exited {failed[0].returncode}: {tail[0]}")
        report = grade(lab, settings, learner_seed(settings))
        return judge(lab, report, EXCEPTIONS.get(backend.name, {}), time.monotonic() - started)
    except (ConformanceError, control.StackError) as error:
        return LabOutcome(lab, time.monotonic() - started, problem=str(error))
    finally:
        if settings is not None:
            control.down(settings)
        if process is not None:
            process.stop()


def render(backend: Backend, outcomes: list[LabOutcome], console: Console) -> None:
    table = Table(title=f"dealab labs on {backend.requirement} behind the gateway ({time.strftime('%Y-%m-%d')})")
    for column, justify in [("lab", "left"), ("score", "right"), ("time", "right"), ("verdict", "left")]:
        table.add_column(column, justify=justify)
    for outcome in outcomes:
        report = outcome.report
        score = f"{report.score}/{report.total}" if report else "-"
        if outcome.problem:
            verdict = f"[red]not graded[/red]: {outcome.problem}"
        elif outcome.unexcused:
            verdict = "[red]failed[/red]: " + ", ".join(outcome.unexcused)
        elif outcome.stale:
            verdict = "[red]documented exception passes now, remove it[/red]: " + ", ".join(outcome.stale)
        elif outcome.excused:
            verdict = "[yellow]documented exceptions[/yellow]: " + "; ".join(f"{c} ({why})" for c, why in outcome.excused.items())
        else:
            verdict = "[green]full marks[/green]"
        table.add_row(f"{outcome.lab.number:02d} {outcome.lab.slug}", score, f"{outcome.seconds:.0f}s", verdict)
    console.print(table)
    for outcome in outcomes:
        if outcome.report is not None:
            for result in outcome.report.results:
                if result.id in outcome.unexcused:
                    console.print(f"  {result.id} {result.status}: {result.message}", highlight=False)


def _print_stack_troubles(stack_log: Path, console: Console, most: int = 20) -> None:
    """The last warnings and errors the stack logged while a lab did not conform: a CI run keeps only what
    was printed, not the state folders."""
    try:
        lines = stack_log.read_text(errors="replace").splitlines()
    except OSError:
        return
    troubles = [line for line in lines if " WARNING " in line or " ERROR " in line][-most:]
    if troubles:
        console.print(f"  what {stack_log} says went wrong (last {len(troubles)}):", highlight=False)
        for line in troubles:
            console.print(f"    {line}", highlight=False, markup=False)


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds through every `finally`, which stops the processes


def run(backend_name: str, lab_numbers: list[int] | None = None, console: Console | None = None,
        workdir: Path | None = None) -> list[LabOutcome]:
    console = console or Console()
    if backend_name not in BACKENDS:
        raise ConformanceError(f"unknown backend {backend_name!r}; known: {', '.join(BACKENDS)}")
    backend = BACKENDS[backend_name]
    script = install(backend, console)
    labs = [lab for lab in all_labs() if not lab_numbers or lab.number in lab_numbers]
    outcomes = []
    # the last run's state folders and logs stay for reading until the next run of this backend
    workdir = workdir or CONFORMANCE_DIR / f"{backend.name}-run"
    shutil.rmtree(workdir, ignore_errors=True)
    for lab in labs:
        with console.status(f"lab {lab.number:02d} on {backend.requirement}..."):
            outcomes.append(run_lab(lab, backend, script, workdir))
        outcome = outcomes[-1]
        console.print(f"lab {lab.number:02d}: {'conforms' if outcome.conforms else 'does not conform'} "
                      f"({outcome.seconds:.0f}s)", highlight=False)
    render(backend, outcomes, console)
    for outcome in outcomes:
        if not outcome.conforms:
            _print_stack_troubles(workdir / f"lab{outcome.lab.number:02d}" / "state" / "stack.log", console)
    console.print(f"state folders and logs of this run: {workdir}/", highlight=False)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dealab.conformance", description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=sorted(BACKENDS))
    parser.add_argument("--lab", type=int, action="append", help="only this lab (repeatable); every lab by default")
    parser.add_argument("--workdir", type=Path, help="state folders and logs of the run (emptied first); "
                                                     "default .conformance/BACKEND-run")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    console = Console()
    try:
        outcomes = run(args.backend, args.lab, console, args.workdir)
    except ConformanceError as error:
        console.print(f"[red]conformance:[/red] {error}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]conformance: interrupted; every process it started is stopped[/red]")
        return 130
    return 0 if all(outcome.conforms for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
