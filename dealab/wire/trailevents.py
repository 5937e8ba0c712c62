"""AWS service events: what a service does on its own, which CloudTrail records with eventType AwsServiceEvent
(Secrets Manager's RotationSucceeded and RotationFailed, KMS's RotateKey). No request carries them through the
gateway, so the engine that acts calls `record(...)`; the CloudTrail engine, attached at its start, files the
record in its event history and trails and sends it to EventBridge as "AWS Service Event via CloudTrail".
Until a listener is attached (a stack without the CloudTrail engine), records are dropped.

Calls served without being sent: an engine that answers a caller's request from a cache of its own (Athena's
reads of S3 objects whose bytes it holds) calls `served(request, response)` with the request it did not send and
the answer S3 would have given, and CloudTrail records it as if it had passed (a data event where a trail's
selectors take it), so a cache changes no trail. Building that request costs a signature; `would_record` first
tells the engine whether anything would keep it (a data event where no trail logs and no access log is on would not).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from dealab.wire import labtime
from dealab.wire.messages import AwsRequest, AwsResponse

log = logging.getLogger("dealab.trailevents")

ACCOUNT_ID = "123456789012"  # the one account of the stack
Listener = Callable[[str, dict, list[dict]], None]  # (region, record, LookupEvents resources)

Recorder = Callable[[AwsRequest, AwsResponse], None]  # a call served without being sent, and its answer
Audience = Callable[[str, str, str, str], bool]  # (service, operation, region, bucket) → whether a record would be kept

_listener: Listener | None = None
_recorder: Recorder | None = None
_audience: Audience | None = None


def attach(listener: Listener, recorder: Recorder | None = None, audience: Audience | None = None) -> None:
    global _listener, _recorder, _audience
    _listener, _recorder, _audience = listener, recorder, audience


def detach(listener: Listener) -> None:
    global _listener, _recorder, _audience
    if _listener == listener:
        _listener = _recorder = _audience = None


def would_record(service: str, operation: str, region: str, bucket: str = "") -> bool:
    """Whether a call served without being sent would leave any record (so whether `served` is worth building)."""
    if _recorder is None:
        return False
    audience = _audience
    return audience is None or audience(service, operation, region, bucket)


def served(request: AwsRequest, response: AwsResponse) -> None:
    """Records a call an engine answered without sending it, as CloudTrail would have recorded it sent."""
    recorder = _recorder
    if recorder is not None:
        try:
            recorder(request, response)
        except Exception:  # a record is never worth the serving engine's failure
            log.exception("CloudTrail did not take the served call %s %s", request.service, request.operation)


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
