"""A local Segment-compatible collector, for tests and for watching events arrive.

Run it with `segment-collector` (or `python -m segment_core.collector`), or inside a
test process:

    from segment_core.collector import run_in_background

    with run_in_background() as collector:
        ...  # point a client at collector.url
        [event] = collector.wait_for(1, type="track")
        assert event["status"] == "good", event["reasons"]
"""

from __future__ import annotations

from segment_core.collector.app import CollectorApp, create_app
from segment_core.collector.background import run_in_background
from segment_core.collector.handle import CollectorError, CollectorHandle
from segment_core.collector.ingest import Limits
from segment_core.collector.validation import validate_message

__all__ = [
    "CollectorApp",
    "CollectorError",
    "CollectorHandle",
    "Limits",
    "create_app",
    "run_in_background",
    "validate_message",
]
