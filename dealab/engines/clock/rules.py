"""S3 lifecycle configurations: parsed from the PutBucketLifecycleConfiguration XML and checked the way S3
checks them, with S3's error codes and messages. The constraints are data (the tables below).
"""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from dealab.engines.clock.clock import midnight_on_or_after

UTC = datetime.timezone.utc

# Storage classes in the order lifecycle may move objects: only to a class further down ("waterfall").
TRANSITION_ORDER = ("STANDARD", "STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
RANK = {storage_class: rank for rank, storage_class in enumerate(TRANSITION_ORDER)}
RANK["REDUCED_REDUNDANCY"] = 0
TRANSITION_TARGETS = frozenset(TRANSITION_ORDER[1:])
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
# Minimum days an object must have existed before a transition to these classes (S3 rejects fewer).
MINIMUM_DAYS_BEFORE_TRANSITION = {"STANDARD_IA": 30, "ONEZONE_IA": 30}
# Since September 2024 S3 does not transition objects under 128 KiB unless the configuration says otherwise.
SMALL_OBJECT_BYTES = 128 * 1024
MINIMUM_SIZE_BEHAVIOURS = {
    # behaviour → storage classes that still accept objects under 128 KiB
    "all_storage_classes_128K": frozenset(),
    "varies_by_storage_class": frozenset({"GLACIER", "DEEP_ARCHIVE"}),
}
DEFAULT_MINIMUM_SIZE_BEHAVIOUR = "all_storage_classes_128K"
MAX_RULES = 1000
MAX_RULE_ID_LENGTH = 255
NEWER_NONCURRENT_RANGE = (1, 100)


class LifecycleError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _malformed() -> LifecycleError:
    return LifecycleError("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")


@dataclass(frozen=True)
class Filter:
    prefix: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    size_greater_than: int | None = None
    size_less_than: int | None = None

    @property
    def has_size_filter(self) -> bool:
        return self.size_greater_than is not None or self.size_less_than is not None

    def matches_name(self, key: str) -> bool:
        return key.startswith(self.prefix)

    def matches_size(self, size: int) -> bool:
        return (self.size_greater_than is None or size > self.size_greater_than) and (
            self.size_less_than is None or size < self.size_less_than
        )

    def matches_tags(self, tags: dict[str, str]) -> bool:
        return all(tags.get(key) == value for key, value in self.tags)

    def describe(self) -> str:
        parts = [f"prefix={self.prefix}"] + [f"tag={key}:{value}" for key, value in self.tags]
        if self.size_greater_than is not None:
            parts.append(f"size>{self.size_greater_than}")
        if self.size_less_than is not None:
            parts.append(f"size<{self.size_less_than}")
        return "(" + ", ".join(parts) + ")"


@dataclass(frozen=True)
class Transition:
    storage_class: str
    days: int | None = None
    date: datetime.datetime | None = None


@dataclass(frozen=True)
class NoncurrentTransition:
    storage_class: str
    days: int
    newer_noncurrent_versions: int = 0


@dataclass(frozen=True)
class Rule:
    id: str
    enabled: bool
    filter: Filter
    transitions: tuple[Transition, ...] = ()
    expiration_days: int | None = None
    expiration_date: datetime.datetime | None = None
    expired_object_delete_marker: bool = False
    noncurrent_transitions: tuple[NoncurrentTransition, ...] = ()
    noncurrent_expiration_days: int | None = None
    noncurrent_expiration_newer_versions: int = 0
    abort_multipart_days: int | None = None

    @property
    def expires(self) -> bool:
        return self.expiration_days is not None or self.expiration_date is not None

    def signature(self) -> str:
        """Identifies a rule's content, so re-putting an unchanged rule keeps the time it first applied from."""
        return repr(self)


@dataclass
class LifecycleConfiguration:
    rules: list[Rule]
    minimum_size_behaviour: str = DEFAULT_MINIMUM_SIZE_BEHAVIOUR
    # rule signature → ISO time since which the rule applies
    rule_since: dict[str, str] = field(default_factory=dict)

    _first_runs: dict[int, datetime.datetime] = field(default_factory=dict, repr=False)

    def first_run(self, rule: Rule) -> datetime.datetime:
        """The first lifecycle run (midnight UTC) after the rule was put: nothing is done for it before."""
        if id(rule) not in self._first_runs:
            self._first_runs[id(rule)] = midnight_on_or_after(datetime.datetime.fromisoformat(self.rule_since[rule.signature()]))
        return self._first_runs[id(rule)]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    found = _children(element, name)
    if len(found) > 1:
        raise _malformed()
    return found[0] if found else None


def _text(element: ET.Element, name: str) -> str | None:
    child = _child(element, name)
    return None if child is None else (child.text or "").strip()


def _integer(element: ET.Element, name: str) -> int | None:
    value = _text(element, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise _malformed() from None


def _date(element: ET.Element) -> datetime.datetime | None:
    value = _text(element, "Date")
    if value is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _malformed() from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment.time() != datetime.time(0):
        raise LifecycleError("InvalidArgument", "'Date' must be at midnight GMT")
    return moment


def _storage_class(element: ET.Element) -> str:
    storage_class = _text(element, "StorageClass")
    if storage_class not in TRANSITION_TARGETS:
        raise _malformed()
    return storage_class


def _tag(element: ET.Element) -> tuple[str, str]:
    key = _text(element, "Key")
    if not key:
        raise _malformed()
    return key, _text(element, "Value") or ""


def _filter(rule: ET.Element) -> Filter:
    legacy_prefix = _text(rule, "Prefix")
    element = _child(rule, "Filter")
    if element is None:
        if legacy_prefix is None:
            raise _malformed()
        return Filter(prefix=legacy_prefix)
    if legacy_prefix is not None:
        raise _malformed()
    parts = [child for child in element if _local(child.tag) in ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And")]
    if len(parts) > 1:
        raise _malformed()
    source = _child(element, "And")
    if source is not None:
        tags = tuple(_tag(tag) for tag in _children(source, "Tag"))
    else:
        source = element
        tag = _child(element, "Tag")
        tags = (_tag(tag),) if tag is not None else ()
    result = Filter(
        prefix=_text(source, "Prefix") or "",
        tags=tags,
        size_greater_than=_integer(source, "ObjectSizeGreaterThan"),
        size_less_than=_integer(source, "ObjectSizeLessThan"),
    )
    if len({key for key, _ in tags}) != len(tags):
        raise LifecycleError("InvalidRequest", "Duplicate Tag Keys are not allowed.")
    if result.size_greater_than is not None and result.size_less_than is not None and result.size_greater_than >= result.size_less_than:
        raise LifecycleError("InvalidArgument", "ObjectSizeGreaterThan must be less than ObjectSizeLessThan")
    for size in (result.size_greater_than, result.size_less_than):
        if size is not None and size < 0:
            raise LifecycleError("InvalidArgument", "Object size filters must be non-negative")
    return result


def _rule(element: ET.Element, index: int) -> Rule:
    status = _text(element, "Status")
    if status not in ("Enabled", "Disabled"):
        raise _malformed()
    rule_filter = _filter(element)
    where = rule_filter.describe()
    rule_id = _text(element, "ID") or f"rule-{index + 1}"
    if len(rule_id) > MAX_RULE_ID_LENGTH:
        raise LifecycleError("InvalidArgument", f"ID length should not exceed allowed limit of {MAX_RULE_ID_LENGTH}")

    transitions = tuple(
        Transition(_storage_class(t), days=_integer(t, "Days"), date=_date(t)) for t in _children(element, "Transition")
    )
    for transition in transitions:
        if (transition.days is None) == (transition.date is None):
            raise _malformed()
        if transition.days is not None and transition.days < 0:
            raise LifecycleError("InvalidArgument", "'Days' in Transition action must be nonnegative")
        minimum = MINIMUM_DAYS_BEFORE_TRANSITION.get(transition.storage_class)
        if minimum is not None and transition.days is not None and transition.days < minimum:
            raise LifecycleError(
                "InvalidArgument",
                f"'Days' in Transition action must be greater than or equal to {minimum} for storageClass '{transition.storage_class}'",
            )
    if len({t.storage_class for t in transitions}) != len(transitions):
        raise LifecycleError("InvalidRequest", f"'StorageClass' must be different for 'Transition' actions in same 'Rule' with filter '{where}'")
    if len({t.days is None for t in transitions}) > 1:
        raise LifecycleError("InvalidRequest", f"Found mixed 'Date' and 'Days' based Transition actions in lifecycle rule for filter '{where}'")
    _check_transition_order(transitions, where)

    expiration_days = expiration_date = None
    expired_object_delete_marker = False
    expiration = _child(element, "Expiration")
    if expiration is not None:
        expiration_days, expiration_date = _integer(expiration, "Days"), _date(expiration)
        marker = _text(expiration, "ExpiredObjectDeleteMarker")
        if marker is not None and (expiration_days is not None or expiration_date is not None):
            raise _malformed()
        if marker is None and expiration_days is None and expiration_date is None:
            raise _malformed()
        if expiration_days is not None and expiration_date is not None:
            raise _malformed()
        expired_object_delete_marker = marker == "true"
        if expiration_days is not None and expiration_days <= 0:
            raise LifecycleError("InvalidArgument", "'Days' for Expiration action must be a positive integer")
        if expired_object_delete_marker and rule_filter.tags:
            raise LifecycleError("InvalidRequest", "ExpiredObjectDeleteMarker cannot be specified with Tag filter.")
        for transition in transitions:
            if expiration_days is not None and transition.days is not None and expiration_days <= transition.days:
                raise LifecycleError(
                    "InvalidArgument",
                    f"'Days' in the Expiration action for filter '{where}' must be greater than 'Days' in the Transition action",
                )
            if expiration_date is not None and transition.date is not None and expiration_date <= transition.date:
                raise LifecycleError(
                    "InvalidArgument",
                    f"'Date' in the Expiration action for filter '{where}' must be later than 'Date' in the Transition action",
                )

    noncurrent_transitions = tuple(
        NoncurrentTransition(_storage_class(t), _required_days(t, "NoncurrentDays"), _newer_versions(t))
        for t in _children(element, "NoncurrentVersionTransition")
    )
    for transition in noncurrent_transitions:
        minimum = MINIMUM_DAYS_BEFORE_TRANSITION.get(transition.storage_class)
        if minimum is not None and transition.days < minimum:
            raise LifecycleError(
                "InvalidArgument",
                f"'NoncurrentDays' in NoncurrentVersionTransition action must be greater than or equal to {minimum} for storageClass '{transition.storage_class}'",
            )
    if len({t.storage_class for t in noncurrent_transitions}) != len(noncurrent_transitions):
        raise LifecycleError("InvalidRequest", f"'StorageClass' must be different for 'NoncurrentVersionTransition' actions in same 'Rule' with filter '{where}'")

    noncurrent_expiration_days = None
    noncurrent_newer = 0
    noncurrent_expiration = _child(element, "NoncurrentVersionExpiration")
    if noncurrent_expiration is not None:
        noncurrent_expiration_days = _required_days(noncurrent_expiration, "NoncurrentDays")
        if noncurrent_expiration_days <= 0:
            raise LifecycleError("InvalidArgument", "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer")
        noncurrent_newer = _newer_versions(noncurrent_expiration)
        for transition in noncurrent_transitions:
            if noncurrent_expiration_days <= transition.days:
                raise LifecycleError(
                    "InvalidArgument",
                    f"'NoncurrentDays' in the NoncurrentVersionExpiration action for filter '{where}' must be greater than 'NoncurrentDays' in the NoncurrentVersionTransition action",
                )

    abort_days = None
    abort = _child(element, "AbortIncompleteMultipartUpload")
    if abort is not None:
        abort_days = _required_days(abort, "DaysAfterInitiation")
        if abort_days <= 0:
            raise LifecycleError("InvalidArgument", "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer")
        if rule_filter.tags:
            raise LifecycleError("InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with Tags.")
        if rule_filter.has_size_filter:
            raise LifecycleError("InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with an object size filter.")

    rule = Rule(
        id=rule_id,
        enabled=status == "Enabled",
        filter=rule_filter,
        transitions=transitions,
        expiration_days=expiration_days,
        expiration_date=expiration_date,
        expired_object_delete_marker=expired_object_delete_marker,
        noncurrent_transitions=noncurrent_transitions,
        noncurrent_expiration_days=noncurrent_expiration_days,
        noncurrent_expiration_newer_versions=noncurrent_newer,
        abort_multipart_days=abort_days,
    )
    if not (rule.transitions or rule.expires or rule.expired_object_delete_marker or rule.noncurrent_transitions
            or rule.noncurrent_expiration_days is not None or rule.abort_multipart_days is not None):
        raise LifecycleError("InvalidRequest", "At least one action needs to be specified in a rule")
    return rule


def _check_transition_order(transitions: tuple[Transition, ...], where: str) -> None:
    """Colder classes must come later, and a move out of an IA class must wait that class's minimum."""
    ordered = sorted(transitions, key=lambda t: RANK[t.storage_class])
    for earlier, later in zip(ordered, ordered[1:]):
        earlier_at = earlier.days if earlier.days is not None else earlier.date
        later_at = later.days if later.days is not None else later.date
        if later_at <= earlier_at:
            raise LifecycleError(
                "InvalidArgument",
                f"'{'Days' if later.days is not None else 'Date'}' in the Transition action for StorageClass '{later.storage_class}' "
                f"for filter '{where}' must be greater than '{'Days' if earlier.days is not None else 'Date'}' in the Transition action "
                f"for StorageClass '{earlier.storage_class}'",
            )
        minimum = MINIMUM_DAYS_BEFORE_TRANSITION.get(later.storage_class)
        if minimum is not None and later.days is not None and earlier.days is not None and later.days - earlier.days < minimum:
            raise LifecycleError(
                "InvalidArgument",
                f"'Days' in the Transition action for StorageClass '{later.storage_class}' for filter '{where}' must be "
                f"{minimum} days more than 'Days' in the Transition action for StorageClass '{earlier.storage_class}'",
            )


def _required_days(element: ET.Element, name: str) -> int:
    days = _integer(element, name)
    if days is None:
        raise _malformed()
    return days


def _newer_versions(element: ET.Element) -> int:
    newer = _integer(element, "NewerNoncurrentVersions")
    if newer is None:
        return 0
    low, high = NEWER_NONCURRENT_RANGE
    if not low <= newer <= high:
        raise LifecycleError("InvalidArgument", f"NewerNoncurrentVersions must be between {low} and {high}")
    return newer


def parse(body: bytes, minimum_size_behaviour: str | None = None) -> list[Rule]:
    """The rules of a PutBucketLifecycleConfiguration body; LifecycleError says what S3 would answer."""
    if minimum_size_behaviour is not None and minimum_size_behaviour not in MINIMUM_SIZE_BEHAVIOURS:
        raise LifecycleError("InvalidArgument", f"Invalid x-amz-transition-default-minimum-object-size: {minimum_size_behaviour}")
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise _malformed() from None
    if _local(root.tag) != "LifecycleConfiguration":
        raise _malformed()
    elements = _children(root, "Rule")
    if not elements:
        raise _malformed()
    if len(elements) > MAX_RULES:
        raise LifecycleError("InvalidRequest", f"Configuration exceeds the allowed limit of {MAX_RULES} rules")
    rules = [_rule(element, index) for index, element in enumerate(elements)]
    if len({rule.id for rule in rules}) != len(rules):
        raise LifecycleError("InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule")
    return rules
