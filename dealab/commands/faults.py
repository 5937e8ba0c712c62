"""`dealab faults set|list|clear`: make a share of matching AWS calls fail the way AWS fails them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import typer
from rich.console import Console
from rich.table import Table

from dealab.config import settings

app = typer.Typer(help="Inject AWS failures (throttling, 5xx, per-record PutRecords errors) into the local AWS.", no_args_is_help=True)
console = Console()


def _call(payload: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{settings().endpoint_url}/_dealab/faults",
        data=None if payload is None else json.dumps(payload).encode(),
        method="GET" if payload is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        console.print(f"[red]error[/red] {json.loads(error.read() or b'{}').get('message', error)}")
        raise typer.Exit(1) from None
    except (urllib.error.URLError, OSError):
        console.print("[red]error[/red] the local AWS is not running; start it with `make up` (or `dealab up`)")
        raise typer.Exit(1) from None


def _show(document: dict) -> None:
    rules = document.get("rules", [])
    if not rules:
        console.print("no fault rules: every call reaches the local AWS untouched")
        return
    table = Table("target", "rate", "error", "seed", "seen", "failed")
    for rule in rules:
        table.add_row(rule["target"], f"{rule['rate']:g}", rule["error"], rule["seed"], str(rule["seen"]), str(rule["injected"]))
    console.print(table)


@app.command("set")
def set_rule(
    target: str = typer.Argument(..., help="service:Operation, e.g. kinesis:PutRecords, dynamodb:* or *:*"),
    options: list[str] = typer.Argument(..., help="rate=<0..1> [error=throttling|internal|unavailable] [seed=<text>]"),
) -> None:
    """Fail a share of matching calls: `dealab faults set kinesis:PutRecords rate=0.1`."""
    _show(_call({"action": "set", "rules": [" ".join([target, *options])]}))


@app.command("list")
def list_rules() -> None:
    """The rules in force, with how many calls (or batch entries) each has seen and failed."""
    _show(_call())


@app.command()
def clear(targets: list[str] = typer.Argument(None, help="service:Operation targets to clear; none clears every rule")) -> None:
    """Stop injecting failures (for the given targets, or all)."""
    _show(_call({"action": "clear", "targets": targets or []}))
