"""`dealab logs tail <group> [--follow] [--since 1h] [--filter-pattern ...]`: a log group's events, like
`aws logs tail`, with levels coloured. Times are lab time: `--since 1h` is the lab clock's last hour."""

from __future__ import annotations

import datetime
import re
import time

import boto3
import typer
from rich.console import Console
from rich.text import Text

from dealab.commands import admin
from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY, settings

app = typer.Typer(help="Read CloudWatch Logs of the local AWS: tail a log group.", no_args_is_help=True)
console = Console(highlight=False)

SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# the first of these words in an event (or its JSON "level") colours the line
LEVEL_STYLES = {"FATAL": "bold red", "CRITICAL": "bold red", "ERROR": "red", "WARN": "yellow", "WARNING": "yellow",
                "INFO": "green", "DEBUG": "dim", "TRACE": "dim"}
_LEVEL = re.compile(r"\b(" + "|".join(LEVEL_STYLES) + r")\b", re.I)
FOLLOW_POLL_SECONDS = 1.0


def _since(text: str) -> datetime.timedelta:
    found = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if not found:
        raise typer.BadParameter(f"{text!r}: give a number and a unit, e.g. 30s, 10m, 1h, 2d, 1w")
    return datetime.timedelta(seconds=int(found.group(1)) * SINCE_UNITS[found.group(2)])


def _lab_now() -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(admin.call("clock")["now"])
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _line(event: dict) -> Text:
    stamp = datetime.datetime.fromtimestamp(event["timestamp"] / 1000, datetime.timezone.utc).isoformat(timespec="milliseconds")
    level = _LEVEL.search(event["message"])
    line = Text(f"{stamp.replace('+00:00', 'Z')} ", style="cyan")
    line.append(f"{event['logStreamName']} ", style="magenta")
    line.append(event["message"].rstrip("\n"), style=LEVEL_STYLES[level.group(1).upper()] if level else "")
    return line


@app.command()
def tail(
    group: str = typer.Argument(..., help="the log group's name"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new events until Ctrl-C"),
    since: str = typer.Option("10m", help="how far back to start: 30s, 10m, 1h, 2d, 1w (lab time)"),
    filter_pattern: str = typer.Option("", "--filter-pattern", help="a CloudWatch Logs filter pattern, e.g. ERROR or '{ $.level = \"ERROR\" }'"),
) -> None:
    """Print a log group's events from `--since` ago, oldest first; `--follow` waits for more."""
    current = settings()
    logs = boto3.client("logs", endpoint_url=current.endpoint_url, region_name=current.region,
                        aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)
    start = int((_lab_now() - _since(since)).timestamp() * 1000)
    seen: set[str] = set()
    while True:
        arguments = {"logGroupName": group, "startTime": start, **({"filterPattern": filter_pattern} if filter_pattern else {})}
        try:
            for page in logs.get_paginator("filter_log_events").paginate(**arguments):
                for event in page["events"]:
                    if event["eventId"] not in seen:
                        seen.add(event["eventId"])
                        console.print(_line(event))
                        start = max(start, event["timestamp"])
        except logs.exceptions.ResourceNotFoundException:
            admin.fail(admin.AdminError(f"log group {group} does not exist"))
        if not follow:
            return
        time.sleep(FOLLOW_POLL_SECONDS)
