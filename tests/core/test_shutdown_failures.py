"""What a shutdown leaves undelivered fails once, through the hooks, before it returns.

A process may end right after ``shutdown()`` (``os._exit()`` in a forked child, the
exit itself): a dead-letter ``on_failure`` hook called later would never run.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from segment_core import Client
from tests.receiver import FAULT_MESSAGE, Fault, Receiver

Events = list[tuple[str, ...]]


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"


def recording_client(url: str, events: Events, **options: Any) -> Client:
    """A client whose hooks write what they are called with into ``events``."""
    return Client(
        "key",
        host=url,
        on_error=lambda error, batch: events.append(
            ("on_error", str(error), *sorted(m["event"] for m in batch))
        ),
        on_failure=lambda message, error: events.append(("on_failure", message["event"])),
        on_success=lambda message: events.append(("on_success", message["event"])),
        **options,
    )


def test_a_batch_waiting_for_an_answer_fails_before_shutdown_returns(silent_url: str) -> None:
    events: Events = []
    client = recording_client(silent_url, events, timeout=30)
    for number in range(3):
        client.track("u1", f"E{number}")
    assert client.shutdown(0.5) is False
    assert events == [
        (
            "on_error",
            "client shut down while a request was waiting for an answer "
            "(the batch may have arrived)",
            "E0",
            "E1",
            "E2",
        ),
        ("on_failure", "E0"),
        ("on_failure", "E1"),
        ("on_failure", "E2"),
    ]
    stats = client.stats()
    assert (stats["failed"], stats["pending"]) == (3, 0)


def test_a_batch_waiting_to_retry_and_the_buffer_fail_before_shutdown_returns(
    receiver: Receiver,
) -> None:
    receiver.fail_next(*[Fault(503)] * 5)
    events: Events = []
    client = recording_client(receiver.url, events, retry_backoff_min=30, retry_backoff_max=60)
    client.track("u1", "Retried")
    client.flush(0)  # sent now: answered 503, the retry waits 30 s or more
    _wait_until(lambda: client.stats()["retries"] == 1)
    client.track("u1", "Waiting 1")  # behind it in the buffer
    client.track("u1", "Waiting 2")
    assert client.shutdown(0.3) is False
    errors = sorted(event for event in events if event[0] == "on_error")
    retried = f"client shut down before delivery; last error: HTTP 503: {FAULT_MESSAGE}"
    assert errors == [
        ("on_error", "client shut down before delivery", "Waiting 1", "Waiting 2"),
        ("on_error", retried, "Retried"),
    ]
    failures = sorted(event for event in events if event[0] == "on_failure")
    assert failures == [
        ("on_failure", "Retried"),
        ("on_failure", "Waiting 1"),
        ("on_failure", "Waiting 2"),
    ]
    assert client.stats()["failed"] == 3


@pytest.mark.parametrize("spool", [False, True])
def test_a_batch_whose_retry_would_wait_past_the_deadline_is_tried_once_more_before_it(
    receiver: Receiver, tmp_path: Path, spool: bool
) -> None:
    # An outage that ends while the batch waits out a backoff longer than what is
    # left of the shutdown: one last try before the deadline delivers it.
    receiver.fail_next(Fault(503))
    events: Events = []
    client = recording_client(
        receiver.url,
        events,
        retry_backoff_min=600,
        retry_backoff_max=600,
        spool_dir=str(tmp_path / "spool") if spool else None,
    )
    client.track("u1", "Retried")
    client.flush(0)  # sent now: answered 503, the retry waits 600 s
    _wait_until(lambda: client.stats()["retries"] == 1)
    client.shutdown(10)
    _wait_until(lambda: receiver.messages() != [])
    assert [m["event"] for m in receiver.messages()] == ["Retried"]
    assert len(receiver.requests) == 2  # the 503, and the last try alone


@pytest.mark.parametrize("status", [200, 503])
def test_an_answer_after_the_shutdown_gave_up_is_not_reported_again(
    receiver: Receiver, status: int
) -> None:
    # Answered after the deadline: delivered (200), or to be retried (503), which
    # would not happen either: neither is reported, counted or signalled.
    receiver.fail_next(Fault(status=status, delay=1.0))
    events: Events = []
    client = recording_client(receiver.url, events, timeout=30)
    client.track("u1", "Late")
    assert client.shutdown(0.2) is False
    assert [event[0] for event in events] == ["on_error", "on_failure"]
    for sender in client._worker._threads:  # until the sender had its answer
        sender.join(10)
    assert [[m["event"] for m in r.batch] for r in receiver.requests] == [["Late"]]
    assert [event[0] for event in events] == ["on_error", "on_failure"]
    stats = client.stats()
    assert (stats["failed"], stats["sent"], stats["retries"]) == (1, 0, 0)


@pytest.mark.parametrize("spooled", [False, True])
def test_after_a_shutdown_flush_and_shutdown_return_at_once_with_what_it_found(
    silent_url: str, tmp_path: Path, spooled: bool
) -> None:
    # What the first shutdown left is reported, or on disk for the next process: the
    # exit's own shutdown, or a job runner's flush, has nothing to wait for.
    events: Events = []
    spool = {"spool_dir": tmp_path} if spooled else {}
    client = recording_client(silent_url, events, timeout=30, **spool)
    client.track("u1", "E")
    assert client.shutdown(0.3) is False
    started = time.monotonic()
    assert client.shutdown(5) is False
    assert client.flush(5) is False
    assert time.monotonic() - started < 1.0
    assert [event[0] for event in events] == ([] if spooled else ["on_error", "on_failure"])


def _wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_two_shutdowns_at_once_give_one_answer(silent_url: str) -> None:
    # A SIGTERM handler and a worker_exit hook, say: the second waits for the first's
    # answer, and the messages fail once.
    events: Events = []
    client = recording_client(silent_url, events, timeout=30)
    for number in range(3):
        client.track("u1", f"E{number}")
    answers: dict[str, bool] = {}
    first = threading.Thread(target=lambda: answers.update(first=client.shutdown(0.5)))
    first.start()
    answers["second"] = client.shutdown(10)
    first.join(10)
    assert answers == {"first": False, "second": False}
    assert client.shutdown() is False
    assert sorted(name for kind, name, *_ in events if kind == "on_failure") == ["E0", "E1", "E2"]


@pytest.mark.parametrize("timeout", ["5", [5], True, 1j])
@pytest.mark.parametrize("send", [True, False])
def test_a_timeout_that_is_no_number_of_seconds_is_refused_naming_it(
    make_client: Any, receiver: Receiver, timeout: object, send: bool
) -> None:
    client = make_client(send=send)
    client.track("u", "Kept")
    for wait in (client.flush, client.shutdown):
        with pytest.raises(TypeError, match=r"^timeout must be a number of seconds or None, got "):
            wait(timeout)
    # Nothing was lost or stopped by the refused calls.
    assert client.shutdown(Fraction(10)) is True
    assert [m["event"] for m in receiver.messages()] == (["Kept"] if send else [])


@pytest.mark.parametrize("timeout", [10**400, Decimal("1e400")], ids=["int", "decimal"])
def test_a_timeout_beyond_a_float_is_a_number_of_seconds_all_the_same(
    make_client: Any, receiver: Receiver, timeout: object
) -> None:
    client = make_client()
    client.track("u", "Kept")
    assert client.flush(-timeout) in (True, False)  # below 0: no wait
    assert client.flush(timeout) is True  # past 30 days: 30 days
    assert client.shutdown(timeout) is True
    assert [m["event"] for m in receiver.messages()] == ["Kept"]


def test_a_client_in_a_with_block_is_shut_down_as_the_block_ends(receiver: Receiver) -> None:
    with Client("key", host=receiver.url, flush_interval=3600) as client:
        client.track("u1", "In The Block")
    assert [m["event"] for m in receiver.messages()] == ["In The Block"]
    assert client.track("u1", "After")[0] is False  # shut down: refused


def test_a_shutdown_called_by_on_error_during_the_shutdown_waits_for_nothing(
    silent_url: str,
) -> None:
    # The on_error hook of what shutdown gives up calls shutdown() (a handler written
    # to close the client on failure): it must not wait for the shutdown it runs in.
    answers: list[tuple[bool, float]] = []

    def on_error(error: Exception, batch: list[dict[str, Any]]) -> None:
        started = time.monotonic()
        answers.append((client.shutdown(5), time.monotonic() - started))

    client = Client("key", host=silent_url, on_error=on_error, timeout=30)
    client.track("u1", "Held")
    assert client.shutdown(1) is False
    [(answer, waited)] = answers
    assert answer is False  # the shutdown it runs in has no answer yet
    assert waited < 2.5  # at once, not the 5 s it allowed
