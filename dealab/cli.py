"""The `dealab` command line: thin — it parses, calls the stack, labs, grader and datasets, and renders."""

from __future__ import annotations

import importlib
import shlex
import sys
import traceback
from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dealab import labrun
from dealab.commands import admin
from dealab.config import settings
from dealab.datasets import learner_seed
from dealab.labs import LabManifestError, UnknownLab, all_labs, get_lab, run_scripts
from dealab.stack import control
from dealab.stack.journal import Journal
from dealab.stack.repair import repair_state
from dealab.stack.store import JsonFile
from dealab.syllabus import DOMAINS, TASKS

console = Console()
app = typer.Typer(
    help="dealab: a local AWS, seeded data and graded labs for the DEA-C01 exam.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
lab_app = typer.Typer(help="Start, hint, solve, run and reset one lab.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")

# Sub-command groups that live in their own modules: `dealab <name> ...` → dealab.commands.<module>.app
COMMAND_GROUPS = {
    "clock": "dealab.commands.clock",
    "storage": "dealab.commands.storage",
    "faults": "dealab.commands.faults",
}


class Abort(Exception):
    """A one-line, expected failure to show the user (no traceback)."""


def _need_stack() -> dict:
    document = control.health(settings())
    if document is None:
        raise Abort("the local AWS is not running; start it with `make up` (or `dealab up`)")
    return document


def _lab(number: str):
    try:
        return get_lab(number)
    except UnknownLab as error:
        raise Abort(str(error)) from None


@app.command()
def up() -> None:
    """Start the local AWS in the background (idempotent)."""
    s = settings()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("starting the local AWS", total=None)

        def show(stage: str, done: int, total: int | None) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        document = control.up(s, progress=show)
    restore = document.get("restore") or {}
    skipped = len(restore.get("skipped") or [])
    console.print(
        f"[green]up[/green] on {s.endpoint_url} (plain-HTTP twin :{s.insecure_port}) · backend {document['backend']} · "
        f"pid {document['pid']}" + (f" · saved state restored in {restore['seconds']}s" if restore.get("seconds") else "")
    )
    if skipped or restore.get("damaged_lines"):
        console.print(f"[yellow]note[/yellow]: {skipped} saved request(s) did not apply again and {restore.get('damaged_lines', 0)} damaged journal line(s) were skipped; `dealab status` lists them")
    console.print("Point any AWS client at it with: [bold]eval $(dealab env)[/bold]")


@app.command()
def down() -> None:
    """Stop the local AWS; your resources and data are kept for the next `up`."""
    stopped = control.down(settings())
    console.print("[green]stopped[/green]; your state is kept" if stopped else "the local AWS was not running")


@app.command()
def status() -> None:
    """Backend, port, uptime and health of the local AWS."""
    s = settings()
    document = control.health(s)
    table = Table(show_header=False, box=None)
    table.add_row("endpoint", s.endpoint_url)
    table.add_row("state folder", str(s.state_dir))
    if document is None:
        pid = control.running_pid(s)
        table.add_row("health", "[red]not answering[/red]" + (f" (pid {pid} alive: see {control.log_file(s)})" if pid else ""))
        console.print(table)
        raise typer.Exit(1)
    table.add_row("health", "[green]ok[/green]")
    table.add_row("backend", document["backend"])
    table.add_row("pid", str(document["pid"]))
    table.add_row("uptime", f"{document['uptime_seconds']:.0f}s")
    restore = document.get("restore") or {}
    if restore:
        table.add_row(
            "saved state",
            f"snapshot up to request {restore.get('snapshot_seq', 0)}, {restore.get('replayed', 0)} replayed after it in {restore.get('seconds', 0)}s"
            + (f" [yellow](snapshot refused: {restore['snapshot_refused']})[/yellow]" if restore.get("snapshot_refused") else ""),
        )
        for skipped in restore.get("skipped") or []:
            table.add_row("[yellow]skipped[/yellow]", f"request {skipped['seq']} {skipped['request']}: {skipped['reason']}")
        if restore.get("damaged_lines"):
            table.add_row("[yellow]damaged[/yellow]", f"{restore['damaged_lines']} journal line(s) skipped; `dealab repair` (stack down) sets them aside")
    table.add_row("engines", ", ".join(document.get("engines", [])))
    table.add_row("learner seed", learner_seed(s))
    console.print(table)


@app.command()
def env() -> None:
    """Print the exports that point boto3, the AWS CLI and friends at the local AWS: eval $(dealab env)."""
    for key, value in settings().client_env().items():
        print(f"export {key}={shlex.quote(value)}")


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Delete every resource and object of every lab (the learner seed is kept); works with the stack down."""
    if not yes and not typer.confirm("Delete every resource and object in the local AWS?"):
        raise typer.Exit(1)
    control.reset(settings())
    console.print("[green]reset[/green]: the local AWS is empty")


@app.command()
def snapshot() -> None:
    """Write a snapshot of the local AWS now, so the next start loads it instead of replaying requests."""
    document = admin.call("snapshot", {})
    console.print(f"[green]snapshot[/green] up to request {document['seq']}: {document['bytes']:,} bytes in {document['seconds']}s")


@app.command()
def repair() -> None:
    """Set aside damaged lines and files in the state folder, keeping every readable record (stack down)."""
    s = settings()
    if control.running_pid(s) is not None:
        raise Abort("the local AWS is running; stop it with `make down` first, then repair")
    said = Journal(s.state_dir / "journal").repair() + repair_state(s.state_dir)
    for line in said:
        console.print(f"[green]repaired[/green] {line}")
    if not said:
        console.print("every state file is readable; nothing to repair")


@app.command("labs")
def list_labs(
    coverage: bool = typer.Option(False, "--coverage", help="Show the 17 DEA-C01 task statements and what covers each."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the lab table as Markdown (the README's table)."),
) -> None:
    """List the labs with their exam tasks and your last score."""
    from grader.runner import last_scores

    labs = all_labs()
    if coverage:
        _print_coverage(labs)
        return
    if markdown:
        print(labs_markdown(labs))
        return
    scores = last_scores(settings())
    table = Table(title="dealab labs")
    for column in ("lab", "title", "exam tasks", "services", "min", "last score"):
        table.add_column(column)
    for lab in labs:
        score = scores.get(str(lab.number))
        shown = f"{score['score']}/{score['total']}" if score else "—"
        table.add_row(f"{lab.number:02d}", lab.title, " ".join(lab.tasks), ", ".join(lab.services), str(lab.minutes), shown)
    console.print(table)


def labs_markdown(labs) -> str:
    rows = ["| lab | title | exam tasks | services | minutes |", "|---|---|---|---|---|"]
    rows += [f"| {lab.number:02d} | {lab.title} | {' '.join(lab.tasks)} | {', '.join(lab.services)} | {lab.minutes} |" for lab in labs]
    return "\n".join(rows)


def _print_coverage(labs) -> None:
    from grader.core import checks_of

    by_task: dict[str, list[str]] = {task: [] for task in TASKS}
    for lab in labs:
        checks = checks_of(importlib.import_module(lab.grader_module))
        for task in TASKS:
            ids = [c.id for c in checks if c.task == task]
            if ids:
                by_task[task].append(f"lab {lab.number:02d}: {', '.join(ids)}")
            elif task in lab.tasks:
                by_task[task].append(f"lab {lab.number:02d} (no check yet)")
    table = Table(title="DEA-C01 task statements and the checks that cover them")
    for column in ("task", "statement", "covered by"):
        table.add_column(column)
    for task, title in TASKS.items():
        domain = DOMAINS[int(task[0])][0]
        covered = "\n".join(by_task[task]) or "[red]not covered yet[/red]"
        table.add_row(task, f"{title}\n[dim]{domain}[/dim]", covered)
    console.print(table)
    uncovered = [task for task, items in by_task.items() if not items]
    console.print(f"{len(TASKS) - len(uncovered)} of {len(TASKS)} task statements covered" + (f"; not yet: {', '.join(uncovered)}" if uncovered else ""))


@lab_app.command("start")
def lab_start(number: str) -> None:
    """Start the local AWS, generate your dataset and show the exercise."""
    lab = _lab(number)
    s = settings()
    with console.status("starting the local AWS..."):
        control.up(s)
    with console.status(f"generating your data for lab {lab.number:02d} (seed {learner_seed(s)})..."):
        summary = labrun.start(lab, s)
    console.print(Markdown(lab.readme.read_text()))
    files = sum(1 for p in lab.data_dir.rglob("*") if p.is_file()) if lab.data_dir.exists() else 0
    console.rule()
    console.print(f"Lab {lab.number:02d} is ready: {files} data files in {lab.data_dir.relative_to(Path.cwd()) if lab.data_dir.is_relative_to(Path.cwd()) else lab.data_dir}"
                  + (f" ({', '.join(f'{k}: {len(v)}' for k, v in summary.items() if isinstance(v, (list, dict)))})" if summary else ""))
    console.print(f"Edit {lab.starter_dir}/, run it with [bold]make run-{lab.number}[/bold], check with [bold]make grade-{lab.number}[/bold]; stuck? [bold]make hint-{lab.number}[/bold]")


@lab_app.command("hint")
def lab_hint(number: str, level: int = typer.Option(0, "--level", help="Show hints up to this level (default: one more than last time).")) -> None:
    """Show hints, one more level of help each time."""
    lab = _lab(number)
    if not lab.hints:
        raise Abort(f"lab {lab.number:02d} has no hints")
    hints_seen = JsonFile(settings().state_dir / "hints.json")
    seen = hints_seen.load({})
    shown = min(level or seen.get(str(lab.number), 0) + 1, len(lab.hints))
    for index, text in enumerate(lab.hints[:shown], start=1):
        console.print(f"[cyan]hint {index}/{len(lab.hints)}:[/cyan] {text}")
    seen[str(lab.number)] = shown
    hints_seen.save(seen)
    if shown < len(lab.hints):
        console.print(f"[dim]run it again for more help ({len(lab.hints) - shown} level(s) left)[/dim]")


def _report_runs(runs) -> None:
    for run in runs:
        colour = "green" if run.ok else "red"
        console.print(f"[{colour}]{run.script.name}: exit {run.returncode}[/]")
        if run.output.strip():
            console.print(run.output.rstrip()[-4000:], markup=False, highlight=False)
    if any(not run.ok for run in runs):
        raise typer.Exit(1)


@lab_app.command("run")
def lab_run(number: str) -> None:
    """Run your starter code for a lab (from the lab folder, pointed at the local AWS)."""
    lab = _lab(number)
    _need_stack()
    _report_runs(run_scripts(lab, lab.starter_dir, settings()))


@lab_app.command("solve")
def lab_solve(number: str) -> None:
    """Run the reference solution against the local AWS (your starter files are not touched)."""
    lab = _lab(number)
    _need_stack()
    with console.status(f"running the reference solution of lab {lab.number:02d}..."):
        runs = labrun.solve(lab, settings())
    _report_runs(runs)


@lab_app.command("reset")
def lab_reset(number: str) -> None:
    """Delete this lab's resources and generated data (other labs are untouched)."""
    lab = _lab(number)
    _need_stack()
    removed = labrun.reset(lab, settings())
    console.print(f"[green]lab {lab.number:02d} reset[/green]: " + (", ".join(removed) if removed else "nothing to remove"))


@app.command()
def grade(
    number: str = typer.Argument(..., help="Lab number, or 'all'."),
    json_path: Path = typer.Option(None, "--json", help="Also write the report as JSON here."),
    junit_path: Path = typer.Option(None, "--junit", help="Also write the report as JUnit XML here."),
) -> None:
    """Check your AWS resources and data against the lab; exit 0 only at full marks."""
    from grader.report import render, write_json, write_junit
    from grader.runner import grade as run_grade

    _need_stack()
    s = settings()
    labs = all_labs() if number == "all" else [_lab(number)]
    seed = learner_seed(s)
    reports = []
    with console.status("grading...") as spinner:
        for lab in labs:
            reports.append(run_grade(lab, s, seed, progress=lambda c, lab=lab: spinner.update(f"lab {lab.number:02d}: {c.id} {c.title}...")))
    for report in reports:
        render(report, console)
        suffix = f"-lab{report.lab:02d}" if len(reports) > 1 else ""
        if json_path:
            write_json(report, json_path.with_stem(json_path.stem + suffix))
        if junit_path:
            write_junit(report, junit_path.with_stem(junit_path.stem + suffix))
    if not all(report.full_marks for report in reports):
        raise typer.Exit(1)


def _mount_command_groups() -> None:
    for name, module in COMMAND_GROUPS.items():
        app.add_typer(importlib.import_module(module).app, name=name)


def main() -> None:
    _mount_command_groups()
    try:
        app()
    except (Abort, control.StackError, LabManifestError) as error:
        console.print(f"[red]dealab:[/red] {error}", highlight=False)
        sys.exit(2)
    except Exception as error:  # a dealab bug: one line for the learner, the traceback in a log for us
        log = settings().state_dir / "cli-errors.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            handle.write(f"--- dealab {' '.join(sys.argv[1:])}\n{traceback.format_exc()}")
        console.print(f"[red]dealab: unexpected error[/red] {type(error).__name__}: {error} (details in {log})", highlight=False)
        sys.exit(3)
