"""Metrics: how an engine publishes AWS's own CloudWatch metrics without waiting on CloudWatch.

An engine calls `metrics.put("AWS/Lambda", "Invocations", {"FunctionName": name}, 1, "Count")` at the moment
something happened; the datapoint is stamped with lab time and buffered. The buffer goes out as PutMetricData
through the gateway, grouped by region and namespace, in batches: from a background thread about once a real
second, at once when it fills, and whenever `flush()` is called (the CloudWatch engine flushes before it
answers a read of metrics or evaluates an alarm on the lab clock, so what happened before is always there).
Until a sender is attached (the CloudWatch engine attaches one when it starts) nothing is kept: a stack
without CloudWatch pays nothing for metrics.

Some of AWS's metrics are gauges a service samples (SQS reads each queue's depth every minute). A sample costs a
call, so it is taken only while something needs it: the CloudWatch engine says which metrics its alarms watch
(`watch` / `unwatch`) and asks for a sample of them at the moments it evaluates them and before it answers a read
(`sample`); the engine that can read the gauge registers a sampler for its namespace (`add_sampler`), which puts
its datapoints here like any other.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from dealab.wire import labtime

log = logging.getLogger("dealab.metrics")

# PutMetricData takes at most 1,000 datapoints a call.
BATCH = 1000
FLUSH_SECONDS = 1.0
# A sender that cannot keep up loses the oldest datapoints beyond this many, never the stack's memory.
MAX_BUFFERED = 100_000

Send = Callable[[str, str, list[dict]], None]  # (region, namespace, MetricData)
# A metric as the CloudWatch engine keys it: (region, namespace, name, sorted (dimension, value) pairs)
Key = tuple[str, str, str, tuple[tuple[str, str], ...]]
Sample = Callable[[datetime.datetime, set[Key]], None]  # (lab moment, the sampler's metrics wanted then)

_lock = threading.Lock()
_buffer: list[tuple[str, str, dict]] = []
_sender: Send | None = None
_default_region = "us-east-1"
_wake = threading.Event()
_flusher: threading.Thread | None = None
_samplers: dict[str, tuple[Sample, Callable[[], None]]] = {}  # namespace → (sample, on_watch)
_watched: dict[Key, int] = {}  # metric → how many alarms watch it


def put(namespace: str, name: str, dimensions: dict[str, str], value: float, unit: str = "Count",
        at: datetime.datetime | None = None, region: str | None = None) -> None:
    """Buffers one datapoint of `namespace`/`name` (at lab now unless `at` says when); never blocks on CloudWatch."""
    if _sender is None:
        return
    datum = {"MetricName": name, "Dimensions": [{"Name": key, "Value": str(item)} for key, item in dimensions.items()],
             "Value": float(value), "Unit": unit, "Timestamp": at or labtime.now()}
    with _lock:
        _buffer.append((region or _default_region, namespace, datum))
        if len(_buffer) > MAX_BUFFERED:
            del _buffer[: len(_buffer) - MAX_BUFFERED]
        full = len(_buffer) >= BATCH
    if full:
        _wake.set()


def flush() -> None:
    """Sends everything buffered now, on the calling thread."""
    with _lock:
        taken = _buffer[:]
        _buffer.clear()
    sender = _sender
    if not taken or sender is None:
        return
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for region, namespace, datum in taken:
        groups[(region, namespace)].append(datum)
    for (region, namespace), data in groups.items():
        for start in range(0, len(data), BATCH):
            try:
                sender(region, namespace, data[start:start + BATCH])
            except Exception:  # a metric is never worth an engine's failure
                log.exception("PutMetricData of %d %s datapoints failed", len(data[start:start + BATCH]), namespace)


def attach(send: Send, default_region: str) -> None:
    """Where datapoints go from now on (the CloudWatch engine's client); starts the background flusher."""
    global _sender, _default_region, _flusher
    _sender, _default_region = send, default_region
    if _flusher is None:
        _flusher = threading.Thread(target=_flush_forever, name="metrics-flush", daemon=True)
        _flusher.start()


def detach() -> None:
    """Stops sending (the stack closes); what is buffered is dropped."""
    global _sender
    _sender = None
    with _lock:
        _buffer.clear()


def add_sampler(namespace: str, sample: Sample, on_watch: Callable[[], None]) -> None:
    """`sample(at, keys)` puts datapoints of `namespace`'s sampled metrics; `on_watch()` is told when an alarm starts
    watching one of them (so the sampler can take its once-a-minute samples while they are watched)."""
    _samplers[namespace] = (sample, on_watch)


def remove_sampler(namespace: str) -> None:
    _samplers.pop(namespace, None)


def watch(key: Key) -> None:
    with _lock:
        _watched[key] = _watched.get(key, 0) + 1
    sampler = _samplers.get(key[1])
    if sampler is not None:
        sampler[1]()


def unwatch(key: Key) -> None:
    with _lock:
        if _watched.get(key, 0) <= 1:
            _watched.pop(key, None)
        else:
            _watched[key] -= 1


def watched(namespace: str) -> set[Key]:
    with _lock:
        return {key for key in _watched if key[1] == namespace}


def sample(at: datetime.datetime, keys: set[Key]) -> None:
    """Has the samplers put their datapoints of `keys` (those of sampled namespaces) as they stand at `at`."""
    wanted: dict[str, set[Key]] = defaultdict(set)
    for key in keys:
        if key[1] in _samplers:
            wanted[key[1]].add(key)
    for namespace, namespace_keys in wanted.items():
        try:
            _samplers[namespace][0](at, namespace_keys)
        except Exception:  # a metric is never worth an engine's failure
            log.exception("sampling %s failed", namespace)


def _flush_forever() -> None:
    while True:
        _wake.wait(FLUSH_SECONDS)
        _wake.clear()
        flush()
