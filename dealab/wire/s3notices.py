"""S3 object changes that no S3 request carries, told by the engine that makes them to the engines that announce
them: a lifecycle transition (the clock engine moves an object's storage class in its overlay, with no API
call) and the end of a restore (reached on the lab clock, long after RestoreObject answered).

The clock engine `publish`es a notice; the S3 notification engine (s3:LifecycleTransition,
s3:ObjectRestore:Completed) and the events engine ("Object Storage Class Changed", "Object Restore Completed")
`listen`. A listener runs on the publisher's thread (a clock move's, so the event is sent at its lab moment),
must not raise, and sends through the gateway like any caller; one listener's failure never stops the others.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("dealab.s3notices")

LIFECYCLE_TRANSITION = "LifecycleTransition"
RESTORE_COMPLETED = "ObjectRestore:Completed"


@dataclass(frozen=True)
class ObjectNotice:
    kind: str  # LIFECYCLE_TRANSITION or RESTORE_COMPLETED (S3's event name without "s3:")
    region: str
    bucket: str
    key: str
    version_id: str  # "null" for an unversioned object
    size: int
    etag: str  # without quotes
    at: datetime.datetime  # lab time (naive UTC)
    storage_class: str  # the class moved to (a transition), or the archive class restored from
    restore_expiry: datetime.datetime | None = None  # when the restored copy goes (a completed restore)


Listener = Callable[[ObjectNotice], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def listen(listener: Listener) -> None:
    with _lock:
        _listeners.append(listener)


def forget(listener: Listener) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def publish(notice: ObjectNotice) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(notice)
        except Exception:  # an announcement is never worth the change it announces
            log.exception("%s of s3://%s/%s not announced", notice.kind, notice.bucket, notice.key)
