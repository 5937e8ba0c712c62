"""The check model: a check is one small unit with metadata and a function that passes or says what differs.

    @check("L01-02", "Raw bucket keeps every version", points=1, task="2.3", docs="https://...",
           hints=("the concept, pointing at the docs", "the API that does it", "the call itself"))
    def raw_versioning(ctx: LabContext) -> str:
        raise Fail("bucket 'dea-lake-raw': versioning is Suspended, expected Enabled")   # FAIL
        return "bucket 'dea-lake-raw' has versioning Enabled"                            # PASS
"""

from __future__ import annotations

import datetime
import json
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import boto3
from botocore.config import Config

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY, Settings
from dealab.labs import Lab, code_dir
from dealab.wire.admintoken import admin_headers

DEFAULT_TIMEOUT_SECONDS = 60


class Fail(Exception):
    """The learner's resources differ from what the lab asked; the message names the resource and the difference."""


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    points: int
    task: str
    # the hint ladder, gentlest first: the concept (with `docs`), then the API to use, then the call itself
    hints: tuple[str, ...]
    docs: str
    timeout: int
    function: Callable[[LabContext], str]

    def __call__(self, ctx: LabContext) -> str:
        return self.function(ctx)


def check(id: str, title: str, *, points: int, task: str, hints: tuple[str, ...], docs: str = "", timeout: int = DEFAULT_TIMEOUT_SECONDS):
    def register(function: Callable[[LabContext], str]) -> Check:
        return Check(id, title, points, task, tuple(hints), docs, timeout, function)

    return register


def checks_of(module) -> list[Check]:
    return sorted((value for value in vars(module).values() if isinstance(value, Check)), key=lambda c: c.id)


class LabContext:
    """What a check may use: AWS clients at the stack, the learner's seed and the data it implies."""

    def __init__(self, lab: Lab, settings: Settings, seed: str):
        self.lab = lab
        self.settings = settings
        self.seed = seed
        self._clients: dict[tuple[str, str], object] = {}

    @property
    def data_dir(self) -> Path:
        return self.lab.data_dir

    @property
    def code_dir(self) -> Path:
        """The learner's code folder that last ran (`make run-N`: starter; `make solve-N`: solution)."""
        return code_dir(self.lab, self.settings)

    def client(self, service: str, region: str | None = None):
        return self._client(service, self.settings.endpoint_url, region)

    def insecure_client(self, service: str, region: str | None = None):
        """A client for the plain-HTTP twin port, where aws:SecureTransport is false."""
        return self._client(service, self.settings.insecure_endpoint_url, region)

    def _client(self, service: str, endpoint: str, region: str | None):
        key = (service, endpoint, region or self.settings.region)
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service,
                endpoint_url=endpoint,
                region_name=region or self.settings.region,
                aws_access_key_id=TEST_ACCESS_KEY,
                aws_secret_access_key=TEST_SECRET_KEY,
                config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=60),
            )
        return self._clients[key]

    def admin(self, path: str, payload: dict | None = None) -> dict:
        """GET (or POST with a payload) one of the stack's documented admin endpoints, /_dealab/<path>."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.settings.endpoint_url}/_dealab/{path}", data=data, method="GET" if data is None else "POST",
            headers={"Content-Type": "application/json", **admin_headers(self.settings.state_dir)},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"{}")

    def lab_started_at(self) -> datetime.datetime | None:
        """The lab time at which `make lab-N` started this lab (the clock never moves back, and other labs may
        have moved it: measure from here, not from real time), or None for a lab never started."""
        started = (self.admin("clock").get("labs") or {}).get(str(self.lab.number))
        return datetime.datetime.fromisoformat(started["started"]) if started else None

    @cached_property
    def dataset(self) -> dict:
        """The generator's summary for this learner's seed, recomputed in a scratch folder."""
        generator = self.lab.generator()
        if generator is None:
            return {}
        with tempfile.TemporaryDirectory(prefix="dealab-expected-") as scratch:
            return generator(self.seed, Path(scratch), **self.lab.dataset.get("params", {}))
