"""`dealab faults set|list|clear`: make a share of matching AWS calls fail the way AWS fails them."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from dealab.commands import admin

app = typer.Typer(help="Inject AWS failures (throttling, 5xx, per-record PutRecords errors) into the local AWS.", no_args_is_help=True)
console = Console()


def _call(payload: dict | None = None) -> dict:
    return admin.call("faults", payload, timeout=30)


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
