"""Hooks the page call runs (page_filter, page_properties, a page_name function,
consent) are run in a worker thread: one that waits (a database query) holds up no
other request of the worker, and the page call is still made before the last chunk."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.testing import capture
from tests.asgi.conftest import Sent

#: Far beyond what a page view takes: reached only if the hook held the loop.
DEADLINE = 20.0


def _app(client: Client, release: threading.Event, **hooks: Any) -> SegmentMiddleware:
    def page(request: Request) -> Response:
        return HTMLResponse("<p>report</p>")

    def ping(request: Request) -> Response:
        release.set()  # runs only if the event loop is free
        return JSONResponse({"ok": True})

    routes = [Route("/report", page, name="report"), Route("/ping", ping, name="ping")]
    return SegmentMiddleware(Starlette(routes=routes), client=client, **hooks)


@pytest.mark.parametrize("hook", ["page_properties", "page_filter", "page_name"])
async def test_a_hook_that_waits_holds_up_no_other_request(
    client: Client, sent: Sent, hook: str
) -> None:
    waiting, release = threading.Event(), threading.Event()
    seen: list[tuple[bool, bool]] = []
    loop_thread = threading.get_ident()

    def waits_for_the_other_request(*args: Any) -> Any:
        if args[0].url.path == "/report":
            on_loop = threading.get_ident() == loop_thread
            waiting.set()
            seen.append((on_loop, release.wait(DEADLINE)))
        return {"page_properties": {"rows": 3}, "page_filter": True, "page_name": "Report"}[hook]

    app = _app(client, release, **{hook: waits_for_the_other_request})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        report = asyncio.create_task(http.get("/report"))
        # Polled in the loop: a hook holding the loop would keep this from running.
        for _ in range(int(DEADLINE / 0.01)):
            if waiting.is_set():
                break
            await asyncio.sleep(0.01)
        assert (await http.get("/ping")).status_code == 200
        assert (await report).status_code == 200
    assert seen == [(False, True)]  # in a thread, and the ping got through meanwhile
    [page] = sent(type="page")
    if hook == "page_properties":
        assert page["properties"]["rows"] == 3
    if hook == "page_name":
        assert page["name"] == "Report"


def test_the_page_call_is_made_before_the_last_chunk_reaches_the_client(client: Client) -> None:
    app = _app(client, threading.Event(), page_properties=lambda r, response: {"n": 1})
    with TestClient(app) as http, capture() as outbox:
        assert http.get("/report").status_code == 200
        assert [m["type"] for m in outbox] == ["page"]


# -- async hooks -----------------------------------------------------------------


async def test_async_hooks_are_awaited_in_the_event_loop(client: Client, sent: Sent) -> None:
    """Each one awaits what another request of the loop sets: it runs in the loop,
    and the page call's thread waits for its answer."""
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    asked: list[str] = []

    async def answered_once_pinged(name: str, answer: Any) -> Any:
        assert asyncio.get_running_loop() is loop
        asked.append(name)
        await asyncio.wait_for(ready.wait(), DEADLINE)
        return answer

    async def consent(request: Request) -> bool:
        return request.query_params.get("opt-out") is None

    async def page_filter(request: Request, response: Any) -> bool:
        return bool(await answered_once_pinged("page_filter", True))

    async def page_properties(request: Request, response: Any) -> dict[str, Any]:
        return dict(await answered_once_pinged("page_properties", {"rows": 3}))

    async def page_name(request: Request) -> str:
        return str(await answered_once_pinged("page_name", "Report"))

    hooks = {
        "consent": consent,
        "page_filter": page_filter,
        "page_properties": page_properties,
        "page_name": page_name,
    }
    app = _app(client, threading.Event(), **hooks)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        report = asyncio.create_task(http.get("/report"))
        for _ in range(int(DEADLINE / 0.01)):
            if asked:
                break
            await asyncio.sleep(0.01)
        ready.set()
        response = await report
        assert "ajs_anonymous_id=" in response.headers["set-cookie"]
        opted_out = await http.get("/report?opt-out=1")
        assert "set-cookie" not in opted_out.headers
    assert asked == ["page_filter", "page_name", "page_properties"]
    [page] = sent(type="page")
    assert (page["name"], page["properties"]["rows"]) == ("Report", 3)


async def test_an_async_consent_that_raises_as_the_request_starts_is_asked_again(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[object] = [RuntimeError("the consent store is away"), True]

    async def consent(request: Request) -> bool:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)

    app = _app(client, threading.Event(), consent=consent)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        assert (await http.get("/report")).status_code == 200
    assert answers == []
    assert [m["type"] for m in sent()] == ["page"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
