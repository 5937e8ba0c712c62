"""What every poller shares: its thread, its stop, waits on the lab clock, and the synchronous Invoke."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from dealab.engines.eventsources.rawcalls import RawCalls
from dealab.wire import labtime

log = logging.getLogger("dealab.eventsources")

# Real seconds a lab-time wait sleeps at most before it looks at the clock again (a clock move ends it early).
WAIT_STEP_SECONDS = 0.1


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

    def __init__(self, mapping: dict, clients, raw: RawCalls, threads: int = 1):
        self.mapping = mapping
        self.raw = raw  # the hot calls, without botocore
        self.uuid = mapping["UUID"]
        self.function_arn = mapping["FunctionArn"]
        self.source_arn = mapping["EventSourceArn"]
        self.region = self.source_arn.split(":")[3]
        self._clients = clients  # (service, region) → client
        self.stopped = threading.Event()
        self._threads = [threading.Thread(target=self._guarded, name=f"esm-{self.uuid[:8]}-{n}", daemon=True) for n in range(threads)]

    def client(self, service: str):
        return self._clients(service, self.region)

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
                self.run()
            except Exception:  # a poller never dies of one bad answer; it looks again after a pause
                if self.stopped.is_set():
                    return
                log.exception("event source mapping %s: poll failed; trying again", self.uuid)
                self.stopped.wait(1.0)

    def run(self) -> None:
        raise NotImplementedError

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
