"""``TESTING = True``: the app's own client sends nothing; its events wait in the outbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

import segment_core
from segment_core import Client
from segment_core.testing import divert, outbox
from segment_flask import SegmentFlask, get_state
from tests.flask.app import create_app

MakeApp = Callable[..., tuple[Flask, Client]]


@pytest.fixture
def make_app(segment_collector: Any) -> Iterator[MakeApp]:
    """An app with its own client, sending to the collector unless diverted."""
    clients: list[Client] = []

    def make(**config: Any) -> tuple[Flask, Client]:
        base = {"SEGMENT_WRITE_KEY": "k", "SEGMENT_HOST": segment_collector.url}
        app = create_app({**base, **config})
        SegmentFlask(app)
        clients.append(get_state(app).client)
        return app, clients[-1]

    yield make
    for client in clients:
        client.shutdown(timeout=5)


def visit_and_count(app: Flask, client: Client, collector: Any) -> int:
    """GET /track (a track and a page call); how many reached the collector."""
    assert app.test_client().get("/track").status_code == 200
    assert client.flush(timeout=10)
    total: int = collector.summary()["total"]
    return total


def test_a_testing_app_puts_its_events_in_the_outbox(
    make_app: MakeApp, segment_collector: Any
) -> None:
    app, client = make_app(SEGMENT_SEND_IN_TESTS=False)
    assert visit_and_count(app, client, segment_collector) == 0
    assert [m["type"] for m in outbox] == ["track", "page"]


def test_send_in_tests_sends(make_app: MakeApp, segment_collector: Any) -> None:
    app, client = make_app(SEGMENT_SEND_IN_TESTS=True)
    assert visit_and_count(app, client, segment_collector) == 2
    assert outbox == []


def test_an_app_not_testing_sends(make_app: MakeApp, segment_collector: Any) -> None:
    app, client = make_app(TESTING=False, SEGMENT_SEND_IN_TESTS=False)
    assert visit_and_count(app, client, segment_collector) == 2
    assert outbox == []


def test_testing_set_after_init_app_counts_too(make_app: MakeApp, segment_collector: Any) -> None:
    app, client = make_app(TESTING=False, SEGMENT_SEND_IN_TESTS=False)
    app.config["TESTING"] = True  # as a test fixture does
    assert visit_and_count(app, client, segment_collector) == 0
    assert [m["type"] for m in outbox] == ["track", "page"]


def test_testing_set_after_a_message_the_app_sent_as_it_was_made_counts_outside_a_request(
    make_app: MakeApp, segment_collector: Any
) -> None:
    app, client = make_app(TESTING=False, SEGMENT_SEND_IN_TESTS=False)
    client.track("system", "App Booted")  # in the app factory, before a fixture sets TESTING
    assert client.flush(timeout=10)
    app.config["TESTING"] = True
    client.track("user-1", "From A CLI Command")  # before any request
    assert visit_and_count(app, client, segment_collector) == 1  # the boot's alone
    assert [m.get("event", m["type"]) for m in outbox] == [
        "From A CLI Command",
        "Clicked Buy",
        "page",
    ]


def test_an_app_not_testing_at_its_first_request_sends_what_follows_outside_requests(
    make_app: MakeApp, segment_collector: Any
) -> None:
    app, client = make_app(TESTING=False, SEGMENT_SEND_IN_TESTS=False)
    client.track("system", "App Booted")
    assert visit_and_count(app, client, segment_collector) == 3
    client.track("user-1", "From A Thread")
    assert client.flush(timeout=10)
    assert segment_collector.summary()["total"] == 4
    assert outbox == []


def test_testing_set_after_init_app_counts_outside_a_request_too(
    make_app: MakeApp, segment_collector: Any
) -> None:
    app, client = make_app(TESTING=False, SEGMENT_SEND_IN_TESTS=False)
    app.config["TESTING"] = True
    client.track("user-1", "From A CLI Command")  # before any request
    assert visit_and_count(app, client, segment_collector) == 0
    assert [m.get("event", m["type"]) for m in outbox] == [
        "From A CLI Command",
        "Clicked Buy",
        "page",
    ]


def test_an_app_sending_in_tests_leaves_the_module_level_calls_to_a_testing_one(
    make_app: MakeApp, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first app built sends for real (one test's); an app made later with
    # TESTING keeps the module-level calls from the network; one without does not
    # take them (it may send for real).
    monkeypatch.setattr(segment_core, "default_client", None)
    _, sending = make_app(SEGMENT_SEND_IN_TESTS=True)
    assert segment_core.default_client is sending
    make_app(TESTING=False, SEGMENT_SEND_IN_TESTS=False)
    assert segment_core.default_client is sending
    _, kept = make_app(SEGMENT_SEND_IN_TESTS=False)
    assert segment_core.default_client is kept
    assert segment_core.track("u1", "Service Call")[0]
    assert kept.flush(timeout=10) and sending.flush(timeout=10)
    assert segment_collector.summary()["total"] == 0
    assert [m["event"] for m in outbox] == ["Service Call"]


def test_an_app_testing_once_made_takes_the_module_level_calls_from_one_sending(
    make_app: MakeApp, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Flask's fixture: app = create_app(); app.config.update(TESTING=True), then a
    # module-level call (a command, a service function) before any request.
    monkeypatch.setattr(segment_core, "default_client", None)
    _, sending = make_app(SEGMENT_SEND_IN_TESTS=True)
    app, kept = make_app(TESTING=False, SEGMENT_SEND_IN_TESTS=False)
    assert segment_core.default_client is sending
    app.config["TESTING"] = True
    assert segment_core.track("u1", "Nightly Report Sent")[0]
    assert segment_core.default_client is kept
    assert kept.flush(timeout=10) and sending.flush(timeout=10)
    assert segment_collector.summary()["total"] == 0
    assert [m["event"] for m in outbox] == ["Nightly Report Sent"]


def test_a_test_s_own_divert_leaves_the_module_level_calls_where_they_were(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment_core, "default_client", None)
    _, sending = make_app(SEGMENT_SEND_IN_TESTS=True)
    _, other = make_app(TESTING=False, SEGMENT_SEND_IN_TESTS=False)
    own: list[dict[str, Any]] = []
    divert(other, own)  # a test's own list, not the test outbox
    assert segment_core.get_client() is sending
