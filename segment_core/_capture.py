"""Where :func:`segment_core.testing.capture` puts messages instead of the network,
and the message as sent that captures, the test outbox and ``before_send`` get."""

from __future__ import annotations

import json
import re
from typing import Any

from segment_core.encoding import decode

sinks: list[list[dict[str, Any]]] = []

# A run of digits long enough for an integer past 64 bits (2**63 has 19 digits).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def as_sent(data: bytes) -> dict[str, Any]:
    """An encoded message as a receiver reads it: a new dict of JSON values."""
    if _LONG_DIGITS.search(data) is None:
        message: dict[str, Any] = decode(data)
        return message
    # orjson reads an integer past 64 bits as a float; the standard library keeps
    # every digit, as the client writes them.
    message = json.loads(data)
    return message


def deliver(data: bytes) -> None:
    """Give each capture the encoded message as sent: its own copy."""
    for sink in sinks:
        sink.append(as_sent(data))
