"""Test helpers that need no test framework.

``capture()`` collects every message any client would send, with no network::

    from segment_core.testing import capture

    with capture() as events:
        client.track("u1", "Signed Up")
    assert events[0]["event"] == "Signed Up"

The pytest plugin (``segment_core.pytest_plugin``, registered automatically) adds the
fixtures ``segment_events`` and ``segment_collector``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from segment_core import _capture

__all__ = ["capture"]


@contextmanager
def capture() -> Iterator[list[dict[str, Any]]]:
    """Collect, in order, every message accepted by any client while the block runs."""
    sink: list[dict[str, Any]] = []
    _capture.sinks.append(sink)
    try:
        yield sink
    finally:
        _capture.sinks.remove(sink)
