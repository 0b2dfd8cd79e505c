"""``analytics()`` where a framework runs code in the request without the binding."""

from __future__ import annotations

import pytest

from segment_core import scope
from segment_core.scope import (
    Analytics,
    analytics,
    bound,
    current,
    current_or_found,
    start_thread,
    with_binding,
)


def test_unbound_analytics_asks_the_finders_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    found = Analytics(anonymous_id="found")
    asked: list[str] = []

    def no_request() -> Analytics | None:
        asked.append("no_request")
        return None

    def request_analytics() -> Analytics | None:
        asked.append("request_analytics")
        return found

    monkeypatch.setattr(scope, "_analytics_finders", [no_request, request_analytics])
    assert analytics() is found
    assert asked == ["no_request", "request_analytics"]

    asked.clear()
    bound_here = Analytics(anonymous_id="bound")
    with bound(bound_here):
        assert analytics() is bound_here
    assert asked == []  # a binding wins, without asking


def test_no_finder_answers_no_visitor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scope, "_analytics_finders", [lambda: None])
    unbound = analytics()
    assert unbound.user_id is None and unbound.anonymous_id is None
    assert current_or_found() is None


def test_work_leaving_the_request_carries_the_visitor_an_adapter_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = Analytics(user_id="u-found", anonymous_id="a-found", context={"ip": "203.0.113.5"})
    monkeypatch.setattr(scope, "_analytics_finders", [lambda: found])
    assert current_or_found() is found
    seen: list[Analytics | None] = []

    def record_visitor() -> None:
        seen.append(current())

    run_elsewhere = with_binding(record_visitor)
    start_thread(record_visitor).join(10)
    run_elsewhere()
    assert len(seen) == 2
    for carried in seen:
        assert carried is not None and carried is not found  # a copy, as for a bound one
        assert (carried.user_id, carried.anonymous_id) == ("u-found", "a-found")
        assert carried.context == {"ip": "203.0.113.5"}

    bound_here = Analytics(anonymous_id="bound")
    with bound(bound_here):
        assert current_or_found() is bound_here  # a binding wins
