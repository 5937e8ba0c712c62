"""Engines own the data-plane behaviours labs are graded on. Each is one package with a `handle(request)`.

An engine declares the (service, operation) pairs it takes; the gateway hands it those requests and it
either answers them itself or passes them on with `request.send_on()`. Engines reach the backend and each
other only through AWS APIs (`context.client(...)`), like any client, so they work in front of any backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.session
from botocore.config import Config

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY
from dealab.stack.loopback import ENGINE_HEADER_NAME, Loopback
from dealab.stack.messages import AwsRequest, AwsResponse

# Gateway order: an engine earlier in the list sees a request before the ones after it.
ENGINE_CLASSES = (
    "dealab.engines.faults:FaultsEngine",  # first: a fault must strike before any engine acts
    "dealab.engines.validation:ValidationEngine",  # refuses what AWS refuses before any engine acts on it
    "dealab.engines.s3access:S3AccessEngine",
    "dealab.engines.clock:ClockEngine",
    "dealab.engines.athena:AthenaEngine",
    "dealab.engines.kinesis:KinesisEngine",
    "dealab.engines.firehose:FirehoseEngine",
    "dealab.engines.glue:GlueEngine",
)

ANY_OPERATION = "*"
# Marks an engine's own calls, so an engine can let its own lookups through unexamined.
# Trusted only on calls made inside the stack's process (the loopback marks those in the WSGI environ); the
# gateway drops it from requests that come over the network, so a client cannot imitate an engine.
ENGINE_HEADER = ENGINE_HEADER_NAME


@dataclass(frozen=True)
class EngineContext:
    endpoint_url: str
    region: str
    state_dir: Path
    # the gateway of this process, once built: engines' calls reach it without a socket
    loopback: Loopback = field(default_factory=Loopback, compare=False, repr=False)

    def client(self, service: str, engine: str, region: str | None = None, session: botocore.session.Session | None = None, **config):
        """A client at the gateway whose calls carry the engine's mark; `session` brings custom parsers, and
        `config` adds botocore Config options."""
        factory = boto3.session.Session(botocore_session=session) if session else boto3
        client = factory.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=region or self.region,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
            config=Config(retries={"max_attempts": 2}, **config),
        )

        def mark(request, **_):
            request.headers[ENGINE_HEADER] = engine

        client.meta.events.register("before-sign", mark)
        client.meta.events.register("before-send", self.loopback.send)
        return client


class Engine:
    name = ""
    # (service, operation) pairs; ANY_OPERATION as the operation takes every call to that service, and
    # (ANY_OPERATION, ANY_OPERATION) every call at all.
    routes: frozenset[tuple[str, str]] = frozenset()

    def __init__(self, context: EngineContext):
        self.context = context

    def handle(self, request: AwsRequest) -> AwsResponse:
        return request.send_on()

    def admin_routes(self) -> dict[str, Callable[[AwsRequest], AwsResponse]]:
        """Extra admin endpoints under /_dealab/ (path without the prefix → handler)."""
        return {}

    def reset(self) -> None:
        """Forgets the engine's own state; called by `dealab reset` after the backend is emptied."""

    def close(self) -> None:
        """Releases processes and files; called when the stack stops."""


def engine_classes(names: tuple[str, ...] = ENGINE_CLASSES) -> list[type[Engine]]:
    classes = []
    for spec in names:
        module_name, _, class_name = spec.partition(":")
        classes.append(getattr(importlib.import_module(module_name), class_name))
    return classes


def load_engines(context: EngineContext, names: tuple[str, ...] = ENGINE_CLASSES) -> list[Engine]:
    return [engine(context) for engine in engine_classes(names)]
