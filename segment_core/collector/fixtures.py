"""The `segment_collector` pytest fixture: one collector per session, reset per test.

Example::

    def test_signup_is_tracked(segment_collector):
        client = make_client(host=segment_collector.url)
        ...
        [event] = segment_collector.wait_for(1, type="track", event="Signed Up")
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from segment_core.collector.background import run_in_background
from segment_core.collector.handle import CollectorHandle

__all__ = ["_segment_collector_session", "segment_collector"]


@pytest.fixture(scope="session")
def _segment_collector_session() -> Iterator[CollectorHandle]:
    """The session's one collector, shared by every test (internal: use `segment_collector`)."""
    with run_in_background() as handle:
        yield handle


@pytest.fixture
def segment_collector(_segment_collector_session: CollectorHandle) -> CollectorHandle:
    """A running collector, emptied (events, counts, faults) before the test."""
    _segment_collector_session.reset()
    return _segment_collector_session
