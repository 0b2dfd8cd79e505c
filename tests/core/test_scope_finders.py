"""``analytics()`` where a framework runs code in the request without the binding."""

from __future__ import annotations

import pytest

from segment_core import scope
from segment_core.scope import Analytics, analytics, bound


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
