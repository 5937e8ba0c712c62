"""The classroom's front door: one endpoint (and its plain-HTTP twin) in front of one stack per learner.

Every AWS request passes the single stack's door (dealab.stack.door: Host, cross-site, Content-Type) and is
routed by the access key its signature names (SigV4 header or presigned query, SigV2 header or query, an S3
POST policy form), which the door's own verifier reads: the front door's lookup answers every key by saying
where it routes. A roster key routes to its learner, so does a key that learner's stack minted (an STS session,
an IAM user's access key: the front door reads them from the responses it passes back). Anything else is
answered with the protocol's unknown-key error, and a request that names no key is never routed.
The learner's stack checks the signature itself: it accepts only that learner's key pair.

Each learner's stack is a `dealab.stack.server` process on free loopback ports with its state folder in
class/<learner>/, forked from the classroom's zygote (dealab.classroom.zygote), whose loaded libraries it shares;
started on the learner's first request, stopped after DEALAB_CLASS_IDLE_SECONDS without one (its state
stays, as any stack's), and started again, state intact, when it is found dead.

Admin paths: /_dealab/class/* is the instructor's (page, scores, status, server-side grading), behind the
instructor token; a learner's CLI reaches its own stack's admin endpoints with the X-Dealab-Learner header
and a token derived from its secret key (dealab.wire.admintoken.learner_token).
`python -m dealab.classroom.frontdoor --help`; `dealab class up` starts it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.serving import make_server

from dealab.classroom import page, records
from dealab.classroom.roster import Learner, door_dir, instructor_token, learner_dir, learners
from dealab.classroom.zygote import Zygote
from dealab.config import Settings
from dealab.stack import control
from dealab.stack.door import ADMIN_PREFIX, Door, _auth_error
from dealab.stack.gateway import SECURE_TRANSPORT_KEY, request_from_environ
from dealab.stack.signatures import AuthFailure
from dealab.wire.admintoken import LEARNER_HEADER, TOKEN_HEADER, learner_token, read_token
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile

log = logging.getLogger("dealab.classroom")

CLASS_PREFIX = ADMIN_PREFIX + "class"
COOKIE = "dealab_class"
ROUTES_FILE = "routes.json"
IDLE_SECONDS = float(os.environ.get("DEALAB_CLASS_IDLE_SECONDS", "1800"))
SUPERVISE_SECONDS = 1.0
# Keys a learner's stack hands out in a response body (STS sessions, IAM CreateAccessKey): they route back to it.
MINTED_KEY = re.compile(rb"<AccessKeyId>([A-Z0-9]{16,128})</AccessKeyId>")
MINTING_SERVICES = frozenset({"sts", "iam"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "content-length"})
# What a learner stack inherits of the front door's environment, less what would point it elsewhere.
NOT_INHERITED = ("DEALAB_PORT", "DEALAB_INSECURE_PORT", "DEALAB_LEARNER", "DEALAB_ENDPOINT_URL", "DEALAB_HOME",
                 "DEALAB_ACCESS_KEY_ID", "DEALAB_SECRET_ACCESS_KEY", "DEALAB_FRONT_PORTS")
# Admin calls a learner's CLI makes that the front door answers itself, recording them for the instructor.
LEARNER_REPORTS = {"reference-run": "reference_run", "reported-score": "reported_score"}


class Routed(Exception):
    """Raised by the door's credential lookup: the key the request is signed with, to be routed."""

    def __init__(self, access_key: str):
        super().__init__(access_key)
        self.access_key = access_key


@dataclass
class LearnerStack:
    learner: Learner
    lock: threading.Lock = field(default_factory=threading.Lock)
    settings: Settings | None = None
    pid: int | None = None
    last_used: float = 0.0  # monotonic
    busy: int = 0  # requests and gradings under way: an idle stop waits for them
    busy_lock: threading.Lock = field(default_factory=threading.Lock)
    last_activity: str | None = None
    last_request: str | None = None
    starts: int = 0
    crashes: list[str] = field(default_factory=list)

    def use(self, change: int) -> None:
        with self.busy_lock:
            self.busy += change
        self.last_used = time.monotonic()

    def status(self) -> dict:
        running = self.pid is not None and control._alive(self.pid)
        return {"learner": self.learner.id, "name": self.learner.name, "state": "running" if running else "stopped",
                "pid": self.pid if running else None, "port": self.settings.port if running and self.settings else None,
                "starts": self.starts, "crashes": len(self.crashes), "last_crash": self.crashes[-1] if self.crashes else None,
                "last_activity": self.last_activity, "last_request": self.last_request}


class Classroom:
    def __init__(self, state_dir: Path, port: int, insecure_port: int, region: str = "us-east-1", allowed_hosts: list[str] = ()):
        self.state_dir = Path(state_dir)
        self.port, self.insecure_port, self.region = port, insecure_port, region
        self.allowed_hosts = [name for name in allowed_hosts if name]
        self.token = instructor_token(self.state_dir)
        self.stacks = {learner.id: LearnerStack(learner) for learner in learners(self.state_dir)}
        self.by_key = {stack.learner.access_key_id: stack.learner.id for stack in self.stacks.values()}
        self.routes = JsonFile(door_dir(self.state_dir) / ROUTES_FILE)
        self.minted = {key: learner for key, learner in self.routes.load({}).items() if learner in self.stacks}
        self.routes_lock = threading.Lock()
        ports = (port, insecure_port)
        self.door = Door(ports, self.token, self.allowed_hosts, lookup=self._route)
        self.learner_doors = {key: Door(ports, learner_token(self.stacks[learner].learner.secret_access_key), self.allowed_hosts)
                              for key, learner in self.by_key.items()}
        self.started = time.time()
        self.stopping = threading.Event()
        # learners' stacks are forked from it, sharing the libraries it loaded (dealab.classroom.zygote)
        self.zygote = Zygote(door_dir(self.state_dir) / "zygote.log", {name: value for name, value in os.environ.items() if name not in NOT_INHERITED})
        for stack in self.stacks.values():  # a learner stack left by a front door that was killed
            control.down(Settings(learner_dir(self.state_dir, stack.learner.id), 0, 0, region, None))

    # ---- routing ------------------------------------------------------------------------------------
    def _route(self, access_key: str):
        raise Routed(access_key)

    def learner_for_key(self, access_key: str) -> str | None:
        return self.by_key.get(access_key) or self.minted.get(access_key)

    def __call__(self, environ: dict, start_response):
        try:
            response = self.handle(environ)
        except Exception as error:  # a front door bug reaches the client as one line, not a dropped socket
            log.exception("front door failed on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            response = AwsResponse.json_error("InternalFailure", f"dealab classroom front door: {error}", 500)
        start_response(f"{response.status} -", response.headers)
        return [response.body] if isinstance(response.body, bytes) else response.body

    def handle(self, environ: dict) -> AwsResponse:
        request = request_from_environ(environ)
        if request.path == CLASS_PREFIX or request.path.startswith(CLASS_PREFIX + "/"):
            return self._instructor(environ, request)
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(environ, request)
        try:
            verdict = self.door.admit(environ, request)
        except Routed as routed:
            learner = self.learner_for_key(routed.access_key)
            if learner is None:
                return _refusal(request, "unknown-key", f"The AWS Access Key Id {routed.access_key!r} does not exist in our records.")
            return self._forward(self.stacks[learner], environ, request)
        if verdict.answer is not None:
            return verdict.answer
        return _refusal(request, "missing", "this classroom routes only signed requests: sign with your own keys (`dealab class credentials`)")

    def _admin(self, environ: dict, request: AwsRequest) -> AwsResponse:
        key = request.headers.get(LEARNER_HEADER)
        learner = self.by_key.get(key or "")
        if learner is None:
            if request.method == "GET" and request.path.rstrip("/") == ADMIN_PREFIX + "health":
                verdict = self.door.admit(environ, request)
                return verdict.answer or self._health()
            return AwsResponse.json_error("Forbidden", f"a classroom's admin endpoints need your {LEARNER_HEADER} key (the dealab CLI sends it "
                                          "when DEALAB_ENDPOINT_URL and your keys are exported)", 403)
        verdict = self.learner_doors[key].admit(environ, request)
        if verdict.answer is not None:
            return verdict.answer
        endpoint = request.path[len(ADMIN_PREFIX):].strip("/")
        if endpoint in LEARNER_REPORTS:
            if request.method != "POST":
                return AwsResponse.json_error("MethodNotAllowed", f"{endpoint} takes POST", 405)
            return getattr(self, LEARNER_REPORTS[endpoint])(learner, request.json)
        del request.headers[LEARNER_HEADER]
        return self._forward(self.stacks[learner], environ, request, admin=True)

    def reference_run(self, learner: str, payload: dict) -> AwsResponse:
        lab = str(payload.get("lab", ""))
        if not lab.isdigit():
            return AwsResponse.json_error("ValidationException", "reference-run takes {\"lab\": N}", 400)
        records.add_reference_run(self.state_dir, learner, str(int(lab)))
        return AwsResponse.json({"recorded": True})

    def reported_score(self, learner: str, payload: dict) -> AwsResponse:
        try:
            records.add_reported(self.state_dir, learner, {"lab": int(payload["lab"]), "score": int(payload["score"]), "total": int(payload["total"])})
        except (KeyError, TypeError, ValueError):
            return AwsResponse.json_error("ValidationException", "reported-score takes {\"lab\", \"score\", \"total\"}", 400)
        return AwsResponse.json({"recorded": True, "counted": False})

    def _health(self) -> AwsResponse:
        return AwsResponse.json({"status": "ok", "pid": os.getpid(), "backend": "classroom front door", "engines": [],
                                 "uptime_seconds": round(time.time() - self.started, 1), "classroom": True,
                                 "port": self.port, "insecure_port": self.insecure_port, "learners": len(self.stacks)})

    # ---- a learner's stack --------------------------------------------------------------------------
    def ensure(self, stack: LearnerStack) -> Settings:
        """The learner's running stack, started (again) if it is not: a stack found dead that the front door
        did not stop has crashed, which is recorded for the instructor's page."""
        with stack.lock:
            if stack.pid is not None and control._alive(stack.pid):
                return stack.settings
            if stack.pid is not None:
                stack.crashes.append(records.real_now())
                log.warning("learner %s: stack pid %s died; starting it again", stack.learner.id, stack.pid)
            stack.pid = None
            stack.settings, stack.pid = self._start(stack.learner)
            stack.starts += 1
            stack.last_used = time.monotonic()
            return stack.settings

    def _start(self, learner: Learner) -> tuple[Settings, int]:
        port = control.free_port_pair()
        settings = Settings(learner_dir(self.state_dir, learner.id), port, port + 1, self.region, None)
        env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
        env.update(DEALAB_ACCESS_KEY_ID=learner.access_key_id, DEALAB_SECRET_ACCESS_KEY=learner.secret_access_key,
                   DEALAB_FRONT_PORTS=f"{self.port},{self.insecure_port}",
                   DEALAB_ALLOWED_HOSTS=",".join(self.allowed_hosts + [env.get("DEALAB_ALLOWED_HOSTS", "")]))
        arguments = ["--port", str(port), "--insecure-port", str(port + 1), "--state-dir", str(settings.state_dir), "--region", self.region]
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        pid = self.zygote.fork(arguments, env, control.log_file(settings))
        control.pid_file(settings).write_text(str(pid))
        control._wait_until_ready(settings, pid, None, None)
        log.info("learner %s: stack pid %d on :%d", learner.id, pid, port)
        return settings, pid

    def stop(self, stack: LearnerStack) -> None:
        with stack.lock:
            if stack.settings is not None and stack.pid is not None:
                control.down(stack.settings)
            stack.pid = None

    def _forward(self, stack: LearnerStack, environ: dict, request: AwsRequest, admin: bool = False) -> AwsResponse:
        stack.use(+1)
        try:
            settings = self.ensure(stack)
            stack.last_used = time.monotonic()
            if admin:  # the stack's own token, which it writes on its first start: the learner never sees it
                request.headers[TOKEN_HEADER] = read_token(settings.state_dir) or ""
            else:
                stack.last_activity, stack.last_request = records.real_now(), f"{request.service} {request.operation}"
            port = settings.port if environ.get(SECURE_TRANSPORT_KEY, True) else settings.insecure_port
            try:
                response = _proxy(port, environ, request)
            except ConnectionError:  # died between the check and the call: once more, on a fresh start
                settings = self.ensure(stack)
                response = _proxy(settings.port if environ.get(SECURE_TRANSPORT_KEY, True) else settings.insecure_port, environ, request)
        finally:
            stack.use(-1)
        if request.service in MINTING_SERVICES and response.status == 200:
            self._learn_minted_keys(stack.learner.id, response.body)
        return response

    def _learn_minted_keys(self, learner: str, body: bytes) -> None:
        # a key already routed keeps its route: a body that merely names another learner's key cannot take it
        with self.routes_lock:
            keys = [key.decode() for key in MINTED_KEY.findall(body) if self.learner_for_key(key.decode()) is None]
            if keys:
                self.minted.update({key: learner for key in keys})
                self.routes.save(self.minted)

    def supervise(self) -> None:
        while not self.stopping.wait(SUPERVISE_SECONDS):
            self.look_after_stacks()

    def look_after_stacks(self, idle_seconds: float = IDLE_SECONDS) -> list[threading.Thread]:
        """Stops stacks left idle, starts again stacks found dead (their state is in their folder); answers
        the threads starting them."""
        restarts = []
        for stack in self.stacks.values():
            if stack.pid is None or stack.busy:
                continue
            if not control._alive(stack.pid):
                restarts.append(threading.Thread(target=self._restart_quietly, args=(stack,), daemon=True))
                restarts[-1].start()
            elif time.monotonic() - stack.last_used > idle_seconds:
                log.info("learner %s: idle for %.0fs, stopping its stack", stack.learner.id, idle_seconds)
                self.stop(stack)
        return restarts

    def _restart_quietly(self, stack: LearnerStack) -> None:
        try:
            self.ensure(stack)
        except control.StackError as error:
            log.error("learner %s: stack did not start again: %s", stack.learner.id, error)

    def close(self) -> None:
        """Stops every learner's stack at once: each takes its last snapshot, which is what a stop waits for."""
        self.stopping.set()
        stoppers = [threading.Thread(target=self.stop, args=(stack,)) for stack in self.stacks.values()]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        self.zygote.close()

    # ---- the instructor's endpoints -----------------------------------------------------------------
    def _instructor(self, environ: dict, request: AwsRequest) -> AwsResponse:
        given = request.headers.get(TOKEN_HEADER) or _cookie(request.headers.get("Cookie", ""), COOKIE) or request.query.get("token", [""])[0]
        if not given:
            return page.refusal(401, "the instructor page needs the instructor token `dealab class up` printed: open the URL it printed")
        request.headers[TOKEN_HEADER] = given
        verdict = self.door.admit(environ, request)  # Host, cross-site, and the token itself
        if verdict.answer is not None:
            return page.refusal(verdict.answer.status, json.loads(verdict.answer.body).get("message", "refused"))
        endpoint = request.path[len(CLASS_PREFIX):].strip("/")
        if "token" in request.query:  # the token leaves the address bar for an HttpOnly cookie
            return AwsResponse(303, [("Location", CLASS_PREFIX + "/"), ("Set-Cookie", f"{COOKIE}={given}; HttpOnly; SameSite=Strict; Path={CLASS_PREFIX}")], b"")
        if endpoint == "grade":
            if request.method != "POST":
                return AwsResponse.json_error("MethodNotAllowed", "grade takes POST", 405)
            payload = request.json
            lab, learner = str(payload.get("lab", "")), payload.get("learner")
            if not lab.isdigit() or (learner is not None and learner not in self.stacks):
                return AwsResponse.json_error("ValidationException", f"grade takes {{\"lab\": N, \"learner\": one of {sorted(self.stacks)} or none}}", 400)
            return AwsResponse.json({"graded": self.grade(lab, learner)})
        handler = {"": self._board, "scores.json": self._scores_json, "scores.csv": self._scores_csv, "status": self._status}.get(endpoint)
        if handler is not None:
            return handler()
        if endpoint.startswith("learner/") and endpoint[len("learner/"):] in self.stacks:
            return self._learner_page(endpoint[len("learner/"):])
        return page.refusal(404, f"no instructor page {request.path}")

    def status(self) -> list[dict]:
        return [stack.status() for stack in self.stacks.values()]

    def rows(self) -> list[dict]:
        return records.score_rows(self.state_dir, list(self.stacks))

    def _status(self) -> AwsResponse:
        return AwsResponse.json({"port": self.port, "insecure_port": self.insecure_port, "pid": os.getpid(), "learners": self.status()})

    def _scores_json(self) -> AwsResponse:
        return AwsResponse.json({"rows": self.rows(), "learners": self.status()})

    def _scores_csv(self) -> AwsResponse:
        return AwsResponse(200, [("Content-Type", "text/csv; charset=utf-8"), ("Content-Disposition", 'attachment; filename="scores.csv"')],
                           records.rows_csv(self.rows()).encode())

    def _board(self) -> AwsResponse:
        return page.html(page.board([stack.learner for stack in self.stacks.values()], self.rows(), self.status()))

    def _learner_page(self, learner: str) -> AwsResponse:
        stack = self.stacks[learner]
        return page.html(page.learner_view(stack.learner, records.load(self.state_dir, learner), stack.status()))

    def grade(self, lab: str, only: str | None = None) -> list[dict]:
        """Runs the grader against each learner's stack (or one), in a process of its own that holds that
        learner's keys; what it finds is recorded as the score that counts."""
        chosen = [self.stacks[only]] if only else list(self.stacks.values())
        return [self._grade_one(stack, lab) for stack in chosen]

    def _grade_one(self, stack: LearnerStack, lab: str) -> dict:
        stack.use(+1)
        try:
            settings = self.ensure(stack)
            env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
            env.update(DEALAB_HOME=str(settings.state_dir), DEALAB_PORT=str(settings.port), DEALAB_INSECURE_PORT=str(settings.insecure_port),
                       DEALAB_ACCESS_KEY_ID=stack.learner.access_key_id, DEALAB_SECRET_ACCESS_KEY=stack.learner.secret_access_key)
            completed = subprocess.run([sys.executable, "-m", "dealab.classroom.grading", lab], capture_output=True, text=True, env=env, timeout=1800)
        finally:
            stack.use(-1)
        try:
            outcome = json.loads(completed.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"learner": stack.learner.id, "lab": int(lab), "error": (completed.stderr.strip().splitlines() or ["the grader printed nothing"])[-1]}
        if "report" not in outcome:
            return {"learner": stack.learner.id, "lab": int(lab), **outcome}
        report = outcome["report"]
        record = records.add_graded(self.state_dir, stack.learner.id, report, outcome["lab_time"])
        return {"learner": stack.learner.id, "lab": report["lab"], "score": report["score"], "total": report["total"],
                "by_reference": record["graded"][-1]["by_reference"]}


def _refusal(request: AwsRequest, kind: str, message: str) -> AwsResponse:
    headers = {name.lower(): value for name, value in request.headers.items()}
    return _auth_error(request, headers, AuthFailure(kind, message))


def _cookie(header: str, name: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


# Each front door thread keeps one connection per learner stack port open: a new connection costs a
# handshake and, on the stack's threaded server, a new thread per request.
_connections = threading.local()


def _connection(port: int, fresh: bool = False) -> http.client.HTTPConnection:
    pool = _connections.__dict__.setdefault("by_port", {})
    if fresh or port not in pool:
        if port in pool:
            pool[port].close()
        pool[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    return pool[port]


def _proxy(port: int, environ: dict, request: AwsRequest) -> AwsResponse:
    """The request, as it arrived (its target unparsed, its headers as named), to a learner stack's port. A kept
    connection the stack has closed meanwhile is opened again once; a refused one means the stack is gone."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or (request.path + (f"?{request.query_string}" if request.query_string else ""))
    try:
        answer = _send(_connection(port), request, target)
    except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
        answer = _send(_connection(port, fresh=True), request, target)
    except ConnectionRefusedError:
        _connection(port).close()
        raise
    body = answer.read()
    headers = [(name, value) for name, value in answer.getheaders() if name.lower() not in HOP_BY_HOP]
    length = answer.getheader("Content-Length") if request.method == "HEAD" else str(len(body))
    if length is not None:
        headers.append(("Content-Length", length))
    if answer.will_close:
        _connection(port).close()
    return AwsResponse(answer.status, headers, body)


def _send(connection: http.client.HTTPConnection, request: AwsRequest, target: str) -> http.client.HTTPResponse:
    connection.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
    for name, value in request.headers.items():
        if name.lower() not in HOP_BY_HOP:
            connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(request.body)))
    connection.endheaders(request.body)
    return connection.getresponse()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dealab-classroom")
    parser.add_argument("--state-dir", type=Path, required=True, help="DEALAB_HOME: the class folder is its class/")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--insecure-port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on; a classroom network names the machine's address.")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.moto_server.werkzeug_app import MotoRequestHandler  # keeps header names as sent (S3 metadata)

    # the name learners are given (`dealab class credentials`): the interface's, or the machine's on all interfaces
    allowed = [socket.gethostname()] if args.host in ("0.0.0.0", "::") else [args.host] if args.host != "127.0.0.1" else []
    allowed += [name.strip() for name in os.environ.get("DEALAB_ALLOWED_HOSTS", "").split(",") if name.strip()]
    classroom = Classroom(args.state_dir, args.port, args.insecure_port, args.region, allowed)
    try:
        servers = [make_server(args.host, port, None, threaded=True, request_handler=MotoRequestHandler)
                   for port in (args.port, args.insecure_port)]
    except OSError as error:
        print(f"dealab: cannot listen on {args.host}:{args.port}/{args.insecure_port}: {error.strerror}", file=sys.stderr)
        return control.EXIT_PORT_TAKEN
    for server, secure in zip(servers, (True, False)):
        server.app = _listener(classroom, secure)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=classroom.supervise, name="supervise", daemon=True).start()
    classroom.zygote.start()  # it loads while the first learners sign in
    log.info("classroom front door on %s:%d (plain-HTTP twin :%d), %d learners", args.host, args.port, args.insecure_port, len(classroom.stacks))
    stopping.wait()
    for server in servers:
        server.shutdown()
    classroom.close()
    log.info("classroom front door stopped")
    return 0


def _listener(classroom: Classroom, secure: bool):
    def app(environ, start_response):
        environ[SECURE_TRANSPORT_KEY] = secure
        return classroom(environ, start_response)

    return app


if __name__ == "__main__":
    sys.exit(main())
