from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from segment_core import Client
from segment_core.collector import CollectorHandle
from tests.receiver import Receiver, start_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = start_receiver()
    yield server
    server.stop()


@pytest.fixture
def make_client(receiver: Receiver) -> Iterator[Any]:
    """Build clients that send to the test receiver, with fast retries; shut down after."""
    clients: list[Client] = []

    def make(**options: Any) -> Client:
        options.setdefault("host", receiver.url)
        options.setdefault("retry_backoff_min", 0.01)
        options.setdefault("retry_backoff_max", 0.05)
        client = Client(options.pop("write_key", "test-key"), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.shutdown(timeout=5)


@pytest.fixture
def collector_clients(segment_collector: CollectorHandle) -> Iterator[Callable[..., Client]]:
    """Build clients of the test collector; shut down after the test."""
    made: list[Client] = []

    def make(**options: Any) -> Client:
        client = Client("key", host=segment_collector.url, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(5)


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    """Clients the test builds (append them), shut down after it."""
    built: list[Client] = []
    yield built
    for client in built:
        client.shutdown(5)


def client_with_errors(
    clients: list[Client], host: str, **options: Any
) -> tuple[Client, list[Exception]]:
    """A client for ``host`` (kept in ``clients``), and the errors its ``on_error`` gets."""
    errors: list[Exception] = []
    client = Client("write-key", host=host, on_error=lambda e, m: errors.append(e), **options)
    clients.append(client)
    return client, errors


def _local_time_zone(monkeypatch: pytest.MonkeyPatch, zone: str) -> Iterator[None]:
    """This process's local time is ``zone``'s during the test (``TZ``), then as before."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def clock_east_of_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tokyo's local time (UTC+9)."""
    yield from _local_time_zone(monkeypatch, "Asia/Tokyo")


@pytest.fixture
def clock_west_of_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """New York's local time (UTC-5 or -4)."""
    yield from _local_time_zone(monkeypatch, "America/New_York")
