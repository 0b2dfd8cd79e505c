"""The message a call returns: analytics-python's shape, every key present.

The wire stays lean (an absent key and an empty one mean the same to Segment), but
code written for analytics-python reads ``msg["properties"]`` or ``msg["userId"]``
from the returned message: those keys are filled in after encoding, with the values
analytics-python gives them (``{}`` for objects, ``None`` for ids and names). A
group or previous id that is not a string (``group(1, 2)``) is sent as its text, as
the Spec's ids are, and returned as the caller passed it, as analytics-python
returns it (see :class:`PassedId`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["PassedId", "complete"]


class PassedId(str):
    """An id as it is sent (its text) that the returned message gives back as the
    caller passed it: ``passed``."""

    passed: object

    def __new__(cls, text: str, passed: object) -> PassedId:
        made = super().__new__(cls, text)
        made.passed = passed
        return made


def _passed(message: dict[str, Any], key: str) -> None:
    """The caller's own value of the id at ``key``, once the message is sent."""
    value = message.get(key)
    if type(value) is PassedId:
        message[key] = value.passed


# One small function per type: this runs on every call, and straight-line code is
# measurably cheaper than a loop over a table of keys.
# Objects default to a new empty dict each time (the caller may fill it in).


def _track(message: dict[str, Any]) -> None:
    if "properties" not in message:
        message["properties"] = {}
    _common(message)


def _identify_or_group(message: dict[str, Any]) -> None:
    if "traits" not in message:
        message["traits"] = {}
    _common(message)


def _group(message: dict[str, Any]) -> None:
    _passed(message, "groupId")
    _identify_or_group(message)


def _page_or_screen(message: dict[str, Any]) -> None:
    if "properties" not in message:
        message["properties"] = {}
    if "name" not in message:
        message["name"] = None
    if "category" not in message:
        message["category"] = None
    _common(message)


def _common(message: dict[str, Any]) -> None:
    if "integrations" not in message:
        message["integrations"] = {}
    if "context" not in message:  # (a before_send hook left it out)
        message["context"] = {}
    if "userId" not in message:
        message["userId"] = None
    if "anonymousId" not in message:
        message["anonymousId"] = None


def _alias(message: dict[str, Any]) -> None:
    _passed(message, "previousId")
    if "integrations" not in message:
        message["integrations"] = {}
    if "context" not in message:
        message["context"] = {}
    if "anonymousId" not in message:
        message["anonymousId"] = None


_BY_TYPE: dict[object, Callable[[dict[str, Any]], None]] = {
    "track": _track,
    "identify": _identify_or_group,
    "group": _group,
    "page": _page_or_screen,
    "screen": _page_or_screen,
    "alias": _alias,
}


def complete(message: dict[str, Any]) -> dict[str, Any]:
    """Add, in place, the keys analytics-python's message has and ``message`` lacks."""
    fill = _BY_TYPE.get(message.get("type"))
    if fill is not None:  # a before_send hook may have changed the type
        fill(message)
    return message
