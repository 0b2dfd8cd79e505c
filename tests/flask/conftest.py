"""Fixtures: a real client sending to the test's collector, and apps using it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

import segment_core
from segment_core import Client
from segment_flask import SegmentFlask
from tests.flask.app import create_app

Sent = Callable[..., list[dict[str, Any]]]
MakeApp = Callable[..., Flask]


@pytest.fixture(autouse=True)
def _keep_default_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The first app's client becomes segment_core's default: undo that after each test.
    An app without client options follows the module's client, diverted with ``TESTING``:
    each test gets a disabled one of its own."""
    before = segment_core.default_client
    monkeypatch.setattr(segment_core, "_keyless_client", None)
    yield
    segment_core.default_client = before


@pytest.fixture
def segment_client(segment_collector: Any) -> Iterator[Client]:
    """A real client that sends to the test's collector."""
    client = Client("test-key", host=segment_collector.url)
    yield client
    client.shutdown(timeout=5)


@pytest.fixture
def make_app(segment_client: Client) -> MakeApp:
    """``make_app(SEGMENT_X=..., option=...)``: upper-case names go to ``app.config``,
    lower-case ones to ``SegmentFlask(app, ...)``; the app sends to the collector."""

    def make(**options: Any) -> Flask:
        config = {key: options.pop(key) for key in list(options) if key.isupper()}
        app = create_app(config)
        SegmentFlask(app, client=segment_client, **options)
        return app

    return make


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    return make_app()


@pytest.fixture
def sent(segment_client: Client, segment_collector: Any) -> Sent:
    """Flush the client, then return what the collector received, oldest first."""

    def sent(**filters: Any) -> list[dict[str, Any]]:
        assert segment_client.flush(timeout=10), "the client did not flush in time"
        events = segment_collector.events(**filters)
        assert all(e["status"] == "good" for e in events), [e["reasons"] for e in events]
        return [e["message"] for e in events]

    return sent
