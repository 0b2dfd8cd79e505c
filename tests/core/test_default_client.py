"""The module-level default client: built from the module settings once they hold a key."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import segment_core
from tests.receiver import Receiver

NO_KEY_WARNING = "Segment client has no write key"


@pytest.fixture
def no_module_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("write_key", "host", "default_client", "_keyless_client"):
        monkeypatch.setattr(segment_core, name, None)
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
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


def test_a_key_from_the_environment_set_later_is_read_too(
    no_module_settings: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment_core.host = receiver.url
    assert not segment_core.track("user", "Too Early")[0]
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "k")
    assert segment_core.track("user", "Order Completed")[0]
    assert segment_core.flush(5)
    assert [m["event"] for m in receiver.messages()] == ["Order Completed"]
