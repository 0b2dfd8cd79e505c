"""Small raw-ASGI helpers: JSON responses, body draining and applying a fault."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from segment_core._clock import monotonic
from segment_core.collector._json import dumps
from segment_core.collector.faults import Fault
from segment_core.retry import parse_http_date

__all__ = ["JSONBytesResponse", "apply_fault", "error_response", "read_body", "replay"]

# How much of a body to read and throw away before answering an error, so that the
# client sees the answer instead of a reset connection. Past this we stop reading.
DRAIN_LIMIT = 64 * 1024 * 1024
# Statuses whose responses have no body: an injected one is sent without one.
_NO_BODY_STATUSES = frozenset({204, 304})


class JSONBytesResponse(Response):
    """A JSON response rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONBytesResponse:
    """The collector's one error shape: `{"code": ..., "message": ...}`."""
    return JSONBytesResponse({"code": code, "message": message}, status, headers=headers)


async def read_body(receive: Receive, keep: int) -> bytes | None:
    """Read the whole request body, keeping its first `keep` bytes (and one more,
    so an over-long body stays over-long); None if the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if size <= keep:
            chunks.append(chunk[: keep + 1 - size])
        size += len(chunk)
        if not message.get("more_body", False) or size > DRAIN_LIMIT:
            return b"".join(chunks)


async def _wait_while(planned: Callable[[], bool], seconds: float) -> None:
    """Sleep `seconds`, or less once `planned()` turns False (looked at every 50 ms)."""
    deadline = monotonic() + seconds
    while planned():
        remaining = deadline - monotonic()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.05))


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands out `body` once, then defers to the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def apply_fault(
    fault: Fault,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    keep: int,
    planned: Callable[[], bool] = lambda: True,
) -> Receive | None:
    """Wait and/or answer as `fault` says.

    The body is read first, as a real server would before it stalls or fails, so a
    delayed request is still handled when its client has given up waiting. The
    delay ends early once `planned()` is False (the plans were cleared: a test's
    reset, the collector's shutdown). Returns None when the request was answered
    (or dropped) here, otherwise the `receive` to hand on to the app.
    """
    body = await read_body(receive, 0 if fault.answers else keep)
    if body is None:
        return None
    if fault.delay:
        await _wait_while(planned, fault.delay)
    if not fault.answers:
        return replay(body, receive)
    if fault.close:
        await _close_connection(receive, send)
        return None
    assert fault.status is not None
    headers = _limit_headers(fault) if fault.status == 429 else {}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    response: Response
    if fault.status in _NO_BODY_STATUSES:
        response = Response(status_code=fault.status, headers=headers or None)
    else:
        response = error_response(
            fault.status,
            "injected_fault",
            f"fault injected by the collector: {fault.status}",
            headers or None,
        )
    await response(scope, receive, send)
    return None


def _limit_headers(fault: Fault) -> dict[str, str]:
    """What Segment sends with a 429: when the rate limit resets, in epoch seconds.

    The moment the `Retry-After` names, when there is one: its seconds from now, or
    its HTTP date (one already past: now). Without one, or with a text that is no
    date, one second from now.
    """
    now = time.time()
    reset = now + 1.0
    if fault.retry_after is not None:
        try:
            reset = now + float(fault.retry_after)
        except ValueError:
            when = parse_http_date(fault.retry_after)
            if when is not None:
                reset = max(now, when)
    return {"X-RateLimit-Reset": str(math.ceil(reset))}  # never before the moment named


async def _close_connection(receive: Receive, send: Send) -> None:
    """Drop the connection without a response.

    ASGI has no message for this, so reach uvicorn's transport through its `send`
    (a bound method of the request cycle, which holds the transport).
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise RuntimeError("closing a connection needs uvicorn's HTTP/1.1 server")
    transport.abort()
    # Let the server see the connection go, so it does not try to answer a 500.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(_until_disconnect(receive), timeout=1.0)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
