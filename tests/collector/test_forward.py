"""Relaying to an upstream API: within Segment's limits, keeping the sender's clock in
`sentAt`, and saying why a relay failed."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, quote_plus

import orjson
import pytest

from segment_core import Client
from segment_core.collector import CollectorHandle, create_app, run_in_background
from segment_core.collector.forward import Forwarder
from tests.collector.helpers import batch, message, post

WAIT_SECONDS = 15.0
#: A sender's clock one hour behind: far more than any delay of a slow machine.
SKEW = dt.timedelta(hours=-1)
#: Timestamps are written in whole milliseconds: the corrected time may be that far out.
MILLISECONDS_CUT = dt.timedelta(milliseconds=5)


@pytest.fixture
def upstream() -> Iterator[CollectorHandle]:
    with run_in_background(write_key="upstream-key") as handle:
        yield handle


class Redirecting(BaseHTTPRequestHandler):
    """Answers every POST with the server's `status` to its `location`."""

    server: RedirectingServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.server.status)
        self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # keeps the output quiet
        pass


class RedirectingServer(ThreadingHTTPServer):
    status = 301
    location = ""


@pytest.fixture
def redirecting() -> Iterator[RedirectingServer]:
    server = RedirectingServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def wait_for_relayed(relay: CollectorHandle, requests: int) -> dict[str, int]:
    """The relay's counts once it has counted `requests` requests as sent."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        forwarded: dict[str, int] = relay.summary()["forwarded"]
        if forwarded["sent"] >= requests or time.monotonic() > deadline:
            return forwarded
        time.sleep(0.02)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def corrected_time(event: dict[str, Any]) -> dt.datetime:
    """The time Segment gives the event: `receivedAt - (sentAt - timestamp)` (SPEC.md)."""
    received, sent = (dt.datetime.fromisoformat(event[key]) for key in ("receivedAt", "sentAt"))
    return received - (sent - dt.datetime.fromisoformat(event["message"]["timestamp"]))


def assert_corrected_to_the_real_time(
    events: list[dict[str, Any]], called: dt.datetime, seen: dt.datetime
) -> None:
    """Each event's corrected time lies between the call and the moment it was seen."""
    for event in events:
        assert called - MILLISECONDS_CUT <= corrected_time(event) <= seen + MILLISECONDS_CUT, (
            f"sentAt {event['sentAt']}, receivedAt {event['receivedAt']}, "
            f"timestamp {event['message']['timestamp']}: called at {iso(called)}"
        )


def test_a_skewed_senders_events_are_relayed_with_a_sent_at_that_corrects_its_clock(
    upstream: CollectorHandle,
) -> None:
    with run_in_background(forward=upstream.url) as relay:
        client = Client("upstream-key", host=relay.url, now=lambda: utc_now() + SKEW)
        called = utc_now()
        client.track("user-1", "Skewed Clock")
        assert client.flush(WAIT_SECONDS)
        client.shutdown(timeout=5)
        relayed = upstream.wait_for(1, timeout=WAIT_SECONDS)
        seen = utc_now()
    assert relayed[0]["message"]["event"] == "Skewed Clock"
    assert_corrected_to_the_real_time(relayed, called, seen)


def test_each_request_a_grown_batch_is_split_into_keeps_the_senders_clock(
    upstream: CollectorHandle,
) -> None:
    # 100 small messages and one shared context of 6 KB: some 600 KB once merged, so
    # the relay splits them into two requests, each stamped as it leaves.
    shared = {"userAgent": "Mozilla/5.0 " + "x" * 6000}
    called = utc_now()
    skewed = iso(called + SKEW)
    sent = [message(timestamp=skewed) for _ in range(100)]
    with run_in_background(forward=upstream.url) as relay:
        body = batch(*sent, context=shared, sentAt=skewed)
        answer = post(relay.url, body, auth=("upstream-key", ""))
        assert answer.status_code == 200, answer.text
        relayed = upstream.wait_for(100, timeout=WAIT_SECONDS)
        seen = utc_now()
    assert upstream.summary()["requests"]["accepted"] == 2
    assert_corrected_to_the_real_time(relayed, called, seen)


def test_a_single_call_keeps_the_senders_clock_of_its_own_sent_at(
    upstream: CollectorHandle,
) -> None:
    called = utc_now()
    skewed = iso(called + SKEW)
    with run_in_background(forward=upstream.url) as relay:
        track = message(timestamp=skewed, sentAt=skewed)
        answer = post(relay.url, track, path="/v1/track", auth=("upstream-key", ""))
        assert answer.status_code == 200, answer.text
        relayed = upstream.wait_for(1, timeout=WAIT_SECONDS)
        seen = utc_now()
    assert_corrected_to_the_real_time(relayed, called, seen)


def test_a_batch_without_sent_at_is_relayed_with_the_collectors_clock(
    upstream: CollectorHandle,
) -> None:
    body = {"batch": [message()]}
    before = utc_now()
    with run_in_background(forward=upstream.url) as relay:
        answer = post(relay.url, body, auth=("upstream-key", ""))
        assert answer.status_code == 200, answer.text
        [relayed] = upstream.wait_for(1, timeout=WAIT_SECONDS)
        after = utc_now()
    sent_at = dt.datetime.fromisoformat(relayed["sentAt"])
    assert before - MILLISECONDS_CUT <= sent_at <= after


def test_a_batch_grown_by_its_shared_context_is_relayed_in_requests_within_the_limits(
    upstream: CollectorHandle,
) -> None:
    # 2,000 small messages and one shared context: some 300 KB as sent, over 500 KB
    # once the context is merged into each message.
    shared = {"userAgent": "Mozilla/5.0 " + "x" * 300, "library": {"name": "custom"}}
    sent = [message(context={}) for _ in range(2000)]
    with run_in_background(forward=upstream.url) as relay:
        answer = post(relay.url, batch(*sent, context=shared), auth=("upstream-key", ""))
        assert answer.status_code == 200, answer.text
        relayed = upstream.wait_for(2000, timeout=WAIT_SECONDS)
        requests = upstream.summary()["requests"]
        forwarded = wait_for_relayed(relay, requests["accepted"])
    assert requests["rejected"] == 0
    assert requests["accepted"] >= 2  # the upstream holds each to 500 KB
    assert forwarded == {"sent": requests["accepted"], "failed": 0, "dropped": 0, "too_large": 0}
    assert [e["messageId"] for e in relayed] == [m["messageId"] for m in sent]
    assert relayed[0]["message"]["context"]["userAgent"] == shared["userAgent"]


def test_more_messages_than_one_request_holds_are_relayed_in_several(
    upstream: CollectorHandle,
) -> None:
    sent = [message() for _ in range(3000)]
    forwarder = Forwarder(upstream.url)
    forwarder.submit([orjson.dumps(m) for m in sent], "upstream-key")
    forwarder.close(timeout=WAIT_SECONDS)  # sends what is queued first
    assert forwarder.stats == {"sent": 2, "failed": 0, "dropped": 0, "too_large": 0}
    assert len(upstream.wait_for(3000, timeout=WAIT_SECONDS)) == 3000


def test_a_message_segment_would_refuse_is_not_relayed_and_the_rest_is(
    upstream: CollectorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    small = message()
    huge = message(properties={"blob": "x" * 40_000})
    forwarder = Forwarder(upstream.url)
    with caplog.at_level(logging.WARNING, logger="segment.collector"):
        forwarder.submit([orjson.dumps(huge), orjson.dumps(small)], "upstream-key")
        forwarder.close(timeout=WAIT_SECONDS)
    assert forwarder.stats == {"sent": 1, "failed": 0, "dropped": 0, "too_large": 1}
    assert [e["messageId"] for e in upstream.events()] == [small["messageId"]]
    assert "not forwarding 1 message(s) over 32768 bytes" in caplog.text


def test_a_message_bad_only_by_a_reserved_trait_s_type_is_relayed(
    upstream: CollectorHandle,
) -> None:
    """Segment takes an age written in words; a message it refuses is not relayed."""
    with run_in_background(forward=upstream.url) as relay:
        stringly = message("identify", traits={"age": "forty"})
        no_event = message("track", event=None)
        sent = post(relay.url, batch(stringly, no_event), auth=("upstream-key", ""))
        assert sent.status_code == 200
        assert wait_for_relayed(relay, 1)["sent"] == 1
        assert {e["message"]["messageId"]: e["status"] for e in relay.events()} == {
            stringly["messageId"]: "bad",
            no_event["messageId"]: "bad",
        }
    [relayed] = upstream.wait_for(1, timeout=WAIT_SECONDS)
    assert relayed["message"]["messageId"] == stringly["messageId"]
    assert relayed["message"]["traits"] == {"age": "forty"}
    assert relayed["status"] == "bad"  # the upstream collector's own judgement


def test_a_refused_relay_is_logged_in_one_line_with_the_upstreams_answer(
    upstream: CollectorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder = Forwarder(upstream.url)
    with caplog.at_level(logging.WARNING, logger="segment.collector"):
        forwarder.submit([orjson.dumps(message())], "not-the-key")
        forwarder.close(timeout=WAIT_SECONDS)
    assert forwarder.stats["failed"] == 1
    [record] = [r for r in caplog.records if r.name == "segment.collector"]
    line = record.getMessage()
    assert "HTTP 401" in line
    assert "the write key is not valid" in line  # the upstream's own words
    assert "\n" not in line and record.exc_info is None


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_the_batch_counts_as_failed(
    upstream: CollectorHandle,
    redirecting: RedirectingServer,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    # The endpoint moved to another server: a 301 or 302 followed as a GET would
    # lose the batch, and would send the write key there.
    redirecting.status, redirecting.location = status, f"{upstream.url}/v1/batch"
    forwarder = Forwarder(f"http://127.0.0.1:{redirecting.server_port}")
    with caplog.at_level(logging.WARNING, logger="segment.collector"):
        forwarder.submit([orjson.dumps(message())], "upstream-key")
        forwarder.close(timeout=WAIT_SECONDS)
    assert forwarder.stats == {"sent": 0, "failed": 1, "dropped": 0, "too_large": 0}
    assert not any(upstream.summary()["requests"].values())  # nothing reached it
    [record] = [r for r in caplog.records if r.name == "segment.collector"]
    assert f"(HTTP {status}) to '{upstream.url}/v1/batch': not followed" in record.getMessage()


@pytest.mark.parametrize(
    "url",
    [
        "notaurl",
        "ftp://example.com",
        "http://",
        "http://127.0.0.1:abc",
        "http://127.0.0.1:99999",
        "http://example.com/?x=1",
        "http://example.com/#top",
        " http://example.com",
        "http://ada:s3cret@example.com",  # the write key travels as HTTP Basic
        "http://exa mple.com",
        "http://example.com:8080#",
        "http://example.com/?",
        # The forwarder adds /v1/batch: batches would go to /v1/v1/batch.
        "https://api.segment.io/v1",
        "http://127.0.0.1:8765/v1/batch",
    ],
)
def test_a_forward_url_the_command_line_refuses_is_refused_in_python_too(url: str) -> None:
    with pytest.raises(ValueError, match=r"^forward (must|is not|ends with)") as refused:
        create_app(forward=url)
    assert "s3cret" not in str(refused.value)
    with pytest.raises(ValueError, match="forward"), run_in_background(forward=url):
        pass


@pytest.mark.parametrize("form", ["as written", "percent-encoded", "its Basic token"])
def test_a_redirect_to_a_page_that_names_the_write_key_logs_it_masked(
    redirecting: RedirectingServer, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    key = "wk+AbCd/EfGh=IjKl"
    token = base64.b64encode(f"{key}:".encode()).decode()
    named = {
        "as written": key,
        "percent-encoded": quote(key, safe=""),
        "its Basic token": quote(f"Basic {token}", safe=""),
    }[form]
    redirecting.status = 307
    redirecting.location = f"https://sso.example/login?next=/v1/batch&writeKey={named}"
    forwarder = Forwarder(f"http://127.0.0.1:{redirecting.server_port}")
    with caplog.at_level(logging.WARNING, logger="segment.collector"):
        forwarder.submit([orjson.dumps(message())], key)
        forwarder.close(timeout=WAIT_SECONDS)
    [record] = [r for r in caplog.records if r.name == "segment.collector"]
    logged = record.getMessage()
    assert "writeKey=" in logged and "…" in logged
    for secret in (key, token):
        for shown in (secret, quote(secret, safe=""), quote_plus(secret)):
            assert shown not in logged
