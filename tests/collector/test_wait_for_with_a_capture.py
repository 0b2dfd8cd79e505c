"""`wait_for` timing out while a capture keeps this process's messages from the network."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from segment_core import Client
from segment_core.collector import CollectorHandle
from segment_core.testing import divert_in_tests

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
    assert "1 message(s) it captured were kept from the network" in text


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


def test_a_timeout_counts_only_what_a_capture_held_back(
    segment_events: list[dict[str, Any]], segment_collector: CollectorHandle, client: Client
) -> None:
    """A client set to send in tests (an adapter's send_in_tests) sends while the
    capture records: what it sent is no capture's doing."""
    sending = Client("key", host=segment_collector.url)
    divert_in_tests(sending, send=True, running=lambda: True)
    try:
        sending.track("u1", "Order Completed")
        segment_collector.wait_for(1, event="Order Completed")
        with pytest.raises(AssertionError) as raised:
            segment_collector.wait_for(1, timeout=0.1, event="Order Shipped")
        assert "capture" not in str(raised.value)
        client.track("u1", "Held Back")  # a client not set to send in tests
        with pytest.raises(AssertionError) as raised:
            segment_collector.wait_for(1, timeout=0.1, event="Order Shipped")
        assert "1 message(s) it captured were kept from the network" in str(raised.value)
    finally:
        sending.shutdown(5)


@pytest.fixture
def diverted(segment_collector: CollectorHandle) -> Iterator[Client]:
    """A client in test mode (SEND_IN_TESTS off): what it accepts goes to the outbox."""
    built = Client("key", host=segment_collector.url)
    divert_in_tests(built, send=False, running=lambda: True)
    yield built
    built.shutdown(5)


def test_a_timeout_counts_what_test_mode_kept_under_a_capture(
    segment_events: list[dict[str, Any]], segment_collector: CollectorHandle, diverted: Client
) -> None:
    diverted.track("u1", "Order Shipped")
    with pytest.raises(AssertionError) as raised:
        segment_collector.wait_for(1, timeout=0.1, event="Order Shipped")
    assert "1 message(s) it captured were kept from the network" in str(raised.value)


@pytest.fixture
def diverted_early(diverted: Client) -> Client:
    """A test-mode client that sends before the test's segment_events is set up."""
    diverted.track("u1", "Sent By A Fixture")
    return diverted


def test_a_timeout_counts_what_test_mode_kept_before_the_capture_began(
    diverted_early: Client,
    segment_events: list[dict[str, Any]],
    segment_collector: CollectorHandle,
) -> None:
    assert [e["event"] for e in segment_events] == ["Sent By A Fixture"]
    with pytest.raises(AssertionError) as raised:
        segment_collector.wait_for(1, timeout=0.1, event="Sent By A Fixture")
    assert "1 message(s) it captured were kept from the network" in str(raised.value)


def test_a_timeout_without_a_capture_says_what_test_mode_put_in_the_outbox(
    segment_collector: CollectorHandle, diverted: Client
) -> None:
    # An app's client in test mode, a test that waits on the collector: the outbox
    # holds what it waits for.
    diverted.track("u1", "Order Shipped")
    with pytest.raises(AssertionError) as raised:
        segment_collector.wait_for(1, timeout=0.1, event="Order Shipped")
    text = str(raised.value)
    assert "1 message(s) this test's clients accepted are in segment_core.testing" in text
    assert 'SEGMENT["SEND_IN_TESTS"]' in text and "capture" not in text
