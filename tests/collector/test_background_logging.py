"""A collector in a background thread leaves the process's uvicorn loggers as they were:
their levels, handlers and propagation; only its own records below WARNING stay out."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from segment_core.collector import run_in_background
from tests.collector.helpers import batch, message, post


def poll_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not true in time"
        time.sleep(0.02)


LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class Kept(logging.Handler):
    """Keeps the messages it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def app_logging() -> Iterator[Kept]:
    """uvicorn's loggers set up as an app of the process would: INFO, a handler each,
    uvicorn.access not propagating (as uvicorn's own configuration has it)."""
    loggers = [logging.getLogger(name) for name in LOGGERS]
    before = [(log.level, list(log.handlers), log.propagate, list(log.filters)) for log in loggers]
    handler = Kept()
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger(name).addHandler(handler)
    logging.getLogger("uvicorn.access").propagate = False
    yield handler
    for log, (level, handlers, propagate, filters) in zip(loggers, before, strict=True):
        log.setLevel(level)
        log.handlers[:] = handlers
        log.propagate = propagate
        log.filters[:] = filters


def _state() -> list[tuple[int, list[logging.Handler], bool, list[object]]]:
    loggers = [logging.getLogger(name) for name in LOGGERS]
    return [(log.level, list(log.handlers), log.propagate, list(log.filters)) for log in loggers]


def test_the_process_uvicorn_loggers_are_left_as_they_were(app_logging: Kept) -> None:
    before = _state()
    with run_in_background() as collector:
        assert requests.get(f"{collector.url}/collector/summary", timeout=10).ok
        # The app's own records still go through, at the app's levels.
        logging.getLogger("uvicorn.error").info("the app's startup news")
        logging.getLogger("uvicorn.access").info("the app's access line")
    assert _state() == before
    logging.getLogger("uvicorn.error").info("the app's news after")
    logging.getLogger("uvicorn.access").info("the app's access line after")
    # Nothing of the collector's below WARNING (its startup, shutdown and access lines).
    assert app_logging.messages == [
        "the app's startup news",
        "the app's access line",
        "the app's news after",
        "the app's access line after",
    ]


@pytest.mark.parametrize("fault", [None, {"delay": 30}], ids=["plain", "fault-planned"])
def test_a_stop_ends_an_upload_still_arriving_with_an_answer_and_no_error(
    caplog: pytest.LogCaptureFixture, fault: dict[str, int] | None
) -> None:
    collector = run_in_background()
    if fault is not None:
        collector.faults(fault)  # it reads the body first, as a real server does
    host, port = collector.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as upload:
        upload.sendall(
            b'POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{"batch":['
        )
        assert requests.get(collector.url + "/collector/summary", timeout=10).ok  # it reads
        with caplog.at_level(logging.INFO):
            collector.stop()
            answer = upload.recv(65536)
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert b'"code":"stopping"' in answer
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_stop_lets_a_request_held_by_a_delay_go_on_and_be_stored(tmp_path: Path) -> None:
    db = str(tmp_path / "events.sqlite3")
    collector = run_in_background(db=db)
    collector.faults({"delay": 30})
    held = message(userId="u")
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(post, collector.url, batch(held))
        poll_until(lambda: collector.summary()["pending_faults"] == 0)  # taken: held now
        collector.stop()  # the delay ends at once, and the request goes on
        assert answer.result(timeout=30).status_code == 200
    with run_in_background(db=db) as reopened:
        assert reopened.event(held["messageId"])["message"] == held
