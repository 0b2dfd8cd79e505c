"""``sync_mode``: the page call is sent on the calling thread, which is not the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import segment_core
from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.collector.handle import CollectorHandle
from tests.asgi.asgi import call, http_scope
from tests.asgi.conftest import TestClient

#: How long the collector takes to answer: the page call's POST lasts that long.
SLOW_ANSWER = 2.0


async def home(request: Request) -> Response:
    return HTMLResponse("<p>home</p>")


async def ping(request: Request) -> Response:
    return PlainTextResponse("pong")  # no page view: nothing to send


APP = Starlette(routes=[Route("/", home), Route("/ping", ping)])


class PageCallWatch:
    """When the page call's POST starts (``before_send``) and when it is answered."""

    def __init__(self) -> None:
        self.posting = threading.Event()
        self.delivered_at: float | None = None

    def before_send(self, message: dict[str, Any]) -> dict[str, Any]:
        self.posting.set()
        return message

    def on_success(self, message: dict[str, Any]) -> None:
        self.delivered_at = time.monotonic()


@pytest.fixture
def watch() -> PageCallWatch:
    return PageCallWatch()


@pytest.fixture
def sync_client(segment_collector: CollectorHandle, watch: PageCallWatch) -> Iterator[Client]:
    """A ``sync_mode`` client whose sends the collector answers after ``SLOW_ANSWER``."""
    segment_collector.faults({"delay": SLOW_ANSWER, "count": 1})
    client = Client(
        "test-key",
        host=segment_collector.url,
        sync_mode=True,
        timeout=10,
        before_send=watch.before_send,
        on_success=watch.on_success,
    )
    yield client
    client.shutdown(timeout=5)


async def ping_while_the_page_call_is_sent(
    middleware: SegmentMiddleware, watch: PageCallWatch
) -> float:
    """Request a page, then /ping once its page call's POST has started; when /ping
    was answered."""
    page = asyncio.create_task(call(middleware, http_scope("/")))
    assert await asyncio.to_thread(watch.posting.wait, 10), "no page call was sent"
    [start, _] = await call(middleware, http_scope("/ping"))
    answered_at = time.monotonic()
    assert start["status"] == 200
    await page
    return answered_at


async def test_other_requests_go_on_while_a_sync_mode_page_call_waits_for_segment(
    sync_client: Client, watch: PageCallWatch, segment_collector: CollectorHandle
) -> None:
    middleware = SegmentMiddleware(APP, client=sync_client)
    pinged_at = await ping_while_the_page_call_is_sent(middleware, watch)
    assert watch.delivered_at is not None, "the page call was not delivered"
    assert pinged_at < watch.delivered_at  # /ping did not wait for Segment's answer
    [event] = segment_collector.events()
    assert event["message"]["context"]["page"]["path"] == "/"


async def test_the_same_with_a_sync_mode_default_client(
    sync_client: Client,
    watch: PageCallWatch,
    segment_collector: CollectorHandle,
    default_client: None,
) -> None:
    middleware = SegmentMiddleware(APP)  # no client options: segment_core's default client
    segment_core.default_client = sync_client  # made sync_mode after the middleware
    pinged_at = await ping_while_the_page_call_is_sent(middleware, watch)
    assert watch.delivered_at is not None, "the page call was not delivered"
    assert pinged_at < watch.delivered_at
    assert len(segment_collector.events()) == 1


async def streamed(request: Request) -> Response:
    async def chunks() -> Any:
        yield b"<p>one"
        yield b" two</p>"

    return StreamingResponse(chunks(), media_type="text/html")


def test_a_streamed_page_s_sync_mode_page_call_is_not_cancelled_with_its_response(
    segment_collector: CollectorHandle,
) -> None:
    # The response's task group is cancelled once its last chunk is sent.
    client = Client("test-key", host=segment_collector.url, sync_mode=True, timeout=10)
    app = SegmentMiddleware(Starlette(routes=[Route("/streamed", streamed)]), client=client)
    try:
        with TestClient(app) as browser:
            assert (
                browser.get("/streamed", headers={"accept": "text/html"}).text == "<p>one two</p>"
            )
    finally:
        client.shutdown(timeout=5)
    [event] = segment_collector.events()
    assert event["message"]["context"]["page"]["path"] == "/streamed"
