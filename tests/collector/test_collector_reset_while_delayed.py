"""A request that a delay fault still holds when the collector is reset belongs to
the time before the reset: it is answered, and not stored."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from segment_core._clock import monotonic
from segment_core.collector import CollectorHandle
from tests.collector.helpers import batch, message, post

WAIT_SECONDS = 10.0


def held_request(collector: CollectorHandle, body: bytes) -> http.client.HTTPConnection:
    """Post `body` to `/v1/batch` behind a long delay fault; the answer is left unread."""
    collector.faults({"delay": 60})
    url = urlsplit(collector.url)
    assert url.hostname is not None and url.port is not None
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    connection.request("POST", "/v1/batch", body, {"Content-Type": "application/json"})
    # The request took the plan as it arrived: the collector holds it.
    deadline = monotonic() + WAIT_SECONDS
    while collector.summary()["pending_faults"]:
        assert monotonic() < deadline, "the request never reached the collector"
    return connection


def test_a_request_held_across_a_reset_is_answered_but_not_stored(
    segment_collector: CollectorHandle,
) -> None:
    connection = held_request(segment_collector, orjson.dumps(batch(message(event="Before"))))
    try:
        segment_collector.reset()  # which ends the delay too
        answer = connection.getresponse()
        assert (answer.status, orjson.loads(answer.read())) == (200, {"success": True})
    finally:
        connection.close()
    summary = segment_collector.summary()
    assert (summary["total"], summary["requests"]["accepted"]) == (0, 0)
    assert segment_collector.events() == []
    # What arrives after the reset is stored as ever.
    assert post(segment_collector.url, batch(message(event="After"))).status_code == 200
    [event] = segment_collector.wait_for(1)
    assert event["message"]["event"] == "After"


def test_a_malformed_request_held_across_a_reset_still_gets_its_error(
    segment_collector: CollectorHandle,
) -> None:
    connection = held_request(segment_collector, b"{not json")
    try:
        segment_collector.reset()
        answer = connection.getresponse()
        assert (answer.status, orjson.loads(answer.read())["code"]) == (400, "invalid_json")
    finally:
        connection.close()
    assert segment_collector.summary()["requests"]["rejected"] == 0  # counted before the reset


@pytest.mark.slow
def test_an_earlier_tests_delayed_request_never_shows_up_in_the_next_test(
    tmp_path: Path,
) -> None:
    # test_a's request is held by its delay fault, and its sender has stopped
    # waiting. The fixture's clear ends the delay before test_b starts: the request
    # goes on while test_b's collector is reset, yet test_b sees nothing of it.
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_collector.py").write_text(
        textwrap.dedent(
            """
            import http.client
            import json
            import time
            from urllib.parse import urlsplit

            held = []


            def test_a(segment_collector):
                segment_collector.faults({"delay": 60})
                url = urlsplit(segment_collector.url)
                connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                body = {"batch": [{"type": "track", "event": "From A", "userId": "a"}]}
                connection.request("POST", "/v1/batch", json.dumps(body))
                held.append(connection)
                deadline = time.monotonic() + 10
                while segment_collector.summary()["pending_faults"]:
                    assert time.monotonic() < deadline


            def test_b(segment_collector):
                [connection] = held
                assert connection.getresponse().status == 200  # once handled
                assert segment_collector.summary()["total"] == 0, segment_collector.events()
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "SEGMENT"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "2 passed" in result.stdout, result.stdout + result.stderr
