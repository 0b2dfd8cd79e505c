"""``debug=True``: each accepted message and each request is logged at DEBUG."""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Iterator

import pytest

from segment_core import Client, signals
from segment_core.collector import CollectorHandle


@pytest.fixture
def segment_logger() -> Iterator[logging.Logger]:
    """The ``segment`` logger, as it was before the test (``debug=True`` changes it)."""
    logger = logging.getLogger("segment")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(level)


def _client_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "segment.core"]


@pytest.mark.parametrize("sync_mode", [False, True], ids=["queued", "sync_mode"])
def test_debug_logs_each_accepted_message_and_each_request(
    segment_logger: logging.Logger,
    segment_collector: CollectorHandle,
    caplog: pytest.LogCaptureFixture,
    sync_mode: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client("secret-write-key", host=segment_collector.url, debug=True, sync_mode=sync_mode)
    try:
        _, track = client.track("u1", "Signed Up")
        _, identify = client.identify("u1", {"plan": "pro"})
        assert client.flush(10)
    finally:
        client.shutdown(5)
    lines = _client_lines(caplog)
    assert f"accepted track message {track['messageId']}" in lines
    assert f"accepted identify message {identify['messageId']}" in lines
    url = re.escape(segment_collector.url + "/v1/batch")
    sent = [
        re.fullmatch(rf"sent (\d+) message\(s\), \d+ bytes, to {url}: HTTP 200", line)
        for line in lines
        if line.startswith("sent ")
    ]
    assert sent and all(sent), lines
    assert sum(int(match[1]) for match in sent if match) == 2
    assert not any("secret-write-key" in line for line in lines)


def test_debug_logs_a_request_that_got_no_answer(
    segment_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client("key", host="http://127.0.0.1:9", debug=True, sync_mode=True, max_retries=0)
    assert client.track("u1", "Signed Up")[0] is False
    [line] = [line for line in _client_lines(caplog) if line.startswith("could not send ")]
    assert line.startswith("could not send 1 message(s), ")  # it never connected
    assert ", to http://127.0.0.1:9/v1/batch: NewConnectionError" in line


def test_without_debug_nothing_is_logged_and_calls_pay_nothing(
    segment_logger: logging.Logger,
    segment_collector: CollectorHandle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    gc.collect()  # the clients of earlier tests, and their receivers
    receivers = dict(signals.message_enqueued.receivers)
    client = Client("key", host=segment_collector.url)
    assert signals.message_enqueued.receivers == receivers  # the calls emit nothing
    try:
        client.track("u1", "Signed Up")
        assert client.flush(10)
    finally:
        client.shutdown(5)
    assert not any(line.startswith(("accepted", "sent")) for line in _client_lines(caplog))


def test_the_debug_receiver_goes_with_its_client(segment_logger: logging.Logger) -> None:
    gc.collect()  # the clients of earlier tests, and their receivers
    receivers = dict(signals.message_enqueued.receivers)
    client = Client("key", debug=True, send=False)
    assert len(signals.message_enqueued.receivers) == len(receivers) + 1
    client.shutdown(1)
    del client
    gc.collect()
    assert signals.message_enqueued.receivers == receivers


@pytest.mark.parametrize("debug", [False, True], ids=["without_debug", "with_debug"])
def test_a_retry_is_logged_at_debug_with_debug_alone(
    segment_logger: logging.Logger,
    segment_collector: CollectorHandle,
    caplog: pytest.LogCaptureFixture,
    debug: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    segment_collector.faults({"status": 503, "count": 2})
    client = Client("key", host=segment_collector.url, debug=debug, retry_backoff_min=0.01)
    try:
        client.track("u1", "Signed Up")
        assert client.flush(10)
    finally:
        client.shutdown(5)
    assert client.stats()["retries"] == 2
    retries = [line for line in _client_lines(caplog) if line.startswith("retry ")]
    assert len(retries) == (2 if debug else 0), retries
    debug_lines = [r for r in caplog.records if r.name.startswith("segment") and r.levelno < 20]
    assert bool(debug_lines) is debug


def test_debug_with_send_off_logs_each_message_it_would_have_sent(
    segment_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    # What a development or staging environment would send, seen without sending it.
    caplog.set_level(logging.DEBUG)
    client = Client("key", debug=True, send=False)
    ok, track = client.track("u1", "Signed Up", {"plan": "pro"})
    assert ok is True
    [line] = [line for line in _client_lines(caplog) if line.startswith("accepted")]
    assert line.startswith(f"accepted track message {track['messageId']}, not sent (send=False)")
    assert '"event":"Signed Up"' in line and '"plan":"pro"' in line
