"""``TESTING = True``: the app's own client sends nothing; its events wait in the outbox."""

from __future__ import annotations

from typing import Any

from segment_core.testing import outbox
from segment_flask import SegmentFlask, get_state
from tests.flask.app import create_app


def test_a_testing_app_puts_its_events_in_the_outbox(segment_collector: Any) -> None:
    config = {"SEGMENT_WRITE_KEY": "k", "SEGMENT_HOST": segment_collector.url}
    app = create_app({**config, "SEGMENT_SEND_IN_TESTS": False})
    SegmentFlask(app)
    client = get_state(app).client
    try:
        response = app.test_client().get("/track")
        assert response.status_code == 200
        assert [m["type"] for m in outbox] == ["track", "page"]
        assert client.flush(timeout=5)
        assert segment_collector.summary()["total"] == 0
    finally:
        client.shutdown(timeout=5)


def test_send_in_tests_sends(segment_collector: Any) -> None:
    config = {"SEGMENT_WRITE_KEY": "k", "SEGMENT_HOST": segment_collector.url}
    app = create_app({**config, "SEGMENT_SEND_IN_TESTS": True})
    SegmentFlask(app)
    client = get_state(app).client
    try:
        app.test_client().get("/track")
        assert client.flush(timeout=10)
        assert outbox == []
        assert segment_collector.summary()["total"] == 2
    finally:
        client.shutdown(timeout=5)


def test_an_app_not_testing_sends(segment_collector: Any) -> None:
    config = {"SEGMENT_WRITE_KEY": "k", "SEGMENT_HOST": segment_collector.url}
    app = create_app({**config, "TESTING": False, "SEGMENT_SEND_IN_TESTS": False})
    SegmentFlask(app)
    client = get_state(app).client
    try:
        app.test_client().get("/track")
        assert client.flush(timeout=10)
        assert outbox == []
        assert segment_collector.summary()["total"] == 2
    finally:
        client.shutdown(timeout=5)


def test_testing_set_after_init_app_counts_too(segment_collector: Any) -> None:
    config = {"SEGMENT_WRITE_KEY": "k", "SEGMENT_HOST": segment_collector.url}
    app = create_app({**config, "TESTING": False, "SEGMENT_SEND_IN_TESTS": False})
    SegmentFlask(app)
    app.config["TESTING"] = True  # as a test fixture does
    client = get_state(app).client
    try:
        app.test_client().get("/track")
        assert [m["type"] for m in outbox] == ["track", "page"]
        assert client.flush(timeout=5)
        assert segment_collector.summary()["total"] == 0
    finally:
        client.shutdown(timeout=5)
