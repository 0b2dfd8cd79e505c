"""Batches from Segment's own Python library are accepted with no false "bad" event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from segment_core.collector import CollectorHandle
from segment_core.masking import masked_with_fingerprint

analytics = pytest.importorskip("segment.analytics")


@pytest.fixture
def make_client(segment_collector: CollectorHandle) -> Iterator[Any]:
    clients: list[Any] = []

    def make(**options: Any) -> Any:
        client = analytics.Client("official-key", host=segment_collector.url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        if client.consumers is not None:  # sync mode has no threads to stop
            client.shutdown()


def send_every_call(client: Any) -> int:
    """Make each kind of call with the library's common options; return how many."""
    when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    context = {"ip": "203.0.113.9", "userAgent": "pytest", "page": {"path": "/x"}}
    client.identify("user-1", {"email": "ada@example.com", "age": 36, "createdAt": when})
    client.track("user-1", "Order Completed", {"revenue": 9.5, "items": [1, 2]}, context=context)
    client.track(anonymous_id="anon-1", event="Viewed", timestamp=when, integrations={"All": False})
    client.track(42, "Numeric Id")
    client.page("user-1", "Docs", "Install", {"url": "https://example.com/docs", "search": ""})
    client.page(anonymous_id="anon-1")
    client.screen("user-1", "Mobile", "Settings", {"tab": 2})
    client.group("user-1", "group-9", {"name": "Acme", "employees": 10})
    client.alias("anon-1", "user-1")
    client.track("user-1", "With Id", message_id="custom-message-id-1")
    return 10


@pytest.mark.parametrize(
    "options",
    [{"sync_mode": True}, {"sync_mode": False}, {"sync_mode": False, "gzip": True}],
    ids=["sync", "batched", "batched-gzip"],
)
def test_official_library_batches_are_all_good(
    segment_collector: CollectorHandle, make_client: Any, options: dict[str, Any]
) -> None:
    client = make_client(**options)
    count = send_every_call(client)
    client.flush()
    events = segment_collector.wait_for(count)
    bad = [(e["message"], e["reasons"]) for e in events if e["status"] != "good"]
    assert bad == []
    assert {e["message"]["type"] for e in events} == {
        "identify",
        "track",
        "page",
        "screen",
        "group",
        "alias",
    }
    for event in events:
        assert event["writeKey"] == masked_with_fingerprint("official-key")
        assert event["writeKeySource"] == "basic+body"
        assert event["message"]["context"]["library"]["name"] == "analytics-python"
    assert segment_collector.event("custom-message-id-1")["message"]["event"] == "With Id"
    assert segment_collector.summary()["duplicates"] == 0
