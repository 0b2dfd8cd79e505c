"""A before_send hook that fails on every message logs one traceback, not one per message."""

from __future__ import annotations

import decimal
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


class _Ambiguous:
    """A value whose truth cannot be told (as a pandas Series' or a numpy array's)."""

    def __bool__(self) -> bool:
        raise ValueError("the truth value is ambiguous")


class _UnreadableDict(dict[str, Any]):
    def items(self) -> Any:
        raise RuntimeError("backend gone")


class _UnwalkableDict(dict[str, Any]):
    def __iter__(self) -> Any:
        raise RuntimeError("backend gone")

    def keys(self) -> Any:
        raise RuntimeError("backend gone")


class _UnreadableNumber(decimal.Decimal):
    def __str__(self) -> str:
        raise RuntimeError("backend gone")

    __float__ = __repr__ = __str__  # type: ignore[assignment]


def _changed(change: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda message: {**message, **change}


def _unwalkable(message: dict[str, Any]) -> dict[str, Any]:
    return _UnwalkableDict(message)


@pytest.mark.parametrize(
    ("hook", "logged"),
    [
        (_changed({"integrations": _Ambiguous()}), "integrations must be an object, got "),
        (
            _changed({"context": _UnreadableDict(ip="1.2.3.4")}),
            "whose context cannot be read (RuntimeError: backend gone)",
        ),
        (
            _changed({"properties": {"plan": _UnreadableNumber("1.5")}}),
            "whose properties cannot be read (RuntimeError: backend gone)",
        ),
        (_unwalkable, "cannot be read (RuntimeError: backend gone)"),
    ],
    ids=["ambiguous-truth", "items-raise", "number-unreadable", "not-walkable"],
)
def test_a_result_whose_values_raise_as_they_are_read_is_the_hooks_failure(
    collector_clients: Callable[..., Client],
    segment_collector: CollectorHandle,
    caplog: pytest.LogCaptureFixture,
    hook: Callable[[dict[str, Any]], dict[str, Any]],
    logged: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="segment.core")
    client = collector_clients(before_send=hook)
    assert client.track("u1", "Signed Up", {"plan": "pro"})[0]
    assert client.flush(10)
    [sent] = segment_collector.wait_for(1, type="track")
    assert sent["message"]["properties"] == {"plan": "pro"}  # the caller's message, unchanged
    [error] = _hook_records(caplog, logging.ERROR)
    assert logged in error.getMessage()


def test_a_before_send_that_recurses_into_the_client_is_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An audit event per message, tracked from the hook: it recurses until the stack
    # runs out, where even logging fails; the failure is still said at ERROR.
    def before_send(message: dict[str, Any]) -> dict[str, Any]:
        client.track("audit", "Audited", {"of": message.get("event")})
        return message

    client = Client("key", send=False, before_send=before_send)
    with caplog.at_level(logging.DEBUG, logger="segment.core"):
        assert client.track("u1", "Signed Up")[0] is True
    # (Once, or again where a handler had the record before the stack ran out.)
    errors = _hook_records(caplog, logging.ERROR)
    assert errors
    assert all(e.exc_info is not None and e.exc_info[0] is RecursionError for e in errors)


def test_a_log_handler_that_tracks_errors_through_the_client_does_not_recurse() -> None:
    # An app that reports its ERROR log records as events, through the same client
    # whose before_send fails on every message: one record, and the call goes on.
    client = Client("key", send=False, before_send=_raising)
    records: list[logging.LogRecord] = []

    class Reporting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)
            client.track("ops", "Error Logged", {"logger": record.name})

    handler = Reporting(level=logging.ERROR)
    logging.getLogger("segment").addHandler(handler)
    try:
        assert client.track("u1", "Signed Up")[0] is True
    finally:
        logging.getLogger("segment").removeHandler(handler)
    assert [record.levelno for record in records] == [logging.ERROR]
