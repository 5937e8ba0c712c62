"""S3 event notification rules as data: which event each operation raises, which configurations an event
matches, and what PutBucketNotificationConfiguration refuses ("Amazon S3 Event Notifications": supported
event types, object key name filtering, the event message structure).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from xml.etree import ElementTree

# What a successful operation raises (a deletion's event depends on its answer: see `deletion_event`).
CREATED_EVENTS = {
    "PutObject": "ObjectCreated:Put",
    "PostObject": "ObjectCreated:Post",
    "CopyObject": "ObjectCreated:Copy",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}
OTHER_OBJECT_EVENTS = {
    "RestoreObject": "ObjectRestore:Post",
    "PutObjectTagging": "ObjectTagging:Put",
    "DeleteObjectTagging": "ObjectTagging:Delete",
    "PutObjectAcl": "ObjectAcl:Put",
}
DELETE_OPERATIONS = ("DeleteObject", "DeleteObjects")
# Every event type a configuration may name (S3 refuses others); "s3:<Group>:*" covers the group.
EVENT_TYPES = frozenset({
    "s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*", "s3:ObjectRestore:Post", "s3:ObjectRestore:Completed", "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*", "s3:Replication:OperationFailedReplication", "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold", "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:LifecycleExpiration:*", "s3:LifecycleExpiration:Delete", "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition", "s3:IntelligentTiering",
    "s3:ObjectTagging:*", "s3:ObjectTagging:Put", "s3:ObjectTagging:Delete", "s3:ObjectAcl:Put",
})
# The destination each kind of configuration names, as the XML body and boto3's answer spell them.
KINDS = (  # (XML element, XML destination element, boto3 list, boto3 destination key, service)
    ("TopicConfiguration", "Topic", "TopicConfigurations", "TopicArn", "sns"),
    ("QueueConfiguration", "Queue", "QueueConfigurations", "QueueArn", "sqs"),
    ("CloudFunctionConfiguration", "CloudFunction", "LambdaFunctionConfigurations", "LambdaFunctionArn", "lambda"),
)
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass(frozen=True)
class Configuration:
    id: str
    service: str  # sns | sqs | lambda
    arn: str
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""

    def matches(self, event_name: str, key: str) -> bool:
        """`event_name` without "s3:" (ObjectCreated:Put); `key` as stored (not URL-encoded)."""
        group = event_name.split(":")[0]
        named = f"s3:{event_name}" in self.events or f"s3:{group}:*" in self.events
        return named and key.startswith(self.prefix) and key.endswith(self.suffix)


class InvalidConfiguration(ValueError):
    def __init__(self, message: str, argument: str = "", value: str = ""):
        super().__init__(message)
        self.message, self.argument, self.value = message, argument, value


def text_of(element, name: str) -> str:
    child = element.find(_NS + name)
    if child is None:
        child = element.find(name)
    return (child.text or "").strip() if child is not None and child.text else ""


def _all(element, name: str) -> list:
    return element.findall(_NS + name) + element.findall(name)


def parse_request(body: bytes) -> list[Configuration]:
    """The SNS/SQS/Lambda configurations of a PutBucketNotificationConfiguration body."""
    try:
        root = ElementTree.fromstring(body or b"<NotificationConfiguration/>")
    except ElementTree.ParseError as error:
        raise InvalidConfiguration(f"The XML you provided was not well-formed: {error}") from None
    found = []
    for element_name, destination, _, _, service in KINDS:
        for index, element in enumerate(_all(root, element_name)):
            filters = {}
            for key_filter in _all(element, "Filter"):
                for s3_key in _all(key_filter, "S3Key"):
                    for rule in _all(s3_key, "FilterRule"):
                        filters[text_of(rule, "Name").lower()] = text_of(rule, "Value")
            found.append(Configuration(text_of(element, "Id") or f"{element_name}-{index}", service, text_of(element, destination),
                                       tuple(event.text.strip() for event in _all(element, "Event") if event.text),
                                       filters.get("prefix", ""), filters.get("suffix", "")))
    return found


def from_answer(answer: dict) -> list[Configuration]:
    """The configurations of a GetBucketNotificationConfiguration answer (boto3's shape)."""
    found = []
    for _, _, listing, arn_key, service in KINDS:
        for entry in answer.get(listing, []):
            rules = {rule["Name"].lower(): rule["Value"] for rule in entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
            found.append(Configuration(entry.get("Id", ""), service, entry[arn_key], tuple(entry.get("Events", [])),
                                       rules.get("prefix", ""), rules.get("suffix", "")))
    return found


def _events_overlap(one: Configuration, other: Configuration) -> bool:
    for first, second in itertools.product(one.events, other.events):
        if first == second:
            return True
        group_one, group_two = first.split(":")[:2], second.split(":")[:2]
        if group_one == group_two and (first.endswith(":*") or second.endswith(":*")):
            return True
    return False


def overlap_refusal(configurations: list[Configuration]) -> InvalidConfiguration | None:
    """S3 refuses two configurations that could both match one event: a shared event type whose prefixes
    overlap (one starts the other) and whose suffixes overlap (one ends the other)."""
    for one, other in itertools.combinations(configurations, 2):
        if not _events_overlap(one, other):
            continue
        prefixes = one.prefix.startswith(other.prefix) or other.prefix.startswith(one.prefix)
        suffixes = one.suffix.endswith(other.suffix) or other.suffix.endswith(one.suffix)
        if not (prefixes and suffixes):
            continue
        if one.prefix or one.suffix or other.prefix or other.suffix:
            return InvalidConfiguration("Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules "
                                        "if the prefixes are overlapping for the same event type.")
        return InvalidConfiguration("Configurations overlap. Configurations on the same bucket cannot share a common event type.")
    return None


def event_type_refusal(configurations: list[Configuration]) -> InvalidConfiguration | None:
    for configuration in configurations:
        for event in configuration.events:
            if event not in EVENT_TYPES:
                return InvalidConfiguration("The event is not supported for notifications", "Event", event)
    return None


class Sequencer:
    """S3's sequencer: a hex string that orders the events of one key, increasing across restarts (nanoseconds
    of real time, bumped past the last one handed out)."""

    def __init__(self):
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return f"{self._last:016X}"
