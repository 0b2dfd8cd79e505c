"""`CollectorHandle`: `wait_for` keeps its deadline and reads only what is new;
`event` finds every messageId."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from segment_core import Client
from segment_core.collector import CollectorHandle
from tests.collector.helpers import batch, message, post


@pytest.fixture
def unanswering_url() -> Iterator[str]:
    """A server that takes connections and never answers, as a collector stopped in a
    debugger: the system accepts the connection, nothing reads the request."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_wait_for_keeps_its_deadline_when_the_collector_does_not_answer(
    unanswering_url: str,
) -> None:
    handle = CollectorHandle.connect(unanswering_url)  # whose requests wait up to 10 s
    with pytest.raises(AssertionError) as raised:
        handle.wait_for(1, timeout=0.3, event="Signed Up")
    says = str(raised.value)
    assert "expected at least 1 event(s) matching {'event': 'Signed Up'} within 0.3s" in says
    assert f"the collector at {unanswering_url} did not answer" in says


def test_wait_for_asks_a_collector_refusing_connections_again_until_its_deadline() -> None:
    """A collector still starting (another process's), or stopped: the port refuses."""
    from segment_core.collector import run_in_background

    stopped = run_in_background()
    stopped.stop()
    with pytest.raises(AssertionError) as raised:
        stopped.wait_for(1, timeout=0.5)
    assert f"the collector at {stopped.url} did not answer" in str(raised.value)
    # Asked before the collector listens on its port: it waits for it.
    port = int(stopped.url.rsplit(":", 1)[1])
    started: list[CollectorHandle] = []

    def start_and_post() -> None:
        started.append(run_in_background(port=port))
        post(started[0].url, batch(message("track", event="Signed Up")))

    starter = threading.Thread(target=start_and_post)
    starter.start()
    try:
        found = stopped.wait_for(1, timeout=30)
        assert [e["message"]["event"] for e in found] == ["Signed Up"]
    finally:
        starter.join(timeout=30)
        for collector in started:
            collector.stop()


def test_wait_for_reads_every_event_a_page_at_a_time(segment_collector: CollectorHandle) -> None:
    sent = [message() for _ in range(5)]
    assert post(segment_collector.url, batch(*sent)).status_code == 200
    events = segment_collector.wait_for(5, limit=2)
    assert [e["messageId"] for e in events] == [m["messageId"] for m in sent]


def test_wait_for_starts_after_a_cursor_and_keeps_filters(
    segment_collector: CollectorHandle,
) -> None:
    assert post(segment_collector.url, batch(message(userId="ada"))).status_code == 200
    [first] = segment_collector.wait_for(1)
    later = [message(userId="ada"), message(userId="grace"), message(userId="ada")]
    assert post(segment_collector.url, batch(*later)).status_code == 200
    events = segment_collector.wait_for(2, after=first["seq"], user_id="ada", limit=1)
    assert [e["messageId"] for e in events] == [later[0]["messageId"], later[2]["messageId"]]
    [newest] = segment_collector.wait_for(1, last=1)
    assert newest["messageId"] == later[2]["messageId"]


@pytest.mark.parametrize("message_id", [".", "..", "...", "a/../b", "./x"])
def test_event_finds_ids_made_of_dots(segment_collector: CollectorHandle, message_id: str) -> None:
    assert post(segment_collector.url, batch(message(messageId=message_id))).status_code == 200
    assert segment_collector.event(message_id)["messageId"] == message_id


def test_wait_for_has_the_clients_sending_to_it_send_now(
    segment_collector: CollectorHandle,
) -> None:
    # Not after their flush_interval: a test's timeout may be shorter.
    client = Client("k", host=segment_collector.url, flush_interval=3600, flush_at=100)
    try:
        assert client.track("u1", "Ordered")[0]
        [event] = segment_collector.wait_for(1, timeout=5)
        assert event["message"]["event"] == "Ordered"
    finally:
        client.shutdown(timeout=5)
