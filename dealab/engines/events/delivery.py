"""Delivering to a target with a retry policy and a dead-letter queue, on the lab clock.

A delivery is a plain record (its target, input, origin and attempts) so that a pending retry is a line in
the store and survives a restart: the engine schedules each again when it starts. A failed attempt is
retried after a backoff (1 minute, doubling, at most 30 minutes: deterministic, where AWS adds jitter)
until the RetryPolicy's MaximumRetryAttempts or MaximumEventAgeInSeconds is spent; then, with a
DeadLetterConfig, the event goes to that SQS queue with the message attributes AWS puts on it, and without one
it is dropped, as on AWS. A rule's dead letter carries EventBridge's attributes (RULE_ARN, TARGET_ARN, ERROR_CODE
as EventBridge's kind of failure, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS); a schedule's carries
Scheduler's (SCHEDULE_ARN, TARGET_ARN, the target API's own ERROR_CODE and ERROR_MESSAGE, EXECUTION_ID,
EXHAUSTED_RETRY_CONDITION, IS_PAYLOAD_TRUNCATED, RETRY_ATTEMPTS, SCHEDULED_TIME) and is sent as the schedule's
execution role, as Scheduler sends it: a role that cannot send to the queue loses the event.
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
Senders = Callable[[dict], ClientFor]  # a record → the clients its dead letter is sent with
# Scheduler's words when the failure is its own rather than an answer of the target's API (configuring-schedule-dlq)
SCHEDULER_ERROR = ("AWS.Scheduler.InternalServerError", "Unexpected error occurred while processing the request")
SCHEDULER_EXHAUSTED = {"MaximumRetryAttemptsExhausted": "MaximumRetryAttempts", "MaximumEventAgeExhausted": "MaximumEventAgeInSeconds"}


def _moment(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def backoff(failed_attempts: int) -> datetime.timedelta:
    return min(FIRST_BACKOFF * 2 ** (failed_attempts - 1), LONGEST_BACKOFF)


class Deliveries:
    def __init__(self, folder: Path, invoke: Invoke, client_for: ClientFor, senders: Senders):
        """`client_for`: the engine's own clients (they look a queue's URL up, which is no call AWS makes for a
        delivery); `senders`: the clients a record's dead letter is sent with."""
        self._invoke = invoke
        self._client_for = client_for
        self._senders = senders
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
        record["error"] = {"code": failure.code, "message": failure.message, "target_code": failure.target_code,
                           "target_message": failure.target_message}
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
        attributes = _scheduler_attributes(record, condition) if record["origin_kind"] == "SCHEDULE_ARN" else {
            record["origin_kind"]: record["origin_arn"],
            "TARGET_ARN": record["target_arn"],
            "ERROR_CODE": record["error"]["code"],
            "ERROR_MESSAGE": record["error"]["message"][:1000],
            "EXHAUSTED_RETRY_CONDITION": condition,
            "RETRY_ATTEMPTS": str(record["failed_attempts"] - 1),
        }
        _, _, _, region, account, queue = queue_arn.split(":", 5)
        try:
            url = self._client_for("sqs", region).get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self._senders(record)("sqs", region).send_message(QueueUrl=url, MessageBody=record["dead_letter_body"],
                             MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()})
        except Exception as error:  # the queue is gone, or (Scheduler) the role may not send to it: AWS drops the event too
            log.warning("dead-letter queue %s refused event %s: %s", queue_arn, record.get("event_id"), error)

    def reset(self) -> None:
        with self._lock:
            for delivery_id in self._pending:
                timers.cancel(OWNER, f"retry/{delivery_id}")
            self._pending = {}
            self._file.save(self._pending)


def _scheduler_attributes(record: dict, condition: str) -> dict[str, str]:
    """The message attributes Scheduler puts on a dead letter: the target API's error as it answered it."""
    error = record["error"]
    code, message = (error["target_code"], error.get("target_message") or error["target_code"]) if error.get("target_code") else SCHEDULER_ERROR
    return {
        "SCHEDULE_ARN": record["origin_arn"],
        "TARGET_ARN": record["target_arn"],
        "ERROR_CODE": code,
        "ERROR_MESSAGE": message[:1000],
        "EXECUTION_ID": record["event_id"],
        "EXHAUSTED_RETRY_CONDITION": SCHEDULER_EXHAUSTED[condition],
        "IS_PAYLOAD_TRUNCATED": "false",
        "RETRY_ATTEMPTS": str(record["failed_attempts"] - 1),
        **({"SCHEDULED_TIME": record["scheduled_time"]} if record.get("scheduled_time") else {}),
    }
