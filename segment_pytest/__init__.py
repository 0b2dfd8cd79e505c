"""The pytest plugin of segment-web, registered as ``segment``.

PYTEST_DONT_REWRITE

- ``segment_events``: every message clients send during the test, captured in
  memory as sent (nothing leaves the process).
- ``segment_collector``: a real local collector, one per session, reset before each
  test (needs the ``collector`` extra: ``pip install 'segment-web[collector]'``).

pytest loads this module in every run on a machine where the package is installed,
tests of Segment or not: it imports nothing of the library until a test asks for
one of its fixtures, so a run that never uses it pays nothing and meets none of
its dependencies.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from segment_core.collector.handle import CollectorHandle

__all__ = ["COLLECTOR_EXTRA_HINT", "running", "segment_collector", "segment_events"]

COLLECTOR_EXTRA_HINT = (
    "the local collector needs the 'collector' extra: pip install 'segment-web[collector]'"
)

#: The process pytest runs tests in, once configured (not the servers it starts).
_running_in: list[int] = []


def running() -> bool:
    """Whether pytest runs tests in this process (with this plugin loaded)."""
    return bool(_running_in) and _running_in[0] == os.getpid()


def pytest_configure(config: pytest.Config) -> None:
    _running_in[:] = [os.getpid()]


def pytest_unconfigure(config: pytest.Config) -> None:
    _running_in.clear()


@pytest.fixture(autouse=True)
def _segment_empty_outbox() -> None:
    """Each test starts with an empty ``segment_core.testing.outbox``."""
    testing = sys.modules.get("segment_core.testing")
    if testing is not None:  # never imported: no outbox to empty
        testing.outbox.clear()


@pytest.fixture
def segment_events() -> Iterator[list[dict[str, Any]]]:
    """Every message clients send during the test, captured in memory as sent."""
    from segment_core.testing import capture

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
