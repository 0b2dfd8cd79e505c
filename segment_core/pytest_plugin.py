"""The pytest plugin registered as ``segment``: fixtures for testing apps that send events.

- ``segment_events``: every message clients send during the test, captured in
  memory (nothing leaves the process).
- ``segment_collector``: a real local collector, one per session, reset before each
  test (needs the ``collector`` extra).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core.testing import capture, outbox

__all__ = ["segment_events"]


@pytest.fixture(autouse=True)
def _segment_empty_outbox() -> None:
    """Each test starts with an empty ``segment_core.testing.outbox``."""
    outbox.clear()


@pytest.fixture
def segment_events() -> Iterator[list[dict[str, Any]]]:
    """Every message clients send during the test, captured in memory."""
    with capture() as events:
        yield events


def pytest_configure(config: pytest.Config) -> None:
    """Register the collector's fixtures when the ``collector`` extra is installed."""
    with contextlib.suppress(ImportError):
        config.pluginmanager.import_plugin("segment_core.collector.fixtures")
