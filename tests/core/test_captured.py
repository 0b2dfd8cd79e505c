"""What a test captured has the one-line assertions wherever it comes from: the test
outbox of any adapter, and capture()."""

from __future__ import annotations

import decimal

import pytest

from segment_core import Client
from segment_core.testing import capture, divert, outbox


def test_a_capture_finds_and_asserts_as_sent() -> None:
    client = Client("k", send=False)
    with capture() as events:
        client.track("u1", "Order Completed", {"total": decimal.Decimal("19.99")})
        client.page("u1", name="Home")
    assert events.assert_tracked("Order Completed", total=decimal.Decimal("19.99"))
    assert events.assert_page("Home")
    assert [m["type"] for m in events.find(userId="u1")] == ["track", "page"]
    with pytest.raises(AssertionError, match="expected one track with event='Signed Up'"):
        events.assert_tracked("Signed Up")
    assert events == list(events) and events == tuple(events)


def test_the_outbox_is_a_list_with_the_same_assertions() -> None:
    client = Client("k", send=False)
    divert(client)
    outbox.clear()
    client.identify("u1", {"plan": "pro"})
    assert client.flush(timeout=5)
    outbox.assert_identified("u1", plan="pro")
    assert isinstance(outbox, list) and len(outbox) == 1
    outbox.clear()
    outbox.assert_nothing_sent()
