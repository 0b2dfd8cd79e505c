"""Fixtures for the ASGI adapter: a real client sending to the real collector.

Starlette's test client still runs on ``httpx`` here and warns once, at import,
that ``httpx2`` is preferred; that one warning is let through (only at import),
every other warning stays an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import segment_core
from segment_core import Client
from segment_core.collector.handle import CollectorHandle

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"Using `httpx` with `starlette.testclient` is deprecated"
    )
    from starlette.testclient import TestClient as StarletteTestClient

__all__ = ["Sent", "TestClient", "from_peer"]

Sent = Callable[..., list[dict[str, Any]]]


class TestClient(StarletteTestClient):
    """Starlette's test client, closing its lifespan streams as newer Starlette does.

    Starlette 0.37 (the lowest supported) leaves the memory streams ``with
    TestClient(app)`` opens for the lifespan unclosed; anyio warns about each
    (``ResourceWarning``) when it is garbage-collected, in whatever test runs then.
    """

    def __enter__(self) -> TestClient:
        try:
            return super().__enter__()
        except BaseException:
            self._close_lifespan_streams()
            raise

    def __exit__(self, *args: Any) -> None:
        try:
            super().__exit__(*args)
        finally:
            self._close_lifespan_streams()

    def _close_lifespan_streams(self) -> None:
        for name in ("stream_send", "stream_receive"):
            stapled = self.__dict__.get(name)
            if stapled is not None:  # closing twice (newer Starlette did already) is fine
                stapled.send_stream.close()
                stapled.receive_stream.close()


def from_peer(app: Any, host: str, port: int = 50000) -> Any:
    """``app`` as if every connection came from ``(host, port)``.

    ``TestClient(client=...)`` is newer than the lowest supported Starlette
    (0.37 always says ``("testclient", 50000)``); setting the scope's ``client``
    here works with every version.
    """

    async def app_from_peer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["client"] = (host, port)
        await app(scope, receive, send)

    return app_from_peer


@pytest.fixture
def client(segment_collector: CollectorHandle) -> Iterator[Client]:
    """A client that sends to the test's collector (quickly), shut down after the test."""
    client = Client("test-key", host=segment_collector.url, flush_interval=0.2)
    yield client
    client.shutdown(timeout=5)


@pytest.fixture
def sent(client: Client, segment_collector: CollectorHandle) -> Sent:
    """Flush the client, then return what the collector got (oldest first), all valid."""

    def sent(**filters: Any) -> list[dict[str, Any]]:
        assert client.flush(timeout=10), "the client did not flush in time"
        events = segment_collector.events(**filters)
        assert all(e["status"] == "good" for e in events), [e["reasons"] for e in events]
        return [e["message"] for e in events]

    return sent


@pytest.fixture
def default_client() -> Iterator[None]:
    """Put ``segment_core.default_client`` back as it was (for tests that set it)."""
    before = segment_core.default_client
    yield
    after = segment_core.default_client
    segment_core.default_client = before
    if after is not None and after is not before:
        after.shutdown(timeout=2)
