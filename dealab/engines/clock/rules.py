"""S3 lifecycle configurations: parsed from the PutBucketLifecycleConfiguration XML and checked the way S3
checks them, with S3's error codes and messages. The constraints are data (the tables below).
"""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

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


MALFORMED = ("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")


def _malformed() -> LifecycleError:
    return LifecycleError(*MALFORMED)


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

    @property
    def basis(self) -> str:
        """The element the transition is timed by, as S3's messages name it."""
        return "Days" if self.days is not None else "Date"

    @property
    def at(self) -> int | datetime.datetime | None:
        return self.days if self.days is not None else self.date

    @property
    def minimum_days(self) -> int | None:
        return MINIMUM_DAYS_BEFORE_TRANSITION.get(self.storage_class)


@dataclass(frozen=True)
class NoncurrentTransition:
    storage_class: str
    days: int
    newer_noncurrent_versions: int = 0

    @property
    def minimum_days(self) -> int | None:
        return MINIMUM_DAYS_BEFORE_TRANSITION.get(self.storage_class)


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


# The conditions a <Filter> may hold; more than one must go inside <And>.
FILTER_CONDITIONS = ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And")


def _filter(rule: ET.Element) -> Filter:
    """A rule is filtered by <Filter>, or by a <Prefix> of its own as in the original schema: one of them."""
    legacy_prefix = _text(rule, "Prefix")
    element = _child(rule, "Filter")
    if (element is None) == (legacy_prefix is None):
        raise _malformed()
    return Filter(prefix=legacy_prefix) if element is None else _filter_element(element)


def _filter_element(element: ET.Element) -> Filter:
    if len([child for child in element if _local(child.tag) in FILTER_CONDITIONS]) > 1:
        raise _malformed()
    conjunction = _child(element, "And")
    if conjunction is not None:
        conditions, tags = conjunction, tuple(_tag(tag) for tag in _children(conjunction, "Tag"))
    else:
        tag = _child(element, "Tag")
        conditions, tags = element, ((_tag(tag),) if tag is not None else ())
    return Filter(
        prefix=_text(conditions, "Prefix") or "",
        tags=tags,
        size_greater_than=_integer(conditions, "ObjectSizeGreaterThan"),
        size_less_than=_integer(conditions, "ObjectSizeLessThan"),
    )


@dataclass
class _Draft:
    """A rule as far as it has been read: the Rule's fields, and what S3's checks and messages need besides."""

    id: str
    enabled: bool = False
    filter: Filter = field(default_factory=Filter)
    transitions: tuple[Transition, ...] = ()
    expiration_days: int | None = None
    expiration_date: datetime.datetime | None = None
    expired_object_delete_marker: bool = False
    noncurrent_transitions: tuple[NoncurrentTransition, ...] = ()
    noncurrent_expiration_days: int | None = None
    noncurrent_expiration_newer_versions: int = 0
    abort_multipart_days: int | None = None
    status: str | None = None
    where: str = ""  # the filter as S3's messages name it
    delete_marker_given: bool = False

    def rule(self) -> Rule:
        return Rule(**{rule_field.name: getattr(self, rule_field.name) for rule_field in fields(Rule)})


class Check(NamedTuple):
    """One of S3's constraints: where broken(rule, it) holds, S3 refuses with `code` and `message`, a template
    filled in from the draft rule (`rule`) and, in a ForEach, the item checked (`it`)."""

    broken: Callable[[_Draft, Any], bool]
    code: str
    message: str


class ForEach(NamedTuple):
    """Checks made item by item: every check on the first item before any on the second, so its refusal wins."""

    items: Callable[[_Draft], Iterable[Any]]
    checks: tuple[Check, ...]


class _Step(NamedTuple):
    """Two transitions next to each other in the waterfall."""

    earlier: Transition
    later: Transition


def _waterfall_steps(rule: _Draft) -> list[_Step]:
    ordered = sorted(rule.transitions, key=lambda transition: RANK[transition.storage_class])
    return [_Step(earlier, later) for earlier, later in zip(ordered, ordered[1:])]


def _has_no_action(rule: _Draft, _: None) -> bool:
    return not (rule.transitions or rule.expiration_days is not None or rule.expiration_date is not None
                or rule.expired_object_delete_marker or rule.noncurrent_transitions
                or rule.noncurrent_expiration_days is not None or rule.abort_multipart_days is not None)


def _repeated(items: Iterable) -> bool:
    items = list(items)
    return len(set(items)) != len(items)


FILTER_CHECKS = (
    Check(lambda rule, _: _repeated(key for key, _value in rule.filter.tags), "InvalidRequest", "Duplicate Tag Keys are not allowed."),
    Check(lambda rule, _: None not in (rule.filter.size_greater_than, rule.filter.size_less_than)
          and rule.filter.size_greater_than >= rule.filter.size_less_than,
          "InvalidArgument", "ObjectSizeGreaterThan must be less than ObjectSizeLessThan"),
    Check(lambda rule, _: any(size is not None and size < 0 for size in (rule.filter.size_greater_than, rule.filter.size_less_than)),
          "InvalidArgument", "Object size filters must be non-negative"),
)
TRANSITION_CHECKS = (
    ForEach(lambda rule: rule.transitions, (
        Check(lambda rule, t: (t.days is None) == (t.date is None), *MALFORMED),
        Check(lambda rule, t: t.days is not None and t.days < 0, "InvalidArgument", "'Days' in Transition action must be nonnegative"),
        Check(lambda rule, t: None not in (t.minimum_days, t.days) and t.days < t.minimum_days, "InvalidArgument",
              "'Days' in Transition action must be greater than or equal to {it.minimum_days} for storageClass '{it.storage_class}'"),
    )),
    Check(lambda rule, _: _repeated(t.storage_class for t in rule.transitions), "InvalidRequest",
          "'StorageClass' must be different for 'Transition' actions in same 'Rule' with filter '{rule.where}'"),
    Check(lambda rule, _: len({t.days is None for t in rule.transitions}) > 1, "InvalidRequest",
          "Found mixed 'Date' and 'Days' based Transition actions in lifecycle rule for filter '{rule.where}'"),
    # Colder classes must come later, and a move out of an IA class must wait that class's minimum.
    ForEach(_waterfall_steps, (
        Check(lambda rule, step: step.later.at <= step.earlier.at, "InvalidArgument",
              "'{it.later.basis}' in the Transition action for StorageClass '{it.later.storage_class}' for filter '{rule.where}' "
              "must be greater than '{it.earlier.basis}' in the Transition action for StorageClass '{it.earlier.storage_class}'"),
        Check(lambda rule, step: None not in (step.later.minimum_days, step.later.days, step.earlier.days)
              and step.later.days - step.earlier.days < step.later.minimum_days, "InvalidArgument",
              "'Days' in the Transition action for StorageClass '{it.later.storage_class}' for filter '{rule.where}' must be "
              "{it.later.minimum_days} days more than 'Days' in the Transition action for StorageClass '{it.earlier.storage_class}'"),
    )),
)
EXPIRATION_CHECKS = (
    # Expiration holds Days, Date or ExpiredObjectDeleteMarker: exactly one.
    Check(lambda rule, _: rule.delete_marker_given and (rule.expiration_days is not None or rule.expiration_date is not None), *MALFORMED),
    Check(lambda rule, _: not rule.delete_marker_given and rule.expiration_days is None and rule.expiration_date is None, *MALFORMED),
    Check(lambda rule, _: rule.expiration_days is not None and rule.expiration_date is not None, *MALFORMED),
    Check(lambda rule, _: rule.expiration_days is not None and rule.expiration_days <= 0, "InvalidArgument",
          "'Days' for Expiration action must be a positive integer"),
    Check(lambda rule, _: rule.expired_object_delete_marker and bool(rule.filter.tags), "InvalidRequest",
          "ExpiredObjectDeleteMarker cannot be specified with Tag filter."),
    ForEach(lambda rule: rule.transitions, (
        Check(lambda rule, t: None not in (rule.expiration_days, t.days) and rule.expiration_days <= t.days, "InvalidArgument",
              "'Days' in the Expiration action for filter '{rule.where}' must be greater than 'Days' in the Transition action"),
        Check(lambda rule, t: None not in (rule.expiration_date, t.date) and rule.expiration_date <= t.date, "InvalidArgument",
              "'Date' in the Expiration action for filter '{rule.where}' must be later than 'Date' in the Transition action"),
    )),
)
NONCURRENT_TRANSITION_CHECKS = (
    ForEach(lambda rule: rule.noncurrent_transitions, (
        Check(lambda rule, t: t.minimum_days is not None and t.days < t.minimum_days, "InvalidArgument",
              "'NoncurrentDays' in NoncurrentVersionTransition action must be greater than or equal to {it.minimum_days} "
              "for storageClass '{it.storage_class}'"),
    )),
    Check(lambda rule, _: _repeated(t.storage_class for t in rule.noncurrent_transitions), "InvalidRequest",
          "'StorageClass' must be different for 'NoncurrentVersionTransition' actions in same 'Rule' with filter '{rule.where}'"),
)
NONCURRENT_EXPIRATION_CHECKS = (
    Check(lambda rule, _: rule.noncurrent_expiration_days <= 0, "InvalidArgument",
          "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer"),
)
NONCURRENT_EXPIRATION_AFTER_TRANSITION_CHECKS = (
    ForEach(lambda rule: rule.noncurrent_transitions, (
        Check(lambda rule, t: rule.noncurrent_expiration_days <= t.days, "InvalidArgument",
              "'NoncurrentDays' in the NoncurrentVersionExpiration action for filter '{rule.where}' must be greater than "
              "'NoncurrentDays' in the NoncurrentVersionTransition action"),
    )),
)
ABORT_CHECKS = (
    Check(lambda rule, _: rule.abort_multipart_days <= 0, "InvalidArgument",
          "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer"),
    Check(lambda rule, _: bool(rule.filter.tags), "InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with Tags."),
    Check(lambda rule, _: rule.filter.has_size_filter, "InvalidRequest",
          "AbortIncompleteMultipartUpload cannot be specified with an object size filter."),
)


def _read_status(rule: ET.Element, draft: _Draft) -> bool:
    draft.status = _text(rule, "Status")
    draft.enabled = draft.status == "Enabled"
    return True


def _read_filter(rule: ET.Element, draft: _Draft) -> bool:
    draft.filter = _filter(rule)
    draft.where = draft.filter.describe()
    return True


def _read_id(rule: ET.Element, draft: _Draft) -> bool:
    draft.id = _text(rule, "ID") or draft.id
    return True


def _read_transitions(rule: ET.Element, draft: _Draft) -> bool:
    draft.transitions = tuple(
        Transition(_storage_class(t), days=_integer(t, "Days"), date=_date(t)) for t in _children(rule, "Transition")
    )
    return True


def _read_expiration(rule: ET.Element, draft: _Draft) -> bool:
    expiration = _child(rule, "Expiration")
    if expiration is None:
        return False
    draft.expiration_days, draft.expiration_date = _integer(expiration, "Days"), _date(expiration)
    marker = _text(expiration, "ExpiredObjectDeleteMarker")
    draft.delete_marker_given, draft.expired_object_delete_marker = marker is not None, marker == "true"
    return True


def _read_noncurrent_transitions(rule: ET.Element, draft: _Draft) -> bool:
    draft.noncurrent_transitions = tuple(
        NoncurrentTransition(_storage_class(t), _required_days(t, "NoncurrentDays"), _newer_versions(t))
        for t in _children(rule, "NoncurrentVersionTransition")
    )
    return True


def _read_noncurrent_expiration_days(rule: ET.Element, draft: _Draft) -> bool:
    expiration = _child(rule, "NoncurrentVersionExpiration")
    if expiration is None:
        return False
    draft.noncurrent_expiration_days = _required_days(expiration, "NoncurrentDays")
    return True


def _read_noncurrent_expiration_newer_versions(rule: ET.Element, draft: _Draft) -> bool:
    """Read after the days are checked: S3 refuses days out of range before a count out of range."""
    expiration = _child(rule, "NoncurrentVersionExpiration")
    if expiration is None:
        return False
    draft.noncurrent_expiration_newer_versions = _newer_versions(expiration)
    return True


def _read_abort(rule: ET.Element, draft: _Draft) -> bool:
    abort = _child(rule, "AbortIncompleteMultipartUpload")
    if abort is None:
        return False
    draft.abort_multipart_days = _required_days(abort, "DaysAfterInitiation")
    return True


# The parts of a <Rule> in the order S3 reads them: a reader fills each into the draft and says whether the rule
# has it, and S3 makes the part's checks as soon as it is read (so an earlier part's refusal wins).
RULE_PARTS: tuple[tuple[Callable[[ET.Element, _Draft], bool], tuple[Check | ForEach, ...]], ...] = (
    (_read_status, (Check(lambda rule, _: rule.status not in ("Enabled", "Disabled"), *MALFORMED),)),
    (_read_filter, FILTER_CHECKS),
    (_read_id, (Check(lambda rule, _: len(rule.id) > MAX_RULE_ID_LENGTH, "InvalidArgument",
                      f"ID length should not exceed allowed limit of {MAX_RULE_ID_LENGTH}"),)),
    (_read_transitions, TRANSITION_CHECKS),
    (_read_expiration, EXPIRATION_CHECKS),
    (_read_noncurrent_transitions, NONCURRENT_TRANSITION_CHECKS),
    (_read_noncurrent_expiration_days, NONCURRENT_EXPIRATION_CHECKS),
    (_read_noncurrent_expiration_newer_versions, NONCURRENT_EXPIRATION_AFTER_TRANSITION_CHECKS),
    (_read_abort, ABORT_CHECKS),
)
RULE_CHECKS = (Check(_has_no_action, "InvalidRequest", "At least one action needs to be specified in a rule"),)


def _enforce(checks: Iterable[Check | ForEach], rule: _Draft, it: Any = None) -> None:
    for check in checks:
        if isinstance(check, ForEach):
            for item in check.items(rule):
                _enforce(check.checks, rule, item)
        elif check.broken(rule, it):
            raise LifecycleError(check.code, check.message.format(rule=rule, it=it))


def _rule(element: ET.Element, index: int) -> Rule:
    draft = _Draft(id=f"rule-{index + 1}")
    for read, checks in RULE_PARTS:
        if read(element, draft):
            _enforce(checks, draft)
    _enforce(RULE_CHECKS, draft)
    return draft.rule()


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
