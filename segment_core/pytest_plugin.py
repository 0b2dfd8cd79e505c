"""The pytest plugin's fixtures, under the name earlier releases gave them.

The plugin itself is :mod:`segment_pytest` (registered under that name), which
imports nothing of the library until a test asks for a fixture.
"""

from __future__ import annotations

from segment_pytest import (
    COLLECTOR_EXTRA_HINT,
    _segment_collector_session,
    _segment_empty_outbox,
    segment_collector,
    segment_events,
)

__all__ = [
    "COLLECTOR_EXTRA_HINT",
    "_segment_collector_session",
    "_segment_empty_outbox",
    "segment_collector",
    "segment_events",
]
