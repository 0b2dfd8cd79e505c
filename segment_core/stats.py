"""Counters behind :meth:`Client.stats`."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["Stats"]


class Stats:
    """Thread-safe counters; :meth:`snapshot` is a plain dict for logs and status pages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.sent = 0
        self.failed = 0
        self.retries = 0
        self.batches = 0
        self.dropped: Counter[str] = Counter()
        self.last_error: str | None = None

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def drop(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += count

    def error(self, text: str) -> None:
        self.last_error = text

    def snapshot(self, queued: int) -> dict[str, Any]:
        with self._lock:
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
