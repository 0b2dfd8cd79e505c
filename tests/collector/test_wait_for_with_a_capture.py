"""`wait_for` timing out while a capture keeps this process's messages from the network."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from segment_core import Client
from segment_core.collector import CollectorHandle

CAPTURE_HINT = "a capture (the segment_events fixture or segment_core.testing.capture())"


@pytest.fixture
def client(segment_collector: CollectorHandle) -> Iterator[Client]:
    built = Client("key", host=segment_collector.url)
    yield built
    built.shutdown(5)


def test_a_timeout_says_a_capture_held_the_messages_back(
    segment_events: list[dict[str, Any]], segment_collector: CollectorHandle, client: Client
) -> None:
    client.track("u1", "Signed Up")
    assert client.flush(timeout=10)
    with pytest.raises(AssertionError) as raised:
        segment_collector.wait_for(1, timeout=0.1)
    text = str(raised.value)
    assert "saw 0" in text
    assert f"{CAPTURE_HINT} is active in this process" in text
    assert "1 message(s) captured, none sent" in text


def test_a_timeout_without_a_capture_speaks_of_none(
    segment_collector: CollectorHandle, client: Client
) -> None:
    client.track("u1", "Signed Up")
    assert client.flush(timeout=10)
    with pytest.raises(AssertionError) as raised:
        segment_collector.wait_for(2, timeout=0.1)
    text = str(raised.value)
    assert "saw 1" in text
    assert "capture" not in text
