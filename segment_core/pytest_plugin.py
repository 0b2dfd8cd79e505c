"""The pytest plugin's fixtures, under the name earlier releases gave them.

The plugin itself is :mod:`segment_pytest` (registered under that name), which
imports nothing of the library until a test asks for a fixture. This module's
fixtures are its own functions doing the same work, so that a run that loads both
modules (``-p segment_core.pytest_plugin``, or ``pytest_plugins`` naming it) lists
each once per module in ``pytest --fixtures``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from segment_pytest import (
    COLLECTOR_EXTRA_HINT,
    _segment_empty_outbox,
    captured_events,
    emptied_collector,
    running_collector,
)

if TYPE_CHECKING:
    from segment_core.collector.handle import CollectorHandle

__all__ = [
    "COLLECTOR_EXTRA_HINT",
    "_segment_collector_session",
    "_segment_empty_outbox",
    "segment_collector",
    "segment_events",
]


@pytest.fixture
def segment_events() -> Iterator[list[dict[str, Any]]]:
    """Every message clients send during the test, captured in memory as sent (and
    what the test's fixtures set up before it sent to the test outbox)."""
    yield from captured_events()


@pytest.fixture(scope="session")
def _segment_collector_session() -> Iterator[CollectorHandle]:
    """The session's one collector, shared by every test (internal: use `segment_collector`)."""
    yield from running_collector()


@pytest.fixture
def segment_collector(_segment_collector_session: CollectorHandle) -> CollectorHandle:
    """A running collector, emptied (events, counts, faults) before the test, once
    what earlier tests' clients still held for it has arrived."""
    return emptied_collector(_segment_collector_session)
