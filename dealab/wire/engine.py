"""The Engine base: what every engine is, how requests reach its methods, and how it calls AWS.

An engine declares the (service, operation) pairs it takes as a table from pair to method name; the gateway
hands it those requests in order and the base class calls the method, which either answers the request itself
or passes it on with `request.send_on()`. Engines reach the backend and each other only through AWS APIs
(`context.client(...)`), like any client, so they work in front of any backend.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.session
from botocore.config import Config

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY
from dealab.wire.loopback import ENGINE_HEADER_NAME, Loopback
from dealab.wire.messages import AwsRequest, AwsResponse

ANY_OPERATION = "*"
# Names the engine that made a call. Trusted only on calls made inside the stack's process (the loopback marks
# those in the WSGI environ); the gateway drops it from requests that come over the network, so a client
# cannot imitate an engine.
ENGINE_HEADER = ENGINE_HEADER_NAME
# boto3's default session builds clients from shared, lazily filled registries (credential provider, endpoint
# resolver); two engines building clients on two threads at once can see one half-filled and fail.
_CLIENT_FACTORY_LOCK = threading.Lock()

Handler = Callable[[AwsRequest], AwsResponse]


@dataclass(frozen=True)
class EngineContext:
    endpoint_url: str
    region: str
    state_dir: Path
    # A Spark standalone master (spark://host:port) that Glue jobs are submitted to; None: the local worker.
    spark_master: str | None = None
    # the gateway of this process, once built: engines' calls reach it without a socket
    loopback: Loopback = field(default_factory=Loopback, compare=False, repr=False)

    def client(self, service: str, engine: str, region: str | None = None, session: botocore.session.Session | None = None, **config):
        """A client at the gateway whose calls carry the engine's mark; `session` brings custom parsers, and
        `config` adds botocore Config options."""
        client = self._client(service, region, session, config)

        def mark(request, **_):
            request.headers[ENGINE_HEADER] = engine

        client.meta.events.register("before-sign", mark)
        return client

    def caller_client(self, service: str, region: str | None = None, **config):
        """A client whose calls carry no engine mark, so every engine treats them as the learner's own: for work
        AWS does as the learner's pipeline (a state machine's task calls), which faults strike, policies bind
        and CloudTrail records."""
        return self._client(service, region, None, config)

    def session_client(self, service: str, credentials, region: str | None = None, **config):
        """A client whose calls carry no engine mark and are signed with `credentials` (botocore credentials, read
        at every request): an execution role's session (dealab.wire.rolesessions), which the gateway judges as the
        role's call."""
        client = self._client(service, region, None, config)
        client._request_signer._credentials = credentials  # botocore reads them at each signing
        return client

    def _client(self, service: str, region: str | None, session: botocore.session.Session | None, config: dict):
        factory = boto3.session.Session(botocore_session=session) if session else boto3
        with _CLIENT_FACTORY_LOCK:
            client = factory.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=region or self.region,
                aws_access_key_id=TEST_ACCESS_KEY,
                aws_secret_access_key=TEST_SECRET_KEY,
                config=Config(**{"retries": {"max_attempts": 2}, **config}),
            )
        client.meta.events.register("before-send", self.loopback.send)
        return client


class Engine:
    name = ""
    # (service, operation) → the name of the method that handles it. ANY_OPERATION as the operation takes
    # every call to that service, and (ANY_OPERATION, ANY_OPERATION) every call at all.
    operations: Mapping[tuple[str, str], str] = {}
    # An engine's own calls always pass through it unexamined. With this set, every engine's calls do: for
    # engines whose rules bind learners' calls only (faults, bucket policies).
    passes_engine_calls = False

    def __init__(self, context: EngineContext):
        self.context = context
        self._own_clients: dict[tuple[str, str], object] = {}
        self._own_clients_lock = threading.Lock()

    def own_client(self, service: str, region: str | None = None):
        """This engine's client for `service` in `region` (default the stack's), made once: building one costs
        ~0.1 s, and boto3's default session is not safe for making clients from several threads at once."""
        key = (service, region or self.context.region)
        with self._own_clients_lock:
            if key not in self._own_clients:
                self._own_clients[key] = self.context.client(service, engine=self.name, region=key[1])
            return self._own_clients[key]

    def method_for(self, request: AwsRequest) -> str | None:
        """The name of the method that takes `request`, or None when this engine does not take it."""
        operations = self.operations
        return (
            operations.get((request.service, request.operation))
            or operations.get((request.service, ANY_OPERATION))
            or operations.get((ANY_OPERATION, ANY_OPERATION))
        )

    def handle(self, request: AwsRequest) -> AwsResponse:
        caller = request.headers.get(ENGINE_HEADER)
        if caller and (caller == self.name or self.passes_engine_calls):
            return self.pass_on(request)
        return self.answer(getattr(self, self.method_for(request)), request)

    def pass_on(self, request: AwsRequest) -> AwsResponse:
        """Sends a request on unexamined (an engine's call); an engine that must see their answers overrides it."""
        return request.send_on()

    def answer(self, handler: Handler, request: AwsRequest) -> AwsResponse:
        """Runs one operation's method: where an engine turns its own exceptions into AWS errors."""
        return handler(request)

    def admin_routes(self) -> dict[str, Handler]:
        """Extra admin endpoints under /_dealab/ (path without the prefix → handler)."""
        return {}

    def reset(self) -> None:
        """Forgets the engine's own state; called by `dealab reset` after the backend is emptied."""

    def close(self) -> None:
        """Releases processes and files; called when the stack stops."""
