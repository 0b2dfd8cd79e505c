"""The automatic page message, built and encoded by the sender, as a real receiver gets it."""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core import deferred
from segment_core.batching import MAX_BATCH_BYTES
from segment_core.client import Client
from segment_core.web import RequestTracker, WebOptions
from tests.receiver import Receiver, start_receiver
from tests.web.conftest import make_request

HTML = "text/html; charset=utf-8"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = start_receiver()
    yield server
    server.stop()


@pytest.fixture
def wire_client(receiver: Receiver) -> Iterator[Client]:
    client = Client("test-key", host=receiver.url)
    yield client
    client.shutdown(timeout=5)


def page_view(client: Client, **request: Any) -> RequestTracker:
    tracker = RequestTracker(client, WebOptions(), make_request(**request))
    tracker.cookie_to_set()
    assert tracker.finish(200, content_type=HTML) is True
    return tracker


def parse(timestamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def test_page_message_read_later_is_the_message_sent(
    wire_client: Client, receiver: Receiver
) -> None:
    tracker = page_view(wire_client)
    assert wire_client.flush(timeout=10)
    [sent] = receiver.messages()
    read = tracker.analytics.page_message
    assert read is not None
    assert {k: read[k] for k in sent if k != "sentAt"} == {
        k: v for k, v in sent.items() if k != "sentAt"
    }
    assert sent["type"] == "page" and sent["anonymousId"] == tracker.analytics.anonymous_id


def test_page_message_read_at_once_is_the_message_sent(
    wire_client: Client, receiver: Receiver
) -> None:
    tracker = page_view(wire_client)
    read = tracker.analytics.page_message  # most likely before the sender took it
    assert read is not None
    assert wire_client.flush(timeout=10)
    [sent] = receiver.messages()
    assert (sent["messageId"], sent["timestamp"]) == (read["messageId"], read["timestamp"])
    assert sent["properties"] == read["properties"]
    assert sent["context"]["page"] == read["context"]["page"]


def test_changes_to_the_context_after_the_page_call_are_not_sent(
    wire_client: Client, receiver: Receiver
) -> None:
    tracker = page_view(wire_client)
    context = tracker.analytics.context
    context["page"]["title"] = "changed after the page call"
    context["extra"] = "changed after the page call"
    assert wire_client.flush(timeout=10)
    [sent] = receiver.messages()
    assert "title" not in sent["context"]["page"]
    assert "extra" not in sent["context"]
    assert sent["context"]["page"]["path"] == "/products/42"


def test_the_timestamp_is_the_time_of_the_call(receiver: Receiver) -> None:
    # No batch is due before flush(): the sender builds the message then, after
    # the wall clock has moved on by 20 ms.
    client = Client("test-key", host=receiver.url, flush_at=100, flush_interval=30)
    try:
        page_view(client)
        called_by = datetime.datetime.now(datetime.timezone.utc)
        later = called_by + datetime.timedelta(milliseconds=20)
        while datetime.datetime.now(datetime.timezone.utc) < later:
            pass  # the clock moves on; no batch is due meanwhile
        assert client.flush(timeout=10)
    finally:
        client.shutdown(timeout=5)
    [page] = receiver.messages()
    assert parse(page["timestamp"]) <= called_by


def test_each_request_gets_its_own_message_id(wire_client: Client, receiver: Receiver) -> None:
    trackers = [page_view(wire_client) for _ in range(50)]
    assert wire_client.flush(timeout=10)
    sent = receiver.messages()
    assert len({m["messageId"] for m in sent}) == 50
    assert [m["anonymousId"] for m in sent] == [t.analytics.anonymous_id for t in trackers]


def test_batches_are_cut_by_the_encoded_size(receiver: Receiver) -> None:
    # Each message is about 9 KB, far above the estimate the buffer counts them
    # at: 150 of them do not fit one request, and every one arrives.
    client = Client("test-key", host=receiver.url, flush_at=150, flush_interval=30)
    try:
        path = "/" + "a" * 2000
        trackers = [page_view(client, path=path) for _ in range(150)]
        assert client.flush(timeout=20)
    finally:
        client.shutdown(timeout=5)
    requests = receiver.ok_requests()
    assert len(requests) >= 2
    assert all(len(r.raw) <= MAX_BATCH_BYTES + 200 for r in requests)
    ids = [m["anonymousId"] for m in receiver.messages()]
    assert ids == [t.analytics.anonymous_id for t in trackers]
    assert client.stats()["sent"] == 150


def test_a_page_message_over_the_size_limit_is_logged_and_counted(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # A default context close to the limit: the page's own fields take it over.
    client = Client("test-key", host=receiver.url, default_context={"blob": "x" * 32_300})
    try:
        with caplog.at_level(logging.ERROR, logger="segment.core"):
            tracker = page_view(client)
            client.track("u1", "Small")  # sent as usual
            assert client.flush(timeout=10)
        stats = client.stats()
    finally:
        client.shutdown(timeout=5)
    assert [m["event"] for m in receiver.messages()] == ["Small"]
    assert stats["dropped"] == {"too_large": 1}
    assert stats["pending"] == 0
    assert "automatic page call for /products/42 was not sent" in caplog.text
    assert "over Segment's 32768" in caplog.text
    assert tracker.analytics.page_message is not None  # still readable


def test_a_view_that_read_the_context_gets_its_page_message_built_at_once(
    wire_client: Client, receiver: Receiver
) -> None:
    tracker = RequestTracker(wire_client, WebOptions(), make_request())
    held = tracker.analytics.context  # the view holds it: built at the call
    tracker.cookie_to_set()
    assert tracker.finish(200, content_type=HTML) is True
    held["page"]["title"] = "changed after the page call"
    assert not isinstance(tracker.analytics._page_message, deferred.DeferredPage)
    assert wire_client.flush(timeout=10)
    [sent] = receiver.messages()
    assert "title" not in sent["context"]["page"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_fork_while_a_message_is_built_leaves_the_child_free_to_build(
    wire_client: Client,
) -> None:
    tracker = RequestTracker(wire_client, WebOptions(), make_request())
    tracker.cookie_to_set()
    tracker.finish(200, content_type=HTML)
    with deferred._build_lock:  # as a sender building a message at the fork
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            message = tracker.analytics.page_message
            os._exit(0 if message is not None and message["type"] == "page" else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
