"""Django's ASGI handler behind a router that routes by the scope's type, as Channels'
``ProtocolTypeRouter`` does, with ``segment_asgi``'s middleware or
``segment_django.asgi``'s wrapper around the router.

The router here refuses lifespan and hands each app a copy of the scope, as
Channels' routers and middleware do. The clients hold their events until they are
flushed: what reaches the collector was flushed at lifespan shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from starlette.responses import HTMLResponse

import segment_asgi._tracked_apps
import segment_django.middleware
from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.collector.handle import CollectorHandle
from segment_core.scope import analytics
from segment_django.asgi import flushing_at_shutdown
from tests.asgi.conftest import TestClient

HOLD = {"flush_at": 2500, "flush_interval": 300}


def router(routes: dict[str, Any]) -> Any:
    """An app for each scope type; an HTTP request under ``/plain/`` goes to a plain
    ASGI app instead of Django's."""

    async def route(scope: Any, receive: Any, send: Any) -> None:
        app = routes.get(scope["type"])
        if app is None:
            raise ValueError(f"No application configured for scope type {scope['type']!r}")
        if scope["type"] == "http" and scope["path"].startswith("/plain/"):
            app = HTMLResponse("<p>plain</p>")
        await app(dict(scope), receive, send)

    return route


@pytest.fixture
def holding_client(segment_collector: CollectorHandle) -> Iterator[Client]:
    """A client of the ASGI middleware's own, sending nothing until flushed."""
    client = Client("test-key", host=segment_collector.url, **HOLD)
    yield client
    client.shutdown(timeout=10)


def test_segment_asgi_stands_aside_for_the_requests_django_tracks_behind_a_router(
    segment: Any, segment_collector: CollectorHandle, holding_client: Client
) -> None:
    segment(FLUSH_AT=2500, FLUSH_INTERVAL=300)
    app = SegmentMiddleware(router({"http": ASGIHandler()}), client=holding_client)
    with TestClient(app) as browser:
        response = browser.get("/", headers={"Accept": "text/html"})
        assert browser.get("/plain/").status_code == 200  # not Django's: tracked outside
        assert segment_collector.events() == []
    [cookie] = response.headers.get_list("set-cookie")
    visitor = response.cookies["ajs_anonymous_id"]
    assert cookie.startswith(f"ajs_anonymous_id={visitor};")
    # Both clients were flushed at the middleware's shutdown: Django's joined it.
    pages = sorted(
        (e["message"]["name"], e["message"]["anonymousId"]) for e in segment_collector.events()
    )
    assert pages == [("/plain/", visitor), ("home", visitor)]


def test_a_segment_asgi_middleware_inside_the_wrapper_is_flushed_without_a_warning(
    segment: Any,
    segment_collector: CollectorHandle,
    holding_client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The WebSocket branch has segment_asgi's middleware, with a client of its own.
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        message = await receive()
        analytics().track("Message Received")
        await send({"type": "websocket.send", "text": message["text"]})
        await receive()  # websocket.disconnect

    segment(FLUSH_AT=2500, FLUSH_INTERVAL=300)
    websocket = SegmentMiddleware(echo, websockets=True, client=holding_client)
    app = flushing_at_shutdown(router({"http": ASGIHandler(), "websocket": websocket}))
    with caplog.at_level(logging.WARNING), TestClient(app) as browser:
        with browser.websocket_connect("/ws/") as connection:
            connection.send_text("hello")
            assert connection.receive_text() == "hello"
        assert segment_collector.events() == []
    assert [e["message"]["event"] for e in segment_collector.events()] == ["Message Received"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_mark_is_the_one_segment_asgi_reads() -> None:
    # segment_asgi cannot import Django's middleware: the name is written twice.
    assert (
        segment_asgi._tracked_apps.TRACKED_BY_DJANGO == segment_django.middleware.TRACKED_IN_STATE
    )
