"""SQS event source mappings: long polls, batches, a synchronous Invoke, and deletes of what succeeded.

As Lambda does ("Using Lambda with Amazon SQS"): messages are received in batches of up to BatchSize,
gathered for up to MaximumBatchingWindowInSeconds (lab time); the function gets them in the SQS event shape;
on success the batch is deleted. With FunctionResponseTypes ReportBatchItemFailures, only the messages the
function names in batchItemFailures stay (an answer that names an unknown or empty itemIdentifier fails the
whole batch). Messages that stay become visible again after the queue's visibility timeout, and the queue's
redrive policy (the backend keeps maxReceiveCount) moves them to its dead-letter queue.
"""

from __future__ import annotations

from dealab.engines.eventsources.poller import Poller
from dealab.engines.eventsources.rawcalls import RawCalls
from dealab.wire import labtime

RECEIVE_MAX = 10  # ReceiveMessage's MaxNumberOfMessages ceiling
# A long poll with nothing to receive waits this long (real seconds) before looking again; a new message
# wakes it at once. Kept short so a stopped mapping stops soon, long enough that idle polls stay rare.
IDLE_WAIT_SECONDS = 5
DEFAULT_BATCH_SIZE = 10
DEFAULT_POLLERS = 2
MAX_POLLERS = 5  # ScalingConfig.MaximumConcurrency beyond this still polls with this many threads


def pollers_for(mapping: dict) -> int:
    wanted = mapping.get("ScalingConfig", {}).get("MaximumConcurrency")
    return min(int(wanted), MAX_POLLERS) if wanted else DEFAULT_POLLERS


class SqsPoller(Poller):
    def __init__(self, mapping: dict, clients, raw: RawCalls, sessions, report):
        super().__init__(mapping, clients, raw, sessions, report, threads=pollers_for(mapping))
        self.batch_size = mapping.get("BatchSize") or DEFAULT_BATCH_SIZE
        self.window = mapping.get("MaximumBatchingWindowInSeconds") or 0
        self.report_failures = "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or [])
        _, _, _, _, account, name = self.source_arn.split(":", 5)
        self.queue_name, self.account = name, account
        self._url: str | None = None

    def run(self) -> None:
        if self._url is None:
            self._url = self.client("sqs").get_queue_url(QueueName=self.queue_name, QueueOwnerAWSAccountId=self.account)["QueueUrl"]
        while not self.stopped.is_set():
            messages = self._receive(IDLE_WAIT_SECONDS)
            if not messages:
                continue
            deadline = labtime.live_now().timestamp() + self.window
            while len(messages) < self.batch_size and not self.stopped.is_set():
                remaining = deadline - labtime.live_now().timestamp()
                more = self._receive(1 if remaining >= 1 else 0)
                messages += more
                if not more and remaining <= 0:
                    break
            if self.stopped.is_set():  # disabled or deleted while the poll waited: the messages go back at once
                self._release(messages)
                return
            self._process(messages)

    def _release(self, messages: list[dict]) -> None:
        """The engine's own call: a lab's stopped mapping gives its messages back at once (Lambda lets them time out),
        which the role need not be allowed."""
        for start in range(0, len(messages), RECEIVE_MAX):
            self.raw.change_visibility_batch(self.region, self._url, [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                for index, message in enumerate(messages[start:start + RECEIVE_MAX])])

    def _receive(self, wait: int) -> list[dict]:
        messages = self.raw.receive(self.region, self._url, min(RECEIVE_MAX, self.batch_size), wait, self.keys())
        self.read_succeeded()
        return messages

    def _process(self, messages: list[dict]) -> None:
        outcome = self.invoke({"Records": [self._record(message) for message in messages]})
        ids = [message["MessageId"] for message in messages]
        failed = set(ids) if not outcome.ok else (self._reported_failures(outcome.json(), set(ids)) if self.report_failures else set())
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), RECEIVE_MAX):
            chunk = done[start:start + RECEIVE_MAX]
            self.raw.delete_batch(self.region, self._url, [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(chunk)], self.keys())

    @staticmethod
    def _reported_failures(answer, ids: set[str]) -> set[str]:
        """The itemIdentifiers a partial batch response names; the whole batch if the response is malformed."""
        if not isinstance(answer, dict) or not answer.get("batchItemFailures"):
            return set()
        named = set()
        for entry in answer["batchItemFailures"]:
            identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
            if not identifier or identifier not in ids:
                return ids
            named.add(identifier)
        return named

    def _record(self, message: dict) -> dict:
        attributes = {}
        for name, value in message.get("MessageAttributes", {}).items():
            attribute = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
            if "StringValue" in value:
                attribute["stringValue"] = value["StringValue"]
            if "BinaryValue" in value:  # SQS's JSON protocol gives it in base64, as the event carries it
                attribute["binaryValue"] = value["BinaryValue"]
            attributes[name] = attribute
        record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
                  "attributes": message.get("Attributes", {}), "messageAttributes": attributes, "md5OfBody": message["MD5OfBody"],
                  "eventSource": "aws:sqs", "eventSourceARN": self.source_arn, "awsRegion": self.region}
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record
