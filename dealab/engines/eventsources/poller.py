"""What every poller shares: its thread, its stop, waits on the lab clock, the synchronous Invoke, and the
function's execution role, which it reads its source with (as Lambda's pollers do).

A poller whose role is refused (the role lost the source's permissions, was deleted, or no longer trusts Lambda)
keeps trying, as Lambda does, and its mapping shows LastProcessingResult "PROBLEM: ..." until a read succeeds."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from dealab.engines.eventsources.rawcalls import RawCalls
from dealab.wire import labtime
from dealab.wire.rolesessions import Refused, RoleSessions

log = logging.getLogger("dealab.eventsources")

# Real seconds a lab-time wait sleeps at most before it looks at the clock again (a clock move ends it early).
WAIT_STEP_SECONDS = 0.1
# Real seconds a poller whose role is refused waits before it tries again.
PROBLEM_RETRY_SECONDS = 1.0
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})
# How Lambda names each source in a mapping's problem.
SOURCE_NAMES = {"sqs": "SQS", "kinesis": "Kinesis", "dynamodb": "DynamoDB Streams"}


@dataclass(frozen=True)
class Outcome:
    """How one synchronous invocation ended."""

    ok: bool  # the function returned (it may still report failed items)
    payload: bytes
    status: int
    function_error: str | None = None
    executed_version: str = "$LATEST"
    # False when Lambda refused the invoke (throttled, function gone): the batch never reached the function
    reached: bool = True

    def json(self):
        try:
            return json.loads(self.payload) if self.payload else None
        except ValueError:
            return None


class Poller:
    """One mapping's polling thread(s). `run` loops until `stopped` is set."""

    def __init__(self, mapping: dict, clients, raw: RawCalls, sessions: RoleSessions, report, threads: int = 1):
        self.mapping = mapping
        self.raw = raw  # the hot calls, without botocore
        self.uuid = mapping["UUID"]
        self.function_arn = mapping["FunctionArn"]
        self.source_arn = mapping["EventSourceArn"]
        self.region = self.source_arn.split(":")[3]
        self._clients = clients  # (service, region) → the engine's own client (look-ups Lambda makes as the service)
        self._sessions = sessions
        self._report = report  # (mapping UUID, "PROBLEM: ..." or None when the last read succeeded)
        self.problem: str | None = None
        self.role: str | None = None  # the function's execution role, looked up at the first poll
        self.session_name = self.function_arn.split(":")[6]
        self._role_clients: dict[tuple[str, str], object] = {}
        self.stopped = threading.Event()
        self._threads = [threading.Thread(target=self._guarded, name=f"esm-{self.uuid[:8]}-{n}", daemon=True) for n in range(threads)]

    def client(self, service: str):
        return self._clients(service, self.region)

    def role_client(self, service: str, region: str | None = None):
        """A client whose calls are the execution role's (the engine's own when there is no session to act with)."""
        key = (service, region or self.region)
        if key not in self._role_clients:
            self._role_clients[key] = self._sessions.client(service, self.role, self.session_name, key[1], source_arn=self.function_arn,
                                                            engine="eventsources")
        return self._role_clients[key]

    def keys(self) -> tuple[str, str, str | None] | None:
        """The execution role's session keys for the raw calls (None: the engine's own). Raises Refused."""
        found = self._sessions.credentials(self.role, self.session_name, source_arn=self.function_arn)  # as the function's own sessions
        return None if found is None else (found.access_key, found.secret_key, found.token)

    def read_succeeded(self) -> None:
        if self.problem is not None:
            self.problem = None
            self._report(self.uuid, None)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, wait_seconds: float = 1.0) -> None:
        self.stopped.set()
        deadline = time.monotonic() + wait_seconds
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _guarded(self) -> None:
        while not self.stopped.is_set():
            try:
                if self.role is None:
                    self.role = self.client("lambda").get_function_configuration(FunctionName=self.function_arn)["Role"]
                self.run()
            except Exception as error:  # a poller never dies of one bad answer; it looks again after a pause
                problem = self._problem(error)
                if problem is not None:
                    if problem != self.problem:
                        log.warning("event source mapping %s: %s", self.uuid, problem)
                        self.problem = problem
                        self._report(self.uuid, problem)
                    self.stopped.wait(PROBLEM_RETRY_SECONDS)
                    continue
                if self.stopped.is_set():
                    return
                log.exception("event source mapping %s: poll failed; trying again", self.uuid)
                self.stopped.wait(1.0)

    def run(self) -> None:
        raise NotImplementedError

    def _problem(self, error: Exception) -> str | None:
        """The mapping's LastProcessingResult for a refusal of the execution role; None for any other error."""
        if isinstance(error, Refused):
            return f"PROBLEM: Lambda cannot assume the function's execution role {error.role_arn}: {error.message}"
        if not isinstance(error, ClientError) or error.response.get("Error", {}).get("Code") not in DENIED_CODES:
            return None
        source = SOURCE_NAMES.get(self.source_arn.split(":")[2], self.source_arn.split(":")[2])
        return f"PROBLEM: The function's execution role does not have permissions to call {error.operation_name} on {source}"

    def wait_lab(self, seconds: float) -> None:
        """Waits `seconds` of lab time (a clock move shortens it) or until stopped."""
        deadline = labtime.live_now().timestamp() + seconds
        while not self.stopped.is_set() and (remaining := deadline - labtime.live_now().timestamp()) > 0:
            self.stopped.wait(min(remaining, WAIT_STEP_SECONDS))

    def invoke(self, event: dict) -> Outcome:
        try:
            answer = self.raw.invoke(self.region, self.function_arn, json.dumps(event).encode())
        except ClientError as error:  # throttled, or the function is gone: the batch failed before it ran
            return Outcome(False, json.dumps(error.response.get("Error", {})).encode(), error.response["ResponseMetadata"]["HTTPStatusCode"],
                           error.response["Error"].get("Code"), reached=False)
        function_error = answer.headers.get("x-amz-function-error")
        return Outcome(function_error is None, answer.body, answer.status, function_error,
                       answer.headers.get("x-amz-executed-version", "$LATEST"))
