"""The query API and the Python handle: filters, lookups, duplicates, reset, waiting."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from segment_core.collector import CollectorError, CollectorHandle, create_app, run_in_background
from segment_core.collector.ingest import Limits, build_records
from segment_core.collector.store import DEFAULT_MAX_EVENTS_IN_MEMORY, EventQuery
from tests.asgi.conftest import TestClient
from tests.collector.helpers import DROP, assert_error, batch, message, post


@pytest.fixture
def mixed(segment_collector: CollectorHandle) -> dict[str, str]:
    """Five stored events of several kinds; returns their messageIds by name."""
    sent = {
        "a": message("track", event="A", userId="u1"),
        "b": message("track", event="B", userId="u2"),
        "page": message("page", userId=DROP, anonymousId="anon-1"),
        "bad": message("identify", userId=DROP),
        "numeric": message("track", event="A", userId=42),
    }
    assert post(segment_collector.url, batch(*sent.values())).status_code == 200
    return {name: m["messageId"] for name, m in sent.items()}


def ids(events: list[dict[str, object]]) -> list[object]:
    return [e["messageId"] for e in events]


def test_filters(segment_collector: CollectorHandle, mixed: dict[str, str]) -> None:
    c = segment_collector
    assert ids(c.events()) == list(mixed.values())  # oldest first
    assert ids(c.events(type="track")) == [mixed["a"], mixed["b"], mixed["numeric"]]
    assert ids(c.events(type="track", event="A")) == [mixed["a"], mixed["numeric"]]
    assert ids(c.events(userId="u1")) == [mixed["a"]]
    assert ids(c.events(user_id="42")) == [mixed["numeric"]]
    assert ids(c.events(anonymousId="anon-1")) == [mixed["page"]]
    assert ids(c.events(anonymous_id="anon-1")) == [mixed["page"]]
    assert ids(c.events(status="bad")) == [mixed["bad"]]
    assert len(c.events(status="good")) == 4
    assert c.events(type="alias") == []
    # A filter left empty is none, as the README's query line writes them all; the
    # status in any case, as the page's terms.
    every = "/collector/events?type=&event=&userId=&anonymousId=&status=&limit="
    assert ids(requests.get(c.url + every, timeout=10).json()["events"]) == list(mixed.values())
    assert ids(c.events(type="track", event="", status="Good")) == [
        mixed["a"],
        mixed["b"],
        mixed["numeric"],
    ]


def test_the_unknown_type_is_what_the_summary_counts_as_unknown(
    segment_collector: CollectorHandle,
) -> None:
    untyped = message("track", event="E", userId="u")
    del untyped["type"]
    odd = message("track", event="E", userId="u", type="unknown")
    post(segment_collector.url, batch(untyped, odd, message("track", event="E", userId="u")))
    counted = segment_collector.summary()["by_type"]["unknown"]
    found = segment_collector.events(type="unknown")
    assert len(found) == counted["good"] + counted["bad"] == 2
    assert {e["messageId"] for e in found} == {untyped["messageId"], odd["messageId"]}


def test_types_outside_the_spec_are_counted_as_unknown_within_max_events(tmp_path: Path) -> None:
    made_up = [message("track", type=f"made-up-{n}") for n in range(30)]
    db = str(tmp_path / "events.sqlite3")
    expected = {
        "page": {"total": 1, "good": 1, "bad": 0, "duplicates": 0},
        "unknown": {"total": 30, "good": 0, "bad": 30, "duplicates": 1},
    }
    with run_in_background(db=db, max_events=5) as collector:
        post(collector.url, batch(*made_up, message("page")))
        post(collector.url, batch(made_up[29]))
        summary = collector.summary()
        assert (summary["by_type"], summary["forgotten"]) == (expected, 26)
        # Each stored message keeps its own type; the query finds what is counted.
        held = collector.events(type="unknown")
        assert [e["message"]["type"] for e in held] == [f"made-up-{n}" for n in range(26, 30)]
        assert ids(collector.events(type="made-up-29")) == [made_up[29]["messageId"]]
    with run_in_background(db=db) as reopened:
        assert reopened.summary()["by_type"] == expected


def test_limit_after_and_last(segment_collector: CollectorHandle, mixed: dict[str, str]) -> None:
    c = segment_collector
    first_two = c.events(limit=2)
    assert ids(first_two) == [mixed["a"], mixed["b"]]
    rest = c.events(after=first_two[-1]["seq"])
    assert ids(rest) == [mixed["page"], mixed["bad"], mixed["numeric"]]
    assert ids(c.events(last=2)) == [mixed["bad"], mixed["numeric"]]
    assert ids(c.events(last=1, type="page")) == [mixed["page"]]
    response = requests.get(c.url + "/collector/events", params={"limit": 2}, timeout=10)
    assert response.json()["cursor"] == first_two[-1]["seq"]
    empty = requests.get(c.url + "/collector/events", params={"after": 10**9}, timeout=10)
    assert empty.json() == {"events": [], "cursor": 10**9, "run": empty.json()["run"]}


def test_last_alone_is_not_held_to_the_default_limit(segment_collector: CollectorHandle) -> None:
    sent = [message("track", event="E", userId="u") for _ in range(1600)]
    for start in (0, 800):
        assert post(segment_collector.url, batch(*sent[start : start + 800])).status_code == 200
    newest = segment_collector.events(last=1500)
    assert ids(newest) == [m["messageId"] for m in sent[100:]]  # still oldest first
    assert ids(segment_collector.events(last=1500, limit=10)) == ids(newest[-10:])
    assert len(segment_collector.events()) == 1000  # the default limit, without last


@pytest.mark.parametrize(
    "params",
    [{"colour": "red"}, {"status": "ugly"}, {"limit": "0"}, {"limit": "x"}, {"after": "-1"}],
)
def test_bad_queries(segment_collector: CollectorHandle, params: dict[str, str]) -> None:
    response = requests.get(segment_collector.url + "/collector/events", params=params, timeout=10)
    assert_error(response, 400, "invalid_query")
    with pytest.raises(CollectorError):
        segment_collector.events(**params)


def test_a_filter_given_twice_is_refused_not_half_applied(
    segment_collector: CollectorHandle,
) -> None:
    response = requests.get(
        segment_collector.url + "/collector/events", params={"event": ["A", "B"]}, timeout=10
    )
    assert_error(response, 400, "invalid_query")
    assert "event is given 2 times" in response.json()["message"]
    with pytest.raises(CollectorError, match="event is given 2 times"):
        segment_collector.events(event=["A", "B"])
    with pytest.raises(CollectorError, match="type is given 2 times"):
        segment_collector.wait_for(1, type=["track", "page"], timeout=5)
    with pytest.raises(CollectorError, match="userId is given 2 times"):
        segment_collector.events(user_id="alice", userId="bob")
    assert segment_collector.events(user_id=None, userId="bob") == []


def test_event_lookup(segment_collector: CollectorHandle) -> None:
    sent = message(messageId="order/42 ?#%")
    on_two_lines = message(messageId="order\r\n43")
    assert post(segment_collector.url, batch(sent, on_two_lines)).status_code == 200
    event = segment_collector.event("order/42 ?#%")
    assert event["message"] == sent
    assert segment_collector.event("order\r\n43")["message"] == on_two_lines
    assert set(event) == {
        "seq",
        "messageId",
        "status",
        "reasons",
        "receivedAt",
        "sentAt",
        "writeKey",
        "writeKeySource",
        "endpoint",
        "message",
    }
    with pytest.raises(KeyError):
        segment_collector.event("no-such-id")
    response = requests.get(segment_collector.url + "/collector/events/no-such-id", timeout=10)
    assert_error(response, 404, "not_found")


def test_duplicates_are_counted_not_stored(segment_collector: CollectorHandle) -> None:
    first = message("track", event="First")
    again = {**first, "event": "Second"}
    page = message("page")
    assert post(segment_collector.url, batch(first, page, again)).status_code == 200
    assert post(segment_collector.url, batch(again, page)).status_code == 200
    events = segment_collector.events()
    assert ids(events) == [first["messageId"], page["messageId"]]
    assert events[0]["message"]["event"] == "First"  # the first one stays
    summary = segment_collector.summary()
    assert (summary["total"], summary["duplicates"]) == (2, 3)
    assert summary["by_type"] == {
        "page": {"total": 1, "good": 1, "bad": 0, "duplicates": 1},
        "track": {"total": 1, "good": 1, "bad": 0, "duplicates": 2},
    }


def test_summary(segment_collector: CollectorHandle, mixed: dict[str, str]) -> None:
    post(segment_collector.url, data=b"{")
    summary = segment_collector.summary()
    assert summary["total"] == 5
    assert (summary["good"], summary["bad"], summary["duplicates"]) == (4, 1, 0)
    assert summary["by_type"]["identify"] == {"total": 1, "good": 0, "bad": 1, "duplicates": 0}
    assert summary["by_type"]["track"]["total"] == 3
    assert summary["requests"] == {"accepted": 1, "rejected": 1, "faulted": 0}
    assert summary["pending_faults"] == 0


def test_reset(segment_collector: CollectorHandle, mixed: dict[str, str]) -> None:
    last_seq = segment_collector.summary()["last_seq"]
    segment_collector.faults({"status": 503, "count": 5})
    segment_collector.reset()
    summary = segment_collector.summary()
    assert (summary["total"], summary["duplicates"], summary["by_type"]) == (0, 0, {})
    assert summary["requests"] == {"accepted": 0, "rejected": 0, "faulted": 0}
    assert summary["pending_faults"] == 0
    assert segment_collector.events() == []
    # Stored again after a reset, not a duplicate; cursors keep growing.
    post(segment_collector.url, batch(message(messageId=mixed["a"])))
    [event] = segment_collector.wait_for(1)
    assert event["seq"] > last_seq


def test_wait_for_returns_once_enough_events_arrive(segment_collector: CollectorHandle) -> None:
    sender = threading.Thread(
        target=lambda: [post(segment_collector.url, batch(message())) for _ in range(3)]
    )
    sender.start()
    try:
        events = segment_collector.wait_for(3, timeout=10, type="track")
    finally:
        sender.join()
    assert len(events) == 3


def test_wait_for_says_what_it_saw(segment_collector: CollectorHandle) -> None:
    post(segment_collector.url, batch(message("track", event="Seen", properties=[])))
    with pytest.raises(AssertionError) as raised:
        segment_collector.wait_for(1, timeout=0.2, event="Never")
    text = str(raised.value)
    assert "expected at least 1 event(s) matching {'event': 'Never'} within 0.2s, saw 0" in text
    assert "Seen" in text and "properties must be an object" in text
    assert "the collector holds now (what arrived after the last look at the deadline too)" in text


def test_connect_to_a_running_collector(segment_collector: CollectorHandle) -> None:
    post(segment_collector.url, batch(message()))
    with CollectorHandle.connect(segment_collector.url) as remote:
        assert remote.url == segment_collector.url
        assert remote.wait_for(1)[0]["status"] == "good"
    # Leaving the block of a connected handle does not stop the collector.
    assert segment_collector.summary()["total"] == 1


def test_run_in_background_stops() -> None:
    with run_in_background() as collector:
        assert collector.url.startswith("http://127.0.0.1:")
        assert collector.summary()["total"] == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(collector.url + "/collector/summary", timeout=5)


def test_file_backed_store_keeps_events(tmp_path: Path) -> None:
    db = str(tmp_path / "events.sqlite3")
    sent = message()
    with run_in_background(db=db) as first:
        post(first.url, batch(sent, sent, message(userId=DROP)))
        first.wait_for(2)
    with run_in_background(db=db) as second:
        assert second.event(sent["messageId"])["message"] == sent
        summary = second.summary()
        assert (summary["good"], summary["bad"], summary["duplicates"]) == (1, 1, 1)
        post(second.url, batch(sent))
        assert second.summary()["duplicates"] == 2


def test_the_oldest_events_beyond_max_events_are_forgotten() -> None:
    sent = [message(), message(userId=DROP), *(message() for _ in range(4))]
    with run_in_background(max_events=3) as collector:
        post(collector.url, batch(*sent[:3]))
        first_seqs = [e["seq"] for e in collector.events()]
        post(collector.url, batch(*sent[3:]))
        held = collector.events()
        assert ids(held) == [m["messageId"] for m in sent[3:]]
        # Cursors only grow: the new events follow the forgotten ones.
        assert (first_seqs, [e["seq"] for e in held]) == ([1, 2, 3], [4, 5, 6])
        with pytest.raises(KeyError):
            collector.event(sent[0]["messageId"])
        # The counts still tell of the bad one, gone from the store.
        summary = collector.summary()
        assert (summary["total"], summary["good"], summary["bad"]) == (6, 5, 1)
        assert summary["forgotten"] == 3
        assert ids(collector.events(after=2)) == ids(held)  # a cursor of forgotten events
        assert ids(collector.events(after=4)) == ids(held[1:])
        assert ids(collector.events(last=10)) == ids(held)
        collector.reset()
        assert collector.summary()["forgotten"] == 0


@pytest.mark.parametrize(
    ("options", "bound"),
    [({}, DEFAULT_MAX_EVENTS_IN_MEMORY), ({"db": "events.sqlite3"}, 0), ({"max_events": 0}, 0)],
)
def test_max_events_defaults_to_a_bound_in_memory_only(
    tmp_path: Path, options: dict[str, str], bound: int
) -> None:
    if "db" in options:
        options = {"db": str(tmp_path / options["db"])}
    app = create_app(**options)  # type: ignore[arg-type]
    try:
        assert app.store.max_events == bound  # 0: no limit
    finally:
        app.close()


@pytest.mark.parametrize("max_events", [-1, 2.5, True, "10"])
def test_max_events_must_be_a_count(max_events: object) -> None:
    with pytest.raises(ValueError, match="max_events must be a whole number"):
        create_app(max_events=max_events)  # type: ignore[arg-type]


def test_a_file_keeps_the_counts_of_forgotten_events(tmp_path: Path) -> None:
    db = str(tmp_path / "events.sqlite3")
    with run_in_background(db=db, max_events=1) as first:
        post(first.url, batch(message(userId=DROP), message(), message("page")))
        first.wait_for(1)
    with run_in_background(db=db) as second:
        summary = second.summary()
        assert (summary["total"], summary["bad"], summary["forgotten"]) == (3, 1, 2)
        assert summary["by_type"]["track"]["total"] == 2
        assert [e["message"]["type"] for e in second.events()] == ["page"]


def test_the_handle_of_a_local_collector_goes_around_a_proxy(
    segment_collector: CollectorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    segment_collector.reset()
    assert segment_collector.summary()["total"] == 0


def test_a_long_answer_is_read_off_the_event_loop_a_few_hundred_events_at_a_time() -> None:
    app = create_app()
    reads: list[tuple[int, str]] = []
    app.store._connection.set_trace_callback(lambda sql: reads.append((threading.get_ident(), sql)))
    sent = [message("track", event="E", userId="u", properties={"n": n}) for n in range(1200)]
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for start in range(0, 1200, 600):
            assert client.post("/v1/batch", json=batch(*sent[start : start + 600])).is_success
        answer = client.get("/collector/events", params={"limit": 5000}).json()
        newest = client.get("/collector/events", params={"last": 700}).json()
    assert [event["message"] for event in answer["events"]] == sent
    assert answer["cursor"] == answer["events"][-1]["seq"]
    assert [event["message"] for event in newest["events"]] == sent[500:]
    loop = {thread for thread, sql in reads if sql.startswith("INSERT")}
    pieces = [thread for thread, sql in reads if sql.startswith("SELECT seq, message_id")]
    assert len(loop) == 1 and len(pieces) >= 3 + 2
    assert loop.isdisjoint(pieces)  # ingest goes on meanwhile


def test_events_arrive_and_a_reset_ends_an_answer_between_its_pieces() -> None:
    store = create_app().store
    records = build_records(
        batch(*(message("track", event="E", userId="u") for _ in range(1200))),
        "batch",
        write_key=None,
        write_key_source=None,
        received_at="2026-01-01T00:00:00.000Z",
        limits=Limits(),
    )
    store.add(records[:1100])
    answer = store.query_json(EventQuery(limit=5000))
    first, _ = next(answer)
    store.add(records[1100:])  # the store is not locked between pieces
    rest = [piece for pieces, _ in answer for piece in pieces]
    assert len(first) + len(rest) == 1200
    answer = store.query_json(EventQuery(limit=5000))
    next(answer)
    store.reset()
    assert list(answer) == []
