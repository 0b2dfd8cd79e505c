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
    from starlette.testclient import TestClient

__all__ = ["Sent", "TestClient"]

Sent = Callable[..., list[dict[str, Any]]]


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
