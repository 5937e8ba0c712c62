"""Asynchronous invocation (InvocationType=Event, InvokeAsync): Lambda's internal queue, its retries and where
an event goes when it is done.

An accepted event is written to the store before Invoke answers 202, so a stack that stops (even by kill -9)
runs it when it starts again. Each attempt is a lab timer (`dealab.wire.timers`): the first at once; after a
function error the next after one minute, then two (AWS's backoff), up to MaximumRetryAttempts (default 2)
from the function's event invoke config; a throttled attempt is tried again after 1 s, 2 s, 4 s ... up to 5
minutes and does not count as a retry; an event older than MaximumEventAgeInSeconds (default 6 hours) is
dropped. `dealab clock advance 3m` therefore runs both retries, each at its lab moment.

When it is done, the event's record goes to the on-success or on-failure destination (SQS, SNS, Lambda,
EventBridge) in the shape AWS documents, and a failed event to the function's dead-letter queue (SQS or SNS)
too, with the RequestID, ErrorCode and ErrorMessage attributes.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dealab.wire import labtime
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

log = logging.getLogger("dealab.lambda.async")

DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_SECONDS = 6 * 3600
RETRY_DELAY_SECONDS = (60, 120)  # before the first retry, before the second
MAX_THROTTLE_DELAY_SECONDS = 300


@dataclass
class Attempt:
    """What one attempt of an event came to."""

    payload: bytes
    function_error: str | None
    executed_version: str
    throttled: bool = False


class AsyncInvocations:
    def __init__(self, folder: Path, attempt: Callable[[dict], Attempt], settings: Callable[[dict], dict],
                 deliver: Callable[[str, dict, dict], None], dead_letter: Callable[[str, dict, Attempt], None]):
        """`attempt(event)` runs the function once; `settings(event)` gives its MaximumRetryAttempts,
        MaximumEventAgeInSeconds, DestinationConfig and DeadLetterTarget; `deliver(arn, record, event)` sends a
        destination record; `dead_letter(arn, event, attempt)` sends the event to a dead-letter queue."""
        self._file = JsonFile(folder / "async-events.json")
        self._attempt, self._settings, self._deliver, self._dead_letter = attempt, settings, deliver, dead_letter
        self._lock = threading.Lock()
        self._events: dict[str, dict] = self._file.load({})
        self._running: dict[str, threading.Event] = {}
        for event in self._events.values():  # what an earlier life of the stack accepted and had not finished
            self._schedule(event)

    def accept(self, function_name: str, qualifier: str | None, invoked_arn: str, payload: bytes) -> str:
        request_id = str(uuid.uuid4())
        now = labtime.unix_time()
        event = {"id": request_id, "function": function_name, "qualifier": qualifier, "invoked_arn": invoked_arn,
                 "payload": payload.decode("utf-8", "replace"), "accepted": now, "due": now, "attempts": 0, "throttles": 0}
        with self._lock:
            self._events[request_id] = event
            self._save()
        self._schedule(event)
        return request_id

    def pending(self) -> list[dict]:
        with self._lock:
            return [dict(event) for event in self._events.values()]

    def forget_all(self) -> None:
        timers.cancel_owner("lambda")
        with self._lock:
            self._events = {}
            self._file.remove()

    # ---- inside --------------------------------------------------------------------------------------
    def _save(self) -> None:
        self._file.save(self._events)

    def _schedule(self, event: dict) -> None:
        due = labtime.EPOCH + datetime.timedelta(seconds=event["due"])
        timers.schedule("lambda", f"async:{event['id']}", due, self._fire)

    def _fire(self, at: datetime.datetime):
        """A due attempt: started in a thread of its own (a timer starts work, never does it); the clock move
        waits for it before going on."""
        with self._lock:
            due = [event for event in self._events.values()
                   if labtime.EPOCH + datetime.timedelta(seconds=event["due"]) <= at and event["id"] not in self._running]
            finished = threading.Event()
            for event in due:
                self._running[event["id"]] = finished
        if not due:
            return None
        threading.Thread(target=self._run, args=(due, finished), name="lambda-async", daemon=True).start()
        return finished.is_set

    def _run(self, events: list[dict], finished: threading.Event) -> None:
        try:
            for event in events:
                try:
                    self._run_one(event)
                except Exception:  # one event's failure must not keep the others waiting
                    log.exception("async event %s of %s failed to run", event["id"], event["function"])
        finally:
            with self._lock:
                for event in events:
                    self._running.pop(event["id"], None)
            finished.set()

    def _run_one(self, event: dict) -> None:
        settings = self._settings(event)
        age = labtime.unix_time() - event["accepted"]
        if age > settings["MaximumEventAgeInSeconds"]:
            self._finish(event, settings, None, "EventAgeExceeded")
            return
        attempt = self._attempt(event)
        if attempt.throttled:
            event["throttles"] += 1
            self._retry_after(event, min(MAX_THROTTLE_DELAY_SECONDS, 2 ** (event["throttles"] - 1)))
            return
        event["attempts"] += 1
        if attempt.function_error is None:
            self._finish(event, settings, attempt, "Success")
        elif event["attempts"] > settings["MaximumRetryAttempts"]:
            self._finish(event, settings, attempt, "RetriesExhausted")
        else:
            self._retry_after(event, RETRY_DELAY_SECONDS[min(event["attempts"], len(RETRY_DELAY_SECONDS)) - 1])

    def _retry_after(self, event: dict, seconds: float) -> None:
        event["due"] = labtime.unix_time() + seconds
        with self._lock:
            self._events[event["id"]] = event
            self._save()
        self._schedule(event)

    def _finish(self, event: dict, settings: dict, attempt: Attempt | None, condition: str) -> None:
        destinations = settings.get("DestinationConfig") or {}
        target = (destinations.get("OnSuccess") if condition == "Success" else destinations.get("OnFailure")) or {}
        try:
            if target.get("Destination"):
                self._deliver(target["Destination"], destination_record(event, attempt, condition), event)
            if condition != "Success" and settings.get("DeadLetterTarget"):
                self._dead_letter(settings["DeadLetterTarget"], event, attempt)
        finally:  # an event is delivered at most once to its destination; a failed delivery is logged
            with self._lock:
                self._events.pop(event["id"], None)
                self._save()


def destination_record(event: dict, attempt: Attempt | None, condition: str) -> dict:
    """The invocation record Lambda sends to a destination (docs: "Capturing records of Lambda asynchronous
    invocations")."""
    record = {
        "version": "1.0",
        "timestamp": labtime.live_now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {"requestId": event["id"], "functionArn": qualified_arn(event["invoked_arn"]), "condition": condition,
                           "approximateInvokeCount": event["attempts"]},
        "requestPayload": _json_or_text(event["payload"]),
    }
    if attempt is not None:
        context = {"statusCode": 200, "executedVersion": attempt.executed_version}
        if attempt.function_error:
            context["functionError"] = attempt.function_error
        record["responseContext"] = context
        record["responsePayload"] = _json_or_text(attempt.payload.decode("utf-8", "replace"))
    return record


def qualified_arn(arn: str) -> str:
    """arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER], with $LATEST when it has no qualifier."""
    return arn if arn.count(":") > 6 else f"{arn}:$LATEST"


def _json_or_text(text: str):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text
