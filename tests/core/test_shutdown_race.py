"""A shutdown that begins while another thread's call is accepting a message.

A call that finds the buffer already busy appends without the lock, then looks
again: a shutdown begun meanwhile makes it take the message back and refuse it.
The shutdown, which counted that message in what it waits for, must not wait for
it: everything it accepted is delivered, and it says so at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from segment_core import Client
from tests.core import loopback

SHUTDOWN_TIMEOUT = 30.0


@pytest.fixture
def held_host() -> Iterator[tuple[loopback.Loopback, threading.Event]]:
    """A host that answers each batch only once the test lets it."""
    released = threading.Event()

    def answer(handler: BaseHTTPRequestHandler, seen: loopback.Seen) -> None:
        released.wait(SHUTDOWN_TIMEOUT)
        loopback.accept(handler, seen)

    host = loopback.start(answer)
    yield host, released
    released.set()
    host.stop()


class ShutdownAsAppended(deque[bytes]):
    """The buffer, which starts ``shutdown`` on another thread right after the
    message the test names is appended, and returns once the shutdown counted it."""

    def __init__(self, client: Client, marked: list[bytes | None], results: list[bool]) -> None:
        super().__init__()
        self.client, self.marked, self.results = client, marked, results

    def append(self, item: bytes) -> None:
        super().append(item)
        if self.marked == [None] and b'"Late"' in item:
            self.marked[0] = item
            worker = self.client._worker
            taken_before = worker._flush_upto
            threading.Thread(target=lambda: self.results.append(self.client.shutdown())).start()
            deadline = time.monotonic() + SHUTDOWN_TIMEOUT
            # The shutdown's flush has counted what it waits for, this message included.
            while worker._flush_upto == taken_before and time.monotonic() < deadline:
                time.sleep(0.001)


def test_a_message_taken_back_as_the_shutdown_begins_is_not_waited_for(
    held_host: tuple[loopback.Loopback, threading.Event],
) -> None:
    host, released = held_host
    client = Client("key", host=host.url, shutdown_timeout=SHUTDOWN_TIMEOUT, flush_interval=60)
    marked: list[bytes | None] = [None]
    results: list[bool] = []
    worker: Any = client._worker
    worker._buffer = ShutdownAsAppended(client, marked, results)
    assert client.track("u1", "First")[0]
    client.flush(timeout=0)  # the sender takes it, and waits for the host's answer
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT
    while not host.posted() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert client.track("u1", "Second")[0]  # buffered behind the batch in flight
    accepted, _ = client.track("u1", "Late")  # the shutdown begins as it is appended
    assert marked[0] is not None
    assert not accepted  # taken back: refused, as after the shutdown
    released.set()
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT
    while not results and time.monotonic() < deadline:
        time.sleep(0.005)
    assert results == [True]  # everything it accepted was delivered, said before its deadline
    assert [m["event"] for seen in host.posted() for m in seen.batch] == ["First", "Second"]
    assert client.stats()["pending"] == 0
