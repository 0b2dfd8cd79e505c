"""Captures, the test outbox and ``before_send`` see a message as it is sent."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core import Client, InvalidMessage, testing
from segment_core.collector.handle import CollectorHandle
from segment_core.scope import start_thread
from segment_core.testing import capture, divert, divert_when, settle_divert


def _cart() -> dict[str, Any]:
    return {
        "revenue": decimal.Decimal("9.99"),
        "at": dt.datetime(2024, 1, 1, 12, 0),
        "skus": ("a", "b"),
        "order": uuid.UUID(int=7),
        "big": 2**70 + 1,
        "step": 1,
    }


@pytest.fixture
def client() -> Iterator[Client]:
    client = Client("key")
    yield client
    client.shutdown(timeout=1)


def test_a_capture_holds_what_the_collector_receives(
    client: Client, segment_collector: CollectorHandle
) -> None:
    with capture() as events:
        client.track("u1", "Order Completed", _cart())
    sender = Client("key", host=segment_collector.url)
    sender.track("u1", "Order Completed", _cart())
    assert sender.shutdown(timeout=5)
    [received] = segment_collector.wait_for(1)
    assert events[0]["properties"] == received["message"]["properties"]
    assert events[0]["properties"]["big"] == 2**70 + 1  # every digit, as on the wire


def test_the_pytest_fixture_holds_each_message_as_of_its_call(
    client: Client, segment_events: list[dict[str, Any]]
) -> None:
    cart = _cart()
    returned = []
    for step in (1, 2, 3):
        cart["step"] = step  # a dict reused from call to call
        returned.append(client.track("u1", "Step Viewed", cart)[1])
    assert [e["properties"]["step"] for e in segment_events] == [1, 2, 3]
    assert segment_events[0]["properties"]["revenue"] == 9.99
    assert segment_events[0]["properties"]["skus"] == ["a", "b"]
    assert segment_events[0]["properties"]["order"] == str(uuid.UUID(int=7))
    assert isinstance(segment_events[0]["properties"]["at"], str)
    # The call returns the caller's own values; each capture has its own copy.
    assert returned[0]["properties"]["revenue"] == decimal.Decimal("9.99")
    with capture() as inner:
        client.track("u1", "Nested")
    inner[0]["event"] = "Changed"
    assert segment_events[-1]["event"] == "Nested"


def test_the_outbox_holds_each_message_as_sent(client: Client) -> None:
    outbox: list[dict[str, Any]] = []
    divert(client, outbox)
    cart = _cart()
    accepted, message = client.track("u1", "Order Completed", cart)
    cart["step"] = 2
    assert accepted
    assert outbox[0]["properties"] == {**outbox[0]["properties"], "step": 1, "revenue": 9.99}
    # The returned message: the caller's values, with every key of analytics-python's.
    assert message["properties"] is cart and message["anonymousId"] is None
    assert "anonymousId" not in outbox[0]  # the wire leaves out keys without a value


def test_a_check_not_known_yet_is_asked_again_until_settled(
    segment_collector: CollectorHandle,
) -> None:
    # A runner that starts after the app sent (a runtests.py's django.setup()).
    answers: list[bool | None] = [None, True]
    outbox: list[dict[str, Any]] = []
    client = Client("key", host=segment_collector.url)
    divert_when(client, lambda: answers.pop(0), outbox)
    client.track("u1", "Booted")  # not known yet: sent
    client.track("u1", "In A Test")  # tests run now: kept
    assert client.flush(10)
    assert [m["event"] for m in outbox] == ["In A Test"]
    assert [e["message"]["event"] for e in segment_collector.events()] == ["Booted"]
    # Not known at the app's first request either: no test runner, for good.
    later = Client("key", host=segment_collector.url)
    divert_when(later, lambda: None, outbox)
    settle_divert(later)
    later.track("u1", "After The First Request")
    assert later.flush(10) and len(outbox) == 1
    later.shutdown(timeout=5)
    client.shutdown(timeout=5)


def _deep_list() -> list[Any]:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    return deep


@pytest.mark.parametrize(
    "value",
    [threading.Lock(), (i for i in range(3)), _deep_list(), float("nan")],
    ids=["lock", "generator", "deep list", "nan"],
)
def test_a_hook_changes_nothing_about_what_is_refused(value: object) -> None:
    without_hook = Client("key", send=False)
    with pytest.raises(InvalidMessage, match=r"^message\.properties\.p") as refused:
        without_hook.track("u1", "E", {"p": value})
    with_hook = Client("key", send=False, before_send=lambda message: message)
    with pytest.raises(InvalidMessage) as refused_with_hook:
        with_hook.track("u1", "E", {"p": value})
    assert str(refused_with_hook.value) == str(refused.value)


def test_before_send_gets_a_copy_as_sent() -> None:
    seen: list[dict[str, Any]] = []

    def hook(message: dict[str, Any]) -> dict[str, Any]:
        seen.append(message)
        message["properties"]["step"] = "changed by the hook"
        return message

    cart = _cart()
    client = Client("key", send=False, before_send=hook)
    with capture() as events:
        client.track("u1", "Order Completed", cart)
    assert seen[0]["properties"]["revenue"] == 9.99
    assert seen[0]["properties"]["big"] == 2**70 + 1
    assert events[0]["properties"]["step"] == "changed by the hook"
    assert cart["step"] == 1


def test_a_test_begins_once_the_background_work_earlier_tests_left_ended(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(testing, "_a_test_began", True)  # as the plugin's first test did
    release = threading.Event()
    before = testing.background_work_now()
    server = start_thread(release.wait, 60)  # a session fixture's: never waited for
    testing.background_work_lives_on(before)
    try:
        done: list[str] = []
        start_thread(lambda: (threading.Event().wait(0.2), done.append("receipt")))
        testing.end_earlier_background_work("test_next")
        assert done == ["receipt"]
        # Work that outlasts the wait is named once, and the test goes on.
        monkeypatch.setattr(testing, "BACKGROUND_WAIT_SECONDS", 0.05)
        stuck = start_thread(release.wait, 60)
        with caplog.at_level(logging.WARNING, logger="segment.testing"):
            testing.end_earlier_background_work("test_after")
            testing.end_earlier_background_work("test_later")
    finally:
        release.set()
    server.join(30)
    stuck.join(30)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "segment.testing"]
    assert "still runs after 0.05s" in warning and "test_after" in warning


def test_the_work_running_before_the_first_test_is_no_tests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Started at import or by setUpModule: the first test does not wait for it.
    monkeypatch.setattr(testing, "_a_test_began", False)
    monkeypatch.setattr(testing, "_long_lived", frozenset())
    release = threading.Event()
    server = start_thread(release.wait, 60)
    try:
        before = time.monotonic()
        testing.end_earlier_background_work("test_first")
        testing.end_earlier_background_work("test_second")
        assert time.monotonic() - before < testing.BACKGROUND_WAIT_SECONDS
    finally:
        release.set()
    server.join(30)
