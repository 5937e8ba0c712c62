"""The gateway: names each request's service and operation, and routes it through engines to the backend."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from urllib.parse import quote

from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY, should_preserve_original_header_name
from werkzeug.datastructures import Headers
from werkzeug.wsgi import get_input_stream

from dealab.engines import StackEngines
from dealab.wire.engine import ENGINE_HEADER, Engine
from dealab.stack.door import Door
from dealab.wire.loopback import ENGINE_ENVIRON_KEY
from dealab.stack.backend import BackendUnavailable
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire import s3changes
from dealab.wire.operations import identify, is_mutating

log = logging.getLogger("dealab.gateway")

ADMIN_PREFIX = "/_dealab/"
SECURE_TRANSPORT_KEY = "dealab.secure_transport"
_REQUEST_FIELDS_IN_ENVIRON = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH")


class Gateway:
    def __init__(self, backend, engines: list[Engine] | StackEngines, info: dict | None = None, door: Door | None = None):
        """`engines`: a stack's StackEngines, built as requests first need them, or a list built already (tests, benches)."""
        self.backend = backend
        self.stack_engines = engines if isinstance(engines, StackEngines) else None
        if self.stack_engines is None:
            self.engines = engines
        # every request from the network passes it; None only for gateways built inside tests
        self.door = door
        self.started = time.time()
        self.info = info or {}
        self.own_admin: dict[str, Callable[[AwsRequest], AwsResponse]] = {
            "health": self._health,
            "reset": self._reset,
            "snapshot": self._snapshot,
        }

    @property
    def engines(self) -> list[Engine]:
        """The engines built so far, in gateway order."""
        return self.stack_engines.in_order if self.stack_engines is not None else self._engines

    @engines.setter
    def engines(self, engines: list[Engine]) -> None:
        self._engines = engines

    def _engines_for(self, request: AwsRequest) -> list[Engine]:
        return self.stack_engines.for_service(request.service) if self.stack_engines is not None else self.engines

    def __call__(self, environ: dict, start_response):
        from_engine = ENGINE_ENVIRON_KEY in environ  # set by the loopback only: no HTTP request can carry it
        request = request_from_environ(environ)
        verdict = None
        try:
            if self.door is not None and not from_engine:
                verdict = self.door.admit(environ, request)  # sees the headers as signed, before any is dropped
            if not from_engine:
                del request.headers[ENGINE_HEADER]  # a client cannot pass itself off as an engine
            if verdict is not None and self.door.verify_signatures:
                request.caller_key = verdict.credential.access_key if verdict.credential else ""
                request.caller_arn = verdict.credential.principal_arn if verdict.credential else ""
            if verdict is not None and verdict.answer is not None:
                response = verdict.answer
            elif request.path.startswith(ADMIN_PREFIX):
                response = self._admin_reported(request)
            else:
                response = self.dispatch(request, environ)
        except BackendUnavailable as error:
            response = AwsResponse.json_error("ServiceUnavailable", str(error), 503)
        except Exception as error:  # an engine bug must reach the client as an AWS error, not a dropped socket
            log.exception("%s.%s failed", request.service, request.operation)
            response = AwsResponse.json_error("InternalFailure", f"dealab {request.service} {request.operation}: {error}", 500)
        if verdict is not None:
            response = self.door.finish(response, verdict)
        start_response(f"{response.status} {_reason(response.status)}", response.headers)
        return [response.body] if isinstance(response.body, bytes) else response.body

    def dispatch(self, request: AwsRequest, environ: dict) -> AwsResponse:
        """Runs the request through every engine that takes it, in order, and then the backend. One that may change
        state is reported to s3changes before and after (what keeps S3 listings must know)."""
        if not is_mutating(request):
            return self._through_chain(request, environ)
        s3changes.changing(request)
        try:
            return self._through_chain(request, environ)
        finally:
            s3changes.changing(request)

    def _through_chain(self, request: AwsRequest, environ: dict) -> AwsResponse:
        chain = [engine for engine in self._engines_for(request) if engine.method_for(request)]

        def step(position: int) -> Callable[[AwsRequest], AwsResponse]:
            def forward(current: AwsRequest) -> AwsResponse:
                current.forward = step(position + 1)
                if position < len(chain):
                    return chain[position].handle(current)
                return self.backend.forward(current, _environ_for(current, environ))

            return forward

        return step(0)(request)

    def _admin_reported(self, request: AwsRequest) -> AwsResponse:
        """An admin call; one that may change state (a clock move, a reset) is reported to s3changes around it."""
        if request.method in ("GET", "HEAD"):
            return self._admin(request)
        s3changes.everything_changing()
        try:
            return self._admin(request)
        finally:
            s3changes.everything_changing()

    def _admin(self, request: AwsRequest) -> AwsResponse:
        endpoint = request.path[len(ADMIN_PREFIX):].strip("/")
        engines = self.stack_engines.for_admin(endpoint) if self.stack_engines is not None else self.engines
        routes = {**self.own_admin, **{path: handler for engine in engines for path, handler in engine.admin_routes().items()}}
        handler = routes.get(endpoint)
        if handler is None:
            return AwsResponse.json_error("NotFound", f"no admin endpoint {request.path}; known: {sorted(routes)}", 404)
        return handler(request)

    def _health(self, request: AwsRequest) -> AwsResponse:
        return AwsResponse.json(
            {
                "status": "ok",
                "backend": self.backend.name,
                "pid": os.getpid(),
                "uptime_seconds": round(time.time() - self.started, 1),
                "engines": [engine.name for engine in self.engines],
                **self.info,
            }
        )

    def _snapshot(self, request: AwsRequest) -> AwsResponse:
        if request.method != "POST":
            return AwsResponse.json_error("MethodNotAllowed", "snapshot takes POST", 405)
        return AwsResponse.json(self.backend.snapshot())

    def _reset(self, request: AwsRequest) -> AwsResponse:
        if request.method != "POST":
            return AwsResponse.json_error("MethodNotAllowed", "reset takes POST", 405)
        self.backend.reset()
        for engine in self.engines:
            engine.reset()
        return AwsResponse.json({"reset": True})


def request_from_environ(environ: dict) -> AwsRequest:
    """The request a WSGI environ carries, its service and operation named (admin paths have none)."""
    # WSGI cannot tell x-amz-meta-row_count from x-amz-meta-row-count; moto's request handler (and the loopback)
    # keep the original spelling of metadata names, which a signature covers and S3 stores
    preserved = environ.get(PRESERVED_HEADER_NAMES_ENVIRON_KEY) or {}
    headers = Headers([(preserved.get(key) or key[5:].replace("_", "-").title(), value)
                       for key, value in environ.items() if key.startswith("HTTP_")])
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    request = AwsRequest(
        method=environ["REQUEST_METHOD"],
        path=environ.get("PATH_INFO", "/"),
        query_string=environ.get("QUERY_STRING", ""),
        headers=headers,
        body=get_input_stream(environ).read(),
        secure_transport=environ.get(SECURE_TRANSPORT_KEY, True),
        source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
    )
    if not request.path.startswith(ADMIN_PREFIX):
        operation = identify(request.method, request.path, request.query, headers, request.form)
        request.service, request.operation, request.region = operation.service, operation.name, operation.region
    return request


def _environ_for(request: AwsRequest, original: dict) -> dict:
    """A WSGI environ describing `request` as an engine may have changed it, on top of the original's server keys."""
    environ = {key: value for key, value in original.items() if not key.startswith("HTTP_") and key not in _REQUEST_FIELDS_IN_ENVIRON}
    environ.update(REQUEST_METHOD=request.method, PATH_INFO=request.path, QUERY_STRING=request.query_string)
    if request.path != original.get("PATH_INFO"):  # an engine moved it (an S3 access point's request onto its bucket)
        environ["RAW_URI"] = environ["REQUEST_URI"] = quote(request.path) + (f"?{request.query_string}" if request.query_string else "")
    preserved = environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = {}
    for key, value in request.headers.items():
        if key.lower() == "content-type":
            environ["CONTENT_TYPE"] = value
        elif key.lower() != "content-length":
            environ_key = "HTTP_" + key.upper().replace("-", "_")
            environ[environ_key] = value
            if should_preserve_original_header_name(key):
                preserved[environ_key] = key
    environ["CONTENT_LENGTH"] = str(len(request.body))
    return environ


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
