"""`GET /collector/stream`: server-sent events for the page."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from segment_core.collector import CollectorHandle, run_in_background
from segment_core.collector.stream import PAGE_SIZE
from tests.collector.helpers import batch, message, post
from tests.collector.test_cli import collector_process


def read_events(response: requests.Response, wanted: int) -> list[tuple[str, Any, str | None]]:
    """Read (event name, data, id) triples until `wanted` `message` events arrived."""
    found: list[tuple[str, Any, str | None]] = []
    name, data, event_id = "message", "", None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line.startswith("id: "):
            event_id = line[len("id: ") :]
        elif line == "" and data:
            found.append((name, orjson.loads(data), event_id))
            if sum(1 for kind, _, _ in found if kind == "message") >= wanted:
                return found
            name, data, event_id = "message", "", None
    raise AssertionError(f"the stream ended after {found}")


def events_after(collector: CollectorHandle, **request: Any) -> list[str]:
    """Open the stream as ``request`` says, post one "Later" event: the events it sends."""
    with requests.get(
        collector.url + "/collector/stream", stream=True, timeout=10, **request
    ) as response:
        post(collector.url, batch(message(event="Later")))
        later = read_events(response, 1)
    return [data["message"]["event"] for kind, data, _ in later if kind == "message"]


def test_stream_pushes_new_events_and_counts(segment_collector: CollectorHandle) -> None:
    with requests.get(
        segment_collector.url + "/collector/stream", stream=True, timeout=10
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        sent = message()
        post(segment_collector.url, batch(sent))
        found = read_events(response, 1)
    messages = [(data, event_id) for kind, data, event_id in found if kind == "message"]
    [(event, event_id)] = messages
    assert event["message"] == sent
    assert event_id is not None and event_id.endswith(f"-{event['seq']}")  # "<run>-<seq>"
    summaries = [data for kind, data, _ in found if kind == "summary"]
    assert summaries and summaries[0]["total"] in (0, 1)


def test_stream_resumes_after_last_event_id(segment_collector: CollectorHandle) -> None:
    first, second = message(), message()
    post(segment_collector.url, batch(first, second))
    [stored_first, _] = segment_collector.wait_for(2)
    with requests.get(
        segment_collector.url + "/collector/stream",
        headers={"Last-Event-ID": str(stored_first["seq"])},
        stream=True,
        timeout=10,
    ) as response:
        found = read_events(response, 1)
    [event] = [data for kind, data, _ in found if kind == "message"]
    assert event["messageId"] == second["messageId"]


def test_stream_announces_a_reset(segment_collector: CollectorHandle) -> None:
    with requests.get(
        segment_collector.url + "/collector/stream?after=0", stream=True, timeout=10
    ) as response:
        segment_collector.reset()
        post(segment_collector.url, batch(message()))
        found = read_events(response, 1)
    assert "reset" in [kind for kind, _, _ in found]


def test_a_reset_made_while_the_page_was_away_reaches_it(
    segment_collector: CollectorHandle,
) -> None:
    # The browser reconnects a second after each stream ends: a reset made in
    # between must still empty the page, which would keep showing forgotten events.
    post(segment_collector.url, batch(message(event="Before")))
    page = requests.get(segment_collector.url + "/collector/events?last=500", timeout=10).json()
    with requests.get(
        segment_collector.url + f"/collector/stream?after={page['run']}-0",
        stream=True,
        timeout=10,
    ) as response:
        [(_, _, last_id)] = [e for e in read_events(response, 1) if e[0] == "message"]
    segment_collector.reset()
    for request in (
        {"headers": {"Last-Event-ID": last_id}},  # as EventSource reconnects
        {"params": {"after": f"{page['run']}-{page['cursor']}"}},  # as the page starts
    ):
        with requests.get(
            segment_collector.url + "/collector/stream", stream=True, timeout=10, **request
        ) as response:
            post(segment_collector.url, batch(message(event="After")))
            found = read_events(response, 1)
        assert found[0][0] == "reset", request
        assert [d["message"]["event"] for k, d, _ in found if k == "message"] == ["After"]
        segment_collector.reset()


def test_a_page_of_another_run_gets_the_newest_events_a_page_loads(tmp_path: Path) -> None:
    # Restarted on the same --db: the page is reset and given what a page load
    # shows, not every event the file holds.
    sent = [message() for _ in range(PAGE_SIZE + 100)]
    with run_in_background(db=str(tmp_path / "events.sqlite3")) as collector:
        post(collector.url, batch(*sent))
        with requests.get(
            collector.url + "/collector/stream",
            headers={"Last-Event-ID": "0ther0ne-7"},
            stream=True,
            timeout=10,
        ) as response:
            found = read_events(response, PAGE_SIZE)
    assert found[0][0] == "reset"
    received = [d["messageId"] for k, d, _ in found if k == "message"]
    assert received == [m["messageId"] for m in sent[-PAGE_SIZE:]]


def test_a_browser_back_from_another_run_starts_afresh(segment_collector: CollectorHandle) -> None:
    # A restarted collector in memory numbers its events from 1 again: a page that
    # had seen 5 of the last run's must not skip the new run's first 5.
    sent = [message() for _ in range(3)]
    post(segment_collector.url, batch(*sent))
    stored = segment_collector.wait_for(3)
    with requests.get(
        segment_collector.url + "/collector/stream",
        headers={"Last-Event-ID": f"0ther0ne-{stored[-1]['seq'] + 5}"},
        stream=True,
        timeout=10,
    ) as response:
        found = read_events(response, 3)
    assert found[0][0] == "reset"
    received = [data["messageId"] for kind, data, _ in found if kind == "message"]
    assert received == [m["messageId"] for m in sent]
    # The same run: resumed where it was.
    last_id = [i for k, _, i in found if k == "message"][-1] or ""
    assert events_after(segment_collector, headers={"Last-Event-ID": last_id}) == ["Later"]


def test_the_page_cursor_names_its_run(segment_collector: CollectorHandle) -> None:
    # The page streams from the cursor of /collector/events before any event gave
    # it an id: a bare cursor from a collector restarted since would skip events.
    sent = [message() for _ in range(3)]
    post(segment_collector.url, batch(*sent))
    segment_collector.wait_for(3)
    page = requests.get(segment_collector.url + "/collector/events?last=500", timeout=10).json()
    assert page["run"].isalnum() and page["cursor"] >= 3
    with requests.get(  # the page of another run, its cursor past this run's events
        segment_collector.url + f"/collector/stream?after=0ther0ne-{page['cursor'] + 5}",
        stream=True,
        timeout=10,
    ) as response:
        found = read_events(response, 3)
    assert found[0][0] == "reset"
    assert [d["messageId"] for k, d, _ in found if k == "message"] == [m["messageId"] for m in sent]
    # This run's page: only what came after its cursor.
    after = f"{page['run']}-{page['cursor']}"
    assert events_after(segment_collector, params={"after": after}) == ["Later"]


def test_a_reader_that_leaves_during_a_backlog_costs_nothing(tmp_path: Path) -> None:
    # The collector as a CI script starts it, its log read by nobody: a page closed
    # while a backlog streams must not write one warning per event, nor stall it.
    with collector_process(tmp_path) as collector:
        for number in range(30):
            events = [
                message("track", event="Backlog", userId="u", messageId=f"m{number}-{i}")
                for i in range(100)
            ]
            post(collector.url, batch(*events))
        port = int(collector.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as reader:
            request = f"GET /collector/stream?after=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
            reader.sendall(request.encode())
            assert reader.recv(200).startswith(b"HTTP/1.1 200")
        assert collector.summary()["total"] == 3000  # answering at once
        post(collector.url, batch(message("track", event="After", userId="u")))
        assert collector.summary()["total"] == 3001
    warnings = (tmp_path / "collector.log").read_text().count("socket.send() raised exception")
    assert warnings < 10, warnings


def test_a_stream_behind_forgotten_events_goes_on_with_those_held() -> None:
    sent = [message() for _ in range(5)]
    with run_in_background(max_events=2) as collector:
        post(collector.url, batch(*sent))
        with requests.get(
            collector.url + "/collector/stream?after=1", stream=True, timeout=10
        ) as r:
            found = read_events(r, 2)
    assert [d["messageId"] for k, d, _ in found if k == "message"] == [
        m["messageId"] for m in sent[3:]
    ]


def test_a_stream_at_the_end_of_its_life_says_it_ends_as_planned(
    segment_collector: CollectorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page then reconnects without showing "reconnecting".
    monkeypatch.setattr("segment_core.collector.stream.STREAM_LIFETIME_SECONDS", 0.5)
    with requests.get(
        segment_collector.url + "/collector/stream", stream=True, timeout=10
    ) as response:
        lines = list(response.iter_lines(decode_unicode=True))
    names = [line[len("event: ") :] for line in lines if line.startswith("event: ")]
    assert names[-1] == "renew", lines
