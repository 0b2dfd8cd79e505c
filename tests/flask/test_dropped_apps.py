"""An app factory called again and again (an app per test): each app's own client
goes with its app, once it has delivered what it holds."""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any

from segment_core.client import Client
from segment_flask import SegmentFlask, get_state
from tests.flask.app import create_app

NAVIGATE = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}


def test_the_client_of_a_dropped_app_delivers_and_lets_go_of_its_thread(
    segment_collector: Any,
) -> None:
    clients: list[weakref.ref[Client]] = []
    for number in range(20):
        app = create_app(
            {"SEGMENT_WRITE_KEY": "k", "SEGMENT_HOST": segment_collector.url}, name=f"app{number}"
        )
        SegmentFlask(app)
        client = get_state(app).client
        assert app.test_client().get(f"/?n={number}", headers=NAVIGATE).status_code == 200
        clients.append(weakref.ref(client))
        del app, client
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(ref() is not None for ref in clients) > 1:
        gc.collect()
        time.sleep(0.05)
    # One may be segment_core's default client: it stays, for the module-level calls.
    assert sum(ref() is not None for ref in clients) <= 1
    segment_collector.wait_for(20)
    searches = {e["message"]["context"]["page"]["search"] for e in segment_collector.events()}
    assert searches == {f"?n={number}" for number in range(20)}
