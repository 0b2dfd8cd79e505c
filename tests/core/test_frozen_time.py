"""Time frozen by a test suite (freezegun's ``freeze_time``, as Django and Flask suites
use it): messages carry the frozen time, and the client's timers and deadlines, and
the collector handle's waits, still run."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from types import FrameType

import pytest
from freezegun import freeze_time

from segment_core import Client
from segment_core.collector import CollectorHandle

FROZEN_AT = "2024-01-01 12:00:00"
#: Past this (real time), a wait that time standing still keeps going fails the test.
STILL_WAITING_SECONDS = 10.0


class StillWaiting(Exception):
    pass


def real_seconds() -> float:
    """A clock of the test's own, which freezegun leaves alone."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


@contextlib.contextmanager
def fails_if_still_waiting(what: str) -> Iterator[None]:
    """Raise :class:`StillWaiting` in the block once it has run for
    ``STILL_WAITING_SECONDS`` of real time: a wait that never ends fails, not hangs."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise StillWaiting(f"{what} still waiting after {STILL_WAITING_SECONDS:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, STILL_WAITING_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"


def test_a_message_leaves_after_flush_interval_with_the_frozen_timestamp(
    segment_collector: CollectorHandle, clients: list[Client]
) -> None:
    client = Client("key", host=segment_collector.url, flush_interval=0.2)
    clients.append(client)
    with freeze_time(FROZEN_AT), fails_if_still_waiting("wait_for(1, timeout=5)"):
        client.track("user-1", "Signed Up")
        [event] = segment_collector.wait_for(1, timeout=5)
    assert event["message"]["timestamp"] == "2024-01-01T12:00:00.000Z"


def test_a_clock_that_ticks_on_every_read_leaves_deliveries_their_time(
    segment_collector: CollectorHandle, clients: list[Client]
) -> None:
    # freeze_time(auto_tick_seconds=...) moves on at each read: a timeout measured on
    # it would run out at once.
    client = Client("key", host=segment_collector.url)
    in_sync = Client("key", host=segment_collector.url, sync_mode=True)
    clients.extend((client, in_sync))
    with freeze_time(FROZEN_AT, auto_tick_seconds=30), fails_if_still_waiting("flush(5)"):
        client.track("user-1", "Signed Up")
        assert client.flush(5) is True
        assert in_sync.track("user-1", "Paid")[0] is True
        events = segment_collector.wait_for(2, timeout=5)
    assert sorted(e["message"]["event"] for e in events) == ["Paid", "Signed Up"]
    from segment_core.status import probe_host

    with freeze_time(FROZEN_AT, auto_tick_seconds=30), fails_if_still_waiting("probe"):
        assert probe_host(client.config).reachable  # the status commands' probe too


def test_flush_and_shutdown_return_by_their_deadline(
    silent_url: str, clients: list[Client]
) -> None:
    client = Client("key", host=silent_url, timeout=30)
    clients.append(client)
    with freeze_time(FROZEN_AT), fails_if_still_waiting("flush(timeout=1)"):
        client.track("user-1", "Signed Up")
        started = real_seconds()
        assert client.flush(timeout=1) is False
        flushed_after = real_seconds() - started
        started = real_seconds()
        assert client.shutdown(timeout=1) is False
        shut_down_after = real_seconds() - started
    assert 1 <= flushed_after < 3
    assert shut_down_after < 3


def test_the_collector_handle_wait_times_out(segment_collector: CollectorHandle) -> None:
    with freeze_time(FROZEN_AT), fails_if_still_waiting("wait_for(1, timeout=0.5)"):
        started = real_seconds()
        with pytest.raises(AssertionError, match="expected at least 1 event"):
            segment_collector.wait_for(1, timeout=0.5)
        assert real_seconds() - started < 5


def test_a_client_loaded_while_time_is_frozen_keeps_its_deadlines(silent_url: str) -> None:
    # A suite may start freezing before it imports the app, and the library with it.
    script = f"""
import time
from freezegun import freeze_time
freeze_time({FROZEN_AT!r}).start()
from segment_core import Client
client = Client("key", host={silent_url!r}, timeout=30)
client.track("user-1", "Signed Up")
started = time.clock_gettime(time.CLOCK_MONOTONIC)
delivered = client.flush(timeout=0.5)
print(delivered, time.clock_gettime(time.CLOCK_MONOTONIC) - started)
client.shutdown(timeout=0)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=STILL_WAITING_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    delivered, flushed_after = done.stdout.split()
    assert delivered == "False"
    assert float(flushed_after) < 3


@pytest.mark.usefixtures("clock_east_of_utc")
def test_naive_timestamps_of_a_frozen_clock_keep_its_time() -> None:
    # freezegun's now() is its UTC now (no tz_offset): datetime.now() and a naive
    # UTC now are both the frozen time, whatever the machine's zone.
    client = Client("k", send=False)
    with freeze_time(FROZEN_AT):
        now = dt.datetime.now()
        utc_now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        sent = [client.track("u", "E", timestamp=when)[1]["timestamp"] for when in (now, utc_now)]
    assert sent == ["2024-01-01T12:00:00.000Z"] * 2
    with freeze_time(FROZEN_AT, tz_offset=9):  # a frozen clock nine hours ahead of UTC
        local = dt.datetime.now()
        assert client.track("u", "E", timestamp=local)[1]["timestamp"] == "2024-01-01T12:00:00.000Z"
