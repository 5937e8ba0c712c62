"""Service events: how an engine tells EventBridge what AWS's own service would ("Glue Job State Change",
"Athena Query State Change", ...), without waiting on EventBridge or calling it under its own locks.

`serviceevents.publish("aws.glue", "Glue Job State Change", detail, resources)` queues the event, stamped with lab
time; one background thread puts queued events on the default bus (PutEvents through the gateway, so rules,
targets and retries are the events engine's). It waits LINGER_SECONDS after an event for the ones that follow, and
sends them together, up to PutEvents's 10 entries a call: a query's QUEUED, RUNNING and SUCCEEDED are usually one
call, not three, each of which costs the stack's interpreter what a learner's call costs. AWS delivers service
events within seconds. A rule's target may call back into the engine that published
(a state machine started by an Athena event starts a query), which is why the call never runs on the
publisher's thread. Until a sender is attached (the CloudWatch engine attaches one at start), nothing is kept.
"""

from __future__ import annotations

import datetime
import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable

from dealab.wire import labtime

log = logging.getLogger("dealab.serviceevents")

Send = Callable[[str, list[dict]], None]  # (region, PutEvents entries of that region, at most BATCH)

BATCH = 10  # PutEvents takes at most 10 entries a call
LINGER_SECONDS = 0.05

_queue: queue.Queue = queue.Queue()
_sender: Send | None = None
_default_region = "us-east-1"
_thread: threading.Thread | None = None


def publish(source: str, detail_type: str, detail: dict, resources: list[str] | None = None,
            at: datetime.datetime | None = None, region: str | None = None) -> None:
    if _sender is None:
        return
    _queue.put((region or _default_region, {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail),
                                            "Resources": resources or [], "Time": at or labtime.now()}))


def attach(send: Send, default_region: str) -> None:
    global _sender, _default_region, _thread
    _sender, _default_region = send, default_region
    if _thread is None:
        _thread = threading.Thread(target=_send_forever, name="service-events", daemon=True)
        _thread.start()


def detach() -> None:
    global _sender
    _sender = None
    while not _queue.empty():  # what was queued for a closed stack is dropped
        _queue.get_nowait()


def _take_queued(taken: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    while True:
        try:
            taken.append(_queue.get_nowait())
        except queue.Empty:
            return taken


def _send(events: list[tuple[str, dict]]) -> None:
    """Sends `events` in order: each run of one region's events in calls of at most BATCH entries."""
    sender = _sender
    if sender is None:
        return
    for region, run in itertools.groupby(events, key=lambda event: event[0]):
        entries = [entry for _, entry in run]
        for start in range(0, len(entries), BATCH):
            try:
                sender(region, entries[start:start + BATCH])
            except Exception:  # an event is never worth an engine's failure
                log.exception("PutEvents of %s failed", ", ".join(f"{e['Source']} {e['DetailType']}" for e in entries[start:start + BATCH]))


def _send_forever() -> None:
    while True:
        first = _queue.get()
        time.sleep(LINGER_SECONDS)
        _send(_take_queued([first]))
