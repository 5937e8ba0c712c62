"""SQS's metrics (AWS/SQS, dimension QueueName), as "Available CloudWatch metrics for Amazon SQS" lists them.

Counters follow the calls: NumberOfMessagesSent (each message a SendMessage or SendMessageBatch added),
NumberOfMessagesReceived (each message a ReceiveMessage returned), NumberOfMessagesDeleted (each message a
DeleteMessage or DeleteMessageBatch deleted).

The approximate ones are gauges AWS samples every minute. Here they are sampled only while the CloudWatch engine
needs them (an alarm watches them, or a read asks for them), once per lab minute, stamped at the minute:
ApproximateNumberOfMessagesVisible, ...NotVisible and ...Delayed from GetQueueAttributes, and
ApproximateAgeOfOldestMessage from the send times this module saw (the backend has no API that tells it).
"""

from __future__ import annotations

import datetime
import threading

from dealab.wire import labtime, metrics
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

NAMESPACE = "AWS/SQS"
SAMPLE_SECONDS = 60
# sampled metric → the GetQueueAttributes attribute it reads (the age has none: it comes from the send times)
QUEUE_ATTRIBUTES = {
    "ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}
AGE = "ApproximateAgeOfOldestMessage"
SAMPLED = set(QUEUE_ATTRIBUTES) | {AGE}


def queue_name(queue_url: str) -> str:
    return queue_url.rstrip("/").rpartition("/")[2]


class SqsMetrics:
    """Counts the calls' messages and samples the queues' gauges."""

    def __init__(self, folder, client):
        self._client = client  # (service, region) → the engine's client
        # (region, queue) → {message id: lab epoch it was sent}: for the age of the oldest message
        self._sent_file = JsonFile(folder / "sqs-sent.json")
        self._sent: dict[str, dict[str, float]] = self._sent_file.load({})
        self._receipts: dict[str, tuple[str, str]] = {}  # receipt handle → (queue slot, message id)
        self._last_sampled: dict[str, float] = {}  # queue slot → the lab minute last sampled
        self._touched: set[str] = set()  # queues a call changed since their last sample
        self._lock = threading.Lock()
        metrics.add_sampler(NAMESPACE, self.sample, self._start_sampling)

    # ---- counters ------------------------------------------------------------------------------------
    def sent(self, region: str, params: dict, answer: dict, batch: bool) -> None:
        queue = queue_name(params.get("QueueUrl", ""))
        ids = [entry["MessageId"] for entry in answer.get("Successful", [])] if batch else [answer["MessageId"]] if "MessageId" in answer else []
        if ids:
            now = labtime.unix_time()
            with self._lock:
                slot = self._sent.setdefault(f"{region}/{queue}", {})
                slot.update(dict.fromkeys(ids, now))
                self._touched.add(f"{region}/{queue}")
            metrics.put(NAMESPACE, "NumberOfMessagesSent", {"QueueName": queue}, len(ids), region=region)

    def received(self, region: str, params: dict, answer: dict) -> None:
        queue = queue_name(params.get("QueueUrl", ""))
        messages = answer.get("Messages", [])
        if messages:
            with self._lock:
                for message in messages:
                    self._receipts[message["ReceiptHandle"]] = (f"{region}/{queue}", message["MessageId"])
                self._touched.add(f"{region}/{queue}")
            metrics.put(NAMESPACE, "NumberOfMessagesReceived", {"QueueName": queue}, len(messages), region=region)

    def deleted(self, region: str, params: dict, answer: dict, batch: bool) -> None:
        queue = queue_name(params.get("QueueUrl", ""))
        if batch:
            done = {entry["Id"] for entry in answer.get("Successful", [])}
            handles = [entry["ReceiptHandle"] for entry in params.get("Entries", []) if entry.get("Id") in done]
        else:
            handles = [params.get("ReceiptHandle", "")]
        if handles:
            with self._lock:
                for handle in handles:
                    slot, message_id = self._receipts.pop(handle, (None, None))
                    if slot is not None:
                        self._sent.get(slot, {}).pop(message_id, None)
                self._touched.add(f"{region}/{queue}")
            metrics.put(NAMESPACE, "NumberOfMessagesDeleted", {"QueueName": queue}, len(handles), region=region)

    def forget_queue(self, region: str, params: dict) -> None:
        """PurgeQueue and DeleteQueue leave no message to age."""
        with self._lock:
            self._sent.pop(f"{region}/{queue_name(params.get('QueueUrl', ''))}", None)

    # ---- sampled gauges ------------------------------------------------------------------------------
    def _start_sampling(self) -> None:
        if timers.due_at("usage", "sqs-sample") is None:
            timers.schedule("usage", "sqs-sample", _next_minute(labtime.live_now()), self._minute)

    def _minute(self, at: datetime.datetime) -> None:
        """Once a lab minute while an alarm watches a queue's gauge. A clock move is not walked minute by minute:
        from a sample inside a move the next is at the move's end (the alarms' own evaluation moments sample in
        between, see `sample`)."""
        keys = metrics.watched(NAMESPACE)
        if not keys:
            return
        self.sample(at, keys)
        target = _move_target()
        timers.schedule("usage", "sqs-sample", target if target is not None and at < target else _next_minute(at), self._minute)

    def sample(self, at: datetime.datetime, keys: set) -> None:
        """Puts the wanted gauges of each queue as they stand at `at`, stamped at its minute: once a minute per queue;
        during a clock move, before its end, only for a queue some call changed since its last sample."""
        minute = (at - labtime.EPOCH).total_seconds() // SAMPLE_SECONDS * SAMPLE_SECONDS
        target = _move_target()
        wanted: dict[tuple[str, str], set[str]] = {}
        for region, _namespace, name, dimensions in keys:
            queue = dict(dimensions).get("QueueName")
            if name in SAMPLED and queue and len(dimensions) == 1:
                wanted.setdefault((region, queue), set()).add(name)
        for (region, queue), names in wanted.items():
            slot = f"{region}/{queue}"
            with self._lock:
                if self._last_sampled.get(slot) == minute:
                    continue
                if target is not None and at < target and slot not in self._touched and slot in self._last_sampled:
                    continue
                self._last_sampled[slot] = minute
                self._touched.discard(slot)
            self._sample_queue(region, queue, names, labtime.EPOCH + datetime.timedelta(seconds=minute), (at - labtime.EPOCH).total_seconds())

    def _sample_queue(self, region: str, queue: str, names: set[str], stamp: datetime.datetime, now: float) -> None:
        sqs = self._client("sqs", region)
        try:
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        except sqs.exceptions.QueueDoesNotExist:
            return
        for name in names & set(QUEUE_ATTRIBUTES):
            metrics.put(NAMESPACE, name, {"QueueName": queue}, int(attributes.get(QUEUE_ATTRIBUTES[name], 0)), at=stamp, region=region)
        if AGE in names:
            metrics.put(NAMESPACE, AGE, {"QueueName": queue}, self._oldest_age(region, queue, attributes, now), "Seconds", at=stamp, region=region)

    def _oldest_age(self, region: str, queue: str, attributes: dict, now: float) -> float:
        """Seconds since the oldest message still in the queue was sent. The send times kept are brought in line with
        the queue first: those past the retention period are gone, and when the queue holds fewer messages than are
        kept (a message moved to a dead-letter queue, one deleted with a receipt handle from before a restart) the
        oldest are taken to be the ones that left."""
        retention = float(attributes.get("MessageRetentionPeriod", 345600))
        held = sum(int(attributes.get(name, 0)) for name in QUEUE_ATTRIBUTES.values())
        with self._lock:
            slot = self._sent.get(f"{region}/{queue}", {})
            kept = sorted((sent, message_id) for message_id, sent in slot.items() if now - sent <= retention)
            kept = kept[len(kept) - held:] if held else []
            self._sent[f"{region}/{queue}"] = {message_id: sent for sent, message_id in kept}
            self._sent_file.save(self._sent)
        return max(0.0, now - kept[0][0]) if kept else 0.0

    def save(self) -> None:
        with self._lock:
            self._sent_file.save(self._sent)

    def reset(self) -> None:
        timers.cancel("usage", "sqs-sample")
        with self._lock:
            self._sent, self._receipts, self._last_sampled, self._touched = {}, {}, {}, set()
            self._sent_file.remove()

    def close(self) -> None:
        timers.cancel("usage", "sqs-sample")
        metrics.remove_sampler(NAMESPACE)
        self.save()


def _move_target() -> datetime.datetime | None:
    """Where the clock move under way is going, naive UTC like timers' moments (None when time just passes)."""
    target = timers.move_target()
    return target.astimezone(datetime.timezone.utc).replace(tzinfo=None) if target is not None and target.tzinfo else target


def _next_minute(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
