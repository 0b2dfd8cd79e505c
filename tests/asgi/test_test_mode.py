"""Under pytest, the client the middleware builds sends nothing; its events wait in the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

import segment_core
import segment_pytest
from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.collector.handle import CollectorHandle
from segment_core.testing import outbox
from tests.asgi.asgi import http_scope
from tests.asgi.conftest import TestClient


async def home(request: Request) -> Response:
    request.state.analytics.track("Home Seen")
    return HTMLResponse("<p>home</p>")


APP = Starlette(routes=[Route("/", home, name="home")])


@pytest.fixture
def built_clients(default_client: None) -> Iterator[list[Client]]:
    """The clients the test's middleware built, shut down after it (each test gets
    its own: a shut-down client is not shared again)."""
    segment_core.default_client = None
    clients: list[Client] = []
    yield clients
    for client in clients:
        client.shutdown(timeout=5)


def middleware(
    collector: CollectorHandle, clients: list[Client], **options: Any
) -> SegmentMiddleware:
    """A middleware building its own client, for the collector."""
    built = SegmentMiddleware(APP, write_key="test-key", host=collector.url, **options)
    clients.append(built.client)
    return built


def visit_and_count(app: SegmentMiddleware, collector: CollectorHandle) -> int:
    """GET / (a track and a page call); how many reached the collector."""
    with TestClient(app) as browser:  # with its lifespan: the client is flushed at its end
        assert browser.get("/").status_code == 200
    assert app.client.flush(timeout=10)
    total: int = collector.summary()["total"]
    return total


def test_a_built_client_puts_its_events_in_the_outbox(
    segment_collector: CollectorHandle, built_clients: list[Client]
) -> None:
    app = middleware(segment_collector, built_clients)
    assert visit_and_count(app, segment_collector) == 0
    assert [m.get("event", m["type"]) for m in outbox] == ["Home Seen", "page"]


def test_so_do_module_level_calls_through_it(
    segment_collector: CollectorHandle, built_clients: list[Client]
) -> None:
    app = middleware(segment_collector, built_clients)
    assert segment_core.default_client is app.client
    assert segment_core.track("user-1", "Nightly Export")[0]
    assert app.client.flush(timeout=10)
    assert segment_collector.summary()["total"] == 0
    assert [m["event"] for m in outbox] == ["Nightly Export"]


def test_send_in_tests_sends(
    segment_collector: CollectorHandle, built_clients: list[Client]
) -> None:
    app = middleware(segment_collector, built_clients, send_in_tests=True)
    assert visit_and_count(app, segment_collector) == 2
    assert outbox == []


def test_pytest_started_after_the_middleware_was_built_counts_too(
    segment_collector: CollectorHandle,
    built_clients: list[Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As when a script imports the app, then runs pytest in the same process.
    with monkeypatch.context() as before_pytest:
        before_pytest.setattr(segment_pytest, "_running_in", [])
        app = middleware(segment_collector, built_clients)
    assert visit_and_count(app, segment_collector) == 0
    assert [m.get("event", m["type"]) for m in outbox] == ["Home Seen", "page"]


def test_a_client_given_is_never_diverted(
    segment_collector: CollectorHandle, built_clients: list[Client]
) -> None:
    given = Client("test-key", host=segment_collector.url)
    built_clients.append(given)
    app = SegmentMiddleware(APP, client=given)
    assert visit_and_count(app, segment_collector) == 2
    assert outbox == []


@pytest.mark.parametrize("chunks", [1, 3], ids=["body", "stream"])
def test_the_page_call_is_in_the_outbox_before_the_server_has_the_last_chunk(
    segment_collector: CollectorHandle, built_clients: list[Client], chunks: int
) -> None:
    """A server in the test's own process (uvicorn in a thread, for a browser test)
    hands the response to the client as it gets it: a test reading the outbox then
    finds the page call, and no later test finds it in its own."""

    async def page(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for n in range(chunks):
            more = n < chunks - 1
            await send({"type": "http.response.body", "body": b"<p>x</p>", "more_body": more})

    app = SegmentMiddleware(page, write_key="test-key", host=segment_collector.url)
    built_clients.append(app.client)
    pages_at_each_chunk: list[int] = []

    async def server_send(message: Any) -> None:
        if message["type"] == "http.response.body":
            pages_at_each_chunk.append(sum(m["type"] == "page" for m in outbox))

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    scope = http_scope(headers=[(b"host", b"shop.example"), (b"accept", b"text/html")])
    anyio.run(app, scope, receive, server_send)
    assert pages_at_each_chunk == [0] * (chunks - 1) + [1]
