"""Fuzzing what reaches the collector besides messages: query numbers, cursors,
fault plans. Never a 500; a refusal is a 4xx that says what was wrong."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segment_core.collector import CollectorHandle, run_in_background
from tests.collector.helpers import batch, message, post

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TIMEOUT = 10

numbers_as_text = (
    st.integers(min_value=-(2**70), max_value=2**70).map(str)
    | st.floats().map(repr)
    | st.text(max_size=25)
    | st.sampled_from(["", " 1", "1 ", "0x10", "1_000", "١٢", "9" * 30, "+5", "-0"])
)
plan_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
plans = st.dictionaries(
    st.sampled_from(["status", "retry_after", "delay", "close", "count", "seconds"]),
    plan_values,
    min_size=1,
    max_size=4,
)


@pytest.fixture(scope="module")
def collector() -> Iterator[CollectorHandle]:
    with run_in_background() as handle:
        post(handle.url, batch(message()))
        yield handle


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["after", "limit", "last", "status", "type"]), numbers_as_text, max_size=3
    )
)
def test_event_queries_never_500(collector: CollectorHandle, params: dict[str, str]) -> None:
    answer = requests.get(f"{collector.url}/collector/events", params=params, timeout=TIMEOUT)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["code"] == "invalid_query"


@FUZZ
@given(cursor=numbers_as_text, as_header=st.booleans())
def test_stream_cursors_never_500_nor_a_dead_stream(
    collector: CollectorHandle, cursor: str, as_header: bool
) -> None:
    # Header values cannot hold control characters nor start or end with spaces.
    cursor = "".join(c for c in cursor if c.isprintable() and c.isascii()).strip()
    url = f"{collector.url}/collector/stream"
    kwargs: dict[str, Any] = (
        {"headers": {"Last-Event-ID": cursor}} if as_header else {"params": {"after": cursor}}
    )
    with requests.get(url, stream=True, timeout=TIMEOUT, **kwargs) as answer:
        assert answer.status_code in (200, 400), answer.status_code
        if answer.status_code == 200:
            assert next(answer.iter_lines()) == b"retry: 1000"
        else:
            assert answer.json()["code"] == "invalid_query"


@FUZZ
@given(plan=plans | st.lists(plans, max_size=3))
def test_fault_plans_are_checked_and_an_accepted_plan_applies(
    collector: CollectorHandle, plan: Any
) -> None:
    collector.clear_faults()
    answer = requests.post(
        f"{collector.url}/collector/faults",
        data=orjson.dumps(plan),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["code"] == "invalid_fault_plan"
        return
    first = plan[0] if isinstance(plan, list) else plan
    if first.get("delay") or first.get("close"):
        collector.clear_faults()  # slow or connection-dropping plans: checked elsewhere
        return
    result = post(collector.url, batch(message()))
    assert result.status_code == first["status"]
    collector.clear_faults()
