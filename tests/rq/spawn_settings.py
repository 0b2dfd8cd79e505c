"""An ``rq worker -c`` settings module that sets the worker's client, as the README
shows: the environment names no write key, and the jobs module builds no client."""

from __future__ import annotations

import os
from typing import Any

import segment_core
from segment_core import Client
from tests.e2e.servers import WRITE_KEY


def mark_as_carried(message: dict[str, Any]) -> dict[str, Any]:
    """A hook of the worker's client (a function of a module: it can be pickled)."""
    message.setdefault("properties", {})["client"] = "the worker's"
    return message


segment_core.default_client = Client(
    WRITE_KEY,
    host=os.environ["RQ_TEST_COLLECTOR"],
    flush_interval=0.2,
    before_send=mark_as_carried,
    # Cannot be pickled: a spawned work-horse's client goes without it.
    on_error=lambda error, batch: None,
)
