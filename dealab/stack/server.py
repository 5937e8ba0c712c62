"""The stack's server process: the gateway on 127.0.0.1, a TLS-equivalent port and a plain-HTTP twin.

Port P stands for AWS's HTTPS endpoint (aws:SecureTransport is true there, as for any SDK on AWS); port
P+1 stands for plain HTTP, so a bucket policy that demands TLS can be seen to deny.
Run by `dealab up`; `python -m dealab.stack.server --help` for the flags.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from werkzeug.serving import make_server

from dealab.engines import StackEngines
from dealab.wire.engine import EngineContext
from dealab.wire.timers import timers
from dealab.wire.admintoken import ensure_token
from dealab.stack.backend import EmbeddedMoto, Progress, RemoteBackend
from dealab.stack.botodata import share_loaded_data
from dealab.stack.door import Door
from dealab.stack.gateway import SECURE_TRANSPORT_KEY, Gateway
from dealab.stack.journal import Journal
from dealab.stack.signatures import with_issued_keys
from dealab.wire.messages import AwsResponse

log = logging.getLogger("dealab.server")

EXIT_PORT_TAKEN = 3


# The stack's process holds every resource of every service (millions of long-lived objects after a large
# seed), and each request allocates thousands of short-lived ones, so at Python's default threshold (700) the
# young generations are collected after nearly every request. Measured on a clock move deleting 30,000 TTL
# items: 1.3 s of 10.9 s in the collector at the default, 0.3 s at this setting, same peak memory.
COLLECTOR_THRESHOLDS = (10_000, 10, 10)


def build_gateway(state_dir: Path, port: int, insecure_port: int, region: str, backend_url: str | None, progress: Progress | None = None,
                  spark_master: str | None = None) -> Gateway:
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    backend = RemoteBackend(backend_url) if backend_url else EmbeddedMoto(Journal(state_dir / "journal"))
    restored = backend.restore(progress)
    if restored.get("snapshot_seq") or restored.get("replayed"):
        log.info(
            "restored saved state: snapshot up to request %d, %d requests replayed in %.1fs, %d skipped",
            restored["snapshot_seq"], restored["replayed"], restored["seconds"], len(restored["skipped"]),
        )
    context = EngineContext(endpoint_url=f"http://127.0.0.1:{port}", region=region, state_dir=state_dir, spark_master=spark_master)
    info = {"port": port, "insecure_port": insecure_port, "region": region, "state_dir": str(state_dir), "restore": restored}
    engines = StackEngines(context)
    door = Door(
        ports=(port, insecure_port),
        admin_token=ensure_token(state_dir),
        allowed_hosts=os.environ.get("DEALAB_ALLOWED_HOSTS", "").split(","),
        verify_signatures=os.environ.get("DEALAB_VERIFY_SIGNATURES", "1") != "0",  # "0" only for bench/stack.py's comparison
        s3_access=engines.named("s3access"),
        lookup=with_issued_keys(engines.named("iam").issued_credential),
    )
    gateway = Gateway(backend, engines, info, door)
    context.loopback.attach(_listener(gateway, secure=True))
    return gateway


def _starting(progress: dict):
    """What the ports answer while saved state is restored: health says how far it is; the rest waits."""

    def app(environ, start_response):
        if environ.get("PATH_INFO", "").rstrip("/") == "/_dealab/health":
            response = AwsResponse.json({"status": "starting", "pid": os.getpid(), "restore": dict(progress)})
        else:
            done, total = progress.get("done", 0), progress.get("total")
            response = AwsResponse.json_error(
                "ServiceUnavailable", f"dealab is restoring saved state ({progress.get('stage')}: {done} of {total or '?'}); try again shortly", 503
            )
        start_response(f"{response.status} -", response.headers)
        return [response.body]

    return app


def _listener(gateway: Gateway, secure: bool):
    def app(environ, start_response):
        environ[SECURE_TRANSPORT_KEY] = secure
        return gateway(environ, start_response)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dealab-server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--insecure-port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--backend-url", default=None)
    parser.add_argument("--spark-master", default=os.environ.get("DEALAB_SPARK_MASTER") or None,
                        help="A Spark standalone master (spark://host:port) for Glue jobs instead of the local worker.")
    parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on; only the container image uses 0.0.0.0.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    share_loaded_data()

    from moto.moto_server.werkzeug_app import MotoRequestHandler

    try:
        servers = [
            make_server(args.host, port, None, threaded=True, request_handler=MotoRequestHandler)
            for port in (args.port, args.insecure_port)
        ]
    except OSError as error:
        print(f"dealab: cannot listen on {args.host}:{args.port}/{args.insecure_port}: {error.strerror}", file=sys.stderr)
        return EXIT_PORT_TAKEN
    progress = {"stage": "starting", "done": 0, "total": None}
    for server in servers:
        server.app = _starting(progress)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    workers = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for worker in workers:
        worker.start()

    def report(stage: str, done: int, total: int | None) -> None:
        progress.update(stage=stage, done=done, total=total)

    gateway = build_gateway(args.state_dir, args.port, args.insecure_port, args.region, args.backend_url, report, args.spark_master)
    for server, secure in zip(servers, (True, False)):
        server.app = _listener(gateway, secure)
    threading.Thread(target=gateway.backend.keep_snapshots, args=(stopping,), name="snapshots", daemon=True).start()
    log.info("dealab listening on %s:%d (plain-HTTP twin :%d), backend %s", args.host, args.port, args.insecure_port, gateway.backend.name)
    stopping.wait()
    for server in servers:
        server.shutdown()
    timers.close()  # no timer fires into an engine that is closing
    for engine in gateway.engines:
        engine.close()
    gateway.backend.close()
    log.info("dealab stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
