"""A visitor's request, however heavy, leaves a view's own call its room and gets its page call."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.batching import MAX_MESSAGE_BYTES
from tests.asgi.conftest import Sent, TestClient
from tests.memory import memory_kept

# Backslashes take two bytes each encoded, and the page fields are sent twice; all of it
# within what servers accept by default.
HEAVY_PATH = "/" + "a" * 2047 + "?q=" + "\\" * 1900
HEAVY_HEADERS = {
    "Referer": "https://ex.example/" + "\\" * 2030,
    "User-Agent": "Mozilla/5.0 " + "\\" * 500,
    "Accept": "text/html",
}
CART = {"items": ["x" * 100] * 160}  # 16.5 KB: half of what a message may weigh


async def cart(request: Request) -> HTMLResponse:
    request.state.analytics.track("Cart Viewed", CART)
    return HTMLResponse("<p>cart</p>")


@pytest.mark.parametrize("view_tracks", [True, False])
def test_a_heavy_request_leaves_a_views_call_its_room(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture, view_tracks: bool
) -> None:
    async def quiet(request: Request) -> HTMLResponse:
        return HTMLResponse("<p>page</p>")

    app = Starlette(routes=[Route("/{rest:path}", cart if view_tracks else quiet)])
    app.add_middleware(SegmentMiddleware, client=client)
    with caplog.at_level(logging.WARNING), TestClient(app) as browser:
        response = browser.get(HEAVY_PATH, headers=HEAVY_HEADERS)
    assert response.status_code == 200
    messages = sent()
    assert [m["type"] for m in messages] == (["track", "page"] if view_tracks else ["page"])
    assert messages[-1]["properties"]["path"] == "/" + "a" * 2047
    for message in messages:
        assert len(json.dumps(message, ensure_ascii=False).encode()) <= MAX_MESSAGE_BYTES
    assert not [r for r in caplog.records if r.name.startswith("segment")]


def test_long_same_app_referrers_leave_no_memory_behind() -> None:
    from segment_asgi._scope import route_params

    app = Starlette(routes=[Route("/cart/{rest:path}", cart)])
    host, long_value = "shop.example", "v" * 8000
    # Where the paths kept would take 1.6 MB at least.
    assert memory_kept(lambda n: route_params(app, "", host, f"/cart/{n}-{long_value}")) < 100_000


@pytest.mark.parametrize(
    "header",
    ["x-large", "sec-fetch-mode", "sec-purpose"],
    ids=["any header, with a query", "Sec-Fetch-Mode", "Sec-Purpose"],
)
def test_large_headers_leave_no_memory_behind(header: str) -> None:
    """A server without a header size limit (uvicorn with httptools) hands the app
    headers of any length: no cache keeps one of them."""
    client = Client("key", send=False)
    app = SegmentMiddleware(Starlette(routes=[Route("/p", cart)]), client=client)
    value = ("navigate" if header == "sec-fetch-mode" else "prefetch") + "x" * 20_000

    async def request(number: int) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/p",
            "raw_path": b"/p",
            "root_path": "",
            "query_string": f"a={number}".encode(),
            "headers": [
                (b"host", b"shop.example"),
                (b"accept", b"text/html"),
                (header.encode(), f"{number}{value}".encode()),
            ],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 80),
        }

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            pass

        await app(scope, receive, send)

    try:
        # Where each request's header kept would take 2 MB at least.
        assert memory_kept(lambda n: asyncio.run(request(n)), times=100) < 500_000
    finally:
        client.shutdown(5)
