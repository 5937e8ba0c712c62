"""Backends hold the control-plane state: embedded moto (default) or any AWS-compatible endpoint by URL."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import requests
from werkzeug.test import run_wsgi_app

from dealab.stack import motohooks, snapshot
from dealab.wire import labtime
from dealab.stack.journal import Journal
from dealab.wire.store import ReadReport
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.operations import is_mutating

log = logging.getLogger("dealab.backend")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "trailer", "upgrade"})
# An answer's body is passed on byte for byte, so its Content-Length stays true (and a HEAD's is the object's size,
# which S3 clients read as the file length); a request's body is sent again, with a length of its own.
RESPONSE_HOP_BY_HOP = HOP_BY_HOP - {"content-length"}


# A snapshot is taken in the background once the journal's tail would take this long to replay (or passes
# either size), and when the stack has been idle a while with anything not yet in a snapshot, so a start
# after `kill -9` replays at most about this much.
SNAPSHOT_AFTER_REPLAY_SECONDS = 8.0
SNAPSHOT_AFTER_ENTRIES = 5_000
SNAPSHOT_AFTER_BYTES = 256 * 1024 * 1024
IDLE_SNAPSHOT_SECONDS = 30
IDLE_CHECK_SECONDS = 5

# progress(stage, done, total or None) while a start restores state
Progress = Callable[[str, int, "int | None"], None]


def _applied(response: AwsResponse) -> bool:
    """Whether the backend did what was asked: a 2xx answer that is not one of S3's errors inside a 200
    (CopyObject, CompleteMultipartUpload and UploadPartCopy can fail after their 200 has been sent)."""
    if not 200 <= response.status < 300:
        return False
    head = response.body[:512] if isinstance(response.body, bytes) else b""
    return b"<Error>" not in head


def _error_text(response: AwsResponse) -> str:
    body = response.body if isinstance(response.body, bytes) else b""
    return body[:200].decode("utf-8", "replace").replace("\n", " ")


class EmbeddedMoto:
    """moto's server application, called in-process, with snapshots and a journal that make its state
    survive restarts.

    moto keeps everything in memory. Every request that changed state is journaled once moto has answered
    it (before the answer leaves), with the moto time, random seed and unseedable draws it ran under. A
    start loads the latest snapshot and replays only the journal after it, so generated ids (KMS keys,
    upload ids, ARNs, version ids) and timestamps come back identical, and restart time does not grow with
    history.
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
        self._snapshot_lock = threading.Lock()
        self._snapshot_soon = threading.Event()
        self._last_request = time.monotonic()
        self._tail_seconds = 0.0  # time spent applying the requests of the journal's tail
        self.journal = journal
        self.restore_report: dict = {}
        motohooks.install()
        # a wait inside moto (an SQS long poll) lets other requests through instead of blocking them all
        motohooks.set_request_lock(self._lock)
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

    def restore(self, progress: Progress | None = None) -> dict:
        """Loads the latest snapshot and replays the journal written since (all of it when there is no usable
        snapshot). An entry that fails is logged and skipped; nothing here stops a start. Returns the report
        shown by `dealab status`."""
        report = {"snapshot_seq": 0, "replayed": 0, "skipped": [], "damaged_lines": 0, "snapshot_refused": None}
        started = time.monotonic()
        if progress:
            progress("loading snapshot", 0, None)
        try:
            loaded = snapshot.load(self.journal.snapshot_path, self.journal.blobs)
        except snapshot.SnapshotRefused as error:
            log.warning("%s; replaying the whole journal instead", error)
            report["snapshot_refused"] = str(error)
            loaded = None
        if loaded is not None:
            with self._lock:
                snapshot.install(loaded)
                self._configure()
            report["snapshot_seq"] = self.journal.last_seq = loaded.seq
        after = report["snapshot_seq"]
        total = self.journal.count_after(after)
        reading = ReadReport()
        for entry in self.journal.entries(after, reading):
            with self._lock, labtime.frozen_at(entry.time), motohooks.seeded(entry.seq), motohooks.replaying(entry.tape):
                try:
                    response = self._call(entry.environ, entry.body)
                    failure = None if _applied(response) else f"answered {response.status}: {_error_text(response)}"
                except Exception as error:  # a replayed request that breaks moto must not stop the start
                    failure = f"{type(error).__name__}: {error}"
            if failure:
                operation = entry.environ.get("HTTP_X_AMZ_TARGET") or f"{entry.environ.get('REQUEST_METHOD')} {entry.environ.get('PATH_INFO')}"
                log.warning("saved request %d (%s) did not apply again and was skipped: %s", entry.seq, operation, failure)
                report["skipped"].append({"seq": entry.seq, "request": operation, "reason": failure[:300]})
            report["replayed"] += 1
            if progress and report["replayed"] % 200 == 0:
                progress("replaying saved requests", report["replayed"], total)
        report["damaged_lines"] = len(reading.damaged_lines) + int(reading.torn_tail)
        report["seconds"] = round(time.monotonic() - started, 2)
        self.journal.tail_entries = report["replayed"]  # what the next snapshot will cover
        self.restore_report = report
        self._tail_seconds = report["seconds"]
        return report

    def forward(self, request: AwsRequest, environ: dict) -> AwsResponse:
        """Applies a request; one that changed state (judged by the answer) is journaled before the answer
        leaves, with the time, seed and draws it ran under."""
        with self._lock:
            self._last_request = time.monotonic()
            if not is_mutating(request):
                return self._call(environ, request.body)
            seq, moment, started = self.journal.next_seq(), labtime.now(), time.perf_counter()
            with labtime.frozen_at(moment), motohooks.seeded(seq), motohooks.recording() as tape:
                response = self._call(environ, request.body)
            if _applied(response):
                if motohooks.lock_was_released():  # a long poll let others in: their entries come first
                    seq = self.journal.next_seq()
                self.journal.append(seq, environ, request.body, moment, tape)
                # replaying an entry costs about what applying it did: the tail's cost bounds the next start
                self._tail_seconds += time.perf_counter() - started
                if (
                    self._tail_seconds >= SNAPSHOT_AFTER_REPLAY_SECONDS
                    or self.journal.tail_entries >= SNAPSHOT_AFTER_ENTRIES
                    or self.journal.tail_bytes >= SNAPSHOT_AFTER_BYTES
                ):
                    self._snapshot_soon.set()
            return response

    def snapshot(self) -> dict:
        """Writes a snapshot of everything applied so far, and starts a new journal tail after it."""
        with self._snapshot_lock:
            started = time.monotonic()
            with self._lock:
                seq = self.journal.last_seq
                data = snapshot.capture(self.journal.blobs, seq)
                self.journal.rotate()
                self._tail_seconds = 0.0
                held = time.monotonic() - started
            snapshot.save(self.journal.snapshot_path, data)
            self._snapshot_soon.clear()
            document = {"seq": seq, "bytes": len(data), "seconds": round(time.monotonic() - started, 3), "lock_seconds": round(held, 3)}
            log.info("snapshot at request %d: %d bytes in %.2fs (backend held %.2fs)", seq, len(data), document["seconds"], held)
            return document

    def keep_snapshots(self, stop: threading.Event) -> None:
        """Runs in a thread of its own: a snapshot when the tail has grown past its size, or once the stack has
        been idle a while with anything unsnapshotted."""
        while not stop.is_set():
            due = self._snapshot_soon.wait(IDLE_CHECK_SECONDS)
            idle = time.monotonic() - self._last_request >= IDLE_SNAPSHOT_SECONDS
            if stop.is_set():
                return
            if due or (idle and self.journal.tail_entries):
                try:
                    self.snapshot()
                except Exception:  # the journal still has everything: a failed snapshot loses nothing
                    log.exception("snapshot failed; the journal keeps every request")
                    self._snapshot_soon.clear()

    def close(self) -> None:
        """Takes a last snapshot (so the next start loads instead of replaying) and closes the journal."""
        if self.journal.tail_entries:
            try:
                self.snapshot()
            except Exception:
                log.exception("snapshot at stop failed; the next start replays the journal instead")
        self.journal.close()

    def _call(self, environ: dict, body: bytes) -> AwsResponse:
        environ = dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        app_iter, status, headers = run_wsgi_app(self._app, environ, buffered=True)
        payload = b"".join(app_iter)
        motohooks.patch_new_modules()
        return AwsResponse(int(status.split()[0]), list(headers.items()), payload)

    def reset(self) -> None:
        with self._lock, self._snapshot_lock:
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

    def restore(self, progress: Progress | None = None) -> dict:
        return {}

    def snapshot(self) -> dict:
        raise BackendUnavailable(f"the backend at {self.url} keeps its own state; dealab takes no snapshot of it")

    def keep_snapshots(self, stop: threading.Event) -> None:
        return

    def close(self) -> None:
        self._session.close()

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
        response_headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in RESPONSE_HOP_BY_HOP]
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
