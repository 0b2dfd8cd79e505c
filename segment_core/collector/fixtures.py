"""The `segment_collector` pytest fixture: one collector per session, reset per test.

The installed pytest plugin (:mod:`segment_pytest`) already provides it;
this module stays importable for projects that list it in ``pytest_plugins``.

Example::

    def test_signup_is_tracked(segment_collector):
        client = make_client(host=segment_collector.url)
        ...
        [event] = segment_collector.wait_for(1, type="track", event="Signed Up")
"""

from __future__ import annotations

from segment_pytest import _segment_collector_session, segment_collector

__all__ = ["_segment_collector_session", "segment_collector"]
