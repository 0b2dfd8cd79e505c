"""The module-level default client: built from the module settings once they hold a key."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import segment_core
from segment_core import Client
from segment_core.adapters import offer_as_default, withdraw_as_default
from tests.receiver import Receiver

NO_KEY_WARNING = "Segment client has no write key"


@pytest.fixture
def no_module_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("write_key", "host", "default_client", "_keyless_client", "_misconfigured"):
        monkeypatch.setattr(segment_core, name, None)
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    monkeypatch.delenv("SEGMENT_HOST", raising=False)
    yield
    if segment_core.default_client is not None:
        segment_core.default_client.shutdown(timeout=5)


def test_calls_before_the_write_key_is_set_leave_the_default_client_to_come(
    no_module_settings: None, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="segment"):
        assert segment_core.flush()  # a health check touching the API first
        accepted, _ = segment_core.track("user", "Too Early")
        assert not accepted
        assert segment_core.default_client is None
        segment_core.write_key = "k"
        segment_core.host = receiver.url
        accepted, _ = segment_core.track("user", "Order Completed")
        assert accepted
        assert segment_core.flush(5)
    assert [m["event"] for m in receiver.messages()] == ["Order Completed"]
    assert segment_core.default_client is not None
    assert segment_core.get_client() is segment_core.default_client
    warnings = [r for r in caplog.records if r.getMessage().startswith(NO_KEY_WARNING)]
    assert len(warnings) == 1


def test_asking_for_the_client_before_the_key_is_set_says_nothing(
    no_module_settings: None, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # An adapter's set-up asks for it (Django's SEGMENT = {}); the key comes later.
    with caplog.at_level(logging.WARNING, logger="segment"):
        assert segment_core.get_client().config.write_key is None
        segment_core.write_key = "k"
        segment_core.host = receiver.url
        assert segment_core.track("user", "Order Completed")[0]
        assert segment_core.flush(5)
    assert [m["event"] for m in receiver.messages()] == ["Order Completed"]
    assert not [r for r in caplog.records if r.getMessage().startswith(NO_KEY_WARNING)]


def test_an_adapter_s_client_without_a_key_serves_the_module_level_calls_until_one_is_set(
    no_module_settings: None, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="segment"):
        assert not segment_core.track("user", "Before The App")[0]  # the module's own, warned
        first = Client(send=False)  # an app's, with sending off on purpose
        offer_as_default(first)
        offer_as_default(Client(send=False, flush_at=3))  # a second app's leaves it in place
        assert segment_core.get_client() is first
        accepted, _ = segment_core.track("user", "Discarded Quietly")
    assert accepted
    assert len([r for r in caplog.records if r.getMessage().startswith(NO_KEY_WARNING)]) == 1
    assert segment_core.default_client is None
    segment_core.write_key = "k"
    segment_core.host = receiver.url
    assert segment_core.track("user", "Order Completed")[0]
    assert segment_core.flush(5)
    assert [m["event"] for m in receiver.messages()] == ["Order Completed"]


def test_a_withdrawn_client_no_longer_serves_the_module_level_calls(
    no_module_settings: None,
) -> None:
    replaced = Client(send=False)
    offer_as_default(replaced)
    assert withdraw_as_default(replaced)
    assert segment_core.get_client() is not replaced
    assert not withdraw_as_default(replaced)


def test_a_key_from_the_environment_set_later_is_read_too(
    no_module_settings: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment_core.host = receiver.url
    assert not segment_core.track("user", "Too Early")[0]
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "k")
    assert segment_core.track("user", "Order Completed")[0]
    assert segment_core.flush(5)
    assert [m["event"] for m in receiver.messages()] == ["Order Completed"]


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("SEGMENT_WRITE_KEY", "k\n", "write_key has spaces or line breaks around it"),
        ("SEGMENT_HOST", "api.segment.io", "host must be an http:// or https:// URL"),
        ("SEGMENT_SPOOL_DIR", " ", "spool_dir must be a directory path"),
    ],
)
def test_an_unusable_environment_variable_is_logged_once_and_calls_go_on(
    no_module_settings: None,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    value: str,
    problem: str,
) -> None:
    # A key mounted from a secret file keeps its line break: each view's module-level
    # call would raise it.
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "k")
    monkeypatch.setenv(variable, value)
    with caplog.at_level(logging.WARNING, logger="segment"):
        for number in range(3):
            accepted, message = segment_core.track("user", f"Discarded {number}")
            assert not accepted and message["event"] == f"Discarded {number}"
        assert segment_core.flush(5)
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"Segment: {problem}") and variable in line
    assert segment_core.default_client is None
    # Fixed: the next call makes the default client, which sends.
    monkeypatch.delenv(variable)
    segment_core.write_key = "k"
    segment_core.host = receiver.url
    assert segment_core.track("user", "Sent")[0]
    assert segment_core.flush(5)
    assert [m["event"] for m in receiver.messages()] == ["Sent"]


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("write_key", "k\n", "write_key has spaces or line breaks around it"),
        ("send", "true", "send must be True or False (or 0 or 1), got 'true'"),
        ("host", "https://api.segment.io/?region=eu", "host must not have a query string"),
        ("timeout", 0, "timeout must be > 0, got 0"),
        ("max_queue_size", 0, "max_queue_size must be at least 1, got 0"),
        ("on_error", "log", "on_error: 'log' is not a dotted path to a callable"),
        ("on_error", 42, "on_error must be callable (or a dotted path to one), got int"),
        ("oauth_client_key", 42, "oauth_client_key must be a PEM private key"),
        ("oauth_auth_server", "https://oauth.example#eu", "oauth_auth_server must not have a #"),
    ],
)
def test_a_bad_module_level_setting_is_refused_where_it_is_set(
    no_module_settings: None, name: str, value: object, problem: str
) -> None:
    before = getattr(segment_core, name)
    with pytest.raises(ValueError) as raised:
        setattr(segment_core, name, value)
    assert str(raised.value).startswith(problem)
    assert getattr(segment_core, name) == before


def test_module_level_settings_as_analytics_python_takes_them(no_module_settings: None) -> None:
    for name, value in [
        ("send", 0),  # int(os.environ["SEND"])
        ("debug", None),
        ("timeout", (3, 7)),  # requests' (connect, read)
        ("oauth_client_id", "set one at a time"),
        ("oauth_client_id", ""),  # os.environ.get("OAUTH_CLIENT_ID", "")
        ("max_queue_size", None),
    ]:
        saved = getattr(segment_core, name)
        setattr(segment_core, name, value)
        setattr(segment_core, name, saved)


def test_oauth_settings_wrong_together_are_logged_once_and_calls_go_on(
    no_module_settings: None,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Each is fine alone; one of the three missing (os.environ.get(...) gave None)
    # makes the client unbuildable: each view's module-level call would raise it.
    for name in ("oauth_client_id", "oauth_client_key", "oauth_key_id", "oauth_auth_server"):
        monkeypatch.setattr(segment_core, name, None)
    segment_core.write_key = "k"
    segment_core.host = receiver.url
    segment_core.oauth_client_id = "client-id"
    with caplog.at_level(logging.WARNING, logger="segment"):
        for number in range(3):
            accepted, message = segment_core.track("user", f"Discarded {number}")
            assert not accepted and message["event"] == f"Discarded {number}"
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("Segment: oauth_") and "discard" in line
    # Fixed: the next call makes the default client, which sends.
    segment_core.oauth_client_id = None
    assert segment_core.track("user", "Sent")[0]
    assert segment_core.flush(5)
    assert [m["event"] for m in receiver.messages()] == ["Sent"]


@pytest.mark.parametrize("empty_key", ["", None])
def test_an_adapter_setting_left_empty_keeps_the_module_level_one(
    no_module_settings: None, receiver: Receiver, empty_key: str | None
) -> None:
    # HOST = os.environ.get("SEGMENT_HOST", "") in an app's settings, the host set
    # on the module: the adapter's client sends there; so for the write key, also
    # as os.environ.get("SEGMENT_KEY") gives it, None.
    from segment_core.adapters import build_client

    segment_core.write_key = "k"
    segment_core.host = receiver.url
    client = build_client({"host": "", "write_key": empty_key})
    assert client.config.write_key == "k"
    try:
        assert client.track("user", "Order Completed")[0]
        assert client.flush(5)
    finally:
        client.shutdown(5)
    assert [m["event"] for m in receiver.messages()] == ["Order Completed"]
