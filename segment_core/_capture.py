"""Where :func:`segment_core.testing.capture` puts messages instead of the network."""

from __future__ import annotations

from typing import Any

sinks: list[list[dict[str, Any]]] = []


def deliver(message: dict[str, Any]) -> None:
    for sink in sinks:
        sink.append(message)
