"""Each signal receiver is called on its own: one that raises stops no other, and a
receiver that fails on every message logs one traceback, not one per message."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from blinker import NamedSignal

from segment_core import Client, signals
from segment_core.collector import CollectorHandle

Receiver = Callable[..., object]


@pytest.fixture
def connect() -> Iterator[Callable[[NamedSignal, Receiver, Client], None]]:
    """Connect a receiver for one client; disconnected after the test."""
    connected: list[tuple[NamedSignal, Receiver]] = []

    def connect(signal: NamedSignal, receiver: Receiver, client: Client) -> None:
        signal.connect(receiver, sender=client)
        connected.append((signal, receiver))

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


def _failing(name: str, calls: list[str]) -> Receiver:
    """A receiver that notes its call in ``calls``, then raises."""

    def receiver(sender: object, **kwargs: object) -> None:
        calls.append(name)
        raise RuntimeError(f"bug in the {name} receiver")

    return receiver


def _failures(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "segment.core" and r.levelno == level and "receiver of the" in r.getMessage()
    ]


@pytest.mark.parametrize("signal", ["message_enqueued", "message_dropped", "batch_sent"])
def test_a_receiver_that_raises_stops_no_other(
    collector_clients: Callable[..., Client],
    connect: Callable[[NamedSignal, Receiver, Client], None],
    segment_collector: CollectorHandle,
    signal: str,
) -> None:
    # before_send drops "Dropped": message_dropped fires at once, on this thread.
    client = collector_clients(before_send=lambda m: None if m["event"] == "Dropped" else m)
    calls: list[str] = []
    for name in ("first", "second", "third"):
        connect(getattr(signals, signal), _failing(name, calls), client)
    client.track("u1", "Dropped" if signal == "message_dropped" else "Kept")
    assert client.flush(10)
    assert sorted(calls) == ["first", "second", "third"]


def test_a_receiver_failing_on_every_message_logs_one_traceback(
    collector_clients: Callable[..., Client],
    connect: Callable[[NamedSignal, Receiver, Client], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="segment.core")
    client = collector_clients()
    calls: list[str] = []
    connect(signals.message_enqueued, _failing("metrics", calls), client)
    for number in range(5):
        assert client.track("u1", f"Event {number}")[0]
    assert calls == ["metrics"] * 5
    [error] = _failures(caplog, logging.ERROR)
    assert error.getMessage() == "a receiver of the message_enqueued signal raised"
    assert error.exc_info is not None
    later = _failures(caplog, logging.DEBUG)
    assert len(later) == 4
    assert all(r.getMessage() == error.getMessage() for r in later)


def test_each_receiver_and_each_client_has_its_first_failure_logged_as_an_error(
    collector_clients: Callable[..., Client],
    connect: Callable[[NamedSignal, Receiver, Client], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="segment.core")
    calls: list[str] = []
    metrics, audit = _failing("metrics", calls), _failing("audit", calls)
    first, second = collector_clients(), collector_clients()
    for client in (first, second):
        connect(signals.message_enqueued, metrics, client)
    connect(signals.message_enqueued, audit, first)
    for client in (first, second, first, second):
        assert client.track("u1", "Signed Up")[0]
    assert sorted(calls) == ["audit"] * 2 + ["metrics"] * 4
    # metrics for each client, audit for the first: three receivers of a client.
    assert len(_failures(caplog, logging.ERROR)) == 3
    assert len(_failures(caplog, logging.DEBUG)) == 3


def test_a_coroutine_receiver_is_logged_not_called(
    collector_clients: Callable[..., Client],
    connect: Callable[[NamedSignal, Receiver, Client], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="segment.core")
    client = collector_clients()
    calls: list[str] = []

    async def waits(sender: object, **kwargs: object) -> None:
        calls.append("awaited")  # never: nothing awaits it

    class WaitsToo:
        async def __call__(self, sender: object, **kwargs: object) -> None:
            calls.append("awaited too")  # never either

    def counts(sender: object, **kwargs: object) -> None:
        calls.append("counted")

    waits_too = WaitsToo()
    connect(signals.message_enqueued, waits, client)
    connect(signals.message_enqueued, waits_too, client)
    connect(signals.message_enqueued, counts, client)
    assert client.track("u1", "Signed Up")[0]
    assert calls == ["counted"]
    errors = _failures(caplog, logging.ERROR)
    assert len(errors) == 2
    assert all("coroutine function" in error.getMessage() for error in errors)
