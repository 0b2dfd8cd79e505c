"""What a SpawnWorker gives its work-horses of the worker's client: its options, in
an environment variable, as long as one can hold them."""

from __future__ import annotations

import base64
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

import segment_core
from segment_core import Client
from segment_rq import _rq


class Scrubber:
    """A ``before_send`` hook (a bound method) whose object holds a large table."""

    def __init__(self, entries: int) -> None:
        self.table = {f"field-{n}": f"replacement-{n}" for n in range(entries)}

    def scrub(self, message: dict[str, Any]) -> dict[str, Any]:
        return message


@pytest.fixture
def worker_client() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.shutdown(timeout=0)


def carried_with(monkeypatch: pytest.MonkeyPatch, made: list[Client], **options: Any) -> str | None:
    client = Client("key", host="http://127.0.0.1:9", **options)
    made.append(client)
    monkeypatch.setattr(segment_core, "default_client", client)
    return _rq._client_options_for_horses()


def test_the_options_of_the_worker_s_client_are_carried(
    monkeypatch: pytest.MonkeyPatch, worker_client: list[Client]
) -> None:
    carried = carried_with(monkeypatch, worker_client, before_send=Scrubber(10).scrub)
    assert carried is not None
    options = pickle.loads(base64.b64decode(carried))
    assert options["write_key"] == "key" and options["host"] == "http://127.0.0.1:9"
    assert options["before_send"].__self__.table["field-9"] == "replacement-9"


def test_options_too_large_for_an_environment_variable_are_not_carried(
    monkeypatch: pytest.MonkeyPatch, worker_client: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_rq, "_too_large_warned", [])
    carried = carried_with(monkeypatch, worker_client, before_send=Scrubber(50_000).scrub)
    assert carried is None  # posix_spawn would refuse the environment: the job would not run
    [warning] = [r for r in caplog.records if r.name == "segment.rq"]
    assert "over the 100000 an environment variable holds" in warning.getMessage()
