"""A collector in the process of a test that freezes time (freezegun's ``freeze_time``):
its delayed answers come, and it stops at once afterwards."""

from __future__ import annotations

import time

import requests
from freezegun import freeze_time

from segment_core.collector import run_in_background
from tests.collector.helpers import batch, message


def real_seconds() -> float:
    """A clock of the test's own, which freezegun leaves alone."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def test_a_delayed_answer_comes_and_the_collector_stops_at_once() -> None:
    with run_in_background() as collector:
        collector.faults({"delay": 0.3})
        with freeze_time("2024-01-01 12:00:00"):
            # The server's loop sets timers (the delay, its own tick) as time stands still.
            response = requests.post(collector.url + "/v1/batch", json=batch(message()), timeout=5)
        assert response.status_code == 200
        started = real_seconds()
    assert real_seconds() - started < 3
