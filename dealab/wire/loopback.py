"""Engines' AWS calls to the gateway in their own process, handed to it directly rather than over a socket.

An engine reaches the backend and other engines through AWS APIs, like any client. Over HTTP each call
costs a new connection and a server thread (werkzeug's server closes every connection): about half the
time of a small call, and a clock move that deletes 100,000 TTL items makes thousands of calls. A botocore
`before-send` hook gives the signed request to the gateway's WSGI entry instead, so it takes the same path
through the gateway (engines, journal, backend) and the client gets the same answer back. Until a gateway
is attached, and in other processes (a Glue worker), calls go over HTTP.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from botocore.awsrequest import AWSResponse

# The WSGI environ key that marks an engine's own call: set here, in the stack's process, and by nothing a
# request from the network can send (HTTP headers become HTTP_* keys). The gateway lets such calls past the
# door and keeps their engine header; from the network it drops that header.
ENGINE_ENVIRON_KEY = "dealab.engine"
ENGINE_HEADER_NAME = "X-Dealab-Engine"


def _wsgi_string(text: str) -> str:
    # PEP 3333: environ strings carry the request's bytes as latin-1, as werkzeug's server builds them
    return text.encode("utf-8").decode("latin-1")


def _body_bytes(body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    return body.read()


class Loopback:
    def __init__(self):
        self._app: Callable | None = None

    def attach(self, app: Callable) -> None:
        """`app`: the WSGI application serving the endpoint the engines' clients were given."""
        self._app = app

    def send(self, request, **_) -> AWSResponse | None:
        """botocore's before-send hook: the gateway's answer, or None to let botocore use the network."""
        if self._app is None:
            return None
        # moto's raw body for botocore responses and its header spelling; imported here, as only the stack's
        # own process (where moto is loaded anyway) gets this far
        from moto.core.botocore_stubber import MockRawResponse
        from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY, environ_key_for_header, should_preserve_original_header_name

        url = urlsplit(request.url)
        target = url.path + (f"?{url.query}" if url.query else "")
        body = _body_bytes(request.body)
        environ = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": _wsgi_string(unquote(url.path) or "/"),
            "QUERY_STRING": _wsgi_string(url.query),
            "REQUEST_URI": _wsgi_string(target),
            "RAW_URI": _wsgi_string(target),
            "SERVER_NAME": url.hostname or "127.0.0.1",
            "SERVER_PORT": str(url.port or 80),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": url.netloc,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": url.scheme or "http",
            "wsgi.errors": io.StringIO(),
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        preserved_names: dict[str, str] = {}  # as moto's request handler keeps them: x-amz-meta-row_count
        for name, value in request.headers.items():
            key = environ_key_for_header(name)
            if key != "CONTENT_LENGTH":
                environ[key] = value.decode("latin-1") if isinstance(value, bytes) else value
            if should_preserve_original_header_name(name):
                preserved_names.setdefault(key, name)
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved_names
        engine = request.headers.get(ENGINE_HEADER_NAME)
        if engine:
            environ[ENGINE_ENVIRON_KEY] = engine.decode() if isinstance(engine, bytes) else engine
        answer: dict = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
            answer["status"], answer["headers"] = int(status.split()[0]), headers

        chunks = self._app(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        headers: dict[str, str] = {}
        for name, value in answer["headers"]:  # repeated headers fold into one, as an HTTP client reads them
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return AWSResponse(request.url, answer["status"], headers, MockRawResponse(payload))
