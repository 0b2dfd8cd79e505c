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


def test_an_option_too_large_for_an_environment_variable_is_left_out_alone(
    monkeypatch: pytest.MonkeyPatch, worker_client: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    """posix_spawn refuses an environment variable over 128 KiB (the job would not
    run): the largest option goes, the key, the host and the rest stay."""
    monkeypatch.setattr(_rq, "_left_out_warned", set())
    carried = carried_with(
        monkeypatch, worker_client, before_send=Scrubber(50_000).scrub, flush_at=7
    )
    assert carried is not None and len(carried) <= _rq.MAX_CARRIED_CHARACTERS
    options = pickle.loads(base64.b64decode(carried))
    assert options == {"write_key": "key", "host": "http://127.0.0.1:9", "flush_at": 7}
    [warning] = [r for r in caplog.records if r.name == "segment.rq"]
    assert "without the worker's before_send, which pickles to" in warning.getMessage()
