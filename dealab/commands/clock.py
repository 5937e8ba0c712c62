"""`dealab clock show|advance 30d|set 2027-01-01|reset`: the lab clock that S3 lifecycle and DynamoDB TTL run on."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import typer
from rich.console import Console

from dealab.config import settings

app = typer.Typer(help="Fast-forward time: S3 lifecycle rules and DynamoDB TTL run on the lab clock.", no_args_is_help=True)
console = Console()
# Advancing a year over a big bucket takes a while; the stack answers when everything due has been done.
ADVANCE_TIMEOUT_SECONDS = 900


def admin(path: str, payload: dict | None = None, timeout: float = 60) -> dict:
    """GET (or POST `payload` to) /_dealab/<path> on the running stack; exits with a one-line reason on failure."""
    request = urllib.request.Request(
        f"{settings().endpoint_url}/_dealab/{path}",
        data=None if payload is None else json.dumps(payload).encode(),
        method="GET" if payload is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        console.print(f"[red]error[/red] {json.loads(error.read() or b'{}').get('message', error)}")
        raise typer.Exit(1) from None
    except (urllib.error.URLError, OSError):
        console.print("[red]error[/red] the local AWS is not running; start it with `make up` (or `dealab up`)")
        raise typer.Exit(1) from None


def _show(document: dict) -> None:
    days = document["offset_days"]
    ahead = "real time" if abs(days) < 1e-6 else f"{days:+.2f} days from real time"
    console.print(f"lab clock  [bold]{document['now']}[/bold]  ({ahead})")
    move = document.get("last_move")
    if not move:
        return
    counts = move["lifecycle"]
    console.print(
        f"last move {move['from']} → {move['to']} ({move['moments']} due moments, {move['seconds']:.2f} s):\n"
        f"  S3 lifecycle: {counts['transition']} transitions, {counts['expire']} expirations, "
        f"{counts['delete_version']} noncurrent versions deleted, {counts['remove_marker']} delete markers removed, "
        f"{counts['abort_upload']} multipart uploads aborted\n"
        f"  DynamoDB TTL: {move['ttl_deleted']} items deleted"
    )


@app.command()
def show() -> None:
    """What time the lab clock reads, and what the last move did."""
    _show(admin("clock"))


@app.command()
def advance(by: str = typer.Argument(..., help="how far: 30d, 12h, 90m, 2w")) -> None:
    """Move the clock forward, carrying out every lifecycle and TTL action due on the way, in order."""
    _show(admin("clock", {"action": "advance", "by": by}, timeout=ADVANCE_TIMEOUT_SECONDS))


@app.command("set")
def set_clock(to: str = typer.Argument(..., help="a date or time (UTC): 2027-01-01 or 2027-01-01T12:00:00")) -> None:
    """Move the clock forward to a date (it never moves back: what expired stays expired)."""
    _show(admin("clock", {"action": "set", "to": to}, timeout=ADVANCE_TIMEOUT_SECONDS))


@app.command()
def reset() -> None:
    """Return the clock to real time (actions already carried out stay done)."""
    _show(admin("clock", {"action": "reset"}))
