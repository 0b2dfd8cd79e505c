"""Where a middleware's client comes from: one per set of options in a process, and the
module-level settings (analytics-python's ``analytics.write_key = ...``) under its own."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import segment_core
from segment_asgi import SegmentMiddleware
from segment_asgi._options import warn_if_server_key_in_browser
from segment_core.collector.handle import CollectorHandle
from segment_core.web import WebOptions
from tests.asgi.asgi import Message, call, http_scope


@pytest.fixture(autouse=True)
def _module_level(monkeypatch: pytest.MonkeyPatch, default_client: None) -> Iterator[None]:
    """No module-level settings and no default client yet (put back after the test)."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.delenv("SEGMENT_HOST", raising=False)
    for name in ("write_key", "host", "default_client"):
        monkeypatch.setattr(segment_core, name, None)
    yield


def page(text: str) -> Any:
    """A route's endpoint: an HTML page."""

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": f"<p>{text}</p>".encode()})

    return endpoint


async def test_instances_made_per_route_share_one_client(
    segment_collector: CollectorHandle,
) -> None:
    # As Litestar's DefineMiddleware(SegmentMiddleware, **options) does: one options
    # mapping, one middleware instance around each route's handler.
    options: dict[str, Any] = {
        "write_key": "test-key",
        "host": segment_collector.url,
        "send_in_tests": True,
    }
    routes = {path: SegmentMiddleware(page(path), **options) for path in ("/", "/pricing")}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await routes[scope["path"]](scope, receive, send)

    [client] = {id(middleware.client): middleware.client for middleware in routes.values()}.values()
    assert segment_core.default_client is client
    for path in routes:
        messages: list[Message] = await call(app, http_scope(path))
        assert messages[0]["status"] == 200
    assert client.flush(timeout=10)
    assert sorted(e["message"]["context"]["page"]["path"] for e in segment_collector.events()) == [
        "/",
        "/pricing",
    ]


def test_other_option_values_get_a_client_of_their_own(segment_collector: CollectorHandle) -> None:
    first = SegmentMiddleware(page("a"), write_key="test-key", host=segment_collector.url)
    other = SegmentMiddleware(page("b"), write_key="test-key", host="http://127.0.0.1:9")
    assert first.client is not other.client
    again = SegmentMiddleware(page("c"), write_key="test-key", host=segment_collector.url)
    assert again.client is first.client
    first.client.shutdown(timeout=2)
    after_shutdown = SegmentMiddleware(page("d"), write_key="test-key", host=segment_collector.url)
    assert after_shutdown.client is not first.client
    for middleware in (other, after_shutdown):
        middleware.client.shutdown(timeout=2)


async def test_options_without_a_write_key_take_the_module_level_ones(
    segment_collector: CollectorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment_core, "write_key", "module-key")
    monkeypatch.setattr(segment_core, "host", segment_collector.url)
    middleware = SegmentMiddleware(page("home"), flush_at=1, send_in_tests=True)
    config = middleware.client.config
    assert (config.write_key, config.host, config.flush_at) == (
        "module-key",
        segment_collector.url,
        1,
    )
    assert segment_core.default_client is middleware.client
    await call(middleware, http_scope())
    assert middleware.client.flush(timeout=10)
    assert [e["message"]["type"] for e in segment_collector.events()] == ["page"]


def test_a_client_without_a_write_key_never_becomes_the_default_client(
    segment_collector: CollectorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    middleware = SegmentMiddleware(page("home"), flush_at=5)  # no write key anywhere
    assert middleware.client.config.write_key is None
    assert segment_core.default_client is None
    monkeypatch.setattr(segment_core, "write_key", "module-key")  # set later: module-level
    monkeypatch.setattr(segment_core, "host", segment_collector.url)  # calls use it
    accepted, _ = segment_core.track("u1", "Nightly Export")
    assert accepted
    assert segment_core.flush(timeout=10)
    assert [e["message"]["event"] for e in segment_collector.events()] == ["Nightly Export"]


def test_a_warning_once_when_the_browser_key_is_the_server_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("segment_asgi._options._warned_server_key", False)
    own = SegmentMiddleware(page("a"), write_key="server-key", send=False)
    web = WebOptions.from_mapping({"browser_write_key": "server-key"})
    with caplog.at_level(logging.WARNING, logger="segment.asgi"):
        warn_if_server_key_in_browser(WebOptions.from_mapping({"browser_write_key": "k"}), None)
        assert caplog.records == []
        warn_if_server_key_in_browser(web, own.client)
        monkeypatch.setattr(segment_core, "write_key", "server-key")
        warn_if_server_key_in_browser(web, None)  # the default client's: the same key
    [record] = caplog.records
    assert record.getMessage() == (
        "SegmentMiddleware: browser_write_key is the server's write_key: the snippet "
        "hands it to every browser, where anyone can read it and send events as the "
        "server; give browser_write_key the write key of a website (analytics.js) source."
    )


def test_the_middleware_warns_when_its_browser_key_is_its_server_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("segment_asgi._options._warned_server_key", False)
    with caplog.at_level(logging.WARNING, logger="segment.asgi"):
        SegmentMiddleware(page("a"), write_key="copied", browser_write_key="copied", send=False)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["SegmentMiddleware"]
    assert "browser_write_key is the server's write_key" in caplog.records[0].getMessage()


async def test_instances_that_differ_in_send_in_tests_get_a_client_each(
    segment_collector: CollectorHandle,
) -> None:
    # One app most tests use, one a test sends for real with: the second must not
    # make the first send, nor the first keep the second's events from the collector.
    options: dict[str, Any] = {"write_key": "test-key", "host": segment_collector.url}
    diverted = SegmentMiddleware(page("kept"), **options)
    sending = SegmentMiddleware(page("sent"), **options, send_in_tests=True)
    again = SegmentMiddleware(page("kept again"), **options)
    assert diverted.client is again.client is not sending.client
    with segment_core.testing.capture() as captured:
        for middleware in (diverted, sending, again):
            await call(middleware, http_scope())
    assert sending.client.flush(timeout=10)
    assert len(captured.pages()) == 3  # a capture records what is sent too
    [sent] = segment_collector.events()
    assert sent["message"]["type"] == "page"
    assert diverted.client.stats()["sent"] == 0


def test_an_app_sending_in_tests_leaves_the_module_level_calls_to_a_diverted_one(
    segment_collector: CollectorHandle,
) -> None:
    # The first app built sends for real (one test's); an app built after it keeps
    # its events from the network: so do the module-level calls from then on.
    sending = SegmentMiddleware(
        page("sent"), write_key="send-key", host=segment_collector.url, send_in_tests=True
    )
    assert segment_core.default_client is sending.client
    diverted = SegmentMiddleware(page("kept"), write_key="kept-key", host=segment_collector.url)
    assert segment_core.default_client is diverted.client
    with segment_core.testing.capture() as captured:
        assert segment_core.track("u1", "Service Call")[0]
    captured.assert_tracked("Service Call")
    assert segment_core.flush(timeout=10) and sending.client.flush(timeout=10)
    assert segment_collector.events() == []
