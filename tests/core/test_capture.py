"""Captures, the test outbox and ``before_send`` see a message as it is sent."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core import Client, InvalidMessage, scope, testing
from segment_core.collector.handle import CollectorHandle
from segment_core.scope import Analytics, bound, start_thread, with_binding
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


def test_a_test_begins_once_work_an_earlier_test_left_on_a_daemon_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A test client runs its event loop on a daemon thread (anyio's portal), and a view
    # there may leave a with_binding coroutine running; a daemon's plain call too.
    monkeypatch.setattr(testing, "_a_test_began", True)
    monkeypatch.setattr(testing, "_long_lived", frozenset())
    done: list[str] = []
    started = threading.Semaphore(0)
    visitor = Analytics(user_id="u1")

    async def send_receipt() -> None:
        started.release()
        await asyncio.sleep(0.2)
        done.append("coroutine")

    def plain() -> None:
        started.release()
        threading.Event().wait(0.2)
        done.append("plain")

    loop = asyncio.new_event_loop()
    portal = threading.Thread(target=loop.run_forever, daemon=True)
    portal.start()
    try:
        with bound(visitor):
            asyncio.run_coroutine_threadsafe(with_binding(send_receipt)(), loop)
            threading.Thread(target=with_binding(plain), daemon=True).start()
        assert started.acquire(timeout=10) and started.acquire(timeout=10)
        assert len(scope.bound_calls_now()) == 2  # counted while they run
        assert scope.bound_calls_running() == 0  # an exit does not wait for a daemon's
        testing.end_earlier_background_work("test_next")
        assert sorted(done) == ["coroutine", "plain"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        portal.join(30)
        loop.close()


def test_a_coroutine_an_earlier_test_left_on_this_thread_s_loop_is_named(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An event loop that outlives a test (pytest-asyncio's of a wider scope) runs the
    # coroutine only when it runs again: no wait ends it, a WARNING names the test.
    monkeypatch.setattr(testing, "_a_test_began", True)
    monkeypatch.setattr(testing, "_long_lived", frozenset())
    release = asyncio.Event()
    loop = asyncio.new_event_loop()

    async def wait_for_release() -> None:
        await release.wait()

    async def leave_running() -> asyncio.Task[None]:
        task = loop.create_task(with_binding(wait_for_release)())
        await asyncio.sleep(0)  # started, then suspended
        return task

    with bound(Analytics(user_id="u1")):
        task = loop.run_until_complete(leave_running())
    # An app's shutdown runs on the loop that holds it: no exit waits for it.
    assert scope.bound_calls_running() == 0
    try:
        with caplog.at_level(logging.WARNING, logger="segment.testing"):
            testing.end_earlier_background_work("test_after")
            testing.end_earlier_background_work("test_later")
    finally:
        release.set()
        loop.run_until_complete(task)
        loop.close()
    [warning] = [r.getMessage() for r in caplog.records if r.name == "segment.testing"]
    assert "still pending on this thread's event loop" in warning and "test_after" in warning
    assert scope.bound_calls_now() == frozenset()


def test_a_daemon_start_thread_was_asked_for_is_not_waited_for(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # start_thread(poll, daemon=True): work the app chose to leave running.
    monkeypatch.setattr(testing, "_a_test_began", True)
    monkeypatch.setattr(testing, "_long_lived", frozenset())
    release = threading.Event()
    with bound(Analytics(user_id="u1")):
        poller = start_thread(release.wait, 60, daemon=True)
    try:
        before = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="segment.testing"):
            testing.end_earlier_background_work("test_next")
        assert time.monotonic() - before < testing.BACKGROUND_WAIT_SECONDS
        assert [r for r in caplog.records if r.name == "segment.testing"] == []
    finally:
        release.set()
    poller.join(30)
