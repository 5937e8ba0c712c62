"""Delivering to a target with a retry policy and a dead-letter queue, on the lab clock.

A delivery is a plain record (its target, input, origin and attempts) so that a pending retry is a line in
the store and survives a restart: the engine schedules each again when it starts. A failed attempt is
retried after a backoff (1 minute, doubling, at most 30 minutes: deterministic, where AWS adds jitter)
until the RetryPolicy's MaximumRetryAttempts or MaximumEventAgeInSeconds is spent; then, with a
DeadLetterConfig, the event goes to that SQS queue with the message attributes AWS puts on it (RULE_ARN or
SCHEDULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS), and
without one it is dropped, as on AWS.
"""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from dealab.engines.events.targets import ClientFor, DeliveryFailure
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

log = logging.getLogger("dealab.events")

OWNER = "events"
DEFAULT_RETRY_ATTEMPTS = 185
DEFAULT_EVENT_AGE_SECONDS = 86400
FIRST_BACKOFF = datetime.timedelta(minutes=1)
LONGEST_BACKOFF = datetime.timedelta(minutes=30)

Invoke = Callable[[dict], None]  # hands a delivery record's input to its target, or raises DeliveryFailure


def _moment(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def backoff(failed_attempts: int) -> datetime.timedelta:
    return min(FIRST_BACKOFF * 2 ** (failed_attempts - 1), LONGEST_BACKOFF)


class Deliveries:
    def __init__(self, folder: Path, invoke: Invoke, client_for: ClientFor):
        self._invoke = invoke
        self._client_for = client_for
        self._file = JsonFile(folder / "retries.json")
        self._lock = threading.Lock()
        self._pending: dict[str, dict] = self._file.load({})

    def resume(self) -> None:
        """Schedules again every retry the store holds (the stack restarted)."""
        with self._lock:
            pending = list(self._pending.items())
        for delivery_id, record in pending:
            timers.schedule(OWNER, f"retry/{delivery_id}", _moment(record["due"]), self._retry_fire(delivery_id))

    def pending(self) -> list[dict]:
        with self._lock:
            return [dict(record) for record in self._pending.values()]

    def send(self, record: dict, at: datetime.datetime) -> None:
        """The first attempt at lab moment `at`; a failure goes on to the retry policy."""
        record.setdefault("id", str(uuid.uuid4()))
        record.setdefault("first_attempt", at.isoformat())
        record.setdefault("failed_attempts", 0)
        self._attempt(record, at)

    def _attempt(self, record: dict, at: datetime.datetime) -> None:
        try:
            self._invoke(record)
        except DeliveryFailure as failure:
            self._failed(record, failure, at)
            return
        self._forget(record["id"])

    def _failed(self, record: dict, failure: DeliveryFailure, at: datetime.datetime) -> None:
        record["failed_attempts"] += 1
        record["error"] = {"code": failure.code, "message": failure.message}
        policy = record.get("retry_policy") or {}
        retries_done = record["failed_attempts"] - 1
        due = at + backoff(record["failed_attempts"])
        age_limit = datetime.timedelta(seconds=policy.get("MaximumEventAgeInSeconds", DEFAULT_EVENT_AGE_SECONDS))
        if retries_done >= policy.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS):
            self._dead_letter(record, "MaximumRetryAttemptsExhausted")
        elif due - _moment(record["first_attempt"]) > age_limit:
            self._dead_letter(record, "MaximumEventAgeExhausted")
        else:
            record["due"] = due.isoformat()
            with self._lock:
                self._pending[record["id"]] = record
                self._file.save(self._pending)
            timers.schedule(OWNER, f"retry/{record['id']}", due, self._retry_fire(record["id"]))

    def _retry_fire(self, delivery_id: str):
        def fire(at: datetime.datetime) -> None:
            with self._lock:
                record = self._pending.get(delivery_id)
            if record is not None:
                self._attempt(record, at)
        return fire

    def _forget(self, delivery_id: str) -> None:
        with self._lock:
            if self._pending.pop(delivery_id, None) is not None:
                self._file.save(self._pending)

    def _dead_letter(self, record: dict, condition: str) -> None:
        self._forget(record["id"])
        queue_arn = record.get("dead_letter_arn")
        if not queue_arn:
            log.info("event %s to %s dropped after %d attempts (%s): %s", record.get("event_id"), record["target_arn"],
                     record["failed_attempts"], condition, record["error"]["message"])
            return
        attributes = {
            record["origin_kind"]: record["origin_arn"],
            "TARGET_ARN": record["target_arn"],
            "ERROR_CODE": record["error"]["code"],
            "ERROR_MESSAGE": record["error"]["message"][:1000],
            "EXHAUSTED_RETRY_CONDITION": condition,
            "RETRY_ATTEMPTS": str(record["failed_attempts"] - 1),
        }
        _, _, _, region, account, queue = queue_arn.split(":", 5)
        try:
            sqs = self._client_for("sqs", region)
            url = sqs.get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=account)["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=record["dead_letter_body"],
                             MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()})
        except Exception as error:  # the dead-letter queue itself is gone: AWS drops the event too
            log.warning("dead-letter queue %s refused event %s: %s", queue_arn, record.get("event_id"), error)

    def reset(self) -> None:
        with self._lock:
            for delivery_id in self._pending:
                timers.cancel(OWNER, f"retry/{delivery_id}")
            self._pending = {}
            self._file.save(self._pending)
