"""AWS service events: what a service does on its own, which CloudTrail records with eventType AwsServiceEvent
(Secrets Manager's RotationSucceeded and RotationFailed, KMS's RotateKey). No request carries them through the
gateway, so the engine that acts calls `record(...)`; the CloudTrail engine, attached at its start, files the
record in its event history and trails and sends it to EventBridge as "AWS Service Event via CloudTrail".
Until a listener is attached (a stack without the CloudTrail engine), records are dropped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from dealab.wire import labtime

log = logging.getLogger("dealab.trailevents")

ACCOUNT_ID = "123456789012"  # the one account of the stack
Listener = Callable[[str, dict, list[dict]], None]  # (region, record, LookupEvents resources)

_listener: Listener | None = None


def attach(listener: Listener) -> None:
    global _listener
    _listener = listener


def detach(listener: Listener) -> None:
    global _listener
    if _listener == listener:
        _listener = None


def record(event_source: str, event_name: str, region: str, service_event_details: dict | None = None,
           additional_event_data: dict | None = None, resources: list[dict] | None = None) -> dict:
    """Builds the record AWS writes for a service event (`event_source` like "secretsmanager.amazonaws.com") and hands
    it to CloudTrail; `resources` are LookupEvents' {ResourceType, ResourceName}. Returns the record."""
    entry = {
        "eventVersion": "1.09",
        "userIdentity": {"accountId": ACCOUNT_ID, "invokedBy": event_source},
        "eventTime": labtime.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": event_source,
        "userAgent": event_source,
        "requestParameters": None,
        "responseElements": None,
        "additionalEventData": additional_event_data,
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT_ID,
        "serviceEventDetails": service_event_details,
        "eventCategory": "Management",
    }
    listener = _listener
    if listener is not None:
        try:
            listener(region, entry, resources or [])
        except Exception:  # a service event is never worth the acting engine's failure
            log.exception("CloudTrail did not take the service event %s %s", event_source, event_name)
    return entry
