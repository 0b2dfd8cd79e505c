"""Lifespan: the client is flushed before the server hears that shutdown is complete.

The clients here hold events until something flushes them (``flush_at`` and
``flush_interval`` far away), so what reaches the collector was flushed by the
middleware at shutdown.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from segment_asgi import SegmentMiddleware, flushing_at_shutdown
from segment_core import Client
from segment_core.collector.handle import CollectorHandle
from segment_core.scope import Analytics, analytics, bound, start_thread, with_binding
from segment_core.testing import capture
from tests.asgi.asgi import Message, call, http_scope, lifespan
from tests.asgi.conftest import TestClient


@pytest.fixture
def holding_client(segment_collector: CollectorHandle) -> Iterator[Client]:
    """A client that sends nothing until flushed."""
    client = Client("test-key", host=segment_collector.url, flush_at=2500, flush_interval=300)
    yield client
    client.shutdown(timeout=10)


def lifespan_app(events: list[str], client: Client) -> Starlette:
    @asynccontextmanager
    async def app_lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("app shutdown")
        client.track("worker", "Worker Stopped")  # the app's own last words

    async def home(request: Request) -> Response:
        return HTMLResponse("ok")

    return Starlette(routes=[Route("/", home, name="home")], lifespan=app_lifespan)


async def test_flush_after_the_apps_shutdown_before_completion(
    holding_client: Client, segment_collector: CollectorHandle
) -> None:
    events: list[str] = []
    app = SegmentMiddleware(lifespan_app(events, holding_client), client=holding_client)

    def on_message(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            stored = segment_collector.events()
            events.append(f"shutdown complete with {len(stored)} events stored")

    async with lifespan(app, on_message) as sent:
        await call(app, http_scope())
        assert segment_collector.events() == []  # held by the client
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["startup", "app shutdown", "shutdown complete with 2 events stored"]
    stored = [e["message"] for e in segment_collector.events()]
    assert [(m["type"], m.get("event") or m.get("name")) for m in stored] == [
        ("page", "home"),
        ("track", "Worker Stopped"),
    ]


async def test_threads_working_for_a_visitor_are_waited_for_before_the_flush(
    holding_client: Client, segment_collector: CollectorHandle
) -> None:
    # uvicorn ends the process right after lifespan shutdown, without waiting for
    # threads: what they track later would be lost.
    shutting_down = threading.Event()
    daemon_released = threading.Event()

    def send_receipt(label: str) -> None:
        shutting_down.wait(10)
        threading.Event().wait(0.3)  # still working as the flush would start
        analytics().track("Receipt Sent", {"label": label})

    stored_at_completion: list[str] = []

    def on_message(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            stored = segment_collector.events(event="Receipt Sent")
            stored_at_completion.extend(e["message"]["properties"]["label"] for e in stored)

    app = SegmentMiddleware(lifespan_app([], holding_client), client=holding_client)
    with ThreadPoolExecutor(1) as executor:
        async with lifespan(app, on_message):
            with bound(Analytics(holding_client, anonymous_id="visitor")):
                start_thread(send_receipt, "thread")
                executor.submit(with_binding(send_receipt), "executor")
                start_thread(daemon_released.wait, 10, daemon=True)  # never waited for
            shutting_down.set()
            started = time.monotonic()
        assert time.monotonic() - started < 5
        daemon_released.set()
    assert sorted(stored_at_completion) == ["executor", "thread"]


async def no_lifespan(scope: Any, receive: Any, send: Any) -> None:
    """An app like Django's ASGI handler: anything but HTTP is an error."""
    if scope["type"] != "http":
        raise ValueError(f"can only handle HTTP, not {scope['type']}")
    await HTMLResponse("ok")(scope, receive, send)


async def ignores_lifespan(scope: Any, receive: Any, send: Any) -> None:
    """An app that returns at once for anything but HTTP."""
    if scope["type"] == "http":
        await HTMLResponse("ok")(scope, receive, send)


@pytest.mark.parametrize("inner", [no_lifespan, ignores_lifespan])
async def test_lifespan_answered_for_apps_without_it(
    holding_client: Client, segment_collector: CollectorHandle, inner: Any
) -> None:
    app = SegmentMiddleware(inner, client=holding_client)
    async with lifespan(app) as sent:
        await call(app, http_scope("/about/"))
        assert segment_collector.events() == []
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [e["message"]["name"] for e in segment_collector.events()] == ["/about/"]


def test_an_app_that_read_startup_then_raised_keeps_its_failure(
    holding_client: Client,
) -> None:
    """A plain middleware whose own startup failed (its database is down): the
    server hears of it as without the middleware (uvicorn --lifespan on stops)."""

    async def pool_fails(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            raise ConnectionError("database is down")
        await HTMLResponse("ok")(scope, receive, send)

    app = SegmentMiddleware(pool_fails, client=holding_client)
    with pytest.raises(ConnectionError, match="database is down"), TestClient(app):
        pass


def test_a_failed_startup_stays_the_apps(holding_client: Client) -> None:
    @asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    app = SegmentMiddleware(Starlette(lifespan=broken), client=holding_client)
    with pytest.raises(RuntimeError, match="no database"), TestClient(app):
        pass


def test_the_flush_is_bounded_by_shutdown_timeout(
    segment_collector: CollectorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client("test-key", host=segment_collector.url, shutdown_timeout=0.5, flush_at=2500)
    try:
        segment_collector.faults({"delay": 3.0})
        app = SegmentMiddleware(lifespan_app([], client), client=client)
        with caplog.at_level(logging.WARNING, logger="segment.asgi"), TestClient(app) as browser:
            browser.get("/")
            started = time.monotonic()
        assert time.monotonic() - started < 2.5
        assert (
            f"2 message(s) not delivered to {segment_collector.url} "
            "within shutdown_timeout=0.5s at shutdown; last error: " in caplog.text
        )
        # Let the slow request land before the next test empties the collector.
        assert client.flush(timeout=10)
    finally:
        client.shutdown(timeout=10)


# -- a mounted app's middleware, which gets no lifespan ---------------------------------

NO_LIFESPAN = "SegmentMiddleware got a request but no lifespan startup"


def mounted(segment_collector: CollectorHandle) -> tuple[Starlette, Starlette]:
    """FastAPI's sub-application pattern: the middleware on the app mounted at /api,
    building its client (that holds events until flushed) at its first request."""

    async def home(request: Request) -> Response:
        return HTMLResponse("ok")

    api = Starlette(routes=[Route("/", home, name="home")])
    api.add_middleware(
        SegmentMiddleware,
        write_key="test-key",
        host=segment_collector.url,
        flush_at=2500,
        flush_interval=300,
        send_in_tests=True,
    )
    return Starlette(routes=[Mount("/api", api)]), api


def built_client(api: Starlette) -> Client:
    """The client the mounted app's middleware built."""
    node: Any = api.middleware_stack
    while not isinstance(node, SegmentMiddleware):
        node = node.app
    return node.client


def no_lifespan_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if NO_LIFESPAN in r.getMessage()]


def test_a_mounted_app_s_middleware_is_flushed_by_the_app_the_server_runs(
    segment_collector: CollectorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    outer, api = mounted(segment_collector)
    try:
        with caplog.at_level(logging.WARNING), TestClient(flushing_at_shutdown(outer)) as browser:
            browser.get("/api/")
            browser.get("/api/")
            assert segment_collector.events() == []  # held by the client
        assert [e["message"]["name"] for e in segment_collector.events()] == ["home", "home"]
        assert no_lifespan_warnings(caplog) == []
    finally:
        built_client(api).shutdown(timeout=10)


def test_without_it_a_mounted_app_s_middleware_warns_once(
    segment_collector: CollectorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    outer, api = mounted(segment_collector)
    try:
        with caplog.at_level(logging.WARNING), TestClient(outer) as browser:
            browser.get("/api/")
            browser.get("/api/")
        assert segment_collector.events() == []  # nothing flushed it at shutdown
        [warning] = no_lifespan_warnings(caplog)
        assert warning.levelno == logging.WARNING and warning.name == "segment.asgi"
        assert "segment_asgi.flushing_at_shutdown(app)" in warning.getMessage()
    finally:
        built_client(api).shutdown(timeout=10)


def test_a_client_diverted_to_the_test_outbox_needs_no_flush_and_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """FastAPI's testing guide: ``TestClient(app)`` without ``with`` runs no lifespan."""

    async def home(request: Request) -> Response:
        return HTMLResponse("ok")

    diverted = Starlette(routes=[Route("/", home)])
    diverted.add_middleware(SegmentMiddleware, write_key="test-key")
    off = Starlette(routes=[Route("/", home)])
    off.add_middleware(SegmentMiddleware, client=Client("test-key", send=False))
    with caplog.at_level(logging.WARNING), capture() as events:
        for app in (diverted, off):
            assert TestClient(app).get("/", headers={"Accept": "text/html"}).status_code == 200
    assert [event["type"] for event in events] == ["page", "page"]
    assert no_lifespan_warnings(caplog) == []


def test_under_daphne_which_runs_atexit_and_has_no_lifespan_it_does_not_warn(
    segment_collector: CollectorHandle,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Daphne serves from Twisted's reactor, installed in sys.modules and running.
    monkeypatch.setitem(
        sys.modules, "twisted.internet.reactor", types.SimpleNamespace(running=True)
    )
    outer, api = mounted(segment_collector)
    try:
        with caplog.at_level(logging.WARNING), TestClient(outer) as browser:
            browser.get("/api/")
        assert no_lifespan_warnings(caplog) == []
    finally:
        built_client(api).shutdown(timeout=10)
    assert [e["message"]["name"] for e in segment_collector.events()] == ["home"]


def test_without_lifespan_from_the_server_the_wrapper_cannot_flush_and_it_warns(
    segment_collector: CollectorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    outer, api = mounted(segment_collector)
    try:
        with caplog.at_level(logging.WARNING):
            TestClient(flushing_at_shutdown(outer)).get("/api/")  # no lifespan run
        assert len(no_lifespan_warnings(caplog)) == 1
    finally:
        built_client(api).shutdown(timeout=10)


def test_a_middleware_that_gets_lifespan_does_not_warn(
    holding_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    app = SegmentMiddleware(lifespan_app([], holding_client), client=holding_client)
    with caplog.at_level(logging.WARNING), TestClient(app) as browser:
        browser.get("/")
    assert no_lifespan_warnings(caplog) == []


# -- Django's ASGI handler, which has no lifespan support -----------------------------


@pytest.fixture
def django_asgi(default_client: None) -> Any:
    """Django's ASGI application, configured as tests/django configures it.

    Without segment_django's own middleware: here the ASGI middleware is the one
    that instruments the app (both at once would each pick an anonymous id).
    """
    from django.core.asgi import get_asgi_application
    from django.test import override_settings

    import tests.django.conftest  # noqa: F401  (configures Django once per session)

    middleware = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    with override_settings(MIDDLEWARE=middleware):
        return get_asgi_application()  # the handler loads its middleware chain now


def test_django_asgi_app_wrapped(
    django_asgi: Any, holding_client: Client, segment_collector: CollectorHandle
) -> None:
    with (
        pytest.raises(ValueError, match="Django can only handle ASGI/HTTP"),
        TestClient(django_asgi),
    ):
        pass  # on its own, Django fails the lifespan protocol
    app = SegmentMiddleware(django_asgi, client=holding_client)
    with TestClient(app) as browser:
        response = browser.get("/products/3/?utm_source=news")
        assert response.status_code == 200
        assert "ajs_anonymous_id" in response.cookies
        assert browser.get("/missing/").status_code == 404
        assert segment_collector.events() == []
    [event] = segment_collector.events()
    page = event["message"]
    assert event["status"] == "good", event["reasons"]
    assert page["name"] == "/products/3/"
    assert page["anonymousId"] == response.cookies["ajs_anonymous_id"]
    assert page["context"]["campaign"] == {"source": "news"}


@pytest.mark.parametrize("with_lifespan", [True, False])
def test_the_library_s_loggers_are_on_again_after_a_dict_config_made_since_the_import(
    holding_client: Client, with_lifespan: bool
) -> None:
    """A dictConfig() the app makes after importing the library turns off the loggers
    that exist (the library's): on again as the app starts, or at its first request."""

    async def page(request: Request) -> Response:
        return HTMLResponse("<p>hi</p>")

    app = SegmentMiddleware(Starlette(routes=[Route("/", page)]), client=holding_client)
    loggers = [logging.getLogger(name) for name in ("segment", "segment.core", "segment.asgi")]
    for logger in loggers:
        logger.disabled = True  # what dictConfig does to the loggers that exist
    try:
        if with_lifespan:
            with TestClient(app):
                assert [logger.disabled for logger in loggers] == [False, False, False]
        else:
            assert TestClient(app).get("/").status_code == 200
            assert [logger.disabled for logger in loggers] == [False, False, False]
    finally:
        for logger in loggers:
            logger.disabled = False


def test_the_library_s_loggers_are_on_again_after_a_dict_config_in_the_app_s_startup(
    holding_client: Client,
) -> None:
    loggers = [logging.getLogger(name) for name in ("segment", "segment.core", "segment.asgi")]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for logger in loggers:
            logger.disabled = True  # what a dictConfig() in the startup does
        yield

    async def page(request: Request) -> Response:
        return HTMLResponse("<p>hi</p>")

    app = Starlette(routes=[Route("/", page)], lifespan=lifespan)
    try:
        with TestClient(SegmentMiddleware(app, client=holding_client)):
            assert [logger.disabled for logger in loggers] == [False, False, False]
    finally:
        for logger in loggers:
            logger.disabled = False
