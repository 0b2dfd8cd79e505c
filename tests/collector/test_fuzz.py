"""Fuzzing the `/v1/*` routes: never a 500, never a crash, stored events intact."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment_core.collector import CollectorHandle, run_in_background
from tests.collector.helpers import batch, new_id, post

ROUTES = ["batch", "import", "track", "identify", "page", "screen", "group", "alias"]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# JSON as orjson reads it back unchanged: 64-bit integers, finite floats, no lone
# surrogates in strings.
json_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "type",
        "userId",
        "anonymousId",
        "event",
        "properties",
        "traits",
        "context",
        "integrations",
        "timestamp",
        "groupId",
        "previousId",
        "name",
        "category",
        "sentAt",
    ]
)
messages = st.dictionaries(field_names | json_text, json_values, max_size=8)


@pytest.fixture(scope="module")
def collector() -> Iterator[CollectorHandle]:
    with run_in_background() as handle:
        yield handle


def assert_answered_sanely(response: requests.Response) -> None:
    assert response.status_code in (200, 400, 401, 404), response.text
    body = response.json()
    if response.status_code == 200:
        assert body == {"success": True}
    else:
        assert set(body) == {"code", "message"}


@FUZZ
@given(route=st.sampled_from(ROUTES), body=json_values)
def test_random_json(collector: CollectorHandle, route: str, body: Any) -> None:
    assert_answered_sanely(post(collector.url, body, path=f"/v1/{route}"))


@FUZZ
@given(route=st.sampled_from(ROUTES), data=st.binary(max_size=2000), gzipped=st.booleans())
def test_random_bytes(collector: CollectorHandle, route: str, data: bytes, gzipped: bool) -> None:
    headers = {"Content-Encoding": "gzip"} if gzipped else None
    assert_answered_sanely(post(collector.url, data=data, path=f"/v1/{route}", headers=headers))


@FUZZ
@given(
    body=json_values,
    cut=st.integers(min_value=0, max_value=200),
    garbage=st.binary(min_size=1, max_size=50),
)
def test_wrong_gzip(collector: CollectorHandle, body: Any, cut: int, garbage: bytes) -> None:
    compressed = gzip.compress(orjson.dumps(body))
    for data in (compressed[:cut], compressed + garbage, garbage + compressed):
        response = post(collector.url, data=data, headers={"Content-Encoding": "gzip"})
        assert_answered_sanely(response)


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    message_list=st.lists(messages, max_size=6),
    top=st.dictionaries(
        st.sampled_from(["context", "integrations", "sentAt", "writeKey"]), json_values
    ),
)
def test_random_messages_are_stored_intact(
    collector: CollectorHandle, route: str, message_list: list[dict[str, Any]], top: dict[str, Any]
) -> None:
    for sent in message_list:
        sent["messageId"] = new_id()
    if route in ("batch", "import"):
        response = post(collector.url, {**top, "batch": message_list}, path=f"/v1/{route}")
    elif message_list:
        response = post(collector.url, message_list[0], path=f"/v1/{route}")
        message_list = message_list[:1]
    else:
        return
    assert_answered_sanely(response)
    if response.status_code != 200:
        return
    merging = route in ("batch", "import") and any(
        isinstance(top.get(field), dict) for field in ("context", "integrations")
    )
    for sent in message_list:
        event = collector.event(sent["messageId"])
        assert event["status"] == ("bad" if event["reasons"] else "good")
        stored = event["message"]
        if route not in ("batch", "import"):
            sent = {"type": route, **{k: v for k, v in sent.items() if k != "writeKey"}}
        if merging:
            assert set(stored) >= set(sent)
        else:
            assert stored == sent


@pytest.mark.parametrize("depth", [100_000, 2_000, 1_025])
def test_deep_nesting(collector: CollectorHandle, depth: int) -> None:
    for data in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        for route in ("batch", "track"):
            assert_answered_sanely(post(collector.url, data=data, path=f"/v1/{route}"))
    wrapped = b'{"batch":[{"properties":' + b"[" * depth + b"]" * depth + b"}]}"
    assert_answered_sanely(post(collector.url, data=wrapped))


@pytest.mark.parametrize("size", [600 * 1024, 5 * 1024 * 1024])
def test_huge_bodies(collector: CollectorHandle, size: int) -> None:
    big_message = {"type": "track", "properties": {"x": "y" * size}}
    for data in (b"x" * size, orjson.dumps(batch(big_message)), orjson.dumps(big_message)):
        for route in ("batch", "track"):
            assert_answered_sanely(post(collector.url, data=data, path=f"/v1/{route}"))


def test_collector_is_intact_after_fuzzing(collector: CollectorHandle) -> None:
    """Runs last in this module: everything stored is still readable and consistent."""
    summary = collector.summary()
    events = collector.events(limit=100_000)
    assert len(events) == summary["total"]
    assert sum(1 for e in events if e["status"] == "good") == summary["good"]
    for event in events:
        assert event["status"] in ("good", "bad")
        assert (event["status"] == "bad") == bool(event["reasons"])
        assert collector.event(event["messageId"])["seq"] == event["seq"]
    assert post(collector.url, batch()).status_code == 200
