"""A buffer smaller than a batch: half of it is a batch, sent without waiting."""

from __future__ import annotations

import logging

import pytest

import segment_core.client as client_module
from segment_core import Client, Config
from segment_core.collector.handle import CollectorHandle


def test_half_a_queue_smaller_than_flush_at_makes_a_batch_due() -> None:
    config = Config.from_options("key", max_queue_size=10)  # flush_at: 20
    assert (config.batch_due_at, config.full_batch) == (5, 5)
    assert Config.from_options("key", max_queue_size=1).batch_due_at == 1
    default = Config.from_options("key")
    assert (default.batch_due_at, default.full_batch) == (20, 2500)


def test_a_queue_smaller_than_flush_at_loses_nothing_while_idle(
    segment_collector: CollectorHandle,
) -> None:
    # flush_interval would hold a batch for an hour: only half the queue sends it.
    client = Client("key", host=segment_collector.url, max_queue_size=10, flush_interval=3600)
    try:
        for i in range(30):
            accepted, _ = client.track("user", "Small Queue", {"i": i})
            assert accepted, client.stats()["dropped"]
            if i % 5 == 4:
                segment_collector.wait_for(i + 1, type="track", event="Small Queue")
        assert client.stats()["dropped"] == {}
    finally:
        client.shutdown(5)
    events = segment_collector.events(type="track", event="Small Queue", limit=100)
    assert sorted(e["message"]["properties"]["i"] for e in events) == list(range(30))


def test_a_warning_about_drops_counts_those_since_the_last_one(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(client_module, "monotonic", lambda: now[0])
    client = Client("key", host="http://127.0.0.1:9")
    client.shutdown(1)
    with caplog.at_level(logging.WARNING, logger="segment.core"):
        for _ in range(4):  # within 5 s of the first: one warning
            assert client.track("user", "Late")[0] is False
        now[0] += 6
        assert client.track("user", "Later")[0] is False
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert lines == [
        "Segment message dropped (shut_down); see Client.stats()",
        "Segment message dropped (shut_down); 3 other drop(s) since the last warning; "
        "see Client.stats()",
    ]
    assert client.stats()["dropped"] == {"shut_down": 5}
