"""The library's threads leave the process's signals to the main thread, which
runs Python's handlers: one taken by a sender thread would wait for a main thread
asleep in a call it does not interrupt (a pool worker waiting for a task)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from segment_core import Client
from segment_core.collector import CollectorHandle

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="reads thread masks from /proc"
)


def _blocked(thread: threading.Thread | None = None) -> set[int]:
    """The signals ``thread`` (the calling one: None) blocks, read from /proc."""
    native_id = threading.get_native_id() if thread is None else thread.native_id
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    mask = int(
        next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16
    )
    return {number for number in range(1, 65) if mask & (1 << (number - 1))}


def test_the_sender_threads_block_what_is_sent_to_the_process(
    collector_clients: Callable[..., Client], segment_collector: CollectorHandle
) -> None:
    client = collector_clients(max_in_flight=2)
    assert client.track("u1", "Signed Up")[0]
    assert client.flush(10)
    senders = [t for t in threading.enumerate() if t.name.startswith("segment-sender-")]
    assert senders
    for sender in senders:
        assert {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM} <= _blocked(sender)
    # The thread that called the client keeps its own mask.
    assert signal.SIGTERM not in _blocked()
