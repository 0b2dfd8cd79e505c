"""Where :func:`segment_core.testing.capture` puts messages instead of the network,
and the message as sent that captures, the test outbox and ``before_send`` get."""

from __future__ import annotations

import contextlib
from typing import Any

from segment_core.encoding import decode

sinks: list[list[dict[str, Any]]] = []


def as_sent(data: bytes) -> dict[str, Any]:
    """An encoded message as a receiver reads it: a new dict of JSON values."""
    message: dict[str, Any] = decode(data)
    return message


def deliver(data: bytes, held: bool = False) -> None:
    """Give each capture the encoded message as sent: its own copy; ``held``: the
    capture keeps it from the network (counted in a capture's ``held_back``)."""
    for sink in sinks:
        sink.append(as_sent(data))
        if held:  # a plain list has no count: counted as a whole (see held_back_by)
            with contextlib.suppress(AttributeError):
                sink.held_back = getattr(sink, "held_back", 0) + 1  # type: ignore[attr-defined]


def held_back_by(sink: list[dict[str, Any]]) -> int:
    """How many of the messages ``sink`` captured it kept from the network."""
    held = getattr(sink, "held_back", None)
    return len(sink) if held is None and not hasattr(sink, "__dict__") else int(held or 0)
