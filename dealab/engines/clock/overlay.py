"""Storage classes the lifecycle engine has moved objects to, laid over the backend's S3 answers.

S3 has no API that changes a stored object's storage class without rewriting the object (CopyObject onto
itself makes a new version with a new LastModified), so a lifecycle transition cannot be written to the
backend. The engine keeps its own persisted record of every transition instead, keyed by bucket, key and
version, and guarded by the object's ETag and LastModified second (an object overwritten in place is a
different object), and rewrites StorageClass in HeadObject, GetObject, GetObjectAttributes, ListObjects(V2)
and ListObjectVersions answers from it. Restores of archived objects (RestoreObject) are kept here too, for
objects lifecycle archived and for objects put in GLACIER or DEEP_ARCHIVE directly (the backend would restore
those at once): a restore takes the time of its retrieval tier on the lab clock, then lasts the requested days.

A backend that keeps real time (ministack, LocalStack) dates objects by its own clock; the same answers carry
their LastModified on the lab clock instead (`labtime.lab_time_of_backend_stamp`), as the embedded backend
dates them, so what a client sees ages as lifecycle ages it. The overlay itself knows a version by the
backend's own stamp, which the engine's own calls still see.
"""

from __future__ import annotations

import datetime
import email.utils
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dealab.engines.clock.clock import UTC, next_midnight
from dealab.engines.clock.rules import ARCHIVE_CLASSES
from dealab.wire import labtime
from dealab.wire.store import JsonFile

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
# Time a restore takes per storage class and retrieval tier (the upper end of what AWS documents).
RESTORE_DURATIONS = {
    "GLACIER": {"Expedited": datetime.timedelta(minutes=5), "Standard": datetime.timedelta(hours=5), "Bulk": datetime.timedelta(hours=12)},
    "DEEP_ARCHIVE": {"Standard": datetime.timedelta(hours=12), "Bulk": datetime.timedelta(hours=48)},
}
DEFAULT_TIER = "Standard"
LIST_ENTRY_TAGS = {"Contents", "Version"}
SECOND = datetime.timedelta(seconds=1)
# listing entries whose LastModified a backend keeping real time dates by its own clock
DATED_ENTRY_TAGS = LIST_ENTRY_TAGS | {"DeleteMarker"}

ET.register_namespace("", S3_NAMESPACE)


def epoch_second(moment: datetime.datetime) -> int:
    return int(moment.timestamp())


def parse_http_date(text: str) -> datetime.datetime:
    return email.utils.parsedate_to_datetime(text).astimezone(UTC)


def parse_iso(text: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def http_date(moment: datetime.datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def lab_dated_headers(headers: list[tuple[str, str]], precise_stamp: Callable[[], datetime.datetime | None]) -> list[tuple[str, str]]:
    """An object answer's headers with Last-Modified on the lab clock (unchanged when the backend keeps it).
    The header names a whole second: when the clock moved within it (a seeding script puts, advances and puts
    again within milliseconds), which side of the move the object was written on is read from the finer stamp
    of the backend's listing, `precise_stamp()`."""
    if labtime.backend_reads_lab_time():
        return headers
    dated = []
    for name, value in headers:
        if name.lower() == "last-modified":
            stamped = parse_http_date(value)
            if _clock_moved_within(stamped, SECOND):
                stamped = precise_stamp() or stamped
            value = http_date(labtime.lab_time_of_backend_stamp(stamped))
        dated.append((name, value))
    return dated


def _clock_moved_within(start: datetime.datetime, span: datetime.timedelta) -> bool:
    return labtime.lab_time_of_backend_stamp(start + span) - span != labtime.lab_time_of_backend_stamp(start)


def precise_stamp(s3, bucket: str, key: str, version_id: str | None) -> datetime.datetime | None:
    """The backend's own LastModified of a version as its listing gives it (milliseconds, where a header has
    seconds); the caller's s3 client must be one whose answers are not dated on the lab clock."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        for item in page.get("Versions", []):
            same_version = (item.get("VersionId") or "null") == version_id if version_id else item.get("IsLatest", False)
            if item["Key"] == key and same_version:
                stamped = item["LastModified"]
                return stamped.replace(tzinfo=UTC) if stamped.tzinfo is None else stamped
    return None


@dataclass(frozen=True)
class ObjectView:
    """One object version as S3 would show it now: its storage class and, if archived, its restore."""
    storage_class: str
    transitioned: bool  # lifecycle moved it there (else the backend itself stores it in that class)
    restore: str  # 'none', 'ongoing', 'restored' or 'expired'
    restore_record: dict | None

    @property
    def archived(self) -> bool:
        return self.storage_class in ARCHIVE_CLASSES

    @property
    def readable(self) -> bool:
        """GetObject and CopyObject of an archived object need a finished, unexpired restore."""
        return not self.archived or self.restore == "restored"


class Overlay:
    def __init__(self, state_dir: Path):
        self._file = JsonFile(state_dir / "overlay.json")
        self._lock = threading.Lock()
        document = self._file.load({})
        # bucket → key → version_id → {"etag", "modified", "class", "since"}
        self._transitions: dict[str, dict[str, dict[str, dict]]] = {}
        for bucket, key, version_id, record in document.get("transitions", []):
            self._transitions.setdefault(bucket, {}).setdefault(key, {})[version_id] = record
        # (bucket, key, version_id) → {"etag", "modified", "tier", "days", "ready", "expires"}
        self._restores: dict[tuple[str, str, str], dict] = {
            (bucket, key, version_id): record for bucket, key, version_id, record in document.get("restores", [])
        }

    # ---- records -----------------------------------------------------------------------------------
    def record_transition(self, bucket, key, version_id, etag, created, storage_class, moment) -> None:
        with self._lock:
            self._transitions.setdefault(bucket, {}).setdefault(key, {})[version_id] = {
                "etag": etag.strip('"'), "modified": epoch_second(created), "class": storage_class, "since": moment.isoformat(),
            }

    def forget(self, bucket: str, key: str, version_id: str) -> None:
        with self._lock:
            keys = self._transitions.get(bucket, {})
            versions = keys.get(key)
            if versions is not None:
                versions.pop(version_id, None)
                if not versions:
                    del keys[key]
                if not keys:
                    self._transitions.pop(bucket, None)
            self._restores.pop((bucket, key, version_id), None)

    def forget_bucket(self, bucket: str) -> None:
        with self._lock:
            self._transitions.pop(bucket, None)
            for entry in [e for e in self._restores if e[0] == bucket]:
                del self._restores[entry]

    def forget_missing(self, bucket: str, present: set[tuple[str, str]]) -> None:
        """Drops records of versions that no longer exist (deleted or overwritten by anyone)."""
        with self._lock:
            keys = self._transitions.get(bucket, {})
            for key, versions in list(keys.items()):
                for version_id in [v for v in versions if (key, v) not in present]:
                    del versions[version_id]
                if not versions:
                    del keys[key]
            if not keys:
                self._transitions.pop(bucket, None)
            for entry in [e for e in self._restores if e[0] == bucket and (e[1], e[2]) not in present]:
                del self._restores[entry]

    def clear(self) -> None:
        with self._lock:
            self._transitions.clear()
            self._restores.clear()
        self._file.remove()

    def save(self) -> None:
        with self._lock:
            document = {
                "transitions": [[b, k, v, r] for b, keys in self._transitions.items() for k, versions in keys.items() for v, r in versions.items()],
                "restores": [[b, k, v, r] for (b, k, v), r in self._restores.items()],
            }
        self._file.save(document)

    def has_bucket(self, bucket: str) -> bool:
        """Whether lifecycle moved any object of `bucket` (else the backend's storage classes stand)."""
        return bucket in self._transitions

    def knows_bucket(self, bucket: str) -> bool:
        """Whether any answer about `bucket`'s objects may need rewriting: a transition or a restore."""
        return bucket in self._transitions or any(entry[0] == bucket for entry in self._restores)

    def _record(self, bucket: str, key: str, version_id: str | None, etag: str, modified: int) -> dict | None:
        versions = self._transitions.get(bucket, {}).get(key)
        if not versions:
            return None
        etag = etag.strip('"')
        if version_id is not None:
            record = versions.get(version_id)
            return record if record and record["etag"] == etag and record["modified"] == modified else None
        return next((r for r in versions.values() if r["etag"] == etag and r["modified"] == modified), None)

    def storage_class(self, bucket, key, version_id, etag, created, stored_class) -> str:
        record = self._record(bucket, key, version_id, etag, epoch_second(created))
        return record["class"] if record else stored_class

    def view(self, bucket: str, key: str, version_id: str, etag: str, modified: int, stored_class: str,
             now: datetime.datetime) -> ObjectView | None:
        """How S3 would show this version now, given the class the backend stores it in; None when the
        backend's answer stands as it is (never transitioned, not archived)."""
        transition = self._record(bucket, key, version_id, etag, modified)
        storage_class = transition["class"] if transition else stored_class
        if transition is None and storage_class not in ARCHIVE_CLASSES:
            return None
        state, record = self._restore_state(bucket, key, version_id, etag.strip('"'), modified, now)
        return ObjectView(storage_class, transition is not None, state, record)

    # ---- restores ----------------------------------------------------------------------------------
    def _restore_state(self, bucket: str, key: str, version_id: str, etag: str, modified: int,
                       now: datetime.datetime) -> tuple[str, dict | None]:
        """'none', 'ongoing', 'restored' or 'expired', with the record. A restore belongs to the object it
        was asked for: an object overwritten in place (same version id "null") starts unrestored."""
        record = self._restores.get((bucket, key, version_id))
        if record is None or record.get("etag") != etag or record.get("modified") != modified:
            return "none", None
        if now < parse_iso(record["ready"]):
            return "ongoing", record
        if now < parse_iso(record["expires"]):
            return "restored", record
        return "expired", record

    def start_restore(self, bucket, key, version_id, etag, modified, storage_class, tier, days, now, size: int = 0) -> dict:
        """A restore that ends after its tier's time; its end is still to be announced ("completion": "pending")."""
        ready = now + RESTORE_DURATIONS[storage_class][tier]
        record = {"etag": etag.strip('"'), "modified": modified, "tier": tier, "days": days,
                  "ready": ready.isoformat(), "expires": self._expiry(ready, days).isoformat(),
                  "class": storage_class, "size": size, "completion": "pending"}
        with self._lock:
            self._restores[(bucket, key, version_id)] = dict(record)
        return record

    def pending_completions(self) -> list[tuple[tuple[str, str, str], dict]]:
        """Restores whose end is not yet announced, with a copy of each record."""
        with self._lock:
            return [(entry, dict(record)) for entry, record in self._restores.items() if record.get("completion") == "pending"]

    def complete_restore(self, bucket: str, key: str, version_id: str, ready: str) -> dict | None:
        """Marks the restore that was to be ready at `ready` as announced and returns a copy of it; None when
        that restore is gone or is another one now (the object was overwritten, deleted or restored anew)."""
        with self._lock:
            record = self._restores.get((bucket, key, version_id))
            if record is None or record.get("ready") != ready or record.get("completion") != "pending":
                return None
            record["completion"] = "announced"
            return dict(record)

    def extend_restore(self, bucket, key, version_id, days, now) -> None:
        with self._lock:
            record = self._restores[(bucket, key, version_id)]
            record["days"] = days
            record["expires"] = self._expiry(now, days).isoformat()

    @staticmethod
    def _expiry(start: datetime.datetime, days: int) -> datetime.datetime:
        # a restored copy lasts the requested days, to the midnight UTC that follows
        return next_midnight(start + datetime.timedelta(days=days) - datetime.timedelta(microseconds=1))

    @staticmethod
    def restore_header(state: str, record: dict | None) -> str | None:
        if state == "ongoing":
            return 'ongoing-request="true"'
        if state == "restored":
            return f'ongoing-request="false", expiry-date="{http_date(parse_iso(record["expires"]))}"'
        return None

    # ---- rewriting XML answers --------------------------------------------------------------------
    @staticmethod
    def rewrite_attributes(body: bytes, storage_class: str) -> bytes:
        """A GetObjectAttributes answer with StorageClass as lifecycle left it (the element is there only
        when the caller asked for the StorageClass attribute)."""
        root = ET.fromstring(body)
        element = next((child for child in root if child.tag.rsplit("}", 1)[-1] == "StorageClass"), None)
        if element is None or element.text == storage_class:
            return body
        element.text = storage_class
        return ET.tostring(root, xml_declaration=True, encoding="UTF-8")

    def rewrite_listing(self, bucket: str, body: bytes) -> bytes:
        """StorageClass of every listed object version as lifecycle left it, and LastModified on the lab clock."""
        redate = not labtime.backend_reads_lab_time()
        if not self.has_bucket(bucket) and not redate:
            return body
        root = ET.fromstring(body)
        changed = False
        for entry in root:
            tag = entry.tag.rsplit("}", 1)[-1]
            if tag not in DATED_ENTRY_TAGS:
                continue
            fields = {child.tag.rsplit("}", 1)[-1]: child for child in entry}
            if "Key" not in fields or "LastModified" not in fields:
                continue
            stamped = parse_iso(fields["LastModified"].text)
            if redate:
                fields["LastModified"].text = labtime.lab_time_of_backend_stamp(stamped).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                changed = True
            if tag not in LIST_ENTRY_TAGS or "ETag" not in fields:
                continue
            version = fields.get("VersionId")
            record = self._record(bucket, fields["Key"].text or "", version.text if version is not None else None,
                                  fields["ETag"].text or "", epoch_second(stamped))
            if record is None:
                continue
            storage = fields.get("StorageClass")
            if storage is None:
                storage = ET.SubElement(entry, f"{{{S3_NAMESPACE}}}StorageClass")
            storage.text = record["class"]
            changed = True
        return ET.tostring(root, xml_declaration=True, encoding="UTF-8") if changed else body
