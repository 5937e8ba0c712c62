"""Service events: how an engine tells EventBridge what AWS's own service would ("Glue Job State Change",
"Athena Query State Change", ...), without waiting on EventBridge or calling it under its own locks.

`serviceevents.publish("aws.glue", "Glue Job State Change", detail, resources)` queues the event, stamped with lab
time; one background thread puts queued events on the default bus (PutEvents through the gateway, so rules,
targets and retries are the events engine's). A rule's target may call back into the engine that published
(a state machine started by an Athena event starts a query), which is why the call never runs on the
publisher's thread. Until a sender is attached (the CloudWatch engine attaches one at start), nothing is kept.

The bus drops an event no rule takes, and such a PutEvents leaves no other trace (the sender's calls are the
floor's, which CloudTrail does not record), so before each send the thread asks the audience the events engine
listens with whether any rule would take the event, and skips the call if none would: an Athena query's three
state changes cost three trips through the gateway on the stack's one interpreter, ~2 ms of a small query.
"""

from __future__ import annotations

import datetime
import json
import logging
import queue
import threading
from collections.abc import Callable

from dealab.wire import labtime

log = logging.getLogger("dealab.serviceevents")

Send = Callable[[str, dict], None]  # (region, PutEvents entry)
Audience = Callable[[str, dict], bool]  # (region, PutEvents entry) → whether a rule on the default bus would take it

_queue: queue.Queue = queue.Queue()
_sender: Send | None = None
_default_region = "us-east-1"
_thread: threading.Thread | None = None
_audience: Audience | None = None


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


def listen(audience: Audience) -> None:
    global _audience
    _audience = audience


def forget(audience: Audience) -> None:
    global _audience
    if _audience == audience:
        _audience = None


def _send(region: str, entry: dict) -> None:
    sender, audience = _sender, _audience
    if sender is None:
        return
    try:
        if audience is None or audience(region, entry):
            sender(region, entry)
    except Exception:  # an event is never worth an engine's failure
        log.exception("PutEvents of %s %s failed", entry["Source"], entry["DetailType"])


def _send_forever() -> None:
    while True:
        region, entry = _queue.get()
        _send(region, entry)
