"""Delivery trouble is visible at the default log level, once, with the host and cause."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from segment_core import Client
from segment_core.collector import CollectorHandle
from segment_core.health import DeliveryHealth
from tests.receiver import Fault, Receiver

FAST_RETRIES = {"retry_backoff_min": 0.01, "retry_backoff_max": 0.02}


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A loopback port that nothing listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "segment.core" and r.levelno >= level and r.levelno < level + 10
    ]


def test_the_first_failure_warns_once_with_host_and_cause(
    refusing_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="segment.core")
    client = Client("key", host=refusing_url, max_retries=5, **FAST_RETRIES)
    try:
        client.track("u1", "Lost")
        assert client.flush(30)
    finally:
        client.shutdown(5)
    [warning] = _lines(caplog, logging.WARNING)
    assert warning.startswith(f"Segment: cannot deliver to {refusing_url}: ")
    assert "refused" in warning.lower()
    [error] = _lines(caplog, logging.ERROR)
    assert refusing_url in error
    assert "after 6 attempt(s)" in error  # the first try and five retries


def test_repeated_failures_are_rate_limited(
    refusing_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="segment.core")
    client = Client("key", host=refusing_url, max_retries=2, flush_at=1, **FAST_RETRIES)
    try:
        for number in range(5):
            client.track("u1", f"Lost {number}")
            assert client.flush(30)
    finally:
        client.shutdown(5)
    warnings = _lines(caplog, logging.WARNING)
    assert len(warnings) == 1, warnings
    # The others, of the same cause, are folded into one line, at shutdown here.
    first, folded = _lines(caplog, logging.ERROR)
    assert first.startswith("giving up on a batch of 1 message(s)")
    assert folded.startswith("gave up on 4 more batch(es), 4 message(s), ")


def test_recovery_is_logged_once(
    segment_collector: CollectorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="segment.core")
    segment_collector.faults({"status": 503, "count": 3})
    client = Client("key", host=segment_collector.url, **FAST_RETRIES)
    try:
        client.track("u1", "Late")
        assert client.flush(30)
        client.track("u1", "On time")
        assert client.flush(30)
    finally:
        client.shutdown(5)
    assert len(segment_collector.wait_for(2)) == 2
    warnings = _lines(caplog, logging.WARNING)
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"Segment: cannot deliver to {segment_collector.url}: HTTP 503")
    assert warnings[1] == (
        f"Segment: delivering to {segment_collector.url} again, after 3 failed attempt(s)"
    )
    assert _lines(caplog, logging.ERROR) == []


def test_a_host_failing_now_and_then_logs_one_failure_and_one_recovery(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="segment.core")
    receiver.fail_next(*[Fault(503), Fault(200)] * 5)  # each batch retried once, delivered
    client = Client("key", host=receiver.url, flush_at=1, **FAST_RETRIES)
    try:
        for number in range(5):
            client.track("u1", f"Late {number}")
            assert client.flush(30)
    finally:
        client.shutdown(5)
    assert len(receiver.messages()) == 5
    warnings = _lines(caplog, logging.WARNING)
    assert [line.split(" to ")[0] for line in warnings] == [
        "Segment: cannot deliver",
        "Segment: delivering",
    ], warnings
    assert _lines(caplog, logging.ERROR) == []


def test_batches_rejected_for_the_same_cause_log_one_error(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="segment.core")
    receiver.fail_next(*[Fault(401)] * 5, Fault(400))  # a wrong write key, then another cause
    client = Client("key", host=receiver.url, flush_at=1, **FAST_RETRIES)
    try:
        for number in range(6):
            client.track("u1", f"Rejected {number}")
            assert client.flush(30)
    finally:
        client.shutdown(5)
    assert client.stats()["failed"] == 6
    errors = [line for line in _lines(caplog, logging.ERROR) if line.startswith("giving up")]
    assert [line.split(": ")[1] for line in errors] == ["HTTP 401", "HTTP 400"], errors


def _repeat_until_logged(
    caplog: pytest.LogCaptureFixture, level: int, text: str, step: Callable[[], None]
) -> tuple[int, str]:
    """Call ``step`` until a line of ``level`` with ``text`` is logged: how many calls, the line."""
    deadline = time.monotonic() + 10
    calls = 0
    while time.monotonic() < deadline:
        step()
        calls += 1
        found = [line for line in _lines(caplog, level) if text in line]
        if found:
            return calls, found[0]
        threading.Event().wait(0.01)
    raise AssertionError(f"no log line with {text!r} within 10 s")


def test_failures_that_came_and_went_are_counted_in_the_next_failure_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="segment.core")
    health = DeliveryHealth("http://collector.test", reminder_seconds=0.3)
    health.failed("HTTP 503: busy", retrying=True)
    health.succeeded()
    assert len(_lines(caplog, logging.WARNING)) == 2  # the first ones, at once
    caplog.clear()

    def fail_and_recover() -> None:
        health.failed("HTTP 503: busy", retrying=True)
        health.succeeded()

    calls, line = _repeat_until_logged(caplog, logging.WARNING, "cannot deliver", fail_and_recover)
    assert calls > 1
    assert line == (
        "Segment: cannot deliver to http://collector.test: HTTP 503: busy "
        f"(retrying; {calls - 1} earlier failure(s) since the last such line recovered)"
    )
    # That failure was logged: its end is too.
    assert _lines(caplog, logging.WARNING)[-1] == (
        "Segment: delivering to http://collector.test again, after 1 failed attempt(s)"
    )


def test_batches_given_up_meanwhile_are_counted_in_the_next_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="segment.core")
    health = DeliveryHealth("http://collector.test", reminder_seconds=0.3)
    health.gave_up(3, 1, "HTTP 401: bad key", 401)
    assert len(_lines(caplog, logging.ERROR)) == 1  # the first, at once
    caplog.clear()
    calls, line = _repeat_until_logged(
        caplog, logging.ERROR, "401", lambda: health.gave_up(2, 1, "HTTP 401: bad key", 401)
    )
    assert calls > 1
    assert line == (
        "giving up on a batch of 2 message(s) for http://collector.test after 1 attempt(s): "
        f"HTTP 401: bad key (and on {calls - 1} more batch(es), {2 * (calls - 1)} message(s), "
        "for the same cause since the last such line)"
    )


def test_the_shutdown_line_names_the_host_and_the_last_cause(
    refusing_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="segment.core")
    client = Client("key", host=refusing_url, retry_backoff_min=30, retry_backoff_max=60)
    client.track("u1", "Stuck")
    client.flush(0)  # send now; the first attempt fails, the retry waits 30 s or more
    _wait_for_line(caplog, "cannot deliver")
    assert not client.shutdown(0.5)
    [line] = [m for m in _lines(caplog, logging.WARNING) if "shut down" in m]
    assert re.match(
        rf"Segment client shut down with 1 message\(s\) undelivered to {re.escape(refusing_url)}; "
        r"last error: .*refused",
        line,
        re.IGNORECASE,
    ), line
    giving_up = _wait_for_line(caplog, "giving up")  # the sender thread stops after shutdown
    assert "after 0 attempt(s)" not in giving_up
    assert "after 1 attempt(s)" in giving_up


def test_the_shutdown_line_says_a_request_was_still_waiting_for_an_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="segment.core")
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = Client("key", host=url, timeout=30)
        client.track("u1", "Stuck")
        assert not client.shutdown(0.5)
    [line] = [m for m in _lines(caplog, logging.WARNING) if "shut down" in m]
    assert re.fullmatch(
        rf"Segment client shut down with 1 message\(s\) undelivered to {re.escape(url)}; "
        r"last error: a request was still waiting for an answer after \d+\.\d s; "
        r"timeout 30 s to connect and for each read",
        line,
    ), line


def _wait_for_line(caplog: pytest.LogCaptureFixture, text: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for record in list(caplog.records):
            if text in record.getMessage():
                return record.getMessage()
        time.sleep(0.01)
    raise AssertionError(f"no log line with {text!r} within 30 s")


def test_the_host_is_shown_without_credentials_anywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="segment.core")
    client = Client("wk_VerySecretKey123", host="http://127.0.0.1:9", send=False)
    assert "VerySecret" not in repr(client)
    assert all("VerySecret" not in r.getMessage() for r in caplog.records)


def _given_up_counts(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int]]:
    """(batches, messages) each ERROR line counts as given up."""
    counts = []
    for line in _lines(caplog, logging.ERROR):
        first = re.match(r"giving up on a batch of (\d+) message", line)
        more = re.search(r"(\d+) more batch\(es\), (\d+) message\(s\)", line)
        batches = (1 if first else 0) + (int(more[1]) if more else 0)
        messages = (int(first[1]) if first else 0) + (int(more[2]) if more else 0)
        counts.append((batches, messages))
    return counts


def test_batches_given_up_within_the_minute_are_logged_when_delivery_recovers(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="segment.core")
    receiver.fail_next(*[Fault(503)] * 4)
    client = Client("key", host=receiver.url, flush_at=1, max_retries=0)
    try:
        for number in range(4):
            client.track("u1", "Lost", {"n": number})
            client.track("u1", "Lost", {"n": number})
            assert client.flush(30)
        client.track("u1", "Delivered")
        assert client.flush(30)
        assert client.stats()["failed"] == 8
        # Before shutdown: the recovery said it, not the exit.
        assert _given_up_counts(caplog) == [(1, 2), (3, 6)], _lines(caplog, logging.ERROR)
        assert _lines(caplog, logging.ERROR)[-1].startswith(
            f"gave up on 3 more batch(es), 6 message(s), for {receiver.url} for the same "
            "cause since the last such line: HTTP 503"
        )
    finally:
        client.shutdown(5)


def test_batches_given_up_within_the_minute_are_logged_at_shutdown(
    refusing_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="segment.core")
    client = Client("key", host=refusing_url, flush_at=1, max_retries=0)
    for number in range(3):
        client.track("u1", "Lost", {"n": number})
        assert client.flush(30)
    assert _given_up_counts(caplog) == [(1, 1)]
    assert client.shutdown(5)
    assert _given_up_counts(caplog) == [(1, 1), (2, 2)], _lines(caplog, logging.ERROR)
    assert client.stats()["failed"] == 3
