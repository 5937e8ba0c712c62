"""`dealab class up|down|status|credentials|scores|grade`: a classroom of learners behind one front door
(dealab.classroom.frontdoor), each with their own stack, keys and scores."""

from __future__ import annotations

import csv
import functools
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dealab.classroom import records
from dealab.classroom.frontdoor import CLASS_PREFIX
from dealab.classroom.roster import RosterError, door_dir, enrol, instructor_token, learners, read_roster
from dealab.config import Settings, settings
from dealab.stack import control
from dealab.wire.admintoken import TOKEN_HEADER
from dealab.wire.store import JsonFile

app = typer.Typer(help="A classroom: one front door, a stack per learner, a live scoreboard for the instructor.", no_args_is_help=True)
console = Console()
DOOR_FILE = "frontdoor.json"
ALL_INTERFACES = ("0.0.0.0", "::")


class ClassError(Exception):
    """One line for the instructor: what went wrong and what to do."""


def _door_settings(state_dir: Path, port: int, host: str) -> Settings:
    """The front door as a stack's Settings: its pid and log files sit in class/.door/, its health on its port."""
    address = "127.0.0.1" if host in ALL_INTERFACES else host
    return Settings(door_dir(state_dir), port, port + 1, settings().region, None,
                    classroom_url=None if address == "127.0.0.1" else f"http://{address}:{port}")


def _running() -> tuple[Settings, dict]:
    state_dir = settings().state_dir
    door = JsonFile(door_dir(state_dir) / DOOR_FILE).load({})
    if not door:
        raise ClassError("no class has been started here; `dealab class up --roster FILE.csv` starts one")
    current = _door_settings(state_dir, door["port"], door["host"])
    if control.running_pid(current) is None:
        raise ClassError("the classroom front door is not running; `dealab class up --roster FILE.csv` starts it")
    return current, door


def _call(path: str, payload: dict | None = None, timeout: float = 1800) -> dict:
    current, _ = _running()
    request = urllib.request.Request(f"{current.endpoint_url}{CLASS_PREFIX}/{path}", data=None if payload is None else json.dumps(payload).encode(),
                                     method="GET" if payload is None else "POST",
                                     headers={"Content-Type": "application/json", TOKEN_HEADER: instructor_token(settings().state_dir)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise ClassError(f"the front door refused: {error.read().decode(errors='replace')[:300]}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ClassError(f"the front door did not answer: {error}") from None


def _endpoint(door: dict) -> str:
    host = socket.gethostname() if door["host"] in ALL_INTERFACES else door["host"]
    return f"http://{host}:{door['port']}"


def _guarded(function):
    """Runs a command, turning a ClassError or a refused roster into one red line and exit status 2."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (ClassError, RosterError, control.StackError) as error:
            console.print(f"[red]dealab class:[/red] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return run


@app.command()
@_guarded
def up(
    roster: Path = typer.Option(..., "--roster", help="CSV with a 'learner' column (optional: name, email)."),
    port: int = typer.Option(4566, "--port", help="The front door's port (its plain-HTTP twin is the next one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on: loopback unless a classroom network needs another."),
    spark_master: str = typer.Option(None, "--spark-master", help="spark://host:port: learners' Glue jobs run on that cluster."),
) -> None:
    """Enrol the roster (keys made once per learner) and start the front door; learners' stacks start on their first request."""
    state_dir = settings().state_dir
    enrolled = enrol(state_dir, read_roster(roster))
    token = instructor_token(state_dir)
    door_settings = _door_settings(state_dir, port, host)
    if control.running_pid(door_settings) is not None:
        console.print("[yellow]note[/yellow]: the front door was already running; a changed roster takes effect after "
                      "`dealab class down` and `dealab class up`", highlight=False)
    else:
        for candidate in (port, port + 1):
            if not control._port_free(candidate):
                raise ClassError(f"port {candidate} is taken by another program; pick another with --port")
        command = [sys.executable, "-m", "dealab.classroom.frontdoor", "--state-dir", str(state_dir), "--port", str(port),
                   "--insecure-port", str(port + 1), "--host", host, "--region", door_settings.region]
        env = dict(os.environ, **({"DEALAB_SPARK_MASTER": spark_master} if spark_master else {}))
        with control.log_file(door_settings).open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        control.pid_file(door_settings).write_text(str(process.pid))
        JsonFile(door_dir(state_dir) / DOOR_FILE).save({"port": port, "host": host})
        control._wait_until_ready(door_settings, process.pid, process, None)
    door = JsonFile(door_dir(state_dir) / DOOR_FILE).load({})
    console.print(f"[green]class up[/green]: {len(enrolled)} learners behind {_endpoint(door)} (plain-HTTP twin :{door['port'] + 1})", highlight=False)
    console.print(f"instructor page: {door_settings.endpoint_url}{CLASS_PREFIX}/?token={token}", highlight=False, soft_wrap=True)
    console.print(f"instructor token: {token}", highlight=False)
    console.print("hand out keys with `dealab class credentials --csv`; learners' stacks start on their first request", highlight=False)


@app.command()
@_guarded
def down() -> None:
    """Stop the front door and every learner's stack; their state is kept for the next `class up`."""
    current, _ = _running()
    control.down(current)
    console.print("[green]class down[/green]: every learner's state is kept")


@app.command()
@_guarded
def status() -> None:
    """The front door and each learner's stack: running or stopped, crashes, last activity."""
    document = _call("status")
    table = Table(title=f"classroom front door pid {document['pid']} on :{document['port']} (twin :{document['insecure_port']})")
    for column in ("learner", "stack", "pid", "port", "starts", "crashes", "last activity", "last request"):
        table.add_column(column)
    for entry in document["learners"]:
        table.add_row(entry["learner"], entry["state"], str(entry["pid"] or "—"), str(entry["port"] or "—"), str(entry["starts"]),
                      str(entry["crashes"]), entry["last_activity"] or "—", entry["last_request"] or "—")
    console.print(table)


@app.command()
@_guarded
def credentials(as_csv: bool = typer.Option(False, "--csv", help="learner,access_key_id,secret_access_key,endpoint")) -> None:
    """Each learner's keys and endpoint (as CSV, or as the exports a learner pastes into a shell)."""
    enrolled = learners(settings().state_dir)
    if not enrolled:
        raise ClassError("no learner enrolled here; `dealab class up --roster FILE.csv` enrols a roster")
    door = JsonFile(door_dir(settings().state_dir) / DOOR_FILE).load({"port": 4566, "host": "127.0.0.1"})
    endpoint = _endpoint(door)
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["learner", "access_key_id", "secret_access_key", "endpoint"])
        for learner in enrolled:
            writer.writerow([learner.id, learner.access_key_id, learner.secret_access_key, endpoint])
        return
    for learner in enrolled:
        print(f"# {learner.id} {learner.name}".rstrip())
        print(learner_exports(learner.id, learner.access_key_id, learner.secret_access_key, endpoint))


def learner_exports(learner: str, key: str, secret: str, endpoint: str) -> str:
    """What a learner pastes into their shell: the CLI and every SDK then talk to their stack through the front door."""
    return "\n".join(f"export {name}={value}" for name, value in {
        "DEALAB_ENDPOINT_URL": endpoint, "DEALAB_ACCESS_KEY_ID": key, "DEALAB_SECRET_ACCESS_KEY": secret, "DEALAB_LEARNER": learner,
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}.items())


@app.command()
@_guarded
def scores(
    as_csv: bool = typer.Option(False, "--csv", help="One row per learner × lab, as CSV."),
    as_json: bool = typer.Option(False, "--json", help="The same rows as JSON."),
) -> None:
    """Scores per learner × lab: counted (server-side) best/last/attempts, by_reference, first full marks, and self-reported."""
    state_dir = settings().state_dir
    rows = records.score_rows(state_dir, [learner.id for learner in learners(state_dir)])
    if as_json:
        print(json.dumps(rows, indent=1))
    elif as_csv:
        sys.stdout.write(records.rows_csv(rows))
    else:
        table = Table(title="classroom scores (counted: `dealab class grade`)")
        for column in ("learner", "lab", "best", "last", "attempts", "reference", "full marks at", "self-reported"):
            table.add_column(column)
        for row in rows:
            table.add_row(row["learner"], f"{row['lab']:02d}", f"{row['best_score'] if row['best_score'] is not None else '—'}/{row['total']}",
                          str(row["last_score"] if row["last_score"] is not None else "—"), str(row["attempts"]), "yes" if row["by_reference"] else "",
                          row["first_full_marks_real_time"] or "—", f"{row['self_reported_last']}/{row['total']}" if row["self_reported_last"] is not None else "—")
        console.print(table)


@app.command()
@_guarded
def grade(
    lab: int = typer.Option(..., "--lab", help="Lab number."),
    learner: str = typer.Option(None, "--learner", help="One learner (default: everyone)."),
) -> None:
    """Grade each learner's stack server-side: the scores that count."""
    outcomes = _call("grade", {"lab": lab, **({"learner": learner} if learner else {})})["graded"]
    for outcome in outcomes:
        if "score" in outcome:
            console.print(f"{outcome['learner']}: lab {outcome['lab']:02d} {outcome['score']}/{outcome['total']}"
                          + (" [magenta](reference solution)[/magenta]" if outcome["by_reference"] else ""), highlight=False)
        else:
            console.print(f"{outcome['learner']}: [yellow]{outcome.get('message') or outcome.get('error')}[/yellow]", highlight=False)
