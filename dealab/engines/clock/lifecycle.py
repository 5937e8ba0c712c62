"""S3 lifecycle, executed: which action is due for which object version when, and carrying it out.

The planner (`candidates`, `resolve`) is pure: from one key's versions and the bucket's rules it lists every
action with the time S3 would take it (the object's age in days, rounded up to the next midnight UTC, and
never before the first midnight after the rule was put). `LifecycleRun` lists the buckets through the S3 API once per
clock move, keeps a queue of keys ordered by their next due time, and at each due moment carries the
actions out: deletions through DeleteObjects / AbortMultipartUpload, storage-class transitions in the
overlay (S3 has no API that changes a stored object's class without rewriting it). In buckets with Object
Lock, a version under a legal hold or an unexpired retention is never permanently deleted, as on AWS (an
Expiration still places a delete marker in front of it).
"""

from __future__ import annotations

import datetime
import functools
import heapq
import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from dealab import pricing as prices
from dealab.engines.clock.clock import UTC, midnight_on_or_after, next_midnight
from dealab.engines.clock.overlay import Overlay
from dealab.engines.clock.rules import (
    MINIMUM_SIZE_BEHAVIOURS,
    RANK,
    SMALL_OBJECT_BYTES,
    LifecycleConfiguration,
    Rule,
)
from dealab.engines.clock.tags import ObservedTags
from dealab.wire import labtime, s3notices

DAY = datetime.timedelta(days=1)
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
# Ask for large pages: AWS caps them at 1000 (and the loop pages on), the embedded backend answers in one.
LIST_PAGE = 1_000_000
ACTION_NAMES = ("transition", "expire", "delete_version", "remove_marker", "abort_upload")
# Queue entries are object keys, or this prefix and a multipart upload id (no object key starts with NUL).
UPLOAD_ENTRY = "\0upload\0"


@dataclass
class ObjectVersion:
    version_id: str
    created: datetime.datetime  # lab time: what ages are counted from
    size: int
    etag: str
    storage_class: str
    delete_marker: bool = False
    # the backend's own LastModified, which the overlay knows the version by: a remote backend keeps real time
    stamped: datetime.datetime | None = None


@dataclass
class KeyHistory:
    key: str
    versions: list[ObjectVersion]  # newest first
    last_removal: datetime.datetime | None = None


@dataclass
class Upload:
    key: str
    upload_id: str
    initiated: datetime.datetime


@dataclass(frozen=True)
class Action:
    kind: str  # one of ACTION_NAMES
    version_id: str = ""
    storage_class: str = ""


@dataclass(frozen=True)
class ObjectLock:
    """What Object Lock says about one version: while it holds, lifecycle cannot permanently delete it."""
    legal_hold: bool = False
    retain_until: datetime.datetime | None = None

    def deletable_from(self, due: datetime.datetime) -> datetime.datetime | None:
        """When a permanent deletion due at `due` may happen: None while a legal hold is on (it has no end
        date; lifecycle acts at the first clock move after it is lifted), else not before the retention ends
        (lifecycle runs at midnight UTC)."""
        if self.legal_hold:
            return None
        if self.retain_until is not None:
            return max(due, midnight_on_or_after(self.retain_until))
        return due


@dataclass
class BucketState:
    name: str
    config: LifecycleConfiguration
    versioning: str  # "Enabled", "Suspended" or "" (never enabled)
    object_lock: bool = False
    keys: dict[str, KeyHistory] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)

    @property
    def versioned(self) -> bool:
        return self.versioning in ("Enabled", "Suspended")

    @property
    def enabled_rules(self) -> list[Rule]:
        return [rule for rule in self.config.rules if rule.enabled]


TagLookup = Callable[[str, str], dict[str, str]]
LockLookup = Callable[[str, str], ObjectLock]


def _day_due(created: datetime.datetime, days: int | None, date: datetime.datetime | None) -> datetime.datetime:
    if date is not None:
        return max(date, midnight_on_or_after(created))
    return midnight_on_or_after(created + days * DAY)


def _size_allows(rule: Rule, size: int, target: str, behaviour: str) -> bool:
    """S3 skips objects under 128 KiB unless a size filter on the rule says otherwise (custom filters win)."""
    if rule.filter.has_size_filter or size >= SMALL_OBJECT_BYTES:
        return True
    return target in MINIMUM_SIZE_BEHAVIOURS[behaviour]


def candidates(bucket: BucketState, history: KeyHistory, tags_of: TagLookup, horizon: datetime.datetime,
               locks_of: LockLookup | None = None) -> list[tuple[datetime.datetime, Action]]:
    """Every lifecycle action that applies to this key's versions as they are now, with its due time.

    Tags are looked up (one GetObjectTagging per version) only for tag-filtered actions due by `horizon`;
    later ones are listed unchecked, which is enough to know nothing is due before then. In a bucket with
    Object Lock (`locks_of` given), the lock of a version is looked up the same way, for permanent deletions
    due by `horizon`.
    """
    rules = [rule for rule in bucket.enabled_rules if rule.filter.matches_name(history.key)]
    if not rules:
        return []
    if len(history.versions) == 1 and history.versions[0].delete_marker:
        return _lone_marker_actions(bucket.config, history, rules)
    locks_of = locks_of if bucket.object_lock else None
    found: list[tuple[datetime.datetime, Action]] = []
    newer_noncurrent = 0
    for position, version in enumerate(history.versions):
        if version.delete_marker:
            continue
        tags = functools.partial(tags_of, history.key, version.version_id)
        lock = None if locks_of is None else functools.partial(locks_of, history.key, version.version_id)
        for rule in rules:
            if rule.filter.matches_size(version.size):
                actions = _version_actions(bucket.config, history, position, newer_noncurrent, rule)
                found += _allowed(actions, rule, horizon, tags, lock)
        if position > 0:
            newer_noncurrent += 1
    return found


def _lone_marker_actions(config: LifecycleConfiguration, history: KeyHistory,
                         rules: list[Rule]) -> list[tuple[datetime.datetime, Action]]:
    """A delete marker with no versions behind it goes at the first run after it became one, with
    ExpiredObjectDeleteMarker, or once it is as old as an Expiration's days."""
    marker = history.versions[0]
    became_expired = max(marker.created, history.last_removal or marker.created)
    found: list[tuple[datetime.datetime, Action]] = []
    for rule in rules:
        floor = config.first_run(rule)
        if rule.expired_object_delete_marker:
            found.append((max(next_midnight(became_expired), floor), Action("remove_marker", marker.version_id)))
        elif rule.expiration_days is not None:
            old_enough = midnight_on_or_after(marker.created + rule.expiration_days * DAY)
            found.append((max(next_midnight(became_expired), old_enough, floor), Action("remove_marker", marker.version_id)))
    return found


def _allowed(actions: list[tuple[datetime.datetime, Action]], rule: Rule, horizon: datetime.datetime,
             tags: Callable[[], dict[str, str]], lock: Callable[[], ObjectLock] | None) -> list[tuple[datetime.datetime, Action]]:
    """The actions the version's tags and Object Lock (`lock`, None in a bucket without it) allow: a
    tag-filtered rule acts only on versions with its tags, looked up only when one of its actions is due by
    `horizon`, and a lock holds back permanent deletion."""
    if rule.filter.tags and any(due <= horizon for due, _ in actions) and not rule.filter.matches_tags(tags()):
        return []
    return actions if lock is None else _unlocked(actions, lock, horizon)


def _version_actions(config: LifecycleConfiguration, history: KeyHistory, position: int, newer_noncurrent: int,
                     rule: Rule) -> list[tuple[datetime.datetime, Action]]:
    if position == 0:
        return _current_actions(config, history.versions[0], rule)
    # a version is noncurrent since the version after it was written
    return _noncurrent_actions(config, history.versions[position], history.versions[position - 1].created, newer_noncurrent, rule)


def _current_actions(config: LifecycleConfiguration, version: ObjectVersion, rule: Rule) -> list[tuple[datetime.datetime, Action]]:
    floor = config.first_run(rule)
    found: list[tuple[datetime.datetime, Action]] = []
    for transition in rule.transitions:
        if (_moves_down(version, transition.storage_class)
                and _size_allows(rule, version.size, transition.storage_class, config.minimum_size_behaviour)):
            due = _day_due(version.created, transition.days, transition.date)
            found.append((max(due, floor), Action("transition", version.version_id, transition.storage_class)))
    if rule.expires:
        due = _day_due(version.created, rule.expiration_days, rule.expiration_date)
        found.append((max(due, floor), Action("expire", version.version_id)))
    return found


def _noncurrent_actions(config: LifecycleConfiguration, version: ObjectVersion, noncurrent_since: datetime.datetime,
                        newer_noncurrent: int, rule: Rule) -> list[tuple[datetime.datetime, Action]]:
    floor = config.first_run(rule)
    found: list[tuple[datetime.datetime, Action]] = []
    for transition in rule.noncurrent_transitions:
        if (newer_noncurrent >= transition.newer_noncurrent_versions and _moves_down(version, transition.storage_class)
                and _size_allows(rule, version.size, transition.storage_class, config.minimum_size_behaviour)):
            due = midnight_on_or_after(noncurrent_since + transition.days * DAY)
            found.append((max(due, floor), Action("transition", version.version_id, transition.storage_class)))
    if rule.noncurrent_expiration_days is not None and newer_noncurrent >= rule.noncurrent_expiration_newer_versions:
        due = midnight_on_or_after(noncurrent_since + rule.noncurrent_expiration_days * DAY)
        found.append((max(due, floor), Action("delete_version", version.version_id)))
    return found


def _moves_down(version: ObjectVersion, storage_class: str) -> bool:
    """Lifecycle only moves a version to a colder class than it is in."""
    return RANK[storage_class] > RANK.get(version.storage_class, 0)


def _unlocked(actions: list[tuple[datetime.datetime, Action]], lock: Callable[[], ObjectLock],
              horizon: datetime.datetime) -> list[tuple[datetime.datetime, Action]]:
    """`actions` with permanent deletions held back by the version's Object Lock (transitions are not)."""
    kept = []
    for due, action in actions:
        if action.kind == "delete_version" and due <= horizon:
            due = lock().deletable_from(due)
            if due is None:
                continue
        kept.append((due, action))
    return kept


def resolve(due: list[Action], current_version_id: str, versioned: bool) -> list[Action]:
    """S3's precedence among actions due together: permanent deletion beats transition, transition happens
    before a delete marker is placed, and of several due transitions the cheapest class wins."""
    deleted = {a.version_id for a in due if a.kind == "delete_version"}
    expire = any(a.kind == "expire" for a in due)
    gone = deleted | ({current_version_id} if expire and not versioned else set())
    chosen: dict[str, Action] = {}
    for action in due:
        if action.kind == "transition" and action.version_id not in gone:
            best = chosen.get(action.version_id)
            if best is None or RANK[action.storage_class] > RANK[best.storage_class]:
                chosen[action.version_id] = action
    resolved = list(chosen.values())
    resolved += [Action("delete_version", version_id) for version_id in sorted(deleted)]
    if expire:
        resolved.append(Action("expire", current_version_id))
    resolved += [a for a in due if a.kind == "remove_marker"][:1]
    return resolved


def upload_due(bucket: BucketState, upload: Upload) -> datetime.datetime | None:
    dues = [
        max(midnight_on_or_after(upload.initiated + rule.abort_multipart_days * DAY), bucket.config.first_run(rule))
        for rule in bucket.enabled_rules
        if rule.abort_multipart_days is not None and rule.filter.matches_name(upload.key)
    ]
    return min(dues) if dues else None


def _aware(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _lab_time(backend_stamp: datetime.datetime) -> datetime.datetime:
    """When the backend's stamp happened on the lab clock (a remote backend dates by real time)."""
    return labtime.lab_time_of_backend_stamp(_aware(backend_stamp))


class LifecycleRun:
    """One clock move's worth of lifecycle work over every bucket that has rules."""

    def __init__(self, s3, configurations: dict[str, LifecycleConfiguration], overlay: Overlay, initiated: dict[str, str],
                 until: datetime.datetime, observed_tags: ObservedTags):
        """`initiated`: upload id → ISO time the upload began, where known better than the listing says;
        `until`: where the clock is going (nothing later is carried out)."""
        self.s3 = s3
        self.until = until
        self.observed_tags = observed_tags
        self._initiated = initiated
        self.overlay = overlay
        self.counts: dict[str, int] = dict.fromkeys(ACTION_NAMES, 0)
        self.aborted_uploads: list[str] = []
        self.buckets: dict[str, BucketState] = {}
        self.totals: dict[str, dict[str, list[int]]] = {}  # bucket → class → prices.new_totals()
        self._queue: list[tuple[datetime.datetime, int, str, str]] = []
        self._scheduled: dict[tuple[str, str], datetime.datetime] = {}
        self._locks: dict[tuple[str, str, str], ObjectLock] = {}  # (bucket, key, version id) → its Object Lock
        self._order = itertools.count()
        for name, config in configurations.items():
            state = self._inventory(name, config)
            if state is not None:
                self.buckets[name] = state
                self.totals[name] = self._totals_of(state)
                for key in state.keys:
                    self._schedule(state, key)
                for upload_id in state.uploads:
                    self._schedule(state, UPLOAD_ENTRY + upload_id)

    # ---- inventory -------------------------------------------------------------------------------
    def _inventory(self, name: str, config: LifecycleConfiguration) -> BucketState | None:
        try:
            versioning = self.s3.get_bucket_versioning(Bucket=name).get("Status", "")
        except self.s3.exceptions.NoSuchBucket:
            return None
        state = BucketState(name, config, versioning, self._object_lock_enabled(name, config))
        entries = self._listed_versions(name) if state.versioned else self._listed_objects(name)
        for key, is_latest, version in entries:
            history = state.keys.setdefault(key, KeyHistory(key, []))
            history.versions.append((not is_latest, version))
        for history in state.keys.values():
            # latest first, then newest first (two versions may share a LastModified second)
            history.versions = [v for _, v in sorted(history.versions, key=lambda pair: (pair[0], -pair[1].created.timestamp()))]
        if any(rule.abort_multipart_days is not None for rule in config.rules):
            kwargs = {"Bucket": name, "MaxUploads": LIST_PAGE}
            while True:
                page = self.s3.list_multipart_uploads(**kwargs)
                for item in page.get("Uploads", []):
                    known = self._initiated.get(item["UploadId"])
                    began = datetime.datetime.fromisoformat(known) if known else _lab_time(item["Initiated"])
                    state.uploads[item["UploadId"]] = Upload(item["Key"], item["UploadId"], began)
                if not page.get("IsTruncated"):
                    break
                kwargs.update(KeyMarker=page["NextKeyMarker"], UploadIdMarker=page["NextUploadIdMarker"])
        self.overlay.forget_missing(name, {(key, v.version_id) for key, h in state.keys.items() for v in h.versions})
        return state

    def _object_lock_enabled(self, name: str, config: LifecycleConfiguration) -> bool:
        """Whether versions may be locked; asked only when a rule deletes versions permanently (Object Lock
        requires versioning, where that is NoncurrentVersionExpiration)."""
        if not any(rule.enabled and rule.noncurrent_expiration_days is not None for rule in config.rules):
            return False
        try:
            configuration = self.s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
        except self.s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] == "ObjectLockConfigurationNotFoundError":
                return False
            raise
        return configuration.get("ObjectLockEnabled") == "Enabled"

    def _listed_versions(self, name: str) -> list[tuple[str, bool, ObjectVersion]]:
        entries = []
        kwargs = {"Bucket": name, "MaxKeys": LIST_PAGE}
        while True:
            page = self.s3.list_object_versions(**kwargs)
            for item in page.get("Versions", []):
                entries.append((item["Key"], item.get("IsLatest", False), self._version(name, item, item.get("VersionId") or "null")))
            for item in page.get("DeleteMarkers", []):
                marker = ObjectVersion(item.get("VersionId") or "null", _lab_time(item["LastModified"]), 0, "", "", delete_marker=True)
                entries.append((item["Key"], item.get("IsLatest", False), marker))
            if not page.get("IsTruncated"):
                return entries
            kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page.get("NextVersionIdMarker", ""))

    def _listed_objects(self, name: str) -> list[tuple[str, bool, ObjectVersion]]:
        """A bucket never versioned has one version per key, and ListObjectsV2 is far cheaper to serve."""
        entries = []
        kwargs = {"Bucket": name, "MaxKeys": LIST_PAGE}
        while True:
            page = self.s3.list_objects_v2(**kwargs)
            entries += [(item["Key"], True, self._version(name, item, "null")) for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return entries
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _version(self, bucket: str, item: dict, version_id: str) -> ObjectVersion:
        stamped = _aware(item["LastModified"])
        version = ObjectVersion(version_id, _lab_time(stamped), item.get("Size", 0), item.get("ETag", "").strip('"'),
                                item.get("StorageClass", "STANDARD"), stamped=stamped)
        version.storage_class = self.overlay.storage_class(bucket, item["Key"], version_id, version.etag, stamped, version.storage_class)
        return version

    @staticmethod
    def _totals_of(state: BucketState) -> dict[str, list[int]]:
        totals: dict[str, list[int]] = defaultdict(prices.new_totals)
        for history in state.keys.values():
            for version in history.versions:
                if not version.delete_marker:
                    prices.tally(totals[version.storage_class], version.storage_class, version.size)
        return dict(totals)

    def _tags_of(self, bucket: str) -> TagLookup:
        state = self.buckets.get(bucket)

        def lookup(key: str, version_id: str) -> dict[str, str]:
            version = next(v for v in state.keys[key].versions if v.version_id == version_id)
            tags = self.observed_tags.get(bucket, key, version_id, version.etag)
            if tags is None:
                kwargs = {"Bucket": bucket, "Key": key}
                if version_id != "null":
                    kwargs["VersionId"] = version_id
                tag_set = self.s3.get_object_tagging(**kwargs).get("TagSet", [])
                tags = {tag["Key"]: tag["Value"] for tag in tag_set}
                self.observed_tags.record(bucket, key, version_id, version.etag, tags)
            return tags

        return lookup

    def _locks_of(self, bucket: str) -> LockLookup:
        """One HeadObject per version asked about, kept for this move (nobody can change a lock mid-move)."""

        def lookup(key: str, version_id: str) -> ObjectLock:
            if (bucket, key, version_id) not in self._locks:
                head = self.s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
                retain_until = head.get("ObjectLockRetainUntilDate")
                self._locks[(bucket, key, version_id)] = ObjectLock(
                    head.get("ObjectLockLegalHoldStatus") == "ON", _aware(retain_until) if retain_until else None,
                )
            return self._locks[(bucket, key, version_id)]

        return lookup

    def _candidates(self, state: BucketState, history: KeyHistory) -> list[tuple[datetime.datetime, Action]]:
        return candidates(state, history, self._tags_of(state.name), self.until, self._locks_of(state.name))

    # ---- queue -------------------------------------------------------------------------------------
    def _schedule(self, state: BucketState, entry: str) -> None:
        if entry.startswith(UPLOAD_ENTRY):
            upload = state.uploads.get(entry[len(UPLOAD_ENTRY):])
            due = upload_due(state, upload) if upload else None
        else:
            history = state.keys.get(entry)
            dues = [d for d, _ in self._candidates(state, history)] if history else []
            due = min(dues) if dues else None
        if due is None:
            self._scheduled.pop((state.name, entry), None)
            return
        self._scheduled[(state.name, entry)] = due
        heapq.heappush(self._queue, (due, next(self._order), state.name, entry))

    def next_due(self) -> datetime.datetime | None:
        while self._queue:
            due, _, bucket, entry = self._queue[0]
            if self._scheduled.get((bucket, entry)) == due:
                return due
            heapq.heappop(self._queue)
        return None

    # ---- carrying actions out ------------------------------------------------------------------------
    def run_due(self, moment: datetime.datetime) -> None:
        """Carries out everything due at or before `moment` (the clock already reads `moment`)."""
        due_entries: dict[str, list[str]] = defaultdict(list)
        while (head := self.next_due()) is not None and head <= moment:
            _, _, bucket, entry = heapq.heappop(self._queue)
            self._scheduled.pop((bucket, entry), None)
            due_entries[bucket].append(entry)
        for bucket, entries in due_entries.items():
            state = self.buckets[bucket]
            deletions: list[tuple[str, str | None]] = []
            for entry in entries:
                if entry.startswith(UPLOAD_ENTRY):
                    self._abort(state, entry[len(UPLOAD_ENTRY):])
                    continue
                history = state.keys[entry]
                actions = [a for d, a in self._candidates(state, history) if d <= moment]
                current = history.versions[0].version_id if history.versions else ""
                for action in resolve(actions, current, state.versioned):
                    if action.kind == "transition":
                        self._transition(state, history, action, moment)
                    elif action.kind == "expire":
                        deletions.append((entry, None))
                    else:
                        deletions.append((entry, action.version_id))
            self._delete(state, deletions, moment)
            for entry in entries:
                self._schedule(state, entry)

    def _transition(self, state: BucketState, history: KeyHistory, action: Action, moment: datetime.datetime) -> None:
        version = next(v for v in history.versions if v.version_id == action.version_id)
        self._count(state.name, version.storage_class, version.size, -1)
        self._count(state.name, action.storage_class, version.size, 1)
        version.storage_class = action.storage_class
        self.overlay.record_transition(state.name, history.key, version.version_id, version.etag, version.stamped, action.storage_class, moment)
        self.counts["transition"] += 1
        s3notices.publish(s3notices.ObjectNotice(
            s3notices.LIFECYCLE_TRANSITION, self.s3.meta.region_name, state.name, history.key, version.version_id, version.size,
            version.etag.strip('"'), moment.astimezone(UTC).replace(tzinfo=None), action.storage_class))

    def _count(self, bucket: str, storage_class: str, size: int, objects: int) -> None:
        prices.tally(self.totals[bucket].setdefault(storage_class, prices.new_totals()), storage_class, size, objects)

    def _delete(self, state: BucketState, deletions: list[tuple[str, str | None]], moment: datetime.datetime) -> None:
        for start in range(0, len(deletions), DELETE_BATCH):
            batch = deletions[start:start + DELETE_BATCH]
            objects = [{"Key": key, **({"VersionId": vid} if vid is not None else {})} for key, vid in batch]
            response = self.s3.delete_objects(Bucket=state.name, Delete={"Objects": objects, "Quiet": False})
            expirations = {key for key, vid in batch if vid is None}
            for deleted in response.get("Deleted", []):
                self._apply_deletion(state, deleted, deleted["Key"] in expirations, moment)

    def _apply_deletion(self, state: BucketState, deleted: dict, expiration: bool, moment: datetime.datetime) -> None:
        """Updates the model after one entry of a DeleteObjects answer; `expiration`: asked without a version."""
        history = state.keys.get(deleted["Key"])
        if history is None:
            return
        if expiration and state.versioned:
            # a delete marker becomes the current version
            marker_id = deleted.get("DeleteMarkerVersionId") or "null"
            if marker_id == "null":  # versioning suspended: the marker replaces the null version
                self._remove_version(state, history, "null")
            history.versions.insert(0, ObjectVersion(marker_id, moment, 0, "", "", delete_marker=True))
            self.counts["expire"] += 1
            return
        if expiration:
            self._remove_version(state, history, history.versions[0].version_id, expiration=True)
        else:
            self._remove_version(state, history, deleted["VersionId"])
        history.last_removal = moment
        if not history.versions:
            del state.keys[history.key]

    def _remove_version(self, state: BucketState, history: KeyHistory, version_id: str, expiration: bool = False) -> None:
        for version in [v for v in history.versions if v.version_id == version_id]:
            history.versions.remove(version)
            if version.delete_marker:
                self.counts["remove_marker"] += 1
                continue
            self._count(state.name, version.storage_class, version.size, -1)
            self.overlay.forget(state.name, history.key, version.version_id)
            self.counts["expire" if expiration else "delete_version"] += 1

    def _abort(self, state: BucketState, upload_id: str) -> None:
        upload = state.uploads.pop(upload_id)
        try:
            self.s3.abort_multipart_upload(Bucket=state.name, Key=upload.key, UploadId=upload_id)
        except self.s3.exceptions.NoSuchUpload:
            return
        self.aborted_uploads.append(upload_id)
        self.counts["abort_upload"] += 1

    def snapshot(self) -> dict[str, dict[str, list[int]]]:
        return {bucket: {cls: list(v) for cls, v in classes.items() if v[1]} for bucket, classes in self.totals.items()}
