"""The message a call returns: analytics-python's shape, every key present.

The wire stays lean (an absent key and an empty one mean the same to Segment), but
code written for analytics-python reads ``msg["properties"]`` or ``msg["userId"]``
from the returned message: those keys are filled in after encoding, with the values
analytics-python gives them (``{}`` for objects, ``None`` for ids and names).
"""

from __future__ import annotations

from typing import Any

__all__ = ["complete"]

# Per type: keys that default to a new empty dict, then keys that default to None.
_DEFAULTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "track": (("integrations", "properties"), ("userId", "anonymousId")),
    "identify": (("integrations", "traits"), ("userId", "anonymousId")),
    "page": (("integrations", "properties"), ("userId", "anonymousId", "name", "category")),
    "screen": (("integrations", "properties"), ("userId", "anonymousId", "name", "category")),
    "group": (("integrations", "traits"), ("userId", "anonymousId")),
    "alias": (("integrations",), ("anonymousId",)),
}
_NOTHING: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


def complete(message: dict[str, Any]) -> dict[str, Any]:
    """Add, in place, the keys analytics-python's message has and ``message`` lacks."""
    objects, nullable = _DEFAULTS.get(message.get("type"), _NOTHING)  # type: ignore[arg-type]
    for key in objects:
        if key not in message:
            message[key] = {}
    for key in nullable:
        if key not in message:
            message[key] = None
    return message
