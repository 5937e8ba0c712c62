"""Object tags as they were written through the gateway, so lifecycle tag filters need no lookup per object.

S3 has no API that lists tags in bulk: a tag-filtered rule would otherwise cost one GetObjectTagging per
object version. The engine sees every PutObject, PutObjectTagging, DeleteObjectTagging and CopyObject that
passes through the gateway and keeps the tags per object version, with the ETag they were written for (an
object overwritten behind the gateway's back no longer matches). Versions it never saw written are looked
up with GetObjectTagging once, then kept too.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl

from dealab.wire.store import JsonFile


def tags_from_header(value: str | None) -> dict[str, str]:
    """The x-amz-tagging header: URL-encoded key=value pairs."""
    return dict(parse_qsl(value or "", keep_blank_values=True))


def tags_from_body(body: bytes) -> dict[str, str]:
    """A PutObjectTagging body: <Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>."""
    tags = {}
    for element in ET.fromstring(body).iter():
        if element.tag.rsplit("}", 1)[-1] == "Tag":
            fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in element}
            tags[fields.get("Key", "")] = fields.get("Value", "")
    return tags


class ObservedTags:
    def __init__(self, state_dir: Path):
        self._file = JsonFile(state_dir / "tags.json")
        self._lock = threading.Lock()
        # bucket → key → version id → [etag or None, tags]
        self._tags: dict[str, dict[str, dict[str, list]]] = self._file.load({})

    def record(self, bucket: str, key: str, version_id: str, etag: str | None, tags: dict[str, str]) -> None:
        with self._lock:
            versions = self._tags.setdefault(bucket, {}).setdefault(key, {})
            if etag is None and version_id in versions:
                etag = versions[version_id][0]  # retagging keeps the object's content
            versions[version_id] = [etag.strip('"') if etag else None, tags]

    def forget(self, bucket: str, key: str, version_id: str) -> None:
        with self._lock:
            self._tags.get(bucket, {}).get(key, {}).pop(version_id, None)

    def forget_bucket(self, bucket: str) -> None:
        with self._lock:
            self._tags.pop(bucket, None)

    def get(self, bucket: str, key: str, version_id: str, etag: str) -> dict[str, str] | None:
        entry = self._tags.get(bucket, {}).get(key, {}).get(version_id)
        if entry is None or (entry[0] is not None and entry[0] != etag.strip('"')):
            return None
        return entry[1]

    def save(self) -> None:
        with self._lock:
            self._file.save(self._tags)

    def clear(self) -> None:
        with self._lock:
            self._tags.clear()
        self._file.remove()
