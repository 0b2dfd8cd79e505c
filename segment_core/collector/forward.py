"""Relay good batches to a real Segment-compatible endpoint, best effort.

Requests are queued and sent by one daemon thread, so a slow or failing upstream
never slows the collector down. When the queue is full a batch is dropped and
counted; a failed send is logged and counted, never retried.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import urllib.request
from typing import Any

import orjson

from segment_core.collector.ingest import utc_now_iso
from segment_core.hosts import redact_url

__all__ = ["Forwarder"]

logger = logging.getLogger("segment.collector")


class Forwarder:
    """Sends batches to `{url}/v1/batch` from a background thread."""

    def __init__(self, url: str, *, max_queue: int = 1000, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/") + "/v1/batch"
        self._timeout = timeout
        self._queue: queue.Queue[tuple[list[bytes], str | None] | None] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self.stats = {"sent": 0, "failed": 0, "dropped": 0}
        self._thread = threading.Thread(
            target=self._run, name="segment-collector-forwarder", daemon=True
        )
        self._thread.start()

    def submit(self, messages: list[bytes], write_key: str | None) -> None:
        """Queue messages (each already JSON) for relaying; never blocks."""
        if not messages:
            return
        try:
            self._queue.put_nowait((messages, write_key))
        except queue.Full:
            self._count("dropped")

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (within `timeout`), then stop the thread."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:  # close() asks the thread to stop
                return
            messages, write_key = item
            try:
                self._send(messages, write_key)
            except Exception:  # a bad upstream must never kill the relay
                logger.warning(
                    "could not forward a batch to %s", redact_url(self.url), exc_info=True
                )
                self._count("failed")
            else:
                self._count("sent")

    def _send(self, messages: list[bytes], write_key: str | None) -> None:
        envelope: dict[str, Any] = {"sentAt": utc_now_iso()}
        headers = {"Content-Type": "application/json", "User-Agent": "segment-collector"}
        if write_key is not None:
            envelope["writeKey"] = write_key
            token = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        # The messages are already JSON: splice them in rather than parse them again.
        body = b'{"batch":[' + b",".join(messages) + b"]," + orjson.dumps(envelope)[1:]
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self._timeout) as response:
            response.read()

    def _count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1
