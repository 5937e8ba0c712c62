"""`dealab clock show|advance 30d|set 2027-01-01|reset`: the lab clock that S3 lifecycle and DynamoDB TTL run on."""

from __future__ import annotations

import datetime
import threading

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dealab.commands import admin

app = typer.Typer(help="Fast-forward time: S3 lifecycle rules and DynamoDB TTL run on the lab clock.", no_args_is_help=True)
console = Console()
# Advancing a year over a big bucket takes a while; the stack answers when everything due has been done.
ADVANCE_TIMEOUT_SECONDS = 900
# how often a move under way is looked at for the progress bar (a move shorter than this shows none)
PROGRESS_POLL_SECONDS = 0.5


def _move(payload: dict) -> dict:
    """POSTs a clock move and, while the stack carries it out, shows how far through lab time it has got."""
    outcome: dict = {}

    def post() -> None:
        try:
            outcome["document"] = admin.request("clock", payload, ADVANCE_TIMEOUT_SECONDS)
        except admin.AdminError as error:
            outcome["error"] = error

    mover = threading.Thread(target=post, daemon=True)
    mover.start()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = None
        while True:
            mover.join(PROGRESS_POLL_SECONDS)
            if not mover.is_alive():
                break
            try:
                moving = admin.request("clock", timeout=PROGRESS_POLL_SECONDS * 4).get("moving")
            except admin.AdminError:
                continue  # the move's own answer says what went wrong
            if not moving:
                continue
            start, at, end = (datetime.datetime.fromisoformat(moving[field]) for field in ("from", "at", "to"))
            if task is None:
                task = progress.add_task("", total=max((end - start).total_seconds(), 1.0), detail="")
            progress.update(task, completed=(at - start).total_seconds(), description=f"lab clock: {moving['stage']}",
                            detail=f"{at:%Y-%m-%d %H:%M} of {end:%Y-%m-%d %H:%M} UTC, {moving['moments']} due moments done")
    if "error" in outcome:
        admin.fail(outcome["error"])
    return outcome["document"]


def _show(document: dict) -> None:
    days = document["offset_days"]
    ahead = "real time" if abs(days) < 1e-6 else f"{days:+.2f} days from real time"
    console.print(f"lab clock  [bold]{document['now']}[/bold]  ({ahead})")
    for lab, started in (document.get("labs") or {}).items():
        moved = started["moved_days"]
        console.print(f"  lab {int(lab):02d} started at lab time {started['started']}; "
                      + ("the clock has not been moved since" if abs(moved) < 1e-6 else f"moved {moved:+.2f} days since"))
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
    if move.get("timers_fired"):
        console.print(f"  scheduled work (schedules, waits, retries): {move['timers_fired']} runs fired on the way")
    for schedule, occurrences in (move.get("skipped") or {}).items():
        console.print(f"  [yellow]{schedule}: {occurrences} runs skipped[/yellow] (a long move fires a bounded number of catch-up runs)")


@app.command()
def show() -> None:
    """What time the lab clock reads, and what the last move did."""
    _show(admin.call("clock"))


@app.command()
def advance(by: str = typer.Argument(..., help="how far: 30d, 12h, 90m, 2w")) -> None:
    """Move the clock forward, carrying out every lifecycle and TTL action due on the way, in order."""
    _show(_move({"action": "advance", "by": by}))


@app.command("set")
def set_clock(to: str = typer.Argument(..., help="a date or time (UTC): 2027-01-01 or 2027-01-01T12:00:00")) -> None:
    """Move the clock forward to a date (it never moves back: what expired stays expired)."""
    _show(_move({"action": "set", "to": to}))


@app.command()
def reset() -> None:
    """The clock never moves back: at real time this changes nothing, ahead of it it is refused and says why.
    `make reset` (which empties the local AWS) is what returns it to real time."""
    _show(admin.call("clock", {"action": "reset"}))
