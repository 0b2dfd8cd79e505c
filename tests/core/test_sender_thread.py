"""The sender thread outlives any error of its own loop."""

from __future__ import annotations

import logging
import sys
import time

import pytest

from segment_core.config import Config
from segment_core.delivery import Delivery
from segment_core.encoding import encode
from segment_core.stats import Stats
from segment_core.worker import Worker
from tests.receiver import Receiver


def _track(event: str) -> bytes:
    return encode({"type": "track", "userId": "u1", "event": event, "messageId": event})


def test_an_error_in_the_senders_wait_does_not_stop_delivery(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # Built unchecked: a wait refuses a flush_interval this long (OverflowError), the
    # stand-in for any unexpected error of the loop.
    config = Config(write_key="key", host=receiver.url, flush_at=1, flush_interval=sys.maxsize)
    worker = Worker(config, Delivery(config, Stats(), sender=None))
    with caplog.at_level(logging.ERROR, logger="segment.core"):
        worker.put(_track("First"))
        receiver.wait_for_messages(1)
        # The sender, idle now, waits flush_interval for more: that wait fails.
        deadline = time.monotonic() + 10
        while "sender thread error" not in caplog.text:
            assert time.monotonic() < deadline, "the sender's wait did not fail"
            time.sleep(0.01)
        worker.put(_track("Second"))
        assert [m["event"] for m in receiver.wait_for_messages(2)] == ["First", "Second"]
    assert [record.exc_info[0] for record in caplog.records if record.exc_info] == [OverflowError]
    assert worker.shutdown(5)
