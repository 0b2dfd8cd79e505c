"""analytics-python's module-level settings, kept after changing the import, beside
``settings.SEGMENT``: which client Django sends with, and which settings win."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.test import Client

import segment_core
import segment_django
from segment_core.testing import diverted
from segment_django.testing import outbox


@pytest.fixture(autouse=True)
def _module_level(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No module-level settings and no default client yet; those a test makes are stopped."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.delenv("SEGMENT_HOST", raising=False)
    for name in ("write_key", "host", "default_client", "_keyless_client"):
        monkeypatch.setattr(segment_core, name, None)
    yield
    if segment_core.default_client is not None:
        segment_core.default_client.shutdown(timeout=5)


def module_settings(monkeypatch: pytest.MonkeyPatch, collector: Any) -> None:
    """``analytics.write_key = ...`` and ``analytics.host = ...``, as analytics-python has them."""
    monkeypatch.setattr(segment_core, "write_key", "module-key")
    monkeypatch.setattr(segment_core, "host", collector.url)


def delivered(collector: Any) -> list[str]:
    """What the collector got, as each message's event or type, once Django's client flushed."""
    assert segment_django.get_client().flush(timeout=10)
    return [e["message"].get("event") or e["message"]["type"] for e in collector.events()]


def test_without_client_options_django_sends_with_the_module_level_settings(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_settings(monkeypatch, segment_collector)
    settings.SEGMENT = {"SEND_IN_TESTS": True}  # web options only
    client = segment_django.get_client()
    assert client is segment_core.default_client
    assert (client.config.write_key, client.config.host) == ("module-key", segment_collector.url)
    assert Client().get("/track/").status_code == 200
    accepted, _ = segment_core.track("user-1", "Order Completed")
    assert accepted
    assert delivered(segment_collector) == ["Clicked Buy", "page", "Order Completed"]


def test_client_options_without_a_write_key_take_the_module_level_ones(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_settings(monkeypatch, segment_collector)
    settings.SEGMENT = {"FLUSH_AT": 1, "SEND_IN_TESTS": True}
    client = segment_django.get_client()
    config = client.config
    assert (config.write_key, config.host, config.flush_at) == (
        "module-key",
        segment_collector.url,
        1,
    )
    assert segment_core.default_client is client
    Client().get("/track/")
    assert delivered(segment_collector) == ["Clicked Buy", "page"]


def test_a_write_key_of_the_settings_wins_and_takes_nothing_from_the_module_level(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment_core, "write_key", "module-key")
    monkeypatch.setattr(segment_core, "host", "http://127.0.0.1:9")
    settings.SEGMENT = {"WRITE_KEY": "own-key", "HOST": segment_collector.url}
    config = segment_django.get_client().config
    assert (config.write_key, config.host) == ("own-key", segment_collector.url)
    settings.SEGMENT = {"WRITE_KEY": "own-key"}
    assert segment_django.get_client().config.host == "https://api.segment.io"


def test_a_client_without_a_write_key_never_becomes_the_default_client(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SEGMENT = {"FLUSH_AT": 5}  # no write key anywhere yet
    assert segment_django.get_client().config.write_key is None
    assert segment_core.default_client is None
    # Set later (a script, a worker's start-up): the module-level calls send with it.
    module_settings(monkeypatch, segment_collector)
    accepted, _ = segment_core.track("user-1", "Nightly Export")
    assert accepted
    assert segment_core.flush(timeout=10)
    assert [e["message"]["event"] for e in segment_collector.events()] == ["Nightly Export"]


def test_a_module_level_key_set_after_start_up_is_used_from_the_next_request(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As by an app's ``AppConfig.ready()`` that runs after segment_django's."""
    settings.SEGMENT = {"SEND_IN_TESTS": True}
    Client().get("/track/")  # no write key yet: discarded
    module_settings(monkeypatch, segment_collector)
    Client().get("/track/")
    assert segment_django.get_client() is segment_core.default_client
    assert delivered(segment_collector) == ["Clicked Buy", "page"]


def test_a_default_client_the_app_replaces_is_followed_from_the_next_request(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings without client options send through segment_core's default client,
    the one it is now: an app that assigns another (analytics.default_client = ...)
    has Django's requests follow, as SegmentMiddleware's do."""
    settings.SEGMENT = {"SEND_IN_TESTS": True}
    module_settings(monkeypatch, segment_collector)
    Client().get("/track/")
    first = segment_django.get_client()
    assert first is segment_core.default_client
    assert first.flush(timeout=10)
    before = {e["writeKey"] for e in segment_collector.events()}  # as the collector shows it
    replacement = segment_core.Client("replacement-key", host=segment_collector.url)
    monkeypatch.setattr(segment_core, "default_client", replacement)
    try:
        Client().get("/track/")
        assert segment_django.get_client() is replacement
        assert replacement.flush(timeout=10)
        keys = [e["writeKey"] for e in segment_collector.events()]
        assert len(before) == 1 and len(keys) == 4
        assert keys.count(next(iter(before))) == 2  # the next request's: the new key
    finally:
        first.shutdown(timeout=5)
        replacement.shutdown(timeout=5)


def test_a_default_client_the_app_made_is_followed_and_never_diverted(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SEGMENT = {}
    mine = segment_core.Client("my-own-key", host=segment_collector.url)
    monkeypatch.setattr(segment_core, "default_client", mine)
    try:
        Client().get("/track/")
        assert segment_django.get_client() is mine
        assert not diverted(mine)
        assert mine.flush(timeout=10)
        assert [
            e["message"].get("event") or e["message"]["type"] for e in segment_collector.events()
        ] == ["Clicked Buy", "page"]
        outbox.assert_nothing_sent()
    finally:
        mine.shutdown(timeout=5)


def test_the_module_level_client_django_follows_is_diverted_in_tests(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_settings(monkeypatch, segment_collector)
    settings.SEGMENT = {}
    Client().get("/track/")
    segment_core.track("user-1", "From A Signal")
    assert segment_django.get_client().config.write_key == "module-key"
    assert [m.get("event") or m["type"] for m in outbox] == ["Clicked Buy", "page", "From A Signal"]
    assert delivered(segment_collector) == []


NO_KEY_WARNING = "Segment client has no write key"


def track_from_a_thread(event: str) -> tuple[bool, dict[str, Any]]:
    """``segment_core.track()`` as a signal receiver run by a worker thread calls it."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(segment_core.track, "user-1", event).result(timeout=10)


@pytest.mark.parametrize(
    "without_key",
    [
        {},  # HOST alone
        {"WRITE_KEY": None},  # os.environ.get("SEGMENT_WRITE_KEY") in CI without the secret
        {"SEND": False},
    ],
    ids=["host", "unset-key", "send-off"],
)
def test_module_level_calls_without_a_write_key_go_to_the_outbox_with_django_s(
    settings: Any,
    segment_collector: Any,
    caplog: pytest.LogCaptureFixture,
    without_key: dict[str, Any],
) -> None:
    options = {**without_key, "HOST": segment_collector.url, "FLUSH_AT": 1}
    with caplog.at_level(logging.WARNING, logger="segment"):
        settings.SEGMENT = options
        Client().get("/track/")
        assert segment_core.track("user-1", "Signed Up")[0]
        assert track_from_a_thread("Invited A Friend")[0]
    outbox.assert_tracked("Signed Up")
    outbox.assert_tracked("Invited A Friend")
    assert segment_core.get_client() is segment_django.get_client()
    assert segment_core.default_client is None  # a key set later still counts
    said = [r for r in caplog.records if r.getMessage().startswith(NO_KEY_WARNING)]
    assert len(said) == (0 if without_key.get("SEND") is False else 1)
    assert delivered(segment_collector) == []


def test_module_level_calls_with_send_off_and_no_write_key_are_discarded_quietly(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="segment"):
        settings.SEGMENT = {"SEND": False, "SEND_IN_TESTS": True}  # as in production
        accepted, message = segment_core.track("user-1", "Signed Up")
    assert accepted and message["event"] == "Signed Up"
    outbox.assert_nothing_sent()
    assert caplog.records == []


def test_module_level_calls_follow_new_settings_without_a_write_key(settings: Any) -> None:
    settings.SEGMENT = {"FLUSH_AT": 5}
    replaced = segment_django.get_client()
    settings.SEGMENT = {"FLUSH_AT": 7}  # override_settings in a test, say
    assert segment_core.get_client() is segment_django.get_client() is not replaced
    assert segment_core.track("user-1", "Signed Up")[0]
    outbox.assert_tracked("Signed Up")


def test_a_client_that_cannot_be_built_leaves_the_requests_untracked(
    settings: Any,
    segment_collector: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Module-level settings wrong together, read at the request (the start-up check
    reads settings.SEGMENT): the site answers, untracked, and says why once."""
    module_settings(monkeypatch, segment_collector)
    monkeypatch.setattr(segment_core, "oauth_client_id", "client-1")  # the rest never set
    settings.SEGMENT = {"SEND_IN_TESTS": True}
    with caplog.at_level(logging.ERROR, logger="segment.django"):
        statuses = [Client().get("/track/").status_code for _ in range(2)]
    assert statuses == [200, 200]
    [error] = [r for r in caplog.records if r.name == "segment.django"]
    assert "oauth_client_key, oauth_key_id must be set too" in error.getMessage()
    assert "discarded until it is fixed" in error.getMessage()

    monkeypatch.setattr(segment_core, "oauth_client_id", None)  # fixed: tracked again
    Client().get("/track/")
    assert delivered(segment_collector) == ["Clicked Buy", "page"]


def test_a_spool_variable_no_client_can_use_is_named_as_django_starts(
    settings: Any,
    segment_collector: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The app's ready() asks for the client: the one that stands in reads nothing
    of the environment, which is what is wrong, so it starts and says why once (the
    middleware then refuses it, naming the variable, as every adapter does)."""
    module_settings(monkeypatch, segment_collector)
    monkeypatch.setenv("SEGMENT_SPOOL_DIR", " ")
    settings.SEGMENT = {"SEND_IN_TESTS": True}
    with caplog.at_level(logging.ERROR, logger="segment.django"):
        stand_in = segment_django.get_client()
        assert segment_django.get_client() is stand_in
    assert not stand_in.config.enabled
    [error] = [r for r in caplog.records if r.name == "segment.django"]
    assert "SEGMENT_SPOOL_DIR" in error.getMessage()
    assert "discarded until it is fixed" in error.getMessage()


def test_a_module_level_key_set_after_start_up_keeps_its_first_call_in_the_outbox(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SEGMENT without client options sends through segment_core's client: the one it
    makes once a key is set (an app's ready(), a fixture) is in Django's test mode
    from its first message, not from Django's next request."""
    settings.SEGMENT = {}
    module_settings(monkeypatch, segment_collector)
    assert segment_core.track("u1", "Before Any Request")[0]
    outbox.assert_tracked("Before Any Request")
    assert segment_core.flush(timeout=10)
    assert segment_collector.events() == []


def test_settings_that_stop_sending_in_tests_divert_the_module_client_at_once(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SEND_IN_TESTS for a while (override_settings, pytest-django's settings): the
    module-level calls after it are diverted again at once, whatever comes first."""
    from django.test import override_settings

    settings.SEGMENT = {}
    module_settings(monkeypatch, segment_collector)
    with override_settings(SEGMENT={"SEND_IN_TESTS": True}):
        assert segment_core.track("u1", "In Block")[0]
    assert segment_core.track("u1", "After Block")[0]
    settings.SEGMENT = {"WRITE_KEY": "own-key", "HOST": segment_collector.url}
    Client().get("/track/")  # Django's own client now; module-level calls still diverted
    assert segment_core.track("u1", "Keyed Settings")[0]
    assert segment_core.flush(timeout=10)
    assert [e["message"]["event"] for e in segment_collector.events()] == ["In Block"]
    assert [m.get("event") for m in outbox.tracks()] == [
        "After Block",
        "Clicked Buy",
        "Keyed Settings",
    ]


def test_settings_restored_after_a_bad_spell_divert_the_module_client_made_meanwhile(
    settings: Any, segment_collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test of the error path sets SEGMENT no client can be built from: the
    module-level calls meanwhile made a client of the module-level settings, which
    the settings restored put in Django's test mode at once."""
    settings.SEGMENT = {"WRITE_KEY": "own-key", "HOST": segment_collector.url}
    module_settings(monkeypatch, segment_collector)
    settings.SEGMENT = {"WRITE_KEY": "own-key", "FLUSH_AT": -1}
    assert segment_core.track("u1", "While Bad")[0]  # none of Django's: sent
    settings.SEGMENT = {"WRITE_KEY": "own-key", "HOST": segment_collector.url}
    assert segment_core.track("u1", "After Fix")[0]
    assert segment_core.flush(timeout=10)
    assert [e["message"]["event"] for e in segment_collector.events()] == ["While Bad"]
    outbox.assert_tracked("After Fix")
