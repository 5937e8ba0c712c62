"""What an engine read from the backend, kept until the engine sees a change to it.

Engines read settings the backend holds (an event bus's rules, a bucket's policy or notification configuration,
a function's concurrency) on the request path, outside any lock, and keep the answer. The request that changes
the setting may be answered while such a read is under way on another thread: the read began before the change,
so its answer may lack it, and keeping it would hide the change until the next one (a rule whose new target never
receives an event). So a read is kept only when no change was seen while it ran; a change forgets what was kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class ReadCache(Generic[Value]):
    def __init__(self, limit: int | None = None):
        self._lock = threading.Lock()
        self._values: dict[Hashable, Value] = {}
        self._changes = 0  # changes seen so far: a read that saw a different count when it began is not kept
        self._limit = limit  # at most this many kept (the oldest kept go first); None: no bound

    def get(self, key: Hashable, read: Callable[[], Value], keep: Callable[[Value], bool] | None = None) -> Value:
        """The kept value of `key`, else `read()` (kept unless a change was seen meanwhile, or `keep` says the
        value must not be); what `read` raises goes to the caller and nothing is kept."""
        with self._lock:
            if key in self._values:
                return self._values[key]
            changes = self._changes
        value = read()
        if keep is not None and not keep(value):
            return value
        with self._lock:
            if changes == self._changes:
                self._values[key] = value
                if self._limit is not None and len(self._values) > self._limit:
                    del self._values[next(iter(self._values))]
        return value

    def forget(self, key: Hashable) -> None:
        """`key` changed in the backend."""
        with self._lock:
            self._values.pop(key, None)
            self._changes += 1

    def forget_where(self, changed: Callable[[Hashable], bool]) -> None:
        """Every key for which `changed(key)` holds changed in the backend."""
        with self._lock:
            for key in [key for key in self._values if changed(key)]:
                del self._values[key]
            self._changes += 1

    def forget_all(self) -> None:
        with self._lock:
            self._values.clear()
            self._changes += 1
