"""A before_send hook that fails on every message logs one traceback, not one per message."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from segment_core import Client
from segment_core.collector import CollectorHandle


def _raising(message: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("bug in the hook")


def _returning_a_list(message: dict[str, Any]) -> Any:
    return [message]


def _hook_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "segment.core" and r.levelno == level and "before_send" in r.getMessage()
    ]


@pytest.mark.parametrize(
    ("hook", "traceback"), [(_raising, True), (_returning_a_list, False)], ids=["raises", "list"]
)
def test_the_first_failure_is_an_error_the_rest_debug(
    collector_clients: Callable[..., Client],
    segment_collector: CollectorHandle,
    caplog: pytest.LogCaptureFixture,
    hook: Callable[[dict[str, Any]], Any],
    traceback: bool,
) -> None:
    caplog.set_level(logging.DEBUG, logger="segment.core")
    client = collector_clients(before_send=hook)
    for number in range(5):
        assert client.track("u1", f"Event {number}")[0]
    assert client.flush(10)
    segment_collector.wait_for(5, type="track")  # each sent unchanged
    [error] = _hook_records(caplog, logging.ERROR)
    assert error.getMessage().endswith("; sending the message unchanged")
    assert bool(error.exc_info) is traceback
    later = _hook_records(caplog, logging.DEBUG)
    assert [r.getMessage() for r in later] == [error.getMessage()] * 4


def test_each_client_logs_its_hooks_first_failure_as_an_error(
    collector_clients: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="segment.core")
    first, second = collector_clients(before_send=_raising), collector_clients(before_send=_raising)
    for client in (first, second, first, second):
        assert client.track("u1", "Signed Up")[0]
    assert len(_hook_records(caplog, logging.ERROR)) == 2
    assert len(_hook_records(caplog, logging.DEBUG)) == 2
