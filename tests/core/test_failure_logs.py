"""Delivery trouble is visible at the default log level, once, with the host and cause."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator

import pytest

from segment_core import Client
from segment_core.collector import CollectorHandle

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
    assert len(_lines(caplog, logging.ERROR)) == 5  # each batch given up, once


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
