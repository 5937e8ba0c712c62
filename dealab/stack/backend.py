"""Backends hold the control-plane state: embedded moto (default) or any AWS-compatible endpoint by URL."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
from werkzeug.test import run_wsgi_app

from dealab.stack import motohooks
from dealab.stack.journal import Journal
from dealab.stack.messages import AwsRequest, AwsResponse

# Requests that only read state are not journaled; everything else changes it (ReceiveMessage included).
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head", "Query", "Scan", "Search", "Select", "Lookup", "BatchGet", "Test")
# Operations that read despite their names, or create nothing worth replaying.
READ_ONLY_OPERATIONS = frozenset({"GetShardIterator", "GetRecords", "Decrypt", "GenerateDataKey", "Encrypt", "AssumeRole", "GetCallerIdentity"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "trailer", "upgrade"})


def is_mutating(request: AwsRequest) -> bool:
    if request.service == "s3" and not request.operation:
        return request.method not in ("GET", "HEAD", "OPTIONS")
    return not (request.operation.startswith(READ_ONLY_PREFIXES) or request.operation in READ_ONLY_OPERATIONS)


class EmbeddedMoto:
    """moto's server application, called in-process, with a journal that makes its state survive restarts.

    moto keeps everything in memory. Every mutating request is appended to a journal before it is applied,
    together with the moto time and random seed it ran under, and the journal is replayed on start, so
    generated ids (KMS key ids, ARNs, version ids) and timestamps (LastModified) come back identical.
    """

    name = "embedded moto"

    def __init__(self, journal: Journal):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        class HostCachingDispatcher(DomainDispatcherApplication):
            """moto matches a request's host against every backend's URL patterns on each request (~3 ms
            on these machines); the answer for one host never changes, so it is worked out once."""

            backend_by_host: dict = {}

            def get_backend_for_host(self, host):
                if host not in self.backend_by_host:
                    self.backend_by_host[host] = super().get_backend_for_host(host)
                return self.backend_by_host[host]

        self._app = HostCachingDispatcher(create_backend_app)
        self._lock = threading.RLock()
        self.journal = journal
        motohooks.install()
        self._configure()

    def _configure(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        # Step Functions only runs the states of an execution when asked to (what POST /moto-api/config
        # does, without building moto's admin app during start-up).
        moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})

    def _call_admin(self, path: str) -> None:
        body = b"{}"
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "4566",
            "HTTP_HOST": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
        }
        with self._lock:
            app_iter, _, _ = run_wsgi_app(self._app, environ, buffered=True)
            b"".join(app_iter)

    def replay(self, progress=None) -> int:
        """Re-applies the journal to an empty moto; returns how many requests were replayed."""
        count = 0
        for entry in self.journal.entries():
            with self._lock, motohooks.frozen_at(entry.time), motohooks.seeded(entry.seq):
                self._call(entry.environ, entry.body)
            count += 1
            if progress:
                progress(count)
        return count

    def forward(self, request: AwsRequest, environ: dict) -> AwsResponse:
        with self._lock:
            if is_mutating(request):
                entry = self.journal.append(environ, request.body, motohooks.now())
                with motohooks.frozen_at(entry.time), motohooks.seeded(entry.seq):
                    return self._call(environ, request.body)
            return self._call(environ, request.body)

    def _call(self, environ: dict, body: bytes) -> AwsResponse:
        environ = dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        app_iter, status, headers = run_wsgi_app(self._app, environ, buffered=True)
        payload = b"".join(app_iter)
        motohooks.patch_new_modules()
        return AwsResponse(int(status.split()[0]), list(headers.items()), payload)

    def reset(self) -> None:
        with self._lock:
            self._call_admin("/moto-api/reset")
            self.journal.clear()
            self._configure()


class BackendUnavailable(Exception):
    """The backend cannot do what was asked; the message says why and what to do instead."""


class RemoteBackend:
    """Any AWS-compatible endpoint (LocalStack, ministack, real AWS) by URL; it keeps its own state."""

    def __init__(self, url: str):
        self.name = url
        self.url = url.rstrip("/")
        self._session = requests.Session()

    def replay(self, progress=None) -> int:
        return 0

    def forward(self, request: AwsRequest, environ: dict) -> AwsResponse:
        headers = {key: value for key, value in request.headers.items() if key.lower() not in HOP_BY_HOP}
        headers["Host"] = urlsplit(self.url).netloc
        url = self.url + request.path + (f"?{request.query_string}" if request.query_string else "")
        try:
            upstream = self._session.request(
                request.method, url, headers=headers, data=request.body, stream=True, allow_redirects=False, timeout=(5, 300)
            )
        except requests.RequestException as error:
            raise BackendUnavailable(f"the backend at {self.url} did not answer: {type(error).__name__}") from None
        response_headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        return AwsResponse(upstream.status_code, response_headers, _stream(upstream))

    def reset(self) -> None:
        raise BackendUnavailable(
            f"the backend at {self.url} keeps its own state; reset it there (for LocalStack: restart its container)"
        )


def _stream(upstream: requests.Response) -> Iterator[bytes]:
    try:
        yield from upstream.raw.stream(64 * 1024, decode_content=False)
    finally:
        upstream.close()
