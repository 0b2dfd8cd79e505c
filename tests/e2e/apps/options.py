"""Client options for the test apps, read from the environment the tests set.

The write key and the collector's URL come from ``SEGMENT_WRITE_KEY`` and
``SEGMENT_HOST``, which the client reads itself. The tests tune the rest
through ``SEGMENT_<OPTION>`` variables so that, say, retries stay fast.
"""

from __future__ import annotations

import os
from typing import Any

_CONVERTERS: dict[str, Any] = {
    "flush_at": int,
    "flush_interval": float,
    "max_retries": int,
    "max_total_backoff_duration": float,
    "max_queue_size": int,
    "retry_backoff_min": float,
    "retry_backoff_max": float,
    "shutdown_timeout": float,
    "sync_mode": lambda value: value == "1",
}


def client_options() -> dict[str, Any]:
    """The options given as ``SEGMENT_FLUSH_AT=...`` and so on, converted."""
    options = {}
    for name, convert in _CONVERTERS.items():
        value = os.environ.get("SEGMENT_" + name.upper())
        if value is not None:
            options[name] = convert(value)
    return options


def item_properties(n: int) -> dict[str, Any]:
    """What every app tracks for ``GET /item/<n>``: which item, and which process served it."""
    return {"n": n, "pid": os.getpid()}
