"""Relay good batches to a real Segment-compatible endpoint, best effort.

Requests are queued and sent by one daemon thread, so a slow or failing upstream
never slows the collector down. What one request brought is relayed in as many
requests as Segment's limits need (SPEC.md: 500 KB and 2,500 messages per request,
32 KB per message): a batch merged with its shared `context` can outgrow them.
When the queue is full a batch is dropped and counted; a failed send is logged and
counted, never retried.

Each relayed request keeps the sender's clock in its `sentAt`, so that Segment's skew
correction (`timestamp = receivedAt - (sentAt - originalTimestamp)`, SPEC.md) still
corrects a device with a wrong clock: it is the sender's `sentAt` plus the time the
batch spent in the collector, stamped as each request leaves. Only a request without
a `sentAt` is relayed with the collector's clock. Requests are never merged, so every
message of a relayed request shares the sender's clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import queue
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import IO
from urllib.parse import urljoin

import orjson

from segment_core.batching import pack
from segment_core.collector.ingest import Limits
from segment_core.encoding import format_timestamp
from segment_core.hosts import (
    check_host,
    doubled_api_path,
    masked_secrets,
    redact_url,
    shown_answer,
)
from segment_core.spec import parse_iso8601

__all__ = ["Forwarder", "checked_base_url"]

logger = logging.getLogger("segment.collector")

#: Segment's own limits, whatever the collector was started with.
SEGMENT_LIMITS = Limits()
#: How much of an upstream's refusal to read: enough for its error code and message.
ERROR_BODY_READ_BYTES = 2000


def checked_base_url(url: str) -> str:
    """`url` if it is an http(s) URL with a host; else a ValueError naming `forward`.

    The rules of the client's `host`: no credentials (the write key travels as HTTP
    Basic), no spaces, no query and no fragment, not even an empty one; and no
    ``/v1`` at its end, which the forwarder adds.
    """
    check_host(url, name="forward")
    doubled = doubled_api_path(url)
    if doubled is not None:
        raise ValueError(
            f"forward ends with {doubled}, which the collector adds itself "
            f"(batches would go to {doubled}/v1/batch): give the base URL, got "
            f"{redact_url(url)!r}"
        )
    return url


class _FollowNoRedirect(urllib.request.HTTPRedirectHandler):
    """Makes a redirect the answer: urllib would follow a 301 or 302 as a GET without
    the batch, and send the write key to whichever server the Location names."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> None:
        return None


@dataclass(frozen=True)
class _Request:
    """What one request brought to relay, and the times that place the sender's clock."""

    messages: list[bytes]
    write_key: str | None
    sent_at: str | None
    received_at: str | None


def _sender_clock_offset(sent_at: str | None, received_at: str | None) -> dt.timedelta | None:
    """How far the sender's `sentAt` is ahead of the collector's `receivedAt` of it.

    Its clock's skew (plus the time the request took to arrive); None when either is
    missing or not ISO-8601. A time without an offset is taken as UTC.
    """
    sent = parse_iso8601(sent_at) if sent_at is not None else None
    received = parse_iso8601(received_at) if received_at is not None else None
    if sent is None or received is None:
        return None
    return _as_utc(sent) - _as_utc(received)


def _relayed_sent_at(offset: dt.timedelta | None) -> str:
    """The `sentAt` of a request leaving now: the collector's clock moved by `offset`.

    The collector's own clock when `offset` is None, or when the moved time falls
    outside years 1 to 9999.
    """
    now = dt.datetime.now(dt.timezone.utc)
    if offset is not None:
        try:
            return format_timestamp(now + offset)
        except OverflowError:
            pass
    return format_timestamp(now)


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


class Forwarder:
    """Sends batches to `{url}/v1/batch` from a background thread.

    `stats`: requests `sent` and `failed`, batches `dropped` (queue full) and
    messages `too_large` (over Segment's 32 KB, never sent).
    """

    def __init__(self, url: str, *, max_queue: int = 1000, timeout: float = 10.0) -> None:
        self.url = checked_base_url(url).rstrip("/") + "/v1/batch"
        self._timeout = timeout
        self._queue: queue.Queue[_Request | None] = queue.Queue(max_queue)
        self._opener = urllib.request.build_opener(_FollowNoRedirect)
        self._lock = threading.Lock()
        self.stats = {"sent": 0, "failed": 0, "dropped": 0, "too_large": 0}
        self._thread = threading.Thread(
            target=self._run, name="segment-collector-forwarder", daemon=True
        )
        self._thread.start()

    def submit(
        self,
        messages: list[bytes],
        write_key: str | None,
        *,
        sent_at: str | None = None,
        received_at: str | None = None,
    ) -> None:
        """Queue messages (each already JSON) of one request for relaying; never blocks.

        `sent_at`: the request's `sentAt`; `received_at`: when the collector received
        it. With both, the relayed `sentAt` keeps the sender's clock (see the module
        docstring); else it is the collector's.
        """
        if not messages:
            return
        try:
            self._queue.put_nowait(_Request(messages, write_key, sent_at, received_at))
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
            try:
                self._relay(item)
            except Exception:  # a bug here must never kill the relay
                logger.exception("could not forward a batch to %s", redact_url(self.url))
                self._count("failed")

    def _relay(self, request: _Request) -> None:
        messages, write_key = request.messages, request.write_key
        fitting = [m for m in messages if len(m) <= SEGMENT_LIMITS.max_message_bytes]
        if len(fitting) < len(messages):
            too_large = len(messages) - len(fitting)
            logger.warning(
                "not forwarding %d message(s) over %d bytes to %s: Segment refuses them",
                too_large,
                SEGMENT_LIMITS.max_message_bytes,
                redact_url(self.url),
            )
            self._count("too_large", too_large)
        offset = _sender_clock_offset(request.sent_at, request.received_at)
        # The messages are already JSON: splice them in rather than parse them again.
        # Every sentAt has the same length, so the first one sizes the room of all.
        head = b'{"batch":['
        room = SEGMENT_LIMITS.max_request_bytes - len(head) - len(_tail(offset, write_key))
        for chunk in pack(fitting, max_messages=SEGMENT_LIMITS.max_batch_messages, max_bytes=room):
            body = head + b",".join(chunk) + _tail(offset, write_key)
            self._count("sent" if self._send(body, write_key) else "failed")

    def _send(self, body: bytes, write_key: str | None) -> bool:
        """POST one body; False (and one line in the log) when it did not arrive."""
        headers = {"Content-Type": "application/json", "User-Agent": "segment-collector"}
        token: str | None = None
        if write_key is not None:
            token = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                response.read()
        except urllib.error.HTTPError as error:
            if 300 <= error.code < 400:
                error.close()
                self._log_redirect(error.code, error.headers.get("Location"), (write_key, token))
                return False
            with error:
                reason = error.read(ERROR_BODY_READ_BYTES).decode("utf-8", "replace")
            # The upstream may echo the request: its credentials and its events.
            logger.warning(
                "%s refused a forwarded batch of %d bytes: HTTP %d %r",
                redact_url(self.url),
                len(body),
                error.code,
                shown_answer(reason, (write_key, token)),
            )
            return False
        except OSError as error:  # refused, unreachable, timed out, TLS
            logger.warning("could not forward a batch to %s: %s", redact_url(self.url), error)
            return False
        return True

    def _log_redirect(
        self, status: int, location: str | None, credentials: tuple[str | None, ...]
    ) -> None:
        try:
            # repr keeps the upstream's text on one line, whatever it holds.
            target = repr(redact_url(urljoin(self.url, location))) if location else "nowhere"
        except ValueError:  # not a URL
            target = repr(location)
        target = masked_secrets(target, credentials)  # a login page's ?next=...&writeKey=...
        logger.warning(
            "%s redirected a forwarded batch (HTTP %d) to %s: not followed, the batch "
            "and its write key are for the configured server alone",
            redact_url(self.url),
            status,
            target,
        )

    def _count(self, what: str, amount: int = 1) -> None:
        with self._lock:
            self.stats[what] += amount


def _tail(offset: dt.timedelta | None, write_key: str | None) -> bytes:
    """The end of a relayed body after its messages: `sentAt` (stamped now) and `writeKey`."""
    envelope = {"sentAt": _relayed_sent_at(offset)}
    if write_key is not None:
        envelope["writeKey"] = write_key
    return b"]," + orjson.dumps(envelope)[1:]
