"""What goes over the wire, checked on a real loopback HTTP server."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from typing import Any

import pytest

from segment_core import Client, worker
from segment_core.batching import MAX_BATCH_BYTES, MAX_BATCH_MESSAGES
from tests.receiver import Receiver


def test_batch_body_headers_and_auth(receiver: Receiver, make_client: Any) -> None:
    client: Client = make_client(write_key="wk-123")
    client.track("u1", "Signed Up", {"plan": "pro"})
    client.identify("u1", {"email": "a@b.c"})
    assert client.flush(5)
    request = receiver.requests[-1]
    assert request.path == "/v1/batch"
    headers = request.headers
    assert headers["authorization"] == "Basic " + base64.b64encode(b"wk-123:").decode()
    assert headers["content-type"] == "application/json"
    assert headers["content-encoding"] == "gzip"
    assert headers["user-agent"].startswith("segment-web/")
    assert "x-retry-count" not in headers
    assert json.loads(gzip.decompress(request.raw))["writeKey"] == "wk-123"
    body = request.body
    sent_at = dt.datetime.fromisoformat(body["sentAt"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.timezone.utc) - sent_at).total_seconds()) < 60
    assert [m["type"] for m in body["batch"]] == ["track", "identify"]
    assert body["batch"][0]["properties"] == {"plan": "pro"}


def test_sent_at_comes_from_the_now_option_as_the_timestamps_do(
    receiver: Receiver, make_client: Any
) -> None:
    # Segment corrects each timestamp by receivedAt - sentAt: both from one clock.
    fixed = dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    client = make_client(now=lambda: fixed)
    client.track("u1", "E")
    assert client.flush(5)
    body = receiver.requests[-1].body
    assert body["sentAt"] == body["batch"][0]["timestamp"] == "2024-05-01T12:00:00.000Z"


@pytest.mark.parametrize("broken", [lambda: 1 / 0, lambda: dt.datetime(2024, 5, 1)])
def test_a_now_option_that_fails_leaves_sent_at_to_the_system_clock(
    receiver: Receiver, make_client: Any, broken: Any
) -> None:
    client = make_client(now=broken)
    client.track("u1", "E", timestamp=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    assert client.flush(5)
    sent_at = dt.datetime.fromisoformat(receiver.requests[-1].body["sentAt"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.timezone.utc) - sent_at).total_seconds()) < 60


def test_gzip_can_be_turned_off(receiver: Receiver, make_client: Any) -> None:
    client = make_client(gzip=False)
    client.track("u1", "E")
    assert client.flush(5)
    request = receiver.requests[-1]
    assert "content-encoding" not in request.headers
    assert json.loads(request.raw)["batch"][0]["event"] == "E"


def test_the_message_is_fixed_when_the_call_returns(receiver: Receiver, make_client: Any) -> None:
    client = make_client()
    properties: dict[str, Any] = {"step": 1}
    client.track("u1", "E", properties)
    properties["step"] = 2
    assert client.flush(5)
    assert receiver.messages()[0]["properties"] == {"step": 1}


# Values of JSON's own, none nested: the calls that carry only such values skip the
# encoder's scans for nesting and NaN, and must write them as the checked path does.
FLAT_VALUES: dict[str, Any] = {
    "text": '\u00e9\u2028\x00"\\',
    "empty": "",
    "int": -(2**63),
    "uint": 2**64 - 1,
    "big": 2**70,
    "float": 0.1,
    "negative zero": -0.0,
    "huge": 1e308,
    "yes": True,
    "none": None,
}


def test_flat_properties_and_traits_arrive_as_given(receiver: Receiver, make_client: Any) -> None:
    client = make_client()
    client.track("u1", "E", FLAT_VALUES)
    client.page("u1", name="Home", properties=FLAT_VALUES)
    client.screen("u1", name="Home", properties=FLAT_VALUES)
    client.identify("u1", FLAT_VALUES)
    client.group("u1", "g1", FLAT_VALUES)
    client.track("u1", "E", {1: "one", "b": "x"})  # a key JSON writes as text
    assert client.flush(5)
    messages = receiver.messages()
    fields = [m.get("properties", m.get("traits")) for m in messages]
    assert fields == [FLAT_VALUES] * 5 + [{"1": "one", "b": "x"}]
    assert [m["context"]["library"]["name"] for m in messages] == ["segment-web"] * 6
    assert b'"big":1180591620717411303424' in gzip.decompress(receiver.requests[-1].raw)


def test_batches_are_capped_at_2500_messages(receiver: Receiver, make_client: Any) -> None:
    client = make_client(flush_at=2500, flush_interval=60, max_queue_size=6000)
    # Short ids keep 2,500 messages under the byte limit, so the count limit is what binds.
    ids = [client.track("u", "E", message_id=str(i))[1]["messageId"] for i in range(5001)]
    assert client.flush(10)
    sizes = [len(r.batch) for r in receiver.requests]
    assert max(sizes) == MAX_BATCH_MESSAGES
    assert sum(sizes) == 5001
    assert [m["messageId"] for m in receiver.messages()] == ids


def test_batches_stay_under_the_byte_limit(receiver: Receiver, make_client: Any) -> None:
    client = make_client(flush_at=2500, flush_interval=60, gzip=False)
    for i in range(80):
        client.track("u", "E", {"i": i, "pad": "x" * 30_000})
    assert client.flush(10)
    assert len(receiver.requests) >= 5
    assert all(len(r.raw) <= MAX_BATCH_BYTES for r in receiver.requests)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(80))


def test_flush_at_sends_without_waiting_for_the_interval(
    receiver: Receiver, make_client: Any
) -> None:
    client = make_client(flush_at=10, flush_interval=3600)
    for i in range(10):
        client.track("u", "E", {"i": i})
    assert len(receiver.wait_for_messages(10, timeout=10)) == 10


def test_flush_interval_sends_a_partial_batch(receiver: Receiver, make_client: Any) -> None:
    client = make_client(flush_at=100, flush_interval=0.05)
    client.track("u", "E")
    assert len(receiver.wait_for_messages(1, timeout=10)) == 1


def _busy_client(
    receiver: Receiver, make_client: Any, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> Client:
    """A client with ``flush_at=5`` that sent one batch of 5 and now holds batches back."""
    # A busy interval far longer than the test: whatever it holds back stays back.
    monkeypatch.setattr(worker, "BUSY_SEND_INTERVAL", 3600.0)
    client: Client = make_client(flush_at=5, **options)
    for i in range(5):
        client.track("u", "E", {"i": i})
    assert len(receiver.wait_for_messages(5, timeout=10)) == 5  # light traffic: at once
    assert client.flush(10)  # and the sender is idle again, nothing waiting
    return client


def test_under_load_batches_grow_instead_of_posting_every_flush_at(
    receiver: Receiver, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _busy_client(receiver, make_client, monkeypatch, flush_interval=3600)
    for i in range(5, 40):
        client.track("u", "E", {"i": i})
    assert client.stats()["queued"] == 35  # due by flush_at, held to grow the batch
    assert client.flush(10)  # flush() is never held back
    assert [len(r.batch) for r in receiver.requests] == [5, 35]
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(40))


def test_a_full_batch_is_never_held_back(
    receiver: Receiver, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _busy_client(
        receiver, make_client, monkeypatch, flush_interval=3600, max_queue_size=6000
    )
    # Short ids keep 2,500 messages under the byte limit: a full batch by count.
    for i in range(5, 5 + MAX_BATCH_MESSAGES):
        client.track("u", "E", message_id=str(i))
    messages = receiver.wait_for_messages(5 + MAX_BATCH_MESSAGES, timeout=20)
    assert len(messages) == 5 + MAX_BATCH_MESSAGES
    assert [len(r.batch) for r in receiver.requests] == [5, MAX_BATCH_MESSAGES]


def test_a_backlog_larger_than_one_request_is_never_held_back(
    receiver: Receiver, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _busy_client(
        receiver, make_client, monkeypatch, flush_interval=3600, max_queue_size=200
    )
    # Half the queue (100 messages of 10 KB, about 1 MB) makes a batch due at once.
    # The byte limit cuts it at about 47 messages, leaving more than that waiting:
    # the next batch leaves at once too. The few left after it wait to grow.
    for i in range(5, 105):
        client.track("u", "E", {"i": i, "pad": "x" * 10_000})
    receiver.wait_for_messages(5 + 80, timeout=20)
    cut = len(receiver.requests[1].batch)
    assert 0 < client.stats()["queued"] < cut
    assert client.flush(10)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(105))
    assert all(len(gzip.decompress(r.raw)) <= MAX_BATCH_BYTES for r in receiver.requests)


def test_half_a_small_queue_is_never_held_back(
    receiver: Receiver, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _busy_client(
        receiver, make_client, monkeypatch, flush_interval=3600, max_queue_size=100
    )
    for i in range(5, 55):  # half the queue: sent at once, so the queue never fills
        client.track("u", "E", {"i": i})
    assert len(receiver.wait_for_messages(55, timeout=10)) == 55
    assert client.stats()["dropped"] == {}


def test_flush_interval_still_bounds_the_wait_under_load(
    receiver: Receiver, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _busy_client(receiver, make_client, monkeypatch, flush_interval=0.1)
    for i in range(5, 15):  # held back from flush_at, not from flush_interval
        client.track("u", "E", {"i": i})
    assert len(receiver.wait_for_messages(15, timeout=10)) == 15
