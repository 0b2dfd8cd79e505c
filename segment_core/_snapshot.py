"""The visitor as a small JSON value: what a task or a thread needs to act for them.

A snapshot keeps the ids and the request context worth keeping (``ip``,
``userAgent``, ``locale``, ``page``, ``campaign`` and ``consent``); never cookies,
headers or anything else a request holds. It travels through queues (Celery
headers, RQ job meta) that anybody with broker access can write to, so reading one
checks every field and its size, and reports the first problem by name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from segment_core.jsonvalues import replace_lone_surrogates, short_repr
from segment_core.spec import content_problems, is_ip_address

__all__ = ["SNAPSHOT_VERSION", "InvalidSnapshot", "make_snapshot", "read_snapshot"]

SNAPSHOT_VERSION = 1
MAX_TEXT_LENGTH = 8192
MAX_KEYS = 32
#: As JSON text: half of what Segment takes for a message, so that every message
#: a task sends with it keeps room for its own properties.
MAX_SNAPSHOT_BYTES = 16 * 1024
#: A snapshot's JSON text, in characters, read before its size is measured: six per
#: byte, as escaping can write one (``\u0041``, ``json.dumps``'s default for text
#: outside ASCII), so that parsing stays bounded.
MAX_SNAPSHOT_TEXT_LENGTH = 6 * MAX_SNAPSHOT_BYTES

TEXT_FIELDS = ("ip", "userAgent", "locale")
PAGE_FIELDS = ("path", "referrer", "search", "title", "url")


class InvalidSnapshot(ValueError):
    """A snapshot that cannot be read; the message names the field."""


def make_snapshot(
    user_id: str | None, anonymous_id: str | None, context: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON-serialisable snapshot of one visitor (values that do not fit are left out).

    Its JSON text is at most ``MAX_SNAPSHOT_BYTES``: :func:`read_snapshot` reads it back.
    """
    kept: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = context.get(name)
        if isinstance(value, str) and len(value) <= MAX_TEXT_LENGTH:
            kept[name] = value
    page = _texts(context.get("page"), allowed=PAGE_FIELDS)
    if page:
        kept["page"] = page
    campaign = _texts(context.get("campaign"), allowed=None)
    if campaign:
        kept["campaign"] = campaign
    consent = context.get("consent")
    if isinstance(consent, Mapping):
        preferences = consent.get("categoryPreferences")
        if isinstance(preferences, Mapping):
            flags = {
                str(k): v for k, v in list(preferences.items())[:MAX_KEYS] if isinstance(v, bool)
            }
            kept["consent"] = {"categoryPreferences": flags}
    snapshot = {
        "version": SNAPSHOT_VERSION,
        "userId": user_id,
        "anonymousId": anonymous_id,
        "context": kept,
    }
    # A queue's message stays small: the bulkiest parts go first when it would not,
    # then the whole context (ids of thousands of characters). Ids are kept: ids
    # over the bound together cannot travel, and the reader says so.
    for bulky in ("page", "campaign", "userAgent"):
        if _size(snapshot) <= MAX_SNAPSHOT_BYTES:
            break
        kept.pop(bulky, None)
    if _size(snapshot) > MAX_SNAPSHOT_BYTES:
        kept.clear()
    return snapshot


def _size(value: object) -> int:
    """Bytes of ``value`` as JSON text (UTF-8; a lone surrogate counted as one byte)."""
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "replace"))


def _texts(value: object, *, allowed: tuple[str, ...] | None) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    kept = {
        str(k): v
        for k, v in value.items()
        if (allowed is None or k in allowed) and isinstance(v, str) and len(v) <= MAX_TEXT_LENGTH
    }
    return dict(list(kept.items())[:MAX_KEYS])


def read_snapshot(value: object) -> tuple[str | None, str | None, dict[str, Any]]:
    """``(user_id, anonymous_id, context)`` from a snapshot, or :class:`InvalidSnapshot`.

    ``value`` is the dict :func:`make_snapshot` made, or its JSON text (escaped or
    not: its size is measured as read, as for a dict).
    """
    if isinstance(value, (str, bytes, bytearray)):
        if len(value) > MAX_SNAPSHOT_TEXT_LENGTH:
            raise InvalidSnapshot(
                f"snapshot is over {MAX_SNAPSHOT_TEXT_LENGTH} characters of JSON text "
                f"(at most {MAX_SNAPSHOT_BYTES} bytes once read)"
            )
        try:
            value = json.loads(value)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidSnapshot(f"snapshot is not valid JSON: {exc}") from None
        except RecursionError:  # nesting a snapshot never has (it is four levels deep)
            raise InvalidSnapshot("snapshot is not valid JSON: nested too deep to read") from None
    if not isinstance(value, Mapping):
        raise InvalidSnapshot(f"snapshot must be a dict, got {type(value).__name__}")
    version = value.get("version")
    if version != SNAPSHOT_VERSION or isinstance(version, bool):
        raise InvalidSnapshot(
            f"snapshot.version must be {SNAPSHOT_VERSION}, got {_kind(version)} "
            "(a snapshot from a newer or older version of segment-web?)"
        )
    user_id = _id(value, "userId")
    anonymous_id = _id(value, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise InvalidSnapshot("snapshot needs a userId or an anonymousId")
    context = _context(value.get("context"))
    _check_as_sent(user_id, anonymous_id, context)
    return user_id, anonymous_id, context


def _check_as_sent(user_id: str | None, anonymous_id: str | None, context: dict[str, Any]) -> None:
    """What each call made for the visitor would be refused for: better refused now.

    The Spec's rules on a context (an ``ip`` that is an address), text UTF-8 can
    encode, and the size (checked here too for a snapshot given as a dict).
    """
    for problem in content_problems({"type": "track", "context": context}):
        raise InvalidSnapshot(f"snapshot.{problem}")
    read = {"userId": user_id, "anonymousId": anonymous_id, "context": context}
    found: list[str] = []
    replace_lone_surrogates(read, "snapshot", found)
    if found:
        raise InvalidSnapshot(found[0])
    if _size(read) > MAX_SNAPSHOT_BYTES:
        raise InvalidSnapshot(f"snapshot is over {MAX_SNAPSHOT_BYTES} bytes")


def _kind(value: object) -> str:
    """What ``value`` is, never what it says: a snapshot's values are a visitor's data."""
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, Mapping | list | tuple):
        return f"{type(value).__name__} of length {len(value)}"
    return type(value).__name__


def _id(snapshot: Mapping[str, Any], name: str) -> str | None:
    value = snapshot.get(name)
    if value is None:
        return None
    # Any length the client takes for a call: the snapshot's size bounds it.
    if not isinstance(value, str) or not value:
        raise InvalidSnapshot(f"snapshot.{name} must be a non-empty string, got {_kind(value)}")
    return value


def _context(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSnapshot(f"snapshot.context must be a dict, got {type(value).__name__}")
    context: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if value.get(name) is not None:
            context[name] = _text(f"context.{name}", value[name])
    if "ip" in context and not is_ip_address(context["ip"]):
        raise InvalidSnapshot(f"snapshot.context.ip is not an IP address: {_kind(context['ip'])}")
    for name, allowed in (("page", PAGE_FIELDS), ("campaign", None)):
        if value.get(name) is not None:
            context[name] = _text_map(f"context.{name}", value[name], allowed)
    if value.get("consent") is not None:
        context["consent"] = _consent(value["consent"])
    return context


def _text(field: str, value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH:
        raise InvalidSnapshot(
            f"snapshot.{field} must be a string of at most {MAX_TEXT_LENGTH} characters, "
            f"got {_kind(value)}"
        )
    return value


def _text_map(field: str, value: object, allowed: tuple[str, ...] | None) -> dict[str, str]:
    if not isinstance(value, Mapping) or len(value) > MAX_KEYS:
        raise InvalidSnapshot(
            f"snapshot.{field} must be a dict of at most {MAX_KEYS} strings, got {_kind(value)}"
        )
    texts: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or (allowed is not None and key not in allowed):
            raise InvalidSnapshot(f"snapshot.{field} has an unexpected key {short_repr(key)}")
        texts[key] = _text(f"{field}.{key}", item)
    return texts


def _consent(value: object) -> dict[str, Any]:
    preferences = value.get("categoryPreferences") if isinstance(value, Mapping) else None
    if not isinstance(preferences, Mapping) or len(preferences) > MAX_KEYS:
        raise InvalidSnapshot(
            "snapshot.context.consent must be {'categoryPreferences': {category: bool}}, "
            f"got {_kind(value)}"
        )
    for key, flag in preferences.items():
        if not isinstance(key, str) or not isinstance(flag, bool):
            raise InvalidSnapshot(
                f"snapshot.context.consent.categoryPreferences[{short_repr(key)}] "
                "must be True or False"
            )
    return {"categoryPreferences": dict(preferences)}
