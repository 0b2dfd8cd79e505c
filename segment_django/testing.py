"""Assert what your Django views send to Segment, in one line, with no network.

::

    from segment_django.testing import capture_events

    def test_signup(client):
        with capture_events() as events:
            client.post("/signup/", {"email": "a@example.com"})
        events.assert_tracked("Signed Up", plan="free")

In a ``TestCase``, mix in :class:`SegmentTestMixin` and use ``self.segment_events``.
Every message any client would send is captured when it is accepted (the
automatic page call included), so nothing needs flushing.

Under ``manage.py test`` and pytest-django nothing is sent at all: the client
puts its events in :data:`outbox` (like ``mail.outbox``), unless
``SEGMENT["SEND_IN_TESTS"]`` is True::

    from segment_django.testing import outbox

    outbox.assert_tracked("Order Email Sent", order_id="o-1")

pytest empties it before each test; :class:`SegmentTestMixin` in ``setUp``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, overload

from segment_core import testing
from segment_core.encoding import decode, encode
from segment_core.errors import InvalidMessage
from segment_core.normalize import stringify_id, timestamp_as_sent
from segment_core.testing import capture

__all__ = ["CapturedEvents", "SegmentTestMixin", "capture_events", "outbox"]

Message = dict[str, Any]


class CapturedEvents(Sequence[Message]):
    """The messages captured so far (a live view), with finders and assertions."""

    def __init__(self, messages: list[Message]) -> None:
        self._messages = messages

    @overload
    def __getitem__(self, index: int) -> Message: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Message]: ...
    def __getitem__(self, index: int | slice) -> Message | Sequence[Message]:
        return self._messages[index]

    def __len__(self) -> int:
        return len(self._messages)

    def clear(self) -> None:
        """Forget what was captured so far."""
        self._messages.clear()

    def find(self, type: str | None = None, **fields: Any) -> list[Message]:
        """Messages of ``type`` whose top-level fields equal ``fields`` (camelCase keys).

        Values compare as sent: ``timestamp=datetime(...)`` finds its ISO-8601 text
        (a naive one taken as UTC, as the client takes it), ``userId=42`` finds ``"42"``.
        """
        expected = _fields_as_sent(fields)
        return [
            m
            for m in self._messages
            if (type is None or m.get("type") == type)
            and all(m.get(key) == value for key, value in expected.items())
        ]

    def tracks(self, event: str | None = None) -> list[Message]:
        return self.find("track") if event is None else self.find("track", event=event)

    def pages(self, name: str | None = None) -> list[Message]:
        return self.find("page") if name is None else self.find("page", name=name)

    def assert_tracked(self, event: str, **properties: Any) -> Message:
        """The one ``track`` of ``event`` whose properties include ``properties``.

        Values compare as sent, so the ones the view passed match: a ``Decimal``
        its number, a ``date``, ``datetime`` or ``UUID`` its text, a tuple its list.
        """
        return self._assert_one("track", {"event": event}, "properties", properties)

    def assert_page(self, name: str | None = None, **properties: Any) -> Message:
        """The one ``page`` named ``name`` whose properties include ``properties``."""
        where = {} if name is None else {"name": name}
        return self._assert_one("page", where, "properties", properties)

    def assert_identified(self, user_id: object, **traits: Any) -> Message:
        """The one ``identify`` of ``user_id`` whose traits include ``traits``."""
        return self._assert_one("identify", {"userId": str(user_id)}, "traits", traits)

    def assert_nothing_sent(self) -> None:
        # Raised, not asserted: these checks hold under python -O too.
        if self._messages:
            raise AssertionError(f"expected no Segment messages, got:\n{self._summary()}")

    def _assert_one(
        self, type: str, where: Mapping[str, Any], part: str, subset: Mapping[str, Any]
    ) -> Message:
        expected = _as_sent(subset)
        found = [
            m
            for m in self.find(type, **where)
            if all((m.get(part) or {}).get(key) == value for key, value in expected.items())
        ]
        wanted = ", ".join(f"{k}={v!r}" for k, v in {**where, **subset}.items())
        if len(found) != 1:
            raise AssertionError(
                f"expected one {type} with {wanted or 'any fields'}, found {len(found)}; "
                f"captured:\n{self._summary()}"
            )
        return found[0]

    def _summary(self) -> str:
        if not self._messages:
            return "  (nothing)"
        lines = []
        for m in self._messages:
            label = m.get("event") or m.get("name") or m.get("groupId") or ""
            detail = m.get("properties") or m.get("traits") or {}
            lines.append(f"  {m.get('type')} {label!r} {detail}")
        return "\n".join(lines)

    def __eq__(self, other: object) -> bool:
        """Equal to a list or tuple of the same messages, as ``mail.outbox`` is
        (``assert outbox == []``), and to another view of the same messages."""
        if isinstance(other, CapturedEvents):
            return self._messages == other._messages
        if isinstance(other, (list, tuple)):
            return self._messages == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a live view: it changes

    def __repr__(self) -> str:
        return f"<CapturedEvents {len(self)} message(s)>"


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
        if isinstance(value, (str, dt.datetime)):
            with contextlib.suppress(InvalidMessage):
                sent[key] = timestamp_as_sent(value)
    return sent


_ID_FIELDS = frozenset({"userId", "anonymousId", "groupId", "previousId"})
_TIME_FIELDS = frozenset({"timestamp", "originalTimestamp"})


def _value_as_sent(value: Any) -> Any:
    try:
        return decode(encode(value))
    except InvalidMessage:
        return value


#: What the Django client took instead of sending, under a test runner (a live view
#: of ``segment_core.testing.outbox``).
outbox = CapturedEvents(testing.outbox)


@contextmanager
def capture_events() -> Iterator[CapturedEvents]:
    """Capture every message sent while the block runs."""
    with capture() as messages:
        yield CapturedEvents(messages)


class SegmentTestMixin:
    """For ``django.test.TestCase``: ``self.segment_events`` captures each test's messages."""

    segment_events: CapturedEvents

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        outbox.clear()
        manager = capture_events()
        self.segment_events = manager.__enter__()
        self.addCleanup(manager.__exit__, None, None, None)  # type: ignore[attr-defined]
