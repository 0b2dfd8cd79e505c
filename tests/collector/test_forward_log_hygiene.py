"""What the collector's relay logs of an upstream's refusal: short, and without the write
key, its Basic token or the events, even when the upstream echoes the request."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from segment_core import Client
from segment_core.collector import CollectorHandle, create_app, run_in_background
from segment_core.hosts import ANSWER_SHOWN_CHARS
from tests.core.loopback import Loopback, Seen, reply, start

WRITE_KEY = "wk_SuperSecretWriteKey_12345"
BASIC_TOKEN = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
EMAIL = "alice.secret@example.com"
WAIT_SECONDS = 15.0


def echo_the_request(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
    auth = seen.headers.get("authorization", "").encode()
    reply(handler, 400, b"bad request: auth=" + auth + b" body=" + seen.body)


def wait_for_failed_relays(relay: CollectorHandle, requests: int) -> None:
    """Until the relay has counted ``requests`` requests as failed (or the wait is over)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while relay.summary()["forwarded"]["failed"] < requests and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def echoing_upstream() -> Iterator[Loopback]:
    server = start(echo_the_request)
    yield server
    server.stop()


def test_an_upstream_echoing_the_request_is_logged_short_without_the_key_or_the_events(
    echoing_upstream: Loopback, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="segment.collector")
    with run_in_background(forward=echoing_upstream.url) as relay:
        client = Client(WRITE_KEY, host=relay.url)
        try:
            client.identify("u1", {"email": EMAIL})
            assert client.flush(WAIT_SECONDS)
        finally:
            client.shutdown(5)
        wait_for_failed_relays(relay, 1)
    [line] = [
        r.getMessage()
        for r in caplog.records
        if r.name == "segment.collector" and "refused a forwarded batch" in r.getMessage()
    ]
    for secret in (WRITE_KEY, BASIC_TOKEN, EMAIL):
        assert secret not in line, line
    said = line.partition("HTTP 400 ")[2]
    assert said.startswith("'bad request: auth=Basic ")
    assert len(said) <= ANSWER_SHOWN_CHARS + 2  # with its quotes


def test_a_refused_forward_url_is_shown_without_its_query() -> None:
    with pytest.raises(ValueError, match=r"^forward must not have a query") as refused:
        create_app(forward="https://relay.example/segment?api_key=SuperSecretProxyKey")
    assert "SuperSecretProxyKey" not in str(refused.value)
    assert "relay.example/segment" in str(refused.value)
