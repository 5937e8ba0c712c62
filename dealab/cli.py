"""The `dealab` command line: thin — it parses, calls the stack, labs, grader and datasets, and renders."""

from __future__ import annotations

import difflib
import importlib
import os
import shlex
import subprocess
import sys
import traceback
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dealab import labrun
from dealab.commands import admin, spark
from dealab.config import REPO_ROOT, settings
from dealab.datasets import learner_seed
from dealab.labs import LabManifestError, UnknownLab, UnsafeEnvironment, all_labs, get_lab, learner_env, run_scripts
from dealab.stack import control
from dealab.stack.journal import Journal
from dealab.stack.repair import repair_state
from dealab.wire.store import JsonFile
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
    "logs": "dealab.commands.logs",
    "class": "dealab.commands.classroom",
}


class Abort(Exception):
    """A one-line, expected failure to show the user (no traceback)."""


def _need_stack() -> dict:
    document = control.health(settings())
    if document is None:
        raise Abort("the local AWS is not running; start it with `make up` (or `dealab up`)")
    return document


def _dealab_command() -> str:
    """How to type `dealab` from the current folder: it lives in the venv, which is not on PATH."""
    executable = Path(sys.executable).with_name("dealab")
    try:
        return str(executable.relative_to(Path.cwd()))
    except ValueError:
        return str(executable)


def _need_started(lab, s) -> None:
    """Grading, running or hinting a lab that was never started on this local AWS would only list failures."""
    if str(lab.number) not in labrun.started_labs(s):
        raise Abort(f"lab {lab.number:02d} has not been started on this local AWS yet; start it with `make lab-{lab.number}`")


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
        f"[green]up[/green] on {s.endpoint_url} (plain-HTTP twin {s.insecure_endpoint_url}) · backend {document['backend']} · "
        f"pid {document['pid']}" + (f" · saved state restored in {restore['seconds']}s" if restore.get("seconds") else "")
    )
    if skipped or restore.get("damaged_lines"):
        console.print(f"[yellow]note[/yellow]: {skipped} saved request(s) did not apply again and {restore.get('damaged_lines', 0)} damaged journal line(s) were skipped; `dealab status` lists them")
    command = _dealab_command()
    console.print(f"Open a shell pointed at it: [bold]{command} shell[/bold]   (or, in this shell: [bold]eval \"$({command} env)\"[/bold])",
                  highlight=False, soft_wrap=True)


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
    table.add_row("engines loaded", ", ".join(document.get("engines", [])))  # the others load on their service's first request
    table.add_row("learner seed", learner_seed(s))
    console.print(table)


@app.command()
def env() -> None:
    """Print the exports that point boto3, the AWS CLI and friends at the local AWS: eval $(dealab env)."""
    for key, value in settings().client_env().items():
        print(f"export {key}={shlex.quote(value)}")


SPARK_ARGUMENTS = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command("pyspark", context_settings=SPARK_ARGUMENTS)
def pyspark_shell(context: typer.Context) -> None:
    """The PySpark shell, its s3:// and s3a:// paths the local AWS's S3 (arguments go to pyspark)."""
    _need_stack()
    raise typer.Exit(spark.run("pyspark", context.args))


@app.command("spark-submit", context_settings=SPARK_ARGUMENTS)
def spark_submit(context: typer.Context) -> None:
    """spark-submit SCRIPT [ARGS]: a Spark application whose s3:// and s3a:// paths are the local AWS's S3."""
    _need_stack()
    raise typer.Exit(spark.run("spark-submit", context.args))


@app.command()
def shell() -> None:
    """Open a subshell whose AWS clients all talk to the local AWS; its prompt starts with (dealab). `exit` leaves it."""
    s = settings()
    env = learner_env(s)
    env["DEALAB_SHELL"] = "1"
    program = os.environ.get("SHELL") or "/bin/bash"
    arguments = [program]
    if Path(program).name == "bash":
        # bash reads ~/.bashrc after the environment, which would overwrite PS1: set the marker after it instead
        rcfile = s.state_dir / "shellrc"
        rcfile.parent.mkdir(parents=True, exist_ok=True)
        rcfile.write_text('[ -f ~/.bashrc ] && . ~/.bashrc\nPS1="(dealab) ${PS1:-\\$ }"\n')
        arguments += ["--rcfile", str(rcfile), "-i"]
    else:
        env["PS1"] = "(dealab) " + env.get("PS1", "$ ")
    if control.health(s) is None:
        console.print("[yellow]note[/yellow]: the local AWS is not running yet; `make up` starts it")
    console.print(f"[green]dealab shell[/green]: AWS clients here talk to {s.endpoint_url}; `exit` leaves it", highlight=False)
    raise typer.Exit(subprocess.call(arguments, env=env))


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
    check: bool = typer.Option(False, "--check", help="Check that each lab's parts exist and agree (exit status 2 if one does not)."),
    root: Path = typer.Option(REPO_ROOT, "--root", help="The repository whose labs/ --check reads (a copy, a new lab)."),
) -> None:
    """List the labs with their exam tasks and your last score."""
    from grader.runner import BY_REFERENCE, last_scores

    if check:
        _print_wiring(root)
        return
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
        if score and score.get("earned_by") == BY_REFERENCE:
            shown += " (reference solution)"
        table.add_row(f"{lab.number:02d}", lab.title, " ".join(lab.tasks), ", ".join(lab.services), str(lab.minutes), shown)
    console.print(table)


def _print_wiring(root: Path) -> None:
    from dealab.labcheck import PARTS, check_labs

    wirings = check_labs(root)
    table = Table(title=f"lab parts under {root / 'labs'}", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("lab", overflow="ellipsis", no_wrap=True, max_width=12)
    for part in PARTS:
        table.add_column(part, min_width=len(part))
    reasons = []
    for wiring in wirings:
        found = {finding.part: finding for finding in wiring.findings}
        table.add_row(wiring.folder.name, *("—" if part not in found else "[green]✓[/green]" if found[part].ok else "[red]✗[/red]" for part in PARTS))
        reasons += [f"[red]✗[/red] {wiring.folder.name} {finding.part}: {escape(finding.detail)}" for finding in wiring.findings if not finding.ok]
    console.print(table)
    for reason in reasons:
        console.print(reason, highlight=False)
    broken = [wiring.folder.name for wiring in wirings if not wiring.ok]
    if not wirings or broken:
        raise Abort(f"half-wired lab(s): {', '.join(broken)}" if broken else f"no lab.toml under {root / 'labs'}")
    console.print(f"[green]{len(wirings)} labs, every part present and in agreement[/green]")


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
def lab_hint(number: str) -> None:
    """One more level of help for each check not passed yet: the concept (with docs), the API, then the call."""
    from grader.runner import grade as run_grade

    lab = _lab(number)
    s = settings()
    _need_stack()
    _need_started(lab, s)
    with console.status(f"grading lab {lab.number:02d} quietly to see what to hint at..."):
        report = run_grade(lab, s, learner_seed(s), record=False)
    hints_seen = JsonFile(s.state_dir / labrun.HINTS_FILE)
    seen = hints_seen.load({})
    levels = seen.get(str(lab.number))
    levels = levels if isinstance(levels, dict) else {}
    for line in hint_lines(lab, report, levels):
        console.print(line, highlight=False, soft_wrap=line.startswith(HINT_INDENT + "docs:"))
    seen[str(lab.number)] = levels
    hints_seen.save(seen)


HINT_INDENT = " " * 7
ORIENTATION = "_orientation"


def hint_lines(lab, report, levels: dict) -> list[str]:
    """The next rung of each failing check's hint ladder (updating `levels`, check id → the level shown). The
    lab.toml [[hints]] are level 0: an orientation shown with the first hints only. Past the last rung a
    check points at the reference solution, never repeating its last hint as if it were new."""
    from grader.core import checks_of

    checks = {c.id: c for c in checks_of(importlib.import_module(lab.grader_module))}
    failing = [r for r in report.results if r.status != "PASS"]
    if not failing:
        return [f"[green]lab {lab.number:02d} has full marks[/green]: nothing to hint at. "
                f"`{_dealab_command()} lab diff {lab.number}` compares your files with the reference solution."]
    lines = []
    if lab.hints and not levels.get(ORIENTATION):
        lines += [f"[cyan]orientation:[/cyan] {text}" for text in lab.hints]
        levels[ORIENTATION] = 1
    lines.append(f"Lab {lab.number:02d}: {len(failing)} check(s) not passed yet; one more level of help for each:")
    for result in failing:
        ladder = checks[result.id].hints
        level = int(levels.get(result.id, 0)) + 1
        if level <= len(ladder):
            lines.append(f"[bold]{result.id}[/bold] {result.title} — [cyan]hint {level}/{len(ladder)}[/cyan]")
            lines.append(f"{HINT_INDENT}{ladder[level - 1]}")
            if level == 1 and checks[result.id].docs:
                lines.append(f"{HINT_INDENT}docs: {checks[result.id].docs}")
            levels[result.id] = level
        else:
            lines.append(f"[bold]{result.id}[/bold] {result.title} — [yellow]every hint shown ({len(ladder)}/{len(ladder)})[/yellow]")
            lines.append(f"{HINT_INDENT}`make solve-{lab.number}` runs the reference solution (your files stay as they are); "
                         f"once your own code has full marks, `{_dealab_command()} lab diff {lab.number}` shows how it differs from it.")
            levels[result.id] = len(ladder) + 1
    return lines


@lab_app.command("diff")
def lab_diff(number: str) -> None:
    """After full marks: your files beside the reference solution's, as a unified diff."""
    from grader.runner import BY_LEARNER, last_scores

    lab = _lab(number)
    score = last_scores(settings()).get(str(lab.number))
    if not score or score["score"] != score["total"] or score.get("earned_by", BY_LEARNER) != BY_LEARNER:
        raise Abort(f"the reference solution is shown only after your own code gets full marks on lab {lab.number:02d} "
                    f"(`make grade-{lab.number}`); until then `make hint-{lab.number}` helps")
    names = sorted({p.relative_to(lab.starter_dir) for p in lab.starter_dir.rglob("*.py")}
                   | {p.relative_to(lab.solution_dir) for p in lab.solution_dir.rglob("*.py")})
    for name in names:
        mine, reference = lab.starter_dir / name, lab.solution_dir / name
        diff = difflib.unified_diff(
            mine.read_text().splitlines() if mine.exists() else [], reference.read_text().splitlines() if reference.exists() else [],
            f"yours/{name}", f"reference/{name}", lineterm="",
        )
        text = "\n".join(diff)
        console.print(text if text else f"{name}: the same as the reference", markup=False, highlight=False)


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
    _need_started(lab, settings())
    _report_runs(run_scripts(lab, lab.starter_dir, settings()))


@lab_app.command("solve")
def lab_solve(number: str) -> None:
    """Run the reference solution against the local AWS (your starter files are not touched)."""
    lab = _lab(number)
    _need_stack()
    s = settings()
    if str(lab.number) not in labrun.started_labs(s):
        console.print(f"lab {lab.number:02d} was not started yet: starting it first (as `make lab-{lab.number}` would)")
        with console.status(f"generating your data for lab {lab.number:02d}..."):
            labrun.start(lab, s)
    with console.status(f"running the reference solution of lab {lab.number:02d}..."):
        runs = labrun.solve(lab, s)
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
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show each failing check's first hint and docs link."),
) -> None:
    """Check your AWS resources and data against the lab; exit 0 only at full marks."""
    from grader.report import render, write_json, write_junit
    from grader.runner import grade as run_grade

    _need_stack()
    s = settings()
    if number == "all":
        started = labrun.started_labs(s)
        labs = [lab for lab in all_labs() if str(lab.number) in started]
        if not labs:
            raise Abort("no lab has been started on this local AWS yet; start one with `make lab-1`")
        skipped = [f"{lab.number:02d}" for lab in all_labs() if str(lab.number) not in started]
        if skipped:
            console.print(f"not started, so not graded: lab {', '.join(skipped)}", highlight=False)
    else:
        labs = [_lab(number)]
        _need_started(labs[0], s)
    seed = learner_seed(s)
    reports = []
    with console.status("grading...") as spinner:
        for lab in labs:
            reports.append(run_grade(lab, s, seed, progress=lambda c, lab=lab: spinner.update(f"lab {lab.number:02d}: {c.id} {c.title}...")))
    for report in reports:
        render(report, console, verbose=verbose)
        suffix = f"-lab{report.lab:02d}" if len(reports) > 1 else ""
        if json_path:
            write_json(report, json_path.with_stem(json_path.stem + suffix))
        if junit_path:
            write_junit(report, junit_path.with_stem(junit_path.stem + suffix))
        if not report.full_marks and not verbose:
            console.print(f"Stuck? `make hint-{report.lab}` gives one more level of help per check "
                          f"(`{_dealab_command()} grade {report.lab} --verbose` shows the docs links).", highlight=False)
    if len(reports) == 1 and reports[0].full_marks:
        console.print(next_lab_pointer(reports[0].lab), highlight=False)
    if not all(report.full_marks for report in reports):
        console.print("[dim]Below full marks the exit status is 1: that is the score, not a crash "
                      "(make adds its own 'Error 1' line after this one).[/dim]", highlight=False)
        raise typer.Exit(1)


def next_lab_pointer(number: int) -> str:
    later = [lab for lab in all_labs() if lab.number > number]
    if not later:
        return "That was the last lab. `dealab labs` shows your scores across all of them."
    return f"Next: `make lab-{later[0].number}` — {later[0].title}"


def _mount_command_groups() -> None:
    for name, module in COMMAND_GROUPS.items():
        app.add_typer(importlib.import_module(module).app, name=name)


def main() -> None:
    _mount_command_groups()
    try:
        app()
    except (Abort, control.StackError, LabManifestError, UnsafeEnvironment) as error:
        console.print(f"[red]dealab:[/red] {error}", highlight=False)
        sys.exit(2)
    except Exception as error:  # a dealab bug: one line for the learner, the traceback in a log for us
        log = settings().state_dir / "cli-errors.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            handle.write(f"--- dealab {' '.join(sys.argv[1:])}\n{traceback.format_exc()}")
        console.print(f"[red]dealab: unexpected error[/red] {type(error).__name__}: {error} (details in {log})", highlight=False)
        sys.exit(3)
