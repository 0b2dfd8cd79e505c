"""Validation and normalisation of one call into the Spec's message dict.

Runs on the caller's thread, so every mistake is reported where it was made,
as :class:`InvalidMessage` naming the field.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Mapping
from typing import Any

from segment_core._version import DISTRIBUTION, VERSION
from segment_core.encoding import format_timestamp, now_timestamp
from segment_core.errors import InvalidMessage

__all__ = ["MAX_MESSAGE_ID_LENGTH", "MessageFactory", "stringify_id"]

MAX_MESSAGE_ID_LENGTH = 100
LIBRARY = {"name": DISTRIBUTION, "version": VERSION}


def stringify_id(name: str, value: object) -> str | None:
    """Ids are strings on the wire; integers keep every digit."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, uuid.UUID)) and not isinstance(value, bool):
        return str(value)
    raise InvalidMessage(f"{name} must be a string or an integer, got {type(value).__name__}")


def _mapping(name: str, value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value if type(value) is dict else dict(value)
    raise InvalidMessage(f"{name} must be a dict, got {type(value).__name__}")


def _optional_str(name: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidMessage(f"{name} must be a string, got {type(value).__name__}")


def _timestamp(value: object) -> str:
    if value is None:
        return now_timestamp()
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            return format_timestamp(dt.datetime.fromisoformat(text))
        except ValueError:
            raise InvalidMessage(
                f"timestamp must be an ISO-8601 date and time, got {value!r}"
            ) from None
    raise InvalidMessage(
        f"timestamp must be a datetime or an ISO-8601 string, got {type(value).__name__}"
    )


# A version-4 UUID from the module's generator (reseeded in forked children):
# a tenth of the cost of uuid.uuid4(), which asks the kernel for every id.
_UUID_MASK = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID_BITS = (0x4 << 76) | (0x2 << 62)


def new_message_id() -> str:
    """A random version-4 UUID string."""
    h = "%032x" % ((random.getrandbits(128) & _UUID_MASK) | _UUID_BITS)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _message_id(value: object) -> str:
    if value is None:
        return new_message_id()
    text = stringify_id("message_id", value)
    if not text:
        raise InvalidMessage("message_id must not be empty")
    if len(text) > MAX_MESSAGE_ID_LENGTH:
        raise InvalidMessage(
            f"message_id must be at most {MAX_MESSAGE_ID_LENGTH} characters, got {len(text)}"
        )
    return text


class MessageFactory:
    """Turns the arguments of one call into a message dict, with the client's defaults."""

    def __init__(
        self,
        default_context: Mapping[str, Any] | None = None,
        default_integrations: Mapping[str, Any] | None = None,
    ) -> None:
        self._default_context = dict(default_context or {})
        self._default_integrations = dict(default_integrations or {})

    def build(
        self,
        kind: str,
        *,
        user_id: object = None,
        anonymous_id: object = None,
        context: object = None,
        integrations: object = None,
        timestamp: object = None,
        message_id: object = None,
        **fields: Any,
    ) -> dict[str, Any]:
        user = stringify_id("user_id", user_id)
        anonymous = stringify_id("anonymous_id", anonymous_id)
        if kind == "alias":
            if anonymous is not None:
                raise InvalidMessage("anonymous_id: an alias takes previous_id and user_id")
            if not user:
                raise InvalidMessage("user_id is required for alias")
        elif not user and not anonymous:
            raise InvalidMessage(f"user_id or anonymous_id is required for {kind}")

        message: dict[str, Any] = {
            "type": kind,
            "messageId": _message_id(message_id),
            "timestamp": _timestamp(timestamp),
        }
        if user:
            message["userId"] = user
        if anonymous:
            message["anonymousId"] = anonymous
        self._add_fields(kind, message, fields)
        message["context"] = self._context(_mapping("context", context))
        merged_integrations = self._integrations(_mapping("integrations", integrations))
        if merged_integrations:
            message["integrations"] = merged_integrations
        return message

    def _add_fields(self, kind: str, message: dict[str, Any], fields: dict[str, Any]) -> None:
        if kind == "track":
            event = fields.get("event")
            if not isinstance(event, str) or not event:
                raise InvalidMessage(f"event must be a non-empty string for track, got {event!r}")
            message["event"] = event
            self._put(message, "properties", _mapping("properties", fields.get("properties")))
        elif kind in ("page", "screen"):
            self._put(message, "name", _optional_str("name", fields.get("name")))
            self._put(message, "category", _optional_str("category", fields.get("category")))
            self._put(message, "properties", _mapping("properties", fields.get("properties")))
        elif kind == "identify":
            self._put(message, "traits", _mapping("traits", fields.get("traits")))
        elif kind == "group":
            group_id = stringify_id("group_id", fields.get("group_id"))
            if not group_id:
                raise InvalidMessage("group_id is required for group")
            message["groupId"] = group_id
            self._put(message, "traits", _mapping("traits", fields.get("traits")))
        elif kind == "alias":
            previous_id = stringify_id("previous_id", fields.get("previous_id"))
            if not previous_id:
                raise InvalidMessage("previous_id is required for alias")
            message["previousId"] = previous_id
        else:
            raise InvalidMessage(f"type must be one of the Spec's calls, got {kind!r}")

    @staticmethod
    def _put(message: dict[str, Any], key: str, value: object) -> None:
        if value is not None:
            message[key] = value

    def _context(self, context: dict[str, Any] | None) -> dict[str, Any]:
        merged = dict(self._default_context)
        if context:
            for key, value in context.items():
                default = merged.get(key)
                if isinstance(default, dict) and isinstance(value, Mapping):
                    merged[key] = {**default, **value}
                else:
                    merged[key] = value
        merged.setdefault("library", LIBRARY)
        return merged

    def _integrations(self, integrations: dict[str, Any] | None) -> dict[str, Any] | None:
        if not self._default_integrations:
            return integrations
        return {**self._default_integrations, **(integrations or {})}
