"""The events of each log stream as Arrow batches, kept beside the backend so Logs Insights reads a million
events in milliseconds rather than paging GetLogEvents for half a minute.

The backend stays the truth. Each stream's batches are known to match it by the stream's upload sequence
token: events that arrive through the gateway are appended with the token their PutLogEvents answered; a
stream whose token in DescribeLogStreams differs from the one held (after a restart, after a write the
engine did not see) is read again from the backend with GetLogEvents, from its head. Only memory holds
the batches: nothing here needs saving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

SCHEMA = pa.schema([("timestamp", pa.int64()), ("ingestion", pa.int64()), ("message", pa.string()), ("stream", pa.string()), ("log", pa.string())])
# Small batches (one PutLogEvents each) are merged once a stream holds this many, to keep scans fast.
MERGE_AFTER_BATCHES = 64
# GetLogEvents pages repeat their forward token at the end of a stream; this many events a page.
PAGE_EVENTS = 10000


@dataclass
class StreamEvents:
    token: int
    batches: list[pa.RecordBatch] = field(default_factory=list)


def batch(events: list[dict], ingestion: list[int], stream: str, log: str) -> pa.RecordBatch:
    count = len(events)
    return pa.RecordBatch.from_arrays([
        pa.array([event["timestamp"] for event in events], pa.int64()),
        pa.array(ingestion, pa.int64()),
        pa.array([event["message"] for event in events], pa.string()),
        pa.array([stream] * count, pa.string()),
        pa.array([log] * count, pa.string()),
    ], schema=SCHEMA)


class EventCache:
    def __init__(self, client: Callable[[], object]):
        self._client = client  # a logs client at the gateway, made on first use
        self._streams: dict[str, dict[str, StreamEvents]] = {}
        self._lock = threading.Lock()

    def arrived(self, group: str, stream: str, log: str, events: list[dict], ingestion: int, token: int) -> None:
        """Events the backend accepted in one PutLogEvents whose answer carried `token`."""
        with self._lock:
            held = self._streams.get(group, {}).get(stream)
            if held is None and token == 1:  # the stream's first write: nothing before it to read from the backend
                held = self._streams.setdefault(group, {})[stream] = StreamEvents(0)
            if held is None or held.token != token - 1:
                if held is not None:
                    held.token = -1  # out of step: read again from the backend when next needed
                return
            if events:
                held.batches.append(batch(events, [ingestion] * len(events), stream, log))
                if len(held.batches) > MERGE_AFTER_BATCHES:
                    held.batches = pa.Table.from_batches(held.batches, SCHEMA).combine_chunks().to_batches()
            held.token = token

    def forget(self, group: str) -> None:
        with self._lock:
            self._streams.pop(group, None)

    def clear(self) -> None:
        with self._lock:
            self._streams.clear()

    def table(self, group: str, log: str, since: int | None = None, stream_prefix: str = "") -> pa.Table:
        """Every event of the group (those at or after `since`, of streams named with `stream_prefix`),
        brought in step with the backend first."""
        tokens = self._backend_tokens(group, stream_prefix)
        stale = []
        with self._lock:
            held = self._streams.setdefault(group, {})
            for name in [name for name in held if name.startswith(stream_prefix) and name not in tokens]:
                del held[name]
            stale = [name for name, token in tokens.items() if name not in held or held[name].token != token]
        for name in stale:
            fresh = self._read_stream(group, name, log)
            with self._lock:
                self._streams.setdefault(group, {})[name] = fresh
        with self._lock:
            batches = [one for name, events in self._streams.get(group, {}).items() if name in tokens for one in events.batches]
        table = pa.Table.from_batches(batches, SCHEMA)
        if since is not None and table.num_rows:
            table = table.filter(pc.greater_equal(table["timestamp"], since))
        return table

    def _backend_tokens(self, group: str, prefix: str) -> dict[str, int]:
        arguments = {"logGroupName": group}
        if prefix:
            arguments["logStreamNamePrefix"] = prefix
        pages = self._client().get_paginator("describe_log_streams").paginate(**arguments)
        return {stream["logStreamName"]: int(stream.get("uploadSequenceToken") or 0) for page in pages for stream in page["logStreams"]}

    def _read_stream(self, group: str, stream: str, log: str) -> StreamEvents:
        client = self._client()
        # the token first: events written while the pages are read make the stream stale again, never lost
        token = self._backend_tokens(group, stream).get(stream, 0)
        events: list[dict] = []
        arguments = {"logGroupName": group, "logStreamName": stream, "startFromHead": True, "limit": PAGE_EVENTS}
        previous = None
        while True:
            page = client.get_log_events(**arguments)
            events.extend(page["events"])
            following = page.get("nextForwardToken")
            if not page["events"] or following == previous:
                break
            previous = arguments["nextToken"] = following
        batches = [batch(events, [event.get("ingestionTime", event["timestamp"]) for event in events], stream, log)] if events else []
        return StreamEvents(token, batches)
