"""A visitor's request, however heavy, leaves a view's own call its room and gets its page call."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask, request

from segment_core.batching import MAX_MESSAGE_BYTES
from tests.flask.conftest import MakeApp, Sent
from tests.memory import memory_kept

# Backslashes take two bytes each encoded, and the page fields are sent twice; all of it
# within what servers accept by default.
HEAVY_PATH = "/" + "a" * 2047 + "?q=" + "\\" * 1900
HEAVY_HEADERS = {
    "Referer": "https://ex.example/" + "\\" * 2030,
    "User-Agent": "Mozilla/5.0 " + "\\" * 500,
    "Accept": "text/html",
}
CART = {"items": ["x" * 100] * 160}  # 16.5 KB: half of what a message may weigh


def cart_app(make_app: MakeApp) -> Flask:
    app = make_app()

    @app.get("/<path:rest>")
    def cart(rest: str) -> str:
        request.analytics.track("Cart Viewed", CART)  # type: ignore[attr-defined]
        return "<p>cart</p>"

    return app


def test_a_heavy_request_leaves_a_views_call_its_room(
    make_app: MakeApp, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    app = cart_app(make_app)
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get(HEAVY_PATH, headers=HEAVY_HEADERS)
    assert response.status_code == 200
    viewed, page = sent()
    assert viewed["event"] == "Cart Viewed" and viewed["properties"] == CART
    assert page["type"] == "page" and page["properties"]["path"] == "/" + "a" * 2047
    for message in (viewed, page):
        assert len(json.dumps(message, ensure_ascii=False).encode()) <= MAX_MESSAGE_BYTES
    assert not [r for r in caplog.records if r.name.startswith("segment")]


def test_long_same_app_referrers_leave_no_memory_behind(make_app: MakeApp) -> None:
    from segment_flask._request import _params_of_host_path, _params_of_path

    url_map, long_value = cart_app(make_app).url_map, "v" * 8000
    # Where the paths kept would take 1.6 MB at least.
    assert memory_kept(lambda n: _params_of_path(url_map, f"/cart/{n}-{long_value}")) < 100_000
    assert (
        memory_kept(
            lambda n: _params_of_host_path(url_map, "", "shop.example", f"/cart/{n}-{long_value}")
        )
        < 100_000
    )
