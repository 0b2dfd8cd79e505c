"""Test helpers, and the pytest plugin registered as ``segment``.

``capture()`` collects every message any client would send, with no network::

    from segment_core.testing import capture

    with capture() as events:
        client.track("u1", "Signed Up")
    assert events[0]["event"] == "Signed Up"

Fixtures: ``segment_events`` (a capture for the test) and ``segment_collector`` (a
real local collector, when the ``collector`` extra is installed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from segment_core import _capture

__all__ = ["capture", "segment_events"]


@contextmanager
def capture() -> Iterator[list[dict[str, Any]]]:
    """Collect, in order, every message accepted by any client while the block runs."""
    sink: list[dict[str, Any]] = []
    _capture.sinks.append(sink)
    try:
        yield sink
    finally:
        _capture.sinks.remove(sink)


@pytest.fixture
def segment_events() -> Iterator[list[dict[str, Any]]]:
    """Every message clients send during the test, captured in memory."""
    with capture() as events:
        yield events


def pytest_configure(config: pytest.Config) -> None:
    """Register the collector's fixtures when the ``collector`` extra is installed."""
    with contextlib.suppress(ImportError):
        config.pluginmanager.import_plugin("segment_core.collector.fixtures")
