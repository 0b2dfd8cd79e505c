"""Validation and normalisation of one call into the Spec's message dict.

Runs on the caller's thread, so every mistake is reported where it was made,
as :class:`InvalidMessage` naming the field. This is the hot path of every
call: it does the least work that gives a correct, self-contained message.
"""

from __future__ import annotations

import datetime as dt
import numbers
import operator
import os
import random
import uuid
from collections.abc import Mapping
from typing import Any

from segment_core import _forks
from segment_core._version import DISTRIBUTION, VERSION
from segment_core.batching import MAX_MESSAGE_BYTES
from segment_core.encoding import encode, format_timestamp, now_timestamp
from segment_core.errors import InvalidMessage, is_interruption
from segment_core.jsonvalues import (
    MAX_INTEGER_BITS,
    copy_json,
    describe,
    flat_json,
    integer_problem,
    lazy_text,
    plain,
    proxied_or_refused,
    replace_lone_surrogates,
    without_proxies,
)
from segment_core.messages import Context, with_context_structs
from segment_core.returned import PassedId
from segment_core.spec import (
    MAX_MESSAGE_ID_LENGTH,
    content_problems,
    fromisoformat,
    validate_message,
)

__all__ = [
    "LIBRARY",
    "MAX_MESSAGE_ID_LENGTH",
    "WHOLE_MESSAGE",
    "CheckedContext",
    "MessageFactory",
    "check_defaults",
    "check_hook_result",
    "new_message_id",
    "stringify_id",
]
LIBRARY = {"name": DISTRIBUTION, "version": VERSION}
#: :meth:`MessageFactory.unchecked`'s answer when any value may be the caller's.
WHOLE_MESSAGE = "whole message"

# The library's own generator: an app that seeds the random module (random.seed(0)
# in a job, a simulation, pytest-randomly) must not repeat message ids, which
# Segment takes for duplicates and drops. Seeded from the system, anew in each
# forked child (see _forks, which also covers uWSGI's workers).
_generator = random.Random()
_getrandbits = _generator.getrandbits
_seeded_in = os.getpid()


def _reseed() -> None:
    global _seeded_in
    _generator.seed()
    _seeded_in = os.getpid()


_forks.in_every_child(_reseed)


def new_message_id() -> str:
    """A random UUID string (version 4 layout, from the library's own generator).

    A fifth of the cost of ``str(uuid.uuid4())``, which asks the kernel for every id.
    """
    # 80 bits written as 8-4-4-4 with the version and variant bits set, then 48 bits:
    # fewer string objects than slicing one hex string.
    head = _getrandbits(80) & _HEAD_MASK | _HEAD_BITS
    return (
        head.to_bytes(10, "big").hex("-", 2).replace("-", "", 1)
        + "-"
        + _getrandbits(48).to_bytes(6, "big").hex()
    )


if _forks.UNDER_UWSGI:
    # An app importing uWSGI's decorators module after this one replaces the
    # post-fork hook _forks set: in uWSGI, each id also checks its process.
    _draw_message_id = new_message_id

    def new_message_id() -> str:
        """A random UUID string, drawn by this process's own generator."""
        if _seeded_in != os.getpid():
            _reseed()
        return _draw_message_id()


# Version 4 in the third group, variant 10xx (8 to b) in the fourth.
_HEAD_MASK = 0xFFFFFFFF_FFFF_0FFF_3FFF
_HEAD_BITS = 0x00000000_0000_4000_8000


class CheckedContext(dict[str, Any]):
    """A call's context that its maker vouches for.

    It passes the Spec's context rules and holds only strings, in dicts: a web
    request's context is built of strings and checked addresses, and is handed
    over as one only while it is equal to what was built (see
    :class:`segment_core.web.RequestTracker`). The message factory copies it
    into a plain dict like any context, but does not check it again.
    """

    __slots__ = ()


def stringify_id(name: str, value: object) -> str | None:
    """Ids are strings on the wire; integers keep every digit."""
    if value is None or type(value) is str:
        return value
    if type(value) is int:
        if value.bit_length() > MAX_INTEGER_BITS:  # str() would refuse it
            raise InvalidMessage(f"{name}: {integer_problem(value)}")
        return str(value)
    target = proxied_or_refused(value, name)
    if target is not value:  # a lazy proxy (Werkzeug's LocalProxy, SimpleLazyObject)
        return stringify_id(name, target)
    if isinstance(value, str):  # StrEnum, SafeString, ...: sent as the plain text
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INTEGER_BITS:  # str() would refuse it
            raise InvalidMessage(f"{name}: {integer_problem(value)}")
        return str(int(value))
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):  # numpy.int64
        return stringify_id(name, operator.index(value))
    raise InvalidMessage(f"{name} must be a string or an integer, got {type(value).__name__}")


def _mapping(name: str, value: object) -> dict[str, Any] | None:
    if value is None or type(value) is dict:
        return value
    target = proxied_or_refused(value, name)
    if target is not value:  # flask.session, a LocalProxy of a dict: what it stands for
        return {} if target is None else _mapping(name, target)
    try:
        if isinstance(value, dict):
            # What the mapping says it holds: dict() of a dict subclass copies its
            # storage, which for a multi-value dict (Django's request.GET) is lists.
            return dict(value.items())
        if isinstance(value, Mapping):
            return dict(value)
        if _reads_as_empty(value):
            return {}
    except Exception as error:  # the object's own failure to say what it holds
        if is_interruption(error):
            raise
        raise InvalidMessage(
            f"{name}: the {type(value).__name__} could not be read as a dict "
            f"({type(error).__name__}: {error})"
        ) from error
    raise InvalidMessage(f"{name} must be a dict, got {type(value).__name__}")


def _reads_as_empty(value: object) -> bool:
    """Whether ``value`` is false (``[]``, ``""``, ``0``, ``()``): an empty dict to
    analytics-python, which reads ``properties or {}``, and so here."""
    try:
        return not value
    except (TypeError, ValueError):  # no truth value (a numpy array): not empty
        return False


def _context_mapping(value: object) -> dict[str, Any] | None:
    """A call's ``context``: a dict, or a typed :class:`Context` as it encodes."""
    if value is None or type(value) is dict:
        return value
    target = proxied_or_refused(value, "context")
    if target is not value:
        return _context_mapping(target)
    if isinstance(value, Context):
        return value.to_dict()
    return _mapping("context", value)


def _optional_str(name: str, value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    target = proxied_or_refused(value, name)
    if target is not value:
        return _optional_str(name, target)
    text = _text(name, value)
    if text is None:
        raise InvalidMessage(f"{name} must be a string, got {type(value).__name__}")
    return text


def _text(name: str, value: object) -> str | None:
    """``value`` as a plain ``str``: a subclass's, a proxy's, or lazy text's (a name
    translated with ``gettext_lazy``); None for anything else."""
    if type(value) is str:
        return value
    target = proxied_or_refused(value, name)
    if target is not value:
        return _text(name, target)
    if isinstance(value, str):
        return str.__str__(value)
    try:
        return lazy_text(value)
    except ValueError as error:
        raise InvalidMessage(f"{name}: {error}") from None


def timestamp_as_sent(value: dt.datetime | str) -> str:
    """The text a call's ``timestamp=value`` is sent as (UTC, milliseconds, ``Z``).

    Raises :class:`InvalidMessage` for a value the call would refuse.
    """
    return _timestamp(value)


#: How near the local clock's now a naive timestamp is one ``datetime.now()`` made.
_NOW_WINDOW = dt.timedelta(seconds=5)


def _zoned_if_now(value: dt.datetime) -> dt.datetime:
    """A naive ``value`` within 5 seconds of the local clock's now in local time (it
    is ``datetime.now()``'s, as analytics-python guesses); any other stays naive: UTC.

    ``datetime.utcnow()`` is hours away from the local now wherever the two differ.
    """
    try:
        if abs(dt.datetime.now() - value) >= _NOW_WINDOW:
            return value
        return as_local_time(value)
    except Exception as error:  # a subclass that refuses either: taken as UTC
        if is_interruption(error):
            raise
        return value


def as_local_time(value: dt.datetime) -> dt.datetime:
    """Naive ``value`` read as the local clock's time: the system's zone, or the
    ``tz_offset`` of a clock freezegun froze (whose ``now()`` it shifts by that alone)."""
    frozen_offset = getattr(dt.datetime, "_tz_offset", None)  # freezegun's, while frozen
    if callable(frozen_offset):
        offset = frozen_offset()
        if isinstance(offset, dt.timedelta):
            return value.replace(tzinfo=dt.timezone(offset))
    return dt.datetime.astimezone(value)  # (pandas' Timestamp makes its own a tz_convert)


def _timestamp(value: object) -> str:
    if value is None:
        return now_timestamp()
    target = proxied_or_refused(value, "timestamp")
    if target is not value:
        return _timestamp(target)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = _zoned_if_now(value)
        try:
            return format_timestamp(value)
        except ValueError as error:  # its tzinfo gave no usable offset
            raise InvalidMessage(f"timestamp: {error}") from None
        except OverflowError:
            raise InvalidMessage(
                f"timestamp {value.isoformat()!r} falls outside years 1 to 9999 in UTC"
            ) from None
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            when = fromisoformat(text)  # the forms Python 3.11 reads, on every Python
        except ValueError:
            raise InvalidMessage(
                f"timestamp must be an ISO-8601 date and time, got {value[:60]!r}"
            ) from None
        if when.tzinfo is None:  # as a naive datetime: datetime.now().isoformat()'s is local
            when = _zoned_if_now(when)
        try:
            return format_timestamp(when)
        except ValueError:
            raise InvalidMessage(
                f"timestamp must be an ISO-8601 date and time, got {value[:60]!r}"
            ) from None
        except OverflowError:
            raise InvalidMessage(
                f"timestamp {value[:60]!r} falls outside years 1 to 9999 in UTC"
            ) from None
    raise InvalidMessage(
        f"timestamp must be a datetime or an ISO-8601 string, got {type(value).__name__}"
    )


def _message_id(value: object, name: str = "message_id") -> str:
    if value is None:
        return new_message_id()
    target = proxied_or_refused(value, name)
    if target is not value:
        return _message_id(target, name)
    text = stringify_id(name, value)
    if not text:
        raise InvalidMessage(f"{name} must not be empty")
    if len(text) > MAX_MESSAGE_ID_LENGTH:
        raise InvalidMessage(
            f"{name} must be at most {MAX_MESSAGE_ID_LENGTH} characters, got {len(text)}"
        )
    return text


def _call_message_id(value: object) -> str:
    """A call's ``message_id``: a new one for ``""`` too, as analytics-python makes."""
    value = proxied_or_refused(value, "message_id")
    if value is None or value == "":
        return new_message_id()
    return _message_id(value)


_HOOK_IDS = (
    ("userId", "user_id"),
    ("anonymousId", "anonymous_id"),
    ("previousId", "previous_id"),
    ("groupId", "group_id"),
)


#: What a call adds to its context and integrations at the least: its type,
#: messageId, timestamp, an id, an event's name and the library's context.
_SMALLEST_CALL_BYTES = 200


def check_defaults(context: object, integrations: object) -> None:
    """Refuse ``default_context``/``default_integrations`` that would spoil every call.

    Raises ``ValueError`` naming the option, at construction rather than at each call.
    """
    for option, field, value in (
        ("default_context", "context", context),
        ("default_integrations", "integrations", integrations),
    ):
        if not isinstance(value, Mapping):
            continue
        try:
            if field == "context":
                value = _with_group_id_as_text(with_context_structs(value) or value, option)
            checked = plain(value, option)
        except InvalidMessage as error:
            raise ValueError(str(error)) from None
        found: list[str] = []
        replace_lone_surrogates(checked, option, found)
        if found:
            raise ValueError(found[0])
        for problem in content_problems({"type": "track", field: dict(value)}):
            raise ValueError(f"{option}: {problem}")
        size = len(encode(checked))
        if size > MAX_MESSAGE_BYTES - _SMALLEST_CALL_BYTES:
            raise ValueError(
                f"{option} is {size:,} bytes encoded: with it no call fits in the "
                f"{MAX_MESSAGE_BYTES:,} bytes Segment accepts per message"
            )


def _with_group_id_as_text(context: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """``context`` with its ``groupId`` written as text, as a call's is (see
    ``MessageFactory._context``); ``source`` names where it came from in an error."""
    if "groupId" not in context:
        return context
    return {**context, "groupId": stringify_id(f"{source}: context.groupId", context["groupId"])}


def check_hook_result(message: dict[str, Any]) -> dict[str, Any]:
    """What a ``before_send`` hook returned, held to the rules of a caller's message.

    Ids are stringified and a ``timestamp`` (text or datetime) written in UTC as the
    client does; then every Spec rule applies (the collector's own check). Raises
    :class:`InvalidMessage` naming the field.
    """
    checked = dict(message)
    for field, _name in _HOOK_IDS:
        if field in checked:
            checked[field] = stringify_id(f"before_send: {field}", checked[field])
    if isinstance(checked.get("context"), Mapping):
        checked["context"] = _with_group_id_as_text(checked["context"], "before_send")
    if checked.get("timestamp") is not None:
        try:
            checked["timestamp"] = _timestamp(checked["timestamp"])
        except InvalidMessage as error:
            raise InvalidMessage(f"before_send: {error}") from None
    if "messageId" in checked and checked["messageId"] is not None:
        checked["messageId"] = _message_id(checked["messageId"], "before_send: messageId")
    for field in ("event", "name", "category"):
        if isinstance(checked.get(field), str):
            checked[field] = str.__str__(checked[field])
    problems = validate_message(checked)
    if problems:
        raise InvalidMessage(
            "before_send returned a message the Spec refuses: " + "; ".join(problems)
        )
    return checked


class MessageFactory:
    """Turns the arguments of one call into a message dict, with the client's defaults."""

    def __init__(
        self,
        default_context: Mapping[str, Any] | None = None,
        default_integrations: Mapping[str, Any] | None = None,
    ) -> None:
        if default_context:
            default_context = with_context_structs(default_context) or default_context
        self._default_context = copy_json(default_context) if default_context else {}
        self._default_integrations = copy_json(default_integrations) if default_integrations else {}
        self._no_defaults = not self._default_context and not self._default_integrations

    def unchecked(self, context: object, integrations: object, fields: object) -> object:
        """The part of a call's message the encoder must look into, if any.

        ``fields``: the message's properties or traits (None without). The ids,
        names and times are strings by now. With no default context or
        integrations, none of the call's, and a context that is None or a
        :class:`CheckedContext`, only ``fields`` may hold the caller's values:

        - None: ``fields`` is None or :func:`~segment_core.jsonvalues.flat_json`,
          so every value is JSON's own, at most three dicts deep
          (:func:`~segment_core.encoding.encode_simple`);
        - ``fields``: only they may hold a float (``encode(numbers=fields)``);
        - :data:`WHOLE_MESSAGE` otherwise.
        """
        if (
            integrations is not None
            or not self._no_defaults
            or not (context is None or type(context) is CheckedContext)
        ):
            return WHOLE_MESSAGE
        if fields is None or (type(fields) is dict and flat_json(fields)):
            return None
        return fields

    def build(self, kind: str, **arguments: Any) -> dict[str, Any]:
        """Dispatch on ``kind`` to the method of the same name (keyword arguments)."""
        method = getattr(self, kind, None) if kind in _KINDS else None
        if method is None:
            raise InvalidMessage(f"type must be one of {', '.join(_KINDS)}, got {describe(kind)}")
        message: dict[str, Any] = method(**arguments)
        return message

    # Each method takes the arguments of the client call of the same name, in the
    # same order; they are positional because this runs on every call.

    def track(
        self,
        user_id: object = None,
        event: object = None,
        properties: object = None,
        context: object = None,
        timestamp: object = None,
        anonymous_id: object = None,
        integrations: object = None,
        message_id: object = None,
    ) -> dict[str, Any]:
        if type(event) is not str:
            text = _text("event", event)
            if text is None:
                raise InvalidMessage(
                    f"event must be a non-empty string for track, got {describe(event)}"
                )
            event = text
        if not event.strip():
            raise InvalidMessage(
                f"event must be a non-empty string for track, got {describe(event)}"
            )
        message = self._start("track", user_id, anonymous_id, timestamp, message_id)
        message["event"] = event
        if properties is not None:
            message["properties"] = (
                properties if type(properties) is dict else _mapping("properties", properties)
            )
        if context is None and integrations is None and self._no_defaults:
            # As _finish does, one call less.
            message["context"] = {"library": {"name": DISTRIBUTION, "version": VERSION}}
            return message
        return self._finish(message, context, integrations)

    def page(
        self,
        user_id: object = None,
        category: object = None,
        name: object = None,
        properties: object = None,
        context: object = None,
        timestamp: object = None,
        anonymous_id: object = None,
        integrations: object = None,
        message_id: object = None,
    ) -> dict[str, Any]:
        message = self._start("page", user_id, anonymous_id, timestamp, message_id)
        return self._page_fields(message, category, name, properties, context, integrations)

    def request_page(
        self,
        user_id: str | None,
        anonymous_id: str | None,
        name: str | None,
        properties: dict[str, str],
        context: CheckedContext,
    ) -> dict[str, Any]:
        """A web request's automatic page call, of values its tracker derived itself.

        Ids are strings already, ``name`` a string or None, ``properties`` the page
        fields as built (strings; a ``search`` that starts with ``?``, a ``url``
        without a fragment) and ``context`` vouched for: nothing of the caller's
        is left for the Spec's content rules to check.
        """
        message = self._start("page", user_id, anonymous_id, None, None)
        if name is not None:
            message["name"] = name
        message["properties"] = properties
        message["context"] = self._context(context)
        if self._default_integrations:  # checked when the client was made
            message["integrations"] = dict(self._default_integrations)
        return message

    def screen(
        self,
        user_id: object = None,
        category: object = None,
        name: object = None,
        properties: object = None,
        context: object = None,
        timestamp: object = None,
        anonymous_id: object = None,
        integrations: object = None,
        message_id: object = None,
    ) -> dict[str, Any]:
        message = self._start("screen", user_id, anonymous_id, timestamp, message_id)
        return self._page_fields(message, category, name, properties, context, integrations)

    def identify(
        self,
        user_id: object = None,
        traits: object = None,
        context: object = None,
        timestamp: object = None,
        anonymous_id: object = None,
        integrations: object = None,
        message_id: object = None,
    ) -> dict[str, Any]:
        message = self._start("identify", user_id, anonymous_id, timestamp, message_id)
        self._put(message, "traits", _mapping("traits", traits))
        return self._finish(message, context, integrations)

    def group(
        self,
        user_id: object = None,
        group_id: object = None,
        traits: object = None,
        context: object = None,
        timestamp: object = None,
        anonymous_id: object = None,
        integrations: object = None,
        message_id: object = None,
    ) -> dict[str, Any]:
        group = stringify_id("group_id", group_id)
        if not group:
            raise InvalidMessage("group_id is required for group")
        message = self._start("group", user_id, anonymous_id, timestamp, message_id)
        message["groupId"] = group if type(group_id) is str else PassedId(group, group_id)
        self._put(message, "traits", _mapping("traits", traits))
        return self._finish(message, context, integrations)

    def alias(
        self,
        previous_id: object = None,
        user_id: object = None,
        context: object = None,
        timestamp: object = None,
        integrations: object = None,
        message_id: object = None,
        anonymous_id: object = None,
    ) -> dict[str, Any]:
        if anonymous_id is not None:
            raise InvalidMessage("anonymous_id: an alias takes previous_id and user_id")
        previous = stringify_id("previous_id", previous_id)
        if not previous:
            raise InvalidMessage("previous_id is required for alias")
        message = self._start("alias", user_id, None, timestamp, message_id)
        message["previousId"] = (
            previous if type(previous_id) is str else PassedId(previous, previous_id)
        )
        return self._finish(message, context, integrations)

    def _page_fields(
        self,
        message: dict[str, Any],
        category: object,
        name: object,
        properties: object,
        context: object,
        integrations: object,
    ) -> dict[str, Any]:
        # Plain strings and dicts (nearly every call) skip the conversion.
        # (A proxy of None, Flask-Login's current_user outside a request, is None.)
        if name is not None:
            name = name if type(name) is str else _optional_str("name", name)
            if name is not None:
                message["name"] = name
        if category is not None:
            category = category if type(category) is str else _optional_str("category", category)
            if category is not None:
                message["category"] = category
        if properties is not None:
            message["properties"] = (
                properties if type(properties) is dict else _mapping("properties", properties)
            )
        return self._finish(message, context, integrations)

    @staticmethod
    def _start(
        kind: str, user_id: object, anonymous_id: object, timestamp: object, message_id: object
    ) -> dict[str, Any]:
        # Plain strings (nearly every call) skip the conversion.
        user = (
            user_id if type(user_id) is str or user_id is None else stringify_id("user_id", user_id)
        )
        anonymous = (
            anonymous_id
            if type(anonymous_id) is str or anonymous_id is None
            else stringify_id("anonymous_id", anonymous_id)
        )
        if not user and (kind == "alias" or not anonymous):
            needed = "user_id" if kind == "alias" else "user_id or anonymous_id"
            raise InvalidMessage(f"{needed} is required for {kind}")
        message: dict[str, Any] = {
            "type": kind,
            # analytics-python makes one for "" too.
            "messageId": new_message_id() if message_id is None else _call_message_id(message_id),
            "timestamp": now_timestamp() if timestamp is None else _timestamp(timestamp),
        }
        # An empty id beside the other is kept, as analytics-python keeps it.
        if user is not None:
            message["userId"] = user
        if anonymous is not None:
            message["anonymousId"] = anonymous
        return message

    def _finish(
        self, message: dict[str, Any], context: object, integrations: object
    ) -> dict[str, Any]:
        if (
            integrations is None
            and self._no_defaults
            and (context is None or type(context) is CheckedContext)
        ):
            # Most calls: nothing to merge, nothing of the caller's context to check.
            # The library's own dict each time: the caller may change the one returned.
            if context is None:
                message["context"] = {"library": {"name": DISTRIBUTION, "version": VERSION}}
            else:  # a web request's calls: copied into a plain dict
                copied = dict(context)
                if (
                    copied.get("library") is None
                ):  # (None: none given, as analytics-python reads it)
                    copied["library"] = {"name": DISTRIBUTION, "version": VERSION}
                message["context"] = copied
            checked = True
        else:
            # A context checked already stays so merged: the defaults were checked at
            # construction, and merging keeps each value of one or the other.
            given: dict[str, Any] | None
            if type(context) is CheckedContext:  # narrowed by the test: no cast() call
                checked, given = True, context
            else:
                checked, given = False, without_proxies(_context_mapping(context), "context")
            message["context"] = self._context(given)
            merged = self._integrations(
                without_proxies(_mapping("integrations", integrations), "integrations")
            )
            if merged:
                message["integrations"] = merged
        if checked and "integrations" not in message and message["type"] != "page":
            return message  # nothing of the caller's that the Spec's content rules cover
        # The Spec's rules on the contents, shared with the collector: refused here
        # exactly when the collector would mark the message bad.
        problems = content_problems(message, context_checked=checked)
        if problems and not checked:
            rechecked = self._with_context_structs(message, context)
            if rechecked is not None:
                problems = rechecked
        if problems:
            raise InvalidMessage("; ".join(problems))
        return message

    def _with_context_structs(self, message: dict[str, Any], context: object) -> list[str] | None:
        """A dict context whose object fields hold dataclasses (as a typed Context's
        may) fails the Spec's check: written as in a typed Context, the message's
        context is merged and checked again; its problems, or None when it has no such
        field. Looked for once the check fails, not in every call's context."""
        given = _context_mapping(context)
        written = with_context_structs(given) if given else None
        if written is None:
            return None
        message["context"] = self._context(written)
        return content_problems(message)

    @staticmethod
    def _put(message: dict[str, Any], key: str, value: object) -> None:
        if value is not None:
            message[key] = value

    def _context(self, context: dict[str, Any] | None) -> dict[str, Any]:
        if not self._default_context:
            if not context:
                return {"library": dict(LIBRARY)}
            merged = dict(context)
        else:
            # A copy all the way down: the caller may change the message returned.
            merged = copy_json(self._default_context)
            if context:
                for key, value in context.items():
                    default = merged.get(key)
                    if isinstance(default, dict) and isinstance(value, Mapping):
                        merged[key] = {**default, **value}
                    else:
                        merged[key] = value
        if merged.get("library") is None:  # (None: none given, as analytics-python reads it)
            merged["library"] = dict(LIBRARY)
        if "groupId" in merged:  # text on the wire, as every id
            merged["groupId"] = stringify_id("context.groupId", merged["groupId"])
        return merged

    def _integrations(self, integrations: dict[str, Any] | None) -> dict[str, Any] | None:
        if not self._default_integrations:
            return integrations
        return {**copy_json(self._default_integrations), **(integrations or {})}


_KINDS = ("identify", "track", "page", "screen", "group", "alias")
