"""Counters behind :meth:`Client.stats`."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

__all__ = ["Stats"]

#: A count to make: the counters to add to, and a reason dropped with its count.
_Change = tuple[dict[str, int], str, int]


class Stats:
    """Thread-safe counters; :meth:`snapshot` is a plain dict for logs and status pages.

    Counting never waits: a change is queued (one atomic append), and whoever finds
    the lock free adds up what is queued; :meth:`snapshot` adds it all up first. A
    call made on a thread inside another (a signal handler's, a finalizer's the
    garbage collector runs) never waits for that thread, nor changes a count in the
    middle of its change; nor does a thread wait for one interrupted with the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._held_here: Callable[[], bool] = self._lock._is_owned  # type: ignore[attr-defined]
        self._changes: deque[_Change] = deque()
        self.accepted = 0
        self.sent = 0
        self.failed = 0
        self.retries = 0
        self.batches = 0
        self.dropped: Counter[str] = Counter()
        self.last_error: str | None = None

    def add(self, **counts: int) -> None:
        self._count((counts, "", 0))

    def drop(self, reason: str, count: int = 1) -> None:
        self._count(({}, reason, count))

    def error(self, text: str) -> None:
        self.last_error = text

    def snapshot(self, queued: int) -> dict[str, Any]:
        nested = self._held_here()
        with self._lock:  # (nested in this thread's own adding up: what is added so far)
            if not nested:
                self._add_up()
            return {
                "queued": queued,
                "accepted": self.accepted,
                "sent": self.sent,
                "failed": self.failed,
                "dropped": dict(self.dropped),
                "retries": self.retries,
                "batches": self.batches,
                "last_error": self.last_error,
            }

    def _count(self, change: _Change) -> None:
        self._changes.append(change)
        if self._held_here() or not self._lock.acquire(blocking=False):
            return  # added up by the thread adding up now, or by the next call
        try:
            self._add_up()
        finally:
            self._lock.release()

    def _add_up(self) -> None:
        """Apply the queued changes (lock held)."""
        while True:
            try:
                counts, reason, dropped = self._changes.popleft()
            except IndexError:
                return
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)
            if reason:
                self.dropped[reason] += dropped
