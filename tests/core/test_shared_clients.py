"""Adapter instances given the same option values share one client (one sender thread
and buffer), the values compared as values; a client that shut down is let go."""

from __future__ import annotations

import gc
import os
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

import segment_core
from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.collector.handle import CollectorHandle
from tests.asgi.asgi import call, http_scope, lifespan

APPS = 20


@pytest.fixture(autouse=True)
def _module_level(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No module-level settings; the module-level calls have a client of their own, so
    no middleware's client becomes the default client (put back after the test)."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.delenv("SEGMENT_HOST", raising=False)
    for name in ("write_key", "host"):
        monkeypatch.setattr(segment_core, name, None)
    module_level = Client("module-key", send=False)
    monkeypatch.setattr(segment_core, "default_client", module_level)
    yield
    module_level.shutdown(timeout=2)


async def page(scope: Any, receive: Any, send: Any) -> None:
    """An app's one route: an HTML page (the middleware makes a page call for it)."""
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"<p>home</p>"})


def sender_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("segment-sender")}


async def serve_once(app: SegmentMiddleware) -> None:
    """What a server does with ``app``: lifespan startup, one request, lifespan shutdown."""
    async with lifespan(app):
        messages = await call(app, http_scope())
        assert messages[0]["status"] == 200


class Tenant:
    """Settings an app factory reads at each call."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []

    def on_error(self, error: Exception, batch: Any) -> None:
        self.errors.append(error)


async def test_app_instances_given_equal_option_values_share_one_client(
    segment_collector: CollectorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_SEGMENT_KEY", "tenant-key")
    port = segment_collector.url.rsplit(":", 1)[1]
    tenant = Tenant()

    def create_app() -> SegmentMiddleware:
        # Each call reads a new str from the environment, builds a new host string
        # and a new bound method: equal values, never the same objects.
        return SegmentMiddleware(
            page,
            write_key=os.environ["APP_SEGMENT_KEY"],
            host=f"http://127.0.0.1:{port}",
            on_error=tenant.on_error,
            send_in_tests=True,
        )

    assert os.environ["APP_SEGMENT_KEY"] is not os.environ["APP_SEGMENT_KEY"]
    assert tenant.on_error is not tenant.on_error
    before = sender_threads()
    clients: set[Client] = set()
    for _ in range(APPS):
        app = create_app()
        await serve_once(app)
        clients.add(app.client)
        del app
    [client] = clients
    assert client.flush(timeout=10)
    assert len(segment_collector.events(type="page")) == APPS
    assert len(sender_threads() - before) <= 1
    assert tenant.errors == []
    assert client.shutdown(timeout=10)


async def test_clients_shut_down_are_let_go(segment_collector: CollectorHandle) -> None:
    # A process that makes a middleware per tenant, serves it, then shuts its client down.
    before = sender_threads()
    let_go: list[weakref.ref[Client]] = []
    for tenant in range(APPS):
        app = SegmentMiddleware(
            page, write_key=f"tenant-{tenant}", host=segment_collector.url, send_in_tests=True
        )
        await serve_once(app)
        assert app.client.shutdown(timeout=10)
        let_go.append(weakref.ref(app.client))
        del app
    gc.collect()
    assert [ref() for ref in let_go if ref() is not None] == []
    assert sender_threads() - before == set()
    assert len(segment_collector.events(type="page")) == APPS

    again = SegmentMiddleware(
        page, write_key="tenant-0", host=segment_collector.url, send_in_tests=True
    )
    await serve_once(again)
    assert again.client.shutdown(timeout=10)
    assert len(segment_collector.events(type="page")) == APPS + 1


def test_hooks_defined_apart_are_options_of_their_own(segment_collector: CollectorHandle) -> None:
    def create_app() -> SegmentMiddleware:
        def on_error(error: Exception, batch: Any) -> None:  # a new function at each call
            pass

        return SegmentMiddleware(
            page, write_key="test-key", host=segment_collector.url, on_error=on_error
        )

    first, other = create_app(), create_app()
    assert first.client is not other.client
    for app in (first, other):
        app.client.shutdown(timeout=2)


def test_a_mapping_option_is_the_same_when_it_is_the_same_object(
    segment_collector: CollectorHandle,
) -> None:
    context = {"app": {"name": "shop"}}

    def create_app(default_context: dict[str, Any]) -> SegmentMiddleware:
        return SegmentMiddleware(
            page, write_key="test-key", host=segment_collector.url, default_context=default_context
        )

    one, same = create_app(context), create_app(context)
    equal = create_app({"app": {"name": "shop"}})
    assert one.client is same.client
    assert equal.client is not one.client
    for app in (one, equal):
        app.client.shutdown(timeout=2)
