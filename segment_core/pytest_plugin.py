"""The pytest plugin registered as ``segment``: fixtures for testing apps that send events.

- ``segment_events``: every message clients send during the test, captured in
  memory (nothing leaves the process).
- ``segment_collector``: a real local collector, one per session, reset before each
  test (needs the ``collector`` extra: ``pip install 'segment-web[collector]'``).

pytest loads this module in every run on a machine where the package is installed,
so it imports nothing beyond the base dependencies: the collector (Starlette and
uvicorn) is imported only when a test asks for ``segment_collector``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from segment_core.testing import capture, outbox

if TYPE_CHECKING:
    from segment_core.collector.handle import CollectorHandle

__all__ = ["COLLECTOR_EXTRA_HINT", "segment_collector", "segment_events"]

COLLECTOR_EXTRA_HINT = (
    "the local collector needs the 'collector' extra: pip install 'segment-web[collector]'"
)


@pytest.fixture(autouse=True)
def _segment_empty_outbox() -> None:
    """Each test starts with an empty ``segment_core.testing.outbox``."""
    outbox.clear()


@pytest.fixture
def segment_events() -> Iterator[list[dict[str, Any]]]:
    """Every message clients send during the test, captured in memory."""
    with capture() as events:
        yield events


@pytest.fixture(scope="session")
def _segment_collector_session() -> Iterator[CollectorHandle]:
    """The session's one collector, shared by every test (internal: use `segment_collector`)."""
    try:
        from segment_core.collector.background import run_in_background
    except ImportError as error:
        missing: str | None = str(error)
    else:
        missing = None
    if missing is not None:  # failed outside the except block: no chained traceback
        pytest.fail(f"segment_collector: {COLLECTOR_EXTRA_HINT} ({missing})", pytrace=False)
    with run_in_background() as handle:
        yield handle


@pytest.fixture
def segment_collector(_segment_collector_session: CollectorHandle) -> CollectorHandle:
    """A running collector, emptied (events, counts, faults) before the test."""
    _segment_collector_session.reset()
    return _segment_collector_session
