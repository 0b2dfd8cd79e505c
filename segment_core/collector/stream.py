"""Server-sent events: push new events and summary counts to the web page.

`GET /collector/stream?after=<seq>` (or `<run>-<seq>`, with the `run` of
`/collector/events`) sends every stored event after the cursor as
`event: message` (with `id: <run>-<seq>`, so a reconnecting browser resumes from
`Last-Event-ID`), `event: summary` whenever the counts change, and `event: reset`
after `POST /collector/reset`. A reset starts a new run: a cursor of another run
(from before a reset, or before a restart) gets `event: reset` and the newest
events held, as many as a page loads. A stream ends after a few seconds of life
and the browser reconnects on its own. `Notifier.close()` ends every stream at
once, so that a server with a page open still stops quickly.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from segment_core.collector._asgi import error_response
from segment_core.collector._json import dumps
from segment_core.collector.store import EventQuery, EventStore

__all__ = ["MAX_CURSOR", "Notifier", "parse_count", "stream_endpoint"]

#: The largest cursor SQLite can hold (a signed 64-bit integer).
MAX_CURSOR = 2**63 - 1

STREAM_LIFETIME_SECONDS = 25.0
KEEPALIVE_SECONDS = 10.0
# Coalesce bursts: at most one round of updates per interval and stream.
MIN_UPDATE_INTERVAL_SECONDS = 0.1
PAGE_SIZE = 500


class Notifier:
    """Wakes stream readers when the store changes.

    `notify` is called from the event loop; `close` from any thread (or a signal
    handler), to end every stream before the server shuts down.
    """

    def __init__(self) -> None:
        #: Names the events' run in the streams' event ids: a browser that
        #: reconnects to another run is told to reset, rather than skip what it has
        #: not seen (after a restart in memory, whose cursors start again) or keep
        #: what is gone (after a reset made while it was away).
        self.run = secrets.token_hex(4)
        self.version = 0
        self.resets = 0
        self.closed = False
        self._waiters: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def notify(self, *, reset: bool = False) -> None:
        self.version += 1
        if reset:
            self.resets += 1
            self.run = _another_run(self.run)
        self._wake()

    def close(self) -> None:
        self.closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, seen_version: int, timeout: float) -> bool:
        """Wait until the version moves past `seen_version`; False on timeout."""
        if self.version != seen_version or self.closed:
            return True
        self._loop = asyncio.get_running_loop()
        waiter = self._loop.create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            self._waiters.discard(waiter)
        return True


def parse_count(text: str, name: str, *, minimum: int) -> int:
    """A cursor or count from a query string or header: plain decimal digits, in range.

    Raises ValueError naming ``name``.
    """
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise ValueError(f"{name} must be a whole number from {minimum} to {MAX_CURSOR}")
    number = int(text)
    if not minimum <= number <= MAX_CURSOR:
        raise ValueError(f"{name} must be a whole number from {minimum} to {MAX_CURSOR}")
    return number


def stream_endpoint(
    store: EventStore, notifier: Notifier, summary: Callable[[], dict[str, Any]]
) -> Callable[[Request], Awaitable[Response]]:
    """Make the `/collector/stream` endpoint over `store`."""

    async def endpoint(request: Request) -> Response:
        header = request.headers.get("last-event-id")
        name = "Last-Event-ID" if header else "after"
        start = header or request.query_params.get("after")
        cursor_run: str | None = None
        try:
            # "<run>-<seq>": as _events writes its ids, and as the page passes the
            # cursor of /collector/events (a bare `after` from another run would
            # skip that run's first events).
            if start and "-" in start:
                run, _, start = start.rpartition("-")
                parse_count(start, name, minimum=0)  # the sequence number: digits
                if not run.isalnum():
                    raise ValueError(f"{name} must be <run>-<seq>, as the stream writes it")
                cursor_run = run
            after = parse_count(start, name, minimum=0) if start else store.last_seq
        except ValueError as error:
            return error_response(400, "invalid_query", str(error))
        return StreamingResponse(
            _events(store, notifier, summary, after, cursor_run),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return endpoint


async def _events(
    store: EventStore,
    notifier: Notifier,
    summary: Callable[[], dict[str, Any]],
    cursor: int,
    cursor_run: str | None,
) -> AsyncIterator[bytes]:
    deadline = time.monotonic() + STREAM_LIFETIME_SECONDS
    last_summary: dict[str, Any] | None = None
    # Read together, before the first await: a reset made later is the loop's to see.
    resets, run = notifier.resets, notifier.run.encode()
    start = b"retry: 1000\n\n"
    if cursor_run is not None and cursor_run.encode() != run:
        # What the page shows is gone (reset since), or from a run whose cursors
        # mean nothing here: it starts afresh with what a page load shows, however
        # many events a --db holds.
        events = store.query(EventQuery(last=PAGE_SIZE))
        cursor = events[-1]["seq"] if events else store.last_seq
        start += b"event: reset\ndata: {}\n\n" + _messages(run, events)
    yield start
    while time.monotonic() < deadline and not notifier.closed:
        version = notifier.version
        if notifier.resets != resets:
            resets, run = notifier.resets, notifier.run.encode()
            yield b"event: reset\ndata: {}\n\n"
        events = store.query(EventQuery(after=cursor, limit=PAGE_SIZE))
        if events:
            # A page of events as one write, then a turn for the event loop: a reader
            # that left is noticed before the next page, not after the whole backlog
            # was written into its closed socket.
            cursor = events[-1]["seq"]
            yield _messages(run, events)
            await asyncio.sleep(0)
        counts = summary()
        if counts != last_summary:
            last_summary = counts
            yield b"event: summary\ndata: %s\n\n" % orjson.dumps(counts)
        if len(events) == PAGE_SIZE:
            continue
        remaining = deadline - time.monotonic()
        if not await notifier.wait(version, min(KEEPALIVE_SECONDS, max(remaining, 0.0))):
            yield b": keep-alive\n\n"
            continue
        await asyncio.sleep(MIN_UPDATE_INTERVAL_SECONDS)
    if not notifier.closed:  # a planned end: the page reconnects, and need not say so
        yield b"event: renew\ndata: {}\n\n"


def _messages(run: bytes, events: list[dict[str, Any]]) -> bytes:
    """`events` as `message` events, each with the id a browser resumes from."""
    return b"".join(
        b"id: %s-%d\nevent: message\ndata: %s\n\n" % (run, event["seq"], dumps(event))
        for event in events
    )


def _another_run(run: str) -> str:
    """A run name other than `run`."""
    while (new := secrets.token_hex(4)) == run:
        pass
    return new
