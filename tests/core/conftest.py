from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from segment_core import Client
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
