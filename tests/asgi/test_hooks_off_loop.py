"""Hooks in segment_asgi: the page call that runs ``page_filter``, ``page_properties``
or a ``page_name`` function is made in a worker thread of its own pool before the last
chunk of a response that may be a page view, so that a hook that waits holds up no
other request; plain ``consent`` and ``user_id`` run in the event loop; async ones
are awaited there (``consent`` and ``user_id`` as the request starts, the page hooks
while the page call's thread waits)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from segment_asgi import SegmentMiddleware
from segment_core import Client
from tests.asgi.asgi import Message, call, http_scope
from tests.asgi.conftest import Sent, TestClient

#: Far beyond what a page view takes: reached only if what it waits for never comes.
DEADLINE = 20.0


async def _report(request: Request) -> Response:  # in the event loop: no thread of the app's
    return HTMLResponse("<p>report</p>")


def _app(client: Client, **hooks: Any) -> SegmentMiddleware:
    routes = [
        Route("/report", _report, name="report"),
        Route("/static/login", _login, methods=["POST"]),
    ]
    return SegmentMiddleware(Starlette(routes=routes), client=client, **hooks)


async def _login(request: Request) -> Response:
    request.state.analytics.login("u-1")
    return HTMLResponse("<p>in</p>")


@pytest.mark.parametrize("hook", ["page_properties", "page_filter", "page_name"])
async def test_a_plain_page_hook_runs_in_a_thread_before_the_last_chunk(
    client: Client, sent: Sent, hook: str
) -> None:
    """It waits for what a task of the event loop sets once it started: had it run in
    the loop, that task could not have run, and it would have waited to its deadline."""
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def waits_for_the_loop(*args: Any) -> Any:
        started.set()
        order.append(f"released {release.wait(DEADLINE)}")
        return {"page_properties": {"rows": 3}, "page_filter": True, "page_name": "Report"}[hook]

    async def release_once_started() -> None:
        for _ in range(int(DEADLINE / 0.01)):
            if started.is_set():
                break
            await asyncio.sleep(0.01)
        release.set()

    def server_got(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            order.append("last chunk")

    releaser = asyncio.create_task(release_once_started())
    await call(_app(client, **{hook: waits_for_the_loop}), http_scope("/report"), server_got)
    await releaser
    assert order == ["released True", "last chunk"]  # the page call in the outbox first
    [page] = sent(type="page")
    assert page["properties"].get("rows") == (3 if hook == "page_properties" else None)
    assert page["name"] == ("Report" if hook == "page_name" else "report")


async def test_a_response_that_is_no_page_view_waits_for_no_page_call_thread(
    client: Client, sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every thread of the page calls taken by a hook that waits, an API's JSON
    goes at once: its page call runs no hook."""
    from segment_asgi import middleware

    monkeypatch.setattr(middleware, "PAGE_CALL_THREADS", 1)
    started, release = threading.Event(), threading.Event()

    def waits(request: Request, response: Any) -> dict[str, Any]:
        started.set()
        release.wait(DEADLINE)
        return {"rows": 3}

    async def api(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = SegmentMiddleware(
        Starlette(routes=[Route("/report", _report), Route("/api", api)]),
        client=client,
        page_properties=waits,
    )
    report = asyncio.create_task(call(app, http_scope("/report")))
    for _ in range(int(DEADLINE / 0.01)):
        if started.is_set():
            break
        await asyncio.sleep(0.01)
    answered = await call(app, http_scope("/api"))  # would wait for the thread taken
    assert answered[0]["status"] == 200
    assert not release.is_set()
    release.set()
    await report
    [page] = sent(type="page")
    assert page["properties"]["rows"] == 3


async def test_plain_consent_runs_in_the_event_loop(client: Client, sent: Sent) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    def consent(request: Request) -> bool:
        loops.append(asyncio.get_running_loop())  # raises outside the loop
        return True

    transport = httpx.ASGITransport(app=_app(client, consent=consent))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        assert (await http.get("/report")).status_code == 200
    assert loops and set(loops) == {asyncio.get_running_loop()}
    assert [m["type"] for m in sent()] == ["page"]


async def test_the_page_calls_threads_are_not_the_apps(client: Client, sent: Sent) -> None:
    """With every thread of Starlette's pool taken (plain endpoints that wait), the
    page call still runs its hook, which may itself use that pool once it frees."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    total, limiter.total_tokens = limiter.total_tokens, 1
    freed = threading.Event()
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, freed.wait, DEADLINE)
            while limiter.borrowed_tokens < 1:
                await asyncio.sleep(0.01)

            def page_properties(request: Request, response: Any) -> dict[str, Any]:
                return {"pool_free": limiter.available_tokens}

            await call(_app(client, page_properties=page_properties), http_scope("/report"))
            freed.set()
    finally:
        limiter.total_tokens = total
    [page] = sent(type="page")
    assert page["properties"]["pool_free"] == 0


async def test_async_page_hooks_are_awaited_in_the_event_loop(client: Client, sent: Sent) -> None:
    """While the page call's thread waits for them: the event loop runs other work
    meanwhile (here, what they await)."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    asked: list[str] = []

    async def answered_once_ready(name: str, answer: Any) -> Any:
        assert asyncio.get_running_loop() is loop
        asked.append(name)
        await asyncio.wait_for(ready.wait(), DEADLINE)
        return answer

    async def page_filter(request: Request, response: Any) -> bool:
        return bool(await answered_once_ready("page_filter", True))

    async def page_properties(request: Request, response: Any) -> dict[str, Any]:
        return dict(await answered_once_ready("page_properties", {"rows": 3}))

    async def make_ready() -> None:
        for _ in range(int(DEADLINE / 0.01)):
            if asked:
                break
            await asyncio.sleep(0.01)
        ready.set()

    readying = asyncio.create_task(make_ready())
    app = _app(client, page_filter=page_filter, page_properties=page_properties)
    await call(app, http_scope("/report"))
    await readying
    assert asked == ["page_filter", "page_properties"]
    [page] = sent(type="page")
    assert page["properties"]["rows"] == 3


async def test_an_async_consent_is_awaited_as_the_request_starts(
    client: Client, sent: Sent
) -> None:
    async def consent(request: Request) -> bool:
        await asyncio.sleep(0)
        return request.query_params.get("opt-out") is None

    transport = httpx.ASGITransport(app=_app(client, consent=consent))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        assert "ajs_anonymous_id=" in (await http.get("/report")).headers["set-cookie"]
        assert "set-cookie" not in (await http.get("/report?opt-out=1")).headers
    assert [m["type"] for m in sent()] == ["page"]


async def test_an_async_consent_that_raises_as_the_request_starts_is_asked_again(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[object] = [RuntimeError("the consent store is away"), True]

    async def consent(request: Request) -> bool:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)

    transport = httpx.ASGITransport(app=_app(client, consent=consent))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        assert (await http.get("/report")).status_code == 200
    assert answers == []
    assert [m["type"] for m in sent()] == ["page"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_an_async_consent_is_not_asked_on_an_excluded_path_and_says_so(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    asked: list[str] = []

    async def consent(request: Request) -> bool:
        asked.append(request.url.path)
        return True

    transport = httpx.ASGITransport(app=_app(client, consent=consent))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as http:
        for _ in range(2):
            assert (await http.post("/static/login")).status_code == 200
    assert asked == []
    assert sent() == []  # a login without consent: no identify
    [warning] = [r.getMessage() for r in caplog.records if r.name == "segment.core.web"]
    assert warning.startswith("segment: the async consent hook is not asked where no automatic")


def test_a_plain_hook_mixed_with_an_async_one_runs_in_the_page_calls_thread(
    client: Client, sent: Sent
) -> None:
    threads: list[int] = []

    def page_filter(request: Request, response: Any) -> bool:
        threads.append(threading.get_ident())
        return True

    async def page_properties(request: Request, response: Any) -> dict[str, Any]:
        return {"rows": 3}

    app = _app(client, page_filter=page_filter, page_properties=page_properties)
    with TestClient(app) as http:
        assert http.get("/report").status_code == 200
    assert threads and threads[0] != threading.get_ident()
    [page] = sent(type="page")
    assert page["properties"]["rows"] == 3
