"""A handle reaches its collector while the test mocks ``requests`` (responses,
requests-mock), as projects do for their own outgoing HTTP."""

from __future__ import annotations

import pytest
import requests
import responses

from segment_core import Client
from segment_core.collector import CollectorHandle


def test_a_handle_reaches_its_collector_while_requests_is_mocked(
    segment_collector: CollectorHandle,
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add(responses.POST, "https://crm.example/contacts", json={"id": 1})
        assert requests.post("https://crm.example/contacts", timeout=5).json() == {"id": 1}
        segment_collector.clear_faults()
        client = Client("k", host=segment_collector.url)
        try:
            client.track("u1", "Contact Synced")
            assert client.flush(10)
        finally:
            client.shutdown(5)
        [event] = segment_collector.wait_for(1, timeout=10, event="Contact Synced")
        assert event["status"] == "good"
        assert segment_collector.summary()["total"] == 1
        segment_collector.reset()
        assert segment_collector.events() == []
        with pytest.raises(requests.ConnectionError):  # the test's own mocks stay as set
            requests.get(segment_collector.url + "/collector/summary", timeout=5)


def test_a_filter_of_none_is_left_out_and_a_list_s_values_repeated(
    segment_collector: CollectorHandle,
) -> None:
    """As requests writes a query: a helper passing its defaults gets every event."""
    client = Client("k", host=segment_collector.url)
    try:
        client.track("u1", "First")
        client.track("u2", "Second")
        assert client.flush(10)
    finally:
        client.shutdown(5)
    assert len(segment_collector.wait_for(2, timeout=10, user_id=None)) == 2
    assert len(segment_collector.events(user_id=None, type=["track"])) == 2
