"""Disabled, send=False, sync mode, capture, hooks and signals."""

from __future__ import annotations

import os
import threading
from typing import Any
from unittest.mock import AsyncMock, MagicMock, Mock

import pytest

import segment_core
import segment_pytest
from segment_core import Client, _capture, signals
from segment_core.collector import CollectorHandle
from segment_core.testing import capture, divert_in_tests, diverted, outbox, pytest_running
from tests.receiver import Fault, Receiver


def test_no_write_key_disables_the_client_and_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    client = Client()
    assert client.config.enabled is False
    assert client.track("u", "E")[0] is False
    assert client.track("u", "E")[0] is False
    assert client.stats()["dropped"] == {"disabled": 2}
    assert sum("no write key" in r.getMessage() for r in caplog.records) == 1
    # Said once: not again for each message dropped meanwhile.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("segment")] == [
        next(r.getMessage() for r in caplog.records if "no write key" in r.getMessage())
    ]
    assert client.flush(1) is True


def test_send_false_validates_and_discards(receiver: Receiver, make_client: Any) -> None:
    client = make_client(send=False)
    assert client.track("u", "E")[0] is True
    with pytest.raises(segment_core.InvalidMessage):
        client.track("u")
    assert client.flush(1)
    assert receiver.requests == []


def test_sync_mode_sends_before_the_call_returns(receiver: Receiver, make_client: Any) -> None:
    client = make_client(sync_mode=True)
    assert client.track("u", "Synchronous")[0] is True
    assert [m["event"] for m in receiver.messages()] == ["Synchronous"]
    assert client.stats()["sent"] == 1


def test_sync_mode_retries_on_the_callers_thread(receiver: Receiver, make_client: Any) -> None:
    receiver.fail_next(Fault(503), Fault(429, retry_after="0"))
    client = make_client(sync_mode=True)
    assert client.track("u", "Retried")[0] is True
    # Delivered before the call returned, after two retries with the same message id.
    assert [m["event"] for m in receiver.messages()] == ["Retried"]
    assert [r.headers.get("x-retry-count") for r in receiver.requests] == [None, "1", "2"]
    assert len({r.batch[0]["messageId"] for r in receiver.requests}) == 1
    assert client.stats()["retries"] == 2


def test_flush_and_shutdown_of_a_sync_client_answer_for_calls_under_way(
    receiver: Receiver, make_client: Any
) -> None:
    """Another thread's call is under way: False by the deadline (nothing is known
    delivered), and True once it has returned."""
    hold = threading.Event()
    receiver.fail_next(Fault(hold=hold))
    client = make_client(sync_mode=True, timeout=30)
    results: list[bool] = []
    caller = threading.Thread(target=lambda: results.append(client.track("u", "Slow")[0]))
    caller.start()
    try:
        while not receiver.held:  # the call is under way, its answer held
            caller.join(0.01)
            assert caller.is_alive()
        assert client.flush(0.2) is False
        assert client.shutdown(0.2) is False
    finally:
        hold.set()
        caller.join(30)
    assert client.flush(5) is True and client.shutdown(5) is True


def test_a_sync_calls_hook_that_flushes_or_shuts_down_waits_for_no_other_call(
    receiver: Receiver, make_client: Any
) -> None:
    """In ``on_success`` (run by the calling thread in sync_mode), ``flush()`` and
    ``shutdown()`` answer at once, as on a sender thread: another thread's call under
    way is not waited for (two such hooks would otherwise hold each other)."""
    hold = threading.Event()
    receiver.fail_next(Fault(hold=hold))
    answers: list[tuple[str, bool]] = []

    def on_success(_messages: object) -> None:
        if threading.current_thread().name == "hooked":
            answers.append(("flush", client.flush()))
            answers.append(("shutdown", client.shutdown()))

    client = make_client(sync_mode=True, timeout=60, shutdown_timeout=60, on_success=on_success)
    slow = threading.Thread(target=lambda: client.track("u", "Held"))
    slow.start()
    hooked = threading.Thread(target=lambda: client.track("u", "Hooked"), name="hooked")
    try:
        while not receiver.held:  # the first call is under way, its answer held
            slow.join(0.01)
            assert slow.is_alive()
        hooked.start()
        hooked.join(30)  # waiting for the held call would take shutdown_timeout (60 s)
        assert not hooked.is_alive()
        # The held call is still under way: not everything is known delivered.
        assert answers == [("flush", False), ("shutdown", False)]
    finally:
        hold.set()
        slow.join(30)
        hooked.join(30)
    assert sorted(m["event"] for m in receiver.messages()) == ["Held", "Hooked"]
    assert client.shutdown(5) is True


def test_a_hook_of_a_call_made_in_a_hook_may_flush(receiver: Receiver, make_client: Any) -> None:
    """sync_mode: ``on_success`` of "outer" tracks "inner" (sent on a thread of its
    own), whose ``on_success`` flushes: that flush answers at once, as any hook's,
    instead of waiting for "outer", which waits for it."""
    results: dict[str, bool] = {}

    def on_success(message: dict[str, Any]) -> None:
        if message["event"] == "outer":
            results["inner"] = client.track("u", "inner")[0]
        else:
            client.flush()

    client = make_client(sync_mode=True, timeout=60, shutdown_timeout=60, on_success=on_success)
    assert client.track("u", "outer")[0] is True
    # Waited for to its deadline, the inner call would have failed (60 s later).
    assert results == {"inner": True}
    assert sorted(m["event"] for m in receiver.messages()) == ["inner", "outer"]


def test_capture_collects_without_network(receiver: Receiver, make_client: Any) -> None:
    client = make_client()
    with capture() as events:
        client.track("u", "Captured")
        client.identify("u", {"plan": "pro"})
    assert [e["type"] for e in events] == ["track", "identify"]
    assert client.flush(5)
    assert receiver.requests == []


def test_captures_nest_and_leave_nothing_behind(segment_events: list[dict[str, Any]]) -> None:
    client = Client("k", host="http://127.0.0.1:9")
    with capture() as inner:
        pass  # leaves empty, as the fixture's list is: equal to it, not it
    client.track("u", "A")
    with capture() as inner:
        client.track("u", "B")
    assert [e["event"] for e in inner] == ["B"]
    assert [e["event"] for e in segment_events] == ["A", "B"]
    assert len(_capture.sinks) == 1 and _capture.sinks[0] is segment_events


def test_segment_events_fixture_from_the_plugin(segment_events: list[dict[str, Any]]) -> None:
    Client("k", host="http://127.0.0.1:9").page("u", name="Home")
    assert segment_events[0]["name"] == "Home"


def test_before_send_can_change_drop_or_fail(receiver: Receiver, make_client: Any) -> None:
    def hook(message: dict[str, Any]) -> dict[str, Any] | None:
        event = message.get("event")
        if event == "drop me":
            return None
        if event == "broken":
            raise RuntimeError("bug in the hook")
        message.setdefault("properties", {})["seen"] = True
        return message

    client = make_client(before_send=hook)
    assert client.track("u", "keep")[0] is True
    assert client.track("u", "drop me")[0] is False
    assert client.track("u", "broken")[0] is True
    assert client.flush(5)
    got = {m["event"]: m.get("properties") for m in receiver.messages()}
    assert got == {"keep": {"seen": True}, "broken": None}
    assert client.stats()["dropped"] == {"before_send": 1}


def test_signals_fire_and_a_broken_receiver_breaks_nothing(
    receiver: Receiver, make_client: Any
) -> None:
    client = make_client()
    enqueued: list[str] = []
    sent: list[int] = []

    def on_enqueued(sender: Client, message: dict[str, Any]) -> None:
        enqueued.append(message["event"])
        raise RuntimeError("bug in a receiver")

    def on_sent(sender: Client, count: int, status: int) -> None:
        sent.append(count)
        raise RuntimeError("bug in a receiver")

    signals.message_enqueued.connect(on_enqueued, sender=client)
    signals.batch_sent.connect(on_sent, sender=client)
    try:
        assert client.track("u", "one")[0] is True
        assert client.flush(5)
        assert client.track("u", "two")[0] is True
        assert client.flush(5)
    finally:
        signals.message_enqueued.disconnect(on_enqueued)
        signals.batch_sent.disconnect(on_sent)
    assert enqueued == ["one", "two"]
    assert sent == [1, 1]
    assert [m["event"] for m in receiver.messages()] == ["one", "two"]


class _AsyncCallable:
    async def __call__(self, *args: object) -> None:
        """An object a hook may be, called as a coroutine function."""


@pytest.mark.parametrize("stand_in", [Mock, MagicMock])
def test_mocks_specced_as_functions_are_hooks_and_receivers_like_any_other(
    receiver: Receiver, make_client: Any, stand_in: type[Mock]
) -> None:
    """``Mock(spec=a_function)`` says it is a function and has no real code (a
    ``MagicMock``'s answers even ``__code__.co_flags & CO_COROUTINE``): as a hook or a
    receiver it is called, and neither the call nor delivery breaks."""

    def a_hook(*args: object, **kwargs: object) -> None:
        """What the test stands in for."""

    async def an_async_hook(*args: object, **kwargs: object) -> None:
        """What no hook may be."""

    for async_stand_in in (
        stand_in(spec=an_async_hook),
        stand_in(side_effect=an_async_hook),  # its calls answer coroutines
        stand_in(wraps=an_async_hook),
        stand_in(spec=a_hook, side_effect=an_async_hook),
        stand_in(side_effect=AsyncMock()),  # a stand-in calling an async one
        stand_in(wraps=_AsyncCallable()),  # an object whose __call__ is async def
    ):
        with pytest.raises(ValueError, match="on_error must be a plain function, not async"):
            make_client(on_error=async_stand_in)
    # A stand-in whose side effect is a class: calling it makes an instance, at once.
    make_client(on_error=stand_in(side_effect=_AsyncCallable)).shutdown(timeout=5)
    on_success = stand_in(spec=a_hook)
    client = make_client(on_success=on_success, on_error=stand_in(spec=a_hook))
    enqueued, sent = stand_in(spec=a_hook), stand_in(spec=a_hook)
    signals.message_enqueued.connect(enqueued, sender=client)
    signals.batch_sent.connect(sent, sender=client)
    try:
        assert client.track("u", "Mocked")[0] is True
        assert client.flush(5) is True
    finally:
        signals.message_enqueued.disconnect(enqueued)
        signals.batch_sent.disconnect(sent)
    assert [m["event"] for m in receiver.messages()] == ["Mocked"]
    assert (enqueued.call_count, sent.call_count, on_success.call_count) == (1, 1, 1)


def test_module_level_api(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment_core, "default_client", None)
    monkeypatch.setattr(segment_core, "write_key", "module-key")
    monkeypatch.setattr(segment_core, "host", receiver.url)
    assert segment_core.track("u", "Module")[0] is True
    segment_core.identify("u", {"a": 1})
    segment_core.page("u", "Docs", "Intro")
    segment_core.screen("u", name="Home")
    segment_core.group("u", "g1")
    segment_core.alias("old", "u")
    assert segment_core.get_client() is segment_core.default_client
    assert segment_core.flush() is True
    types = [m["type"] for m in receiver.messages()]
    assert types == ["track", "identify", "page", "screen", "group", "alias"]
    assert receiver.requests[0].body["writeKey"] == "module-key"
    assert segment_core.shutdown() is True


def test_analytics_python_positional_order() -> None:
    with capture() as events:
        client = Client("k", host="http://127.0.0.1:9")
        client.track("u", "E", {"p": 1}, {"ip": "1.1.1.1"}, None, "anon", {"All": False}, "m1")
        client.page("u", "Category", "Name", {"path": "/"})
        client.group("u", "g", {"name": "Acme"})
        client.alias("previous", "u")
        client.identify("u", {"email": "e"}, None, None, "anon")
    track, page, group, alias, identify = events
    assert track["anonymousId"] == "anon" and track["messageId"] == "m1"
    assert track["integrations"] == {"All": False} and track["context"]["ip"] == "1.1.1.1"
    assert (page["category"], page["name"]) == ("Category", "Name")
    assert page["properties"] == {"path": "/"}
    assert (group["groupId"], group["traits"]) == ("g", {"name": "Acme"})
    assert (alias["previousId"], alias["userId"]) == ("previous", "u")
    assert identify["anonymousId"] == "anon"


def test_sync_mode_serves_many_threads_without_pool_warnings(
    segment_collector: CollectorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    threads, calls = 24, 10  # callers at once, within the connections the pool keeps
    client = Client("key", host=segment_collector.url, sync_mode=True)
    start = threading.Barrier(threads)
    results: list[bool] = []

    def send(thread: int) -> None:
        start.wait()
        for call in range(calls):
            results.append(client.track(f"u{thread}", "Threaded", {"call": call})[0])

    workers = [threading.Thread(target=send, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert results == [True] * (threads * calls)
    assert len(segment_collector.wait_for(threads * calls, type="track")) == threads * calls
    assert [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")] == []


def test_a_sync_mode_client_closes_its_connections_as_it_shuts_down() -> None:
    import psutil

    from segment_core.collector.background import run_in_background

    with run_in_background() as collector:  # its own: no other client sends to it
        _closes_its_connections(psutil, collector)


def _closes_its_connections(psutil: Any, collector: CollectorHandle) -> None:
    port = int(collector.url.rsplit(":", 1)[1].split("/")[0])

    def open_to_the_collector() -> int:
        process = psutil.Process()
        # (net_connections since psutil 6: connections before)
        listed = getattr(process, "net_connections", None) or process.connections
        connections = listed(kind="tcp")
        return sum(1 for c in connections if c.raddr and c.raddr.port == port)

    client = Client("k", host=collector.url, sync_mode=True)
    assert client.track("u", "E")[0]
    assert open_to_the_collector() == 1  # kept alive for the next call
    assert client.shutdown() is True
    # Closed now, not whenever the garbage collector gets to it (a ResourceWarning then).
    assert open_to_the_collector() == 0


def test_a_sync_call_whose_answer_came_too_late_says_the_batch_may_have_arrived(
    receiver: Receiver, make_client: Any
) -> None:
    answer = threading.Event()
    receiver.fail_next(Fault(hold=answer))
    errors: list[Exception] = []
    client = make_client(
        sync_mode=True, timeout=0.5, max_retries=0, on_error=lambda e, b: errors.append(e)
    )
    try:
        accepted, _ = client.track("u1", "Paid")
    finally:
        answer.set()  # the receiver took the request: it answers once told
    assert accepted is False
    [error] = errors
    assert str(error).startswith("ReadTimeoutError: ")
    assert str(error).endswith(" (the batch was sent and may have arrived)")
    assert [m["event"] for m in receiver.wait_for_messages(1)] == ["Paid"]


def test_a_tls_handshake_that_stalls_is_not_said_to_have_sent_the_batch(
    make_client: Any,
) -> None:
    """urllib3 reports it as a read timeout too: the batch never left."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    taker = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    taker.start()
    errors: list[Exception] = []
    try:
        client = make_client(
            host=f"https://127.0.0.1:{listener.getsockname()[1]}",
            sync_mode=True,
            timeout=0.5,
            max_retries=0,
            on_error=lambda e, b: errors.append(e),
        )
        assert client.track("u1", "Paid")[0] is False
    finally:
        taker.join(5)
        for connection in accepted:
            connection.close()
        listener.close()
    [error] = errors
    assert str(error).startswith("ReadTimeoutError: ")
    assert "may have arrived" not in str(error)


def _in_a_forked_child(work: Any) -> int:
    """Run ``work()`` in a child forked off this test's process; its exit code."""
    pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        code = 1
        try:
            code = int(work())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_child_a_test_forks_keeps_its_test_mode(segment_collector: CollectorHandle) -> None:
    """Whatever a test forks (a pool for the code under test, a server) is diverted as
    the test process is: nothing a test starts sends."""
    client = Client("k", host=segment_collector.url, flush_interval=3600)
    divert_in_tests(client, send=False, running=pytest_running)
    try:

        def serve() -> bool:
            before = len(outbox)
            client.track("u1", "Tracked By A Forked Child")
            return diverted(client) and len(outbox) == before + 1 and client.flush(5)

        assert _in_a_forked_child(lambda: 0 if serve() else 3) == 0
        assert segment_collector.events(event="Tracked By A Forked Child") == []
    finally:
        client.shutdown(5)


def test_a_child_that_runs_a_test_keeps_test_mode(segment_collector: CollectorHandle) -> None:
    """As a child pytest-forked runs a test in (the plugin says so as the test begins)."""
    client = Client("k", host=segment_collector.url, flush_interval=3600)
    divert_in_tests(client, send=False, running=pytest_running)
    try:

        def run_a_test() -> bool:
            segment_pytest._runs_tests_here()
            before = len(outbox)
            client.track("u1", "Tracked In A Forked Test")
            return diverted(client) and len(outbox) == before + 1

        assert _in_a_forked_child(lambda: 0 if run_a_test() else 3) == 0
        assert segment_collector.events(event="Tracked In A Forked Test") == []
    finally:
        client.shutdown(5)
