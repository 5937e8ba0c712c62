"""The running stack's admin endpoints (/_dealab/<path>), as the CLI's commands call them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import NoReturn

import typer
from rich.console import Console

from dealab.config import settings
from dealab.wire.admintoken import admin_headers

console = Console()


class AdminError(Exception):
    """The stack refused an admin request or could not be reached; the message says which, in one line."""


def request(path: str, payload: dict | None = None, timeout: float = 60) -> dict:
    """GET (or POST `payload` to) /_dealab/<path> on the running stack, with the state folder's admin token."""
    current = settings()
    http_request = urllib.request.Request(
        f"{current.endpoint_url}/_dealab/{path}",
        data=None if payload is None else json.dumps(payload).encode(),
        method="GET" if payload is None else "POST",
        headers={"Content-Type": "application/json", **admin_headers(current.state_dir)},
    )
    try:
        with urllib.request.urlopen(http_request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise AdminError(json.loads(error.read() or b"{}").get("message", str(error))) from None
    except (urllib.error.URLError, OSError):
        raise AdminError("the local AWS is not running; start it with `make up` (or `dealab up`)") from None


def fail(error: AdminError) -> NoReturn:
    console.print(f"[red]error[/red] {error}")
    raise typer.Exit(1)


def call(path: str, payload: dict | None = None, timeout: float = 60) -> dict:
    """`request`, exiting with the one-line reason on failure."""
    try:
        return request(path, payload, timeout)
    except AdminError as error:
        fail(error)
