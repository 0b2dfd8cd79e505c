"""Small raw-ASGI helpers: JSON responses, body draining and applying a fault."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from segment_core.collector.faults import Fault

__all__ = ["JSONBytesResponse", "apply_fault", "error_response"]

# How much of a body to read and throw away before answering an error, so that the
# client sees the answer instead of a reset connection. Past this we stop reading.
DRAIN_LIMIT = 64 * 1024 * 1024


class JSONBytesResponse(Response):
    """A JSON response rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONBytesResponse:
    """The collector's one error shape: `{"code": ..., "message": ...}`."""
    return JSONBytesResponse({"code": code, "message": message}, status, headers=headers)


async def drain_body(receive: Receive) -> bool:
    """Read and discard the request body; False if the client went away."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        size += len(message.get("body", b""))
        if not message.get("more_body", False) or size > DRAIN_LIMIT:
            return True


async def apply_fault(fault: Fault, scope: Scope, receive: Receive, send: Send) -> bool:
    """Wait and/or answer as `fault` says; True when the request was answered here."""
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if not fault.answers:
        return False
    if not await drain_body(receive):
        return True
    if fault.close:
        await _close_connection(receive, send)
        return True
    assert fault.status is not None
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
    response = error_response(
        fault.status, "injected_fault", f"fault injected by the collector: {fault.status}", headers
    )
    await response(scope, receive, send)
    return True


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
    try:
        await asyncio.wait_for(_until_disconnect(receive), timeout=1.0)
    except asyncio.TimeoutError:
        pass


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
