"""What a test captured, with finders and one-line assertions: the test outbox and
:func:`segment_core.testing.capture`'s messages are :class:`Captured` lists.

::

    from segment_core.testing import outbox

    outbox.assert_tracked("Order Completed", currency="EUR")
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from typing import Any

from segment_core.encoding import decode, encode
from segment_core.errors import InvalidMessage
from segment_core.normalize import as_local_time, stringify_id, timestamp_as_sent
from segment_core.spec import fromisoformat

__all__ = ["Captured"]

Message = dict[str, Any]


class Captured(list[Message]):
    """Messages clients accepted instead of sending them (the test outbox, a
    capture), oldest first, as sent: a list, with finders and one-line assertions."""

    def __eq__(self, other: object) -> bool:
        """Equal to a list, or a tuple, of the same messages (``assert outbox == []``)."""
        return list.__eq__(self, list(other) if isinstance(other, tuple) else other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # it changes

    def find(self, type: str | None = None, /, **fields: Any) -> list[Message]:
        """Messages of ``type`` whose top-level fields equal ``fields`` (camelCase keys).

        Values compare as sent: ``timestamp=datetime(...)`` finds its ISO-8601 text
        (a naive one read as the client reads it), ``userId=42`` finds ``"42"``,
        and as JSON tells them apart (``True`` is not ``1``). A field left out is
        ``None`` (``userId=None``: an anonymous visitor's), as Segment reads it.
        """
        expected = _fields_as_sent(fields)
        return [
            m
            for m in self
            if (type is None or m.get("type") == type)
            and all(_matches(m.get(key), value) for key, value in expected.items())
        ]

    def tracks(self, event: str | None = None) -> list[Message]:
        return self.find("track") if event is None else self.find("track", event=event)

    def pages(self, name: str | None = None) -> list[Message]:
        return self.find("page") if name is None else self.find("page", name=name)

    def assert_tracked(self, *event: str, **properties: Any) -> Message:
        """The one ``track`` of ``event`` whose properties include ``properties``.

        Values compare as sent, so the ones the view passed match: a ``Decimal``
        its number, a ``date``, ``datetime`` or ``UUID`` its text, a tuple its list;
        and as JSON tells them apart: ``True`` is not ``1``, and ``coupon=None``
        wants a ``null`` sent, not no ``coupon`` at all. A value JSON cannot hold
        (``mock.ANY``, ``pytest.approx(...)``) compares by its own ``==``.

        ``event`` comes first; given by its keyword alone (``event="Signed Up"``) it
        is the event too. After it, ``event=`` is a property of that name.
        """
        name = _leading(event, properties, "event", "assert_tracked")
        if name is _MISSING:
            raise TypeError("assert_tracked() missing its first argument: 'event'")
        return self._assert_one("track", {"event": name}, "properties", properties)

    def assert_page(self, *name: str | None, **properties: Any) -> Message:
        """The one ``page`` named ``name`` whose properties include ``properties``
        (``name``, as ``assert_tracked``'s ``event``: first, or by its keyword alone;
        ``None``: a page without a name, as ``find(name=None)``; left out: any).

        ``category=`` is the page's category wherever the call wrote it: the
        message's ``category`` (``client.page(user_id, "Docs", "Install")``) or its
        properties' (analytics.js's and ``request.analytics.page()``'s); either
        matches."""
        found = _leading(name, properties, "name", "assert_page")
        where = {} if found is _MISSING else {"name": found}
        return self._assert_one("page", where, "properties", properties, also=("category",))

    def assert_identified(self, *user_id: object, **traits: Any) -> Message:
        """The one ``identify`` of ``user_id`` (``None``: an anonymous visitor's)
        whose traits include ``traits`` (``user_id``, as ``assert_tracked``'s
        ``event``: first, or by its keyword alone)."""
        found = _leading(user_id, traits, "user_id", "assert_identified")
        if found is _MISSING:
            raise TypeError("assert_identified() missing its first argument: 'user_id'")
        return self._assert_one("identify", {"userId": found}, "traits", traits)

    def assert_nothing_sent(self) -> None:
        # Raised, not asserted: these checks hold under python -O too.
        if self:
            raise AssertionError(f"expected no Segment messages, got:\n{self._summary()}")

    def _assert_one(
        self,
        type: str,
        where: Mapping[str, Any],
        part: str,
        subset: Mapping[str, Any],
        *,
        also: tuple[str, ...] = (),
    ) -> Message:
        """The one message of ``type`` with the top-level fields ``where`` whose
        ``part`` includes ``subset``; ``also``: top-level fields that count as the
        part's where it has none of that name."""
        expected = _as_sent(subset)
        found = [
            m
            for m in self.find(type, **where)
            if all(_part_matches(m, part, key, value, also) for key, value in expected.items())
        ]
        # The top-level fields as named, each of the rest as what it is: a property
        # (or trait) named "userId" is not the message's userId.
        wanted = ", ".join(
            [f"{k}={v!r}" for k, v in where.items()]
            + [
                f"{k}={v!r} (or {part}.{k})" if k in also else f"{part}.{k}={v!r}"
                for k, v in subset.items()
            ]
        )
        if len(found) != 1:
            raise AssertionError(
                f"expected one {type} with {wanted or 'any fields'}, found {len(found)}; "
                f"captured:\n{self._summary()}"
            )
        return found[0]

    def _summary(self) -> str:
        if not self:
            return "  (nothing)"
        lines = []
        for m in self:
            label = m.get("event") or m.get("name") or m.get("groupId") or ""
            ids = [f"{key}={m[key]!r}" for key in _SHOWN_FIELDS if m.get(key) is not None]
            detail = m.get("properties") or m.get("traits") or {}
            lines.append(" ".join(["", "", str(m.get("type")), repr(label), *ids, str(detail)]))
        return "\n".join(lines)


def _part_matches(
    message: Message, part: str, key: str, expected: Any, also: tuple[str, ...]
) -> bool:
    """Whether ``message[part][key]`` matches ``expected``, or, for a key in ``also``,
    the message's own ``key`` does (a page's category, in the message or in its
    properties: either is the page's)."""
    held = message.get(part) or {}
    value = held.get(key, _MISSING) if isinstance(held, Mapping) else _MISSING
    if _matches(value, expected):
        return True
    return key in also and _matches(message.get(key, _MISSING), expected)


def _leading(given: tuple[Any, ...], keywords: dict[str, Any], name: str, method: str) -> Any:
    """An assertion's first argument: given first, else by its keyword (taken out of
    ``keywords``, as callers wrote it before a property of that name could be
    asserted); ``_MISSING`` when neither."""
    if len(given) > 1:
        raise TypeError(f"{method}() takes one positional argument, {len(given)} were given")
    return given[0] if given else keywords.pop(name, _MISSING)


#: The fields a summary line shows after the event's name: a page's category, the ids.
_SHOWN_FIELDS = ("category", "userId", "anonymousId", "previousId")
#: A property or trait the message does not have.
_MISSING: Any = object()


def _matches(sent: Any, expected: Any) -> bool:
    """Whether ``sent`` (a captured message's value) is ``expected`` (a value as
    sent, see :func:`_as_sent`), as JSON tells values apart: ``true`` is not ``1``,
    a missing one is not ``null``; numbers are numbers (``19`` is ``19.0``). A value
    JSON cannot hold (a matcher such as ``mock.ANY``) decides by its own ``==``."""
    kind = type(expected)
    if kind is dict:
        return (
            type(sent) is dict
            and sent.keys() == expected.keys()
            and all(_matches(sent[key], value) for key, value in expected.items())
        )
    if kind is list:
        return (
            type(sent) is list and len(sent) == len(expected) and all(map(_matches, sent, expected))
        )
    if expected is None or kind is bool or kind is str:
        return type(sent) is kind and sent == expected
    if kind is int or kind is float:
        return type(sent) in (int, float) and sent == expected
    return sent is not _MISSING and bool(expected == sent)


def _as_sent(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as captures hold them: each encoded and read back as JSON, as the
    client sends it. One JSON cannot hold (a matcher such as ``mock.ANY``) is kept."""
    return {key: _value_as_sent(value) for key, value in values.items()}


def _fields_as_sent(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level ``fields`` as the client writes them: ids as their text (``userId=42``
    finds ``"42"``), a ``timestamp`` as UTC with milliseconds (a ``datetime`` or any
    ISO-8601 text of the same instant); the rest as :func:`_as_sent` says."""
    sent = _as_sent(fields)
    # A value the client would refuse (a matcher such as mock.ANY) is kept as given.
    for key in _ID_FIELDS.intersection(fields):
        with contextlib.suppress(InvalidMessage):
            sent[key] = stringify_id(key, fields[key])
    for key in _TIME_FIELDS.intersection(fields):
        value = fields[key]
        if isinstance(value, str):  # text without an offset: read as its datetime is
            value = _naive_time(value) or value
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            with contextlib.suppress(InvalidMessage):
                sent[key] = _EitherReading(value)
        elif isinstance(value, (str, dt.datetime)):
            with contextlib.suppress(InvalidMessage):
                sent[key] = timestamp_as_sent(value)
    return sent


def _naive_time(text: str) -> dt.datetime | None:
    """The naive time ISO-8601 ``text`` without an offset writes, else None."""
    try:
        when = fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is None else None


class _EitherReading:
    """A naive timestamp as the client may have sent it: UTC, or local time when it
    was the local clock's now as the call was made, which a later look cannot tell
    but by how near now it still is (a test's calls came within the day)."""

    def __init__(self, naive: dt.datetime) -> None:
        self.texts = {timestamp_as_sent(naive)}
        with contextlib.suppress(Exception):  # a subclass that refuses: its UTC reading
            if abs(dt.datetime.now() - naive) < _A_DAY:
                self.texts.add(timestamp_as_sent(as_local_time(naive)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other in self.texts

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return " or ".join(sorted(self.texts))


_ID_FIELDS = frozenset({"userId", "anonymousId", "groupId", "previousId"})
_A_DAY = dt.timedelta(days=1)
_TIME_FIELDS = frozenset({"timestamp", "originalTimestamp"})


def _value_as_sent(value: Any) -> Any:
    try:
        return decode(encode(value))
    except InvalidMessage:
        pass
    # Something in it JSON cannot hold (a matcher): the rest as sent around it.
    if isinstance(value, Mapping):
        return {key: _value_as_sent(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value_as_sent(item) for item in value]
    return value
