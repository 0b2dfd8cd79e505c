"""analytics-python's module-level settings, kept after changing the import, beside
the app's ``SEGMENT_*`` keys: which client an app sends with, and which settings win."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import segment_core
from segment_core.testing import outbox
from segment_flask import SegmentFlask, get_state
from tests.flask.app import create_app


@pytest.fixture(autouse=True)
def _module_level(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No module-level settings and no default client yet; those a test makes are stopped."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.delenv("SEGMENT_HOST", raising=False)
    for name in ("write_key", "host", "default_client"):
        monkeypatch.setattr(segment_core, name, None)
    yield
    if segment_core.default_client is not None:
        segment_core.default_client.shutdown(timeout=5)


def module_settings(monkeypatch: pytest.MonkeyPatch, collector: Any) -> None:
    """``analytics.write_key = ...`` and ``analytics.host = ...``, as analytics-python has them."""
    monkeypatch.setattr(segment_core, "write_key", "module-key")
    monkeypatch.setattr(segment_core, "host", collector.url)


def delivered(collector: Any) -> list[str]:
    """What the collector got, as each message's event or type, once everything flushed."""
    assert segment_core.flush(timeout=10)
    return [e["message"].get("event") or e["message"]["type"] for e in collector.events()]


def test_without_client_options_the_app_sends_with_the_module_level_settings(
    segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_settings(monkeypatch, segment_collector)
    app = create_app({"TESTING": False})
    SegmentFlask(app)

    @app.get("/buy")
    def buy() -> str:
        accepted, _ = segment_core.track("u1", "Order Completed")
        return "accepted" if accepted else "discarded"

    client = get_state(app).client
    assert client is segment_core.default_client
    assert (client.config.write_key, client.config.host) == ("module-key", segment_collector.url)
    assert app.test_client().get("/buy").text == "accepted"
    accepted, _ = segment_core.track("u1", "Outside A Request")
    assert accepted
    assert delivered(segment_collector) == ["Order Completed", "page", "Outside A Request"]


def test_client_options_without_a_write_key_take_the_module_level_ones(
    segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_settings(monkeypatch, segment_collector)
    app = create_app({"SEGMENT_FLUSH_AT": 1})
    SegmentFlask(app)
    client = get_state(app).client
    config = client.config
    assert (config.write_key, config.host, config.flush_at) == (
        "module-key",
        segment_collector.url,
        1,
    )
    assert segment_core.default_client is client
    app.test_client().get("/track")
    assert delivered(segment_collector) == ["Clicked Buy", "page"]


@pytest.mark.parametrize("empty_key", ["", None])
def test_an_empty_write_key_of_the_app_s_takes_the_module_level_one(
    segment_collector: Any, monkeypatch: pytest.MonkeyPatch, empty_key: str | None
) -> None:
    module_settings(monkeypatch, segment_collector)
    # SEGMENT_WRITE_KEY = os.environ.get("SEGMENT_KEY") in a config class
    app = create_app({"SEGMENT_WRITE_KEY": empty_key, "TESTING": False})
    SegmentFlask(app)
    assert get_state(app).client.config.write_key == "module-key"


def test_module_level_calls_made_before_a_testing_app_was_set_up_are_diverted_with_it(
    segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module-level call before the app was set up made the default client from the
    module-level settings: in tests it keeps from the network what the app's keeps."""
    module_settings(monkeypatch, segment_collector)
    assert segment_core.track("u1", "Early Import")[0]  # sent: no test mode known yet
    assert segment_core.flush(timeout=10)
    app = create_app({"SEGMENT_SEND_IN_TESTS": False, "SEGMENT_WRITE_KEY": "app-key"})
    SegmentFlask(app)
    assert segment_core.track("u1", "In A Test")[0]
    assert segment_core.flush(timeout=10)
    assert [e["message"]["event"] for e in segment_collector.events()] == ["Early Import"]
    outbox.assert_tracked("In A Test")
    get_state(app).client.shutdown(timeout=5)


def test_an_app_set_to_send_in_tests_sends_while_a_capture_records(
    segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segment_core.testing import capture

    app = create_app({"SEGMENT_WRITE_KEY": "app-key", "SEGMENT_HOST": segment_collector.url})
    SegmentFlask(app)  # SEGMENT_SEND_IN_TESTS, as every app of these tests
    with capture() as events:
        app.test_client().get("/track")
    assert [m.get("event") or m["type"] for m in events] == ["Clicked Buy", "page"]
    client = get_state(app).client
    assert client.flush(timeout=10)
    assert len(segment_collector.events()) == 2
    client.shutdown(timeout=5)


def test_module_level_calls_made_before_an_app_set_to_send_in_tests_send_under_a_capture(
    segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segment_core.testing import capture

    module_settings(monkeypatch, segment_collector)
    assert segment_core.track("u1", "Early Import")[0]
    app = create_app({"SEGMENT_WRITE_KEY": "app-key"})  # SEGMENT_SEND_IN_TESTS
    SegmentFlask(app)
    with capture() as events:
        assert segment_core.track("u1", "Under Capture")[0]
    assert [m["event"] for m in events] == ["Under Capture"]
    assert segment_core.flush(timeout=10)
    sent = [e["message"]["event"] for e in segment_collector.events()]
    assert sent == ["Early Import", "Under Capture"]
    get_state(app).client.shutdown(timeout=5)


def test_an_app_client_without_a_write_key_never_becomes_the_default_client(
    segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    SegmentFlask(create_app({"SEGMENT_FLUSH_AT": 5}))
    assert segment_core.default_client is None
    module_settings(monkeypatch, segment_collector)  # set later: module-level calls use it
    accepted, _ = segment_core.track("u1", "Nightly Export")
    assert accepted
    assert delivered(segment_collector) == ["Nightly Export"]


def test_a_testing_app_diverts_the_module_level_client_it_follows(
    segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_settings(monkeypatch, segment_collector)
    app = create_app({"SEGMENT_SEND_IN_TESTS": False})  # TESTING
    SegmentFlask(app)
    app.test_client().get("/track")
    assert [m.get("event") or m["type"] for m in outbox] == ["Clicked Buy", "page"]
    assert delivered(segment_collector) == []


@pytest.mark.parametrize("where", ["config", "module"])
def test_a_warning_when_the_browser_key_is_the_server_key(
    where: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = {"SEGMENT_BROWSER_WRITE_KEY": "server-key", "SEGMENT_SEND": False}
    if where == "config":
        config["SEGMENT_WRITE_KEY"] = "server-key"
    else:
        monkeypatch.setattr(segment_core, "write_key", "server-key")
    with caplog.at_level(logging.WARNING, logger="segment.flask"):
        SegmentFlask(create_app({**config, "SEGMENT_BROWSER_WRITE_KEY": "browser-key"}))
        assert "browser_write_key" not in caplog.text
        SegmentFlask(create_app(config))
    [record] = [r for r in caplog.records if "browser_write_key" in r.getMessage()]
    assert record.getMessage() == (
        "Segment for app 'shop': browser_write_key is the server's write_key: the snippet "
        "hands it to every browser, where anyone can read it and send events as the "
        "server; give browser_write_key the write key of a website (analytics.js) source."
    )


def test_apps_without_client_options_each_have_their_own_client_and_testing(
    segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An app factory's test app, then the real app it also makes: the second must
    # neither send the first's events nor take another app's key.
    module_settings(monkeypatch, segment_collector)
    outbox.clear()
    testing = create_app({"TESTING": True, "SEGMENT_SEND_IN_TESTS": False})
    SegmentFlask(testing)
    other = create_app({"TESTING": False, "SEGMENT_WRITE_KEY": "other-key"})
    SegmentFlask(other)
    plain = create_app({"TESTING": False})
    SegmentFlask(plain)
    assert get_state(testing).client is not get_state(plain).client
    assert get_state(plain).client.config.write_key == "module-key"
    testing.test_client().get("/?from=testing")
    plain.test_client().get("/?from=plain")
    for app in (testing, other, plain):
        assert get_state(app).client.flush(timeout=10)
    assert [m["context"]["page"]["search"] for m in outbox] == ["?from=testing"]
    sent = [e["message"]["context"]["page"]["search"] for e in segment_collector.events()]
    assert sent == ["?from=plain"]
    outbox.clear()


def test_a_testing_app_without_a_write_key_diverts_the_module_level_calls_everywhere(
    segment_collector: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # CI without the secret: the key is missing, and every call must still reach the outbox.
    app = create_app({"SEGMENT_SEND_IN_TESTS": False, "SEGMENT_HOST": segment_collector.url})

    @app.get("/invite-a-friend")
    def invite_a_friend() -> str:
        # A thread the view starts has no app context.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(segment_core.track, "u1", "Invited A Friend").result(timeout=10)
        return "invited"

    with caplog.at_level(logging.WARNING, logger="segment"):
        SegmentFlask(app)
        assert app.test_client().get("/invite-a-friend").text == "invited"
        accepted, _ = segment_core.track("u1", "Outside The App")
    assert accepted
    assert [m.get("event") or m["type"] for m in outbox] == [
        "Invited A Friend",
        "page",
        "Outside The App",
    ]
    assert segment_core.default_client is None  # a key set later still counts
    # The client's one warning (the app's own says how to set a key).
    said = [r for r in caplog.records if r.name == "segment.core"]
    assert len(said) == 1 and "no write key" in said[0].getMessage()
    assert delivered(segment_collector) == []


def test_an_app_with_send_off_and_no_write_key_discards_the_module_level_calls_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app({"TESTING": False, "SEGMENT_SEND": False})
    with caplog.at_level(logging.WARNING, logger="segment"):
        SegmentFlask(app)
        accepted, _ = segment_core.track("u1", "Outside The App")
    assert accepted
    assert outbox == []
    assert caplog.records == []
