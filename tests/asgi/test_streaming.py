"""Streaming: each chunk goes out as it is produced; the page call comes after the last,
or as a stream cut short ends.

The generator waits for the client to have received the first chunk before it
produces the second (an ``asyncio.Event`` handshake): a middleware that held a
chunk back would deadlock it, which the timeouts turn into a failure.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from segment_asgi import SegmentMiddleware
from segment_core import Client, signals
from segment_core.collector.handle import CollectorHandle
from tests.asgi.asgi import Message, call, http_scope

TIMEOUT = 10


def streaming_app(order: list[str], first_received: asyncio.Event) -> Starlette:
    async def chunks() -> AsyncIterator[bytes]:
        order.append("produce one")
        yield b"one "
        await first_received.wait()
        order.append("produce two")
        yield b"two"

    async def stream(request: Request) -> Response:
        return StreamingResponse(chunks(), media_type="text/html")

    return Starlette(routes=[Route("/stream", stream, name="stream")])


@contextmanager
def recording_enqueued(order: list[str]) -> Iterator[None]:
    def on_enqueued(sender: Any, message: dict[str, Any], **kwargs: Any) -> None:
        order.append(f"enqueued {message['type']}")

    with signals.message_enqueued.connected_to(on_enqueued):
        yield


async def test_chunks_are_forwarded_at_once_and_the_page_goes_with_the_last(
    client: Client, segment_collector: CollectorHandle
) -> None:
    order: list[str] = []
    first_received = asyncio.Event()

    def server_got(message: Message) -> None:
        if message["type"] == "http.response.body":
            order.append(f"sent {message['body']!r}")
            first_received.set()

    app = SegmentMiddleware(streaming_app(order, first_received), client=client)
    with recording_enqueued(order):
        await call(app, http_scope("/stream"), server_got)
    assert order == [
        "produce one",
        "sent b'one '",
        "produce two",
        "sent b'two'",
        "enqueued page",  # as the last chunk goes: a test then finds it in the outbox
        "sent b''",
    ]
    assert client.flush(timeout=TIMEOUT)
    [page] = segment_collector.wait_for(1, type="page")
    assert page["message"]["name"] == "stream"


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a loopback port, in this event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, http="h11", ws="none", lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        with anyio.fail_after(TIMEOUT):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, TIMEOUT)
        sock.close()


async def test_chunks_reach_a_real_client_before_the_next_is_produced(
    client: Client, segment_collector: CollectorHandle
) -> None:
    order: list[str] = []
    first_received = asyncio.Event()
    app = SegmentMiddleware(streaming_app(order, first_received), client=client)
    with recording_enqueued(order):
        async with serving(app) as url, httpx.AsyncClient() as http:
            with anyio.fail_after(TIMEOUT):
                async with http.stream("GET", f"{url}/stream") as response:
                    async for chunk in response.aiter_raw():
                        order.append(f"client got {chunk!r}")
                        first_received.set()
    # Nothing was enqueued while the stream was open; the page call went out with
    # its end (the client may read "two" just before or after it was enqueued).
    assert order[:3] == ["produce one", "client got b'one '", "produce two"]
    assert sorted(order[3:]) == ["client got b'two'", "enqueued page"]
    assert "ajs_anonymous_id" in response.cookies
    assert client.flush(timeout=TIMEOUT)
    [page] = segment_collector.wait_for(1, type="page")
    assert page["message"]["anonymousId"] == response.cookies["ajs_anonymous_id"]


async def test_a_stream_the_visitor_leaves_before_its_end_gets_its_page_call(
    client: Client, segment_collector: CollectorHandle
) -> None:
    """Starlette cancels a stream whose visitor left; the page was shown all the same."""
    rest_of_report = asyncio.Event()  # never set: the visitor leaves first

    async def chunks() -> AsyncIterator[bytes]:
        yield b"<h1>Report</h1>"
        await rest_of_report.wait()
        yield b"<p>rows</p>"

    async def report(request: Request) -> Response:
        return StreamingResponse(chunks(), media_type="text/html")

    page_enqueued = asyncio.Event()

    def on_enqueued(sender: Any, message: dict[str, Any], **kwargs: Any) -> None:
        if message["type"] == "page":
            page_enqueued.set()

    app = SegmentMiddleware(
        Starlette(routes=[Route("/report", report, name="report")]), client=client
    )
    with signals.message_enqueued.connected_to(on_enqueued):
        async with serving(app) as url, httpx.AsyncClient() as http:
            with anyio.fail_after(TIMEOUT):
                async with http.stream("GET", f"{url}/report") as response:
                    async for _ in response.aiter_raw():
                        break  # the first chunk, then the visitor leaves
                await page_enqueued.wait()
    assert client.flush(timeout=TIMEOUT)
    [page] = segment_collector.wait_for(1, type="page")
    assert page["message"]["name"] == "report"
    assert page["message"]["anonymousId"] == response.cookies["ajs_anonymous_id"]


async def test_a_page_whose_app_fails_in_its_body_gets_its_page_call(
    client: Client, segment_collector: CollectorHandle
) -> None:
    async def report(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<h1>Report</h1>", "more_body": True})
        raise RuntimeError("the report's database went away")

    with pytest.raises(RuntimeError, match="database went away"):
        await call(SegmentMiddleware(report, client=client), http_scope("/report"))
    assert client.flush(timeout=TIMEOUT)
    [page] = segment_collector.wait_for(1, type="page")
    assert page["message"]["properties"]["path"] == "/report"
