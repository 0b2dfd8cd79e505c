"""Where :func:`segment_core.testing.capture` puts messages instead of the network,
and the message as sent that captures, the test outbox and ``before_send`` get."""

from __future__ import annotations

from typing import Any

from segment_core.encoding import decode

sinks: list[list[dict[str, Any]]] = []


def as_sent(data: bytes) -> dict[str, Any]:
    """An encoded message as a receiver reads it: a new dict of JSON values."""
    message: dict[str, Any] = decode(data)
    return message


def deliver(data: bytes) -> None:
    """Give each capture the encoded message as sent: its own copy."""
    for sink in sinks:
        sink.append(as_sent(data))
