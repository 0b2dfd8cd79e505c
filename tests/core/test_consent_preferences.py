"""``Analytics.consent()`` refuses what every later call would refuse, at its own call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from segment_core import Client, InvalidMessage
from segment_core.collector import CollectorHandle
from segment_core.scope import Analytics


@pytest.fixture
def visitor(segment_collector: CollectorHandle) -> Iterator[Analytics]:
    client = Client("key", host=segment_collector.url)
    yield Analytics(client, anonymous_id="a1")
    client.shutdown(5)


@pytest.mark.parametrize(
    ("preferences", "categories", "error"),
    [
        (
            {"Advertising": "no"},
            {},
            "context.consent.categoryPreferences.Advertising must be a boolean, got string",
        ),
        (
            None,
            {"Analytics": 1},
            "context.consent.categoryPreferences.Analytics must be a boolean, got number",
        ),
        (
            {"Advertising": False, "Analytics": None},
            {},
            "context.consent.categoryPreferences.Analytics must be a boolean, got null",
        ),
        (
            {1: True},
            {},
            "context.consent.categoryPreferences keys must be strings, got int",
        ),
        (
            [("Advertising", False)],
            {},
            "context.consent.categoryPreferences must be an object, got array",
        ),
    ],
    ids=["string", "number", "null", "int key", "list"],
)
def test_preferences_that_are_not_booleans_by_name_are_refused_at_the_call(
    visitor: Analytics, preferences: Any, categories: dict[str, Any], error: str
) -> None:
    with pytest.raises(InvalidMessage) as refused:
        visitor.consent(preferences, **categories)
    assert str(refused.value) == error


def test_a_refused_consent_leaves_the_one_before_and_the_calls_go_on(
    visitor: Analytics, segment_collector: CollectorHandle
) -> None:
    visitor.consent(Advertising=False)
    not_a_boolean: Any = "yes"
    with pytest.raises(InvalidMessage):
        visitor.consent({"Advertising": not_a_boolean})
    assert visitor.track("Clicked")[0]
    assert visitor.client.flush(10)
    [event] = segment_collector.wait_for(1, type="track", event="Clicked")
    assert event["message"]["context"]["consent"] == {"categoryPreferences": {"Advertising": False}}
