"""The bounded buffer: concurrency, full buffer, deadlines, shutdown."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from segment_core import Client, signals
from tests.receiver import Fault, Receiver


def test_concurrent_enqueue_loses_and_duplicates_nothing(
    receiver: Receiver, make_client: Any
) -> None:
    client = make_client(max_queue_size=50_000, flush_at=500, max_in_flight=2)
    threads_count, per_thread = 8, 1500

    def produce(thread: int) -> None:
        for i in range(per_thread):
            client.track(f"user-{thread}", "E", {"t": thread, "i": i})

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(30)
    seen = [(m["properties"]["t"], m["properties"]["i"]) for m in receiver.messages()]
    assert len(seen) == threads_count * per_thread
    assert set(seen) == {(t, i) for t in range(threads_count) for i in range(per_thread)}
    stats = client.stats()
    assert (stats["accepted"], stats["sent"], stats["queued"], stats["pending"]) == (
        12_000,
        12_000,
        0,
        0,
    )


def test_a_full_buffer_drops_the_new_event_counts_and_signals(
    receiver: Receiver, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(max_queue_size=10, flush_interval=3600)
    # The sender waits for a slow answer while the buffer fills (half of it would
    # be sent at once otherwise).
    receiver.fail_next(Fault(delay=1.0))
    client.track("u", "E", {"i": 0})
    client.flush(0)
    deadline = time.monotonic() + 10
    while client.stats()["queued"] and time.monotonic() < deadline:
        client.flush(0.01)  # polls: the sender has taken the first message
    dropped: list[str] = []

    def on_dropped(sender: Client, message: dict[str, Any], reason: str) -> None:
        dropped.append(reason)

    signals.message_dropped.connect(on_dropped, sender=client)
    try:
        results = [client.track("u", "E", {"i": i})[0] for i in range(1, 16)]
    finally:
        signals.message_dropped.disconnect(on_dropped)
    assert results == [True] * 10 + [False] * 5
    assert dropped == ["queue_full"] * 5
    assert client.stats()["dropped"] == {"queue_full": 5}
    assert sum("dropped (queue_full)" in r.getMessage() for r in caplog.records) == 1
    assert client.flush(10)
    assert [m["properties"]["i"] for m in receiver.messages()] == list(range(11))


def test_flush_returns_by_its_deadline_when_the_server_hangs(
    receiver: Receiver, make_client: Any
) -> None:
    receiver.fail_next(Fault(delay=3.0))
    client = make_client(timeout=30)
    client.track("u", "E")
    started = time.monotonic()
    assert client.flush(0.2) is False
    assert time.monotonic() - started < 2.5
    assert client.stats()["pending"] == 1
    assert client.flush(30) is True
    assert len(receiver.messages()) == 1


def test_shutdown_returns_by_its_deadline_and_reports_undelivered() -> None:
    errors: list[Exception] = []
    client = Client(
        "k",
        host="http://127.0.0.1:9",
        retry_backoff_min=5,
        retry_backoff_max=5,
        on_error=lambda exc, batch: errors.append(exc),
    )
    client.track("u", "E")
    started = time.monotonic()
    assert client.shutdown(timeout=0.3) is False
    assert time.monotonic() - started < 2.5
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    assert errors and "shut down before delivery" in str(errors[0])


def test_shutdown_twice_and_calls_after_it(receiver: Receiver, make_client: Any) -> None:
    client = make_client()
    client.track("u", "before")
    assert client.shutdown(5) is True
    assert client.shutdown(5) is True
    assert client.join() is True
    assert client.track("u", "after")[0] is False
    assert client.stats()["dropped"] == {"shut_down": 1}
    assert [m["event"] for m in receiver.messages()] == ["before"]


def test_flush_from_many_threads_at_once(receiver: Receiver, make_client: Any) -> None:
    client = make_client(flush_at=2500, flush_interval=3600)
    results: list[bool] = []

    def work(n: int) -> None:
        client.track("u", "E", {"n": n})
        results.append(client.flush(10))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 10
    assert sorted(m["properties"]["n"] for m in receiver.messages()) == list(range(10))
