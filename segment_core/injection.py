"""An injected clock and id generator (options ``now`` and ``uid``), as in analytics-go.

They make messages deterministic in a user's tests::

    client = Client(KEY, now=lambda: FIXED_TIME, uid=lambda: "id-1")

Both are user hooks: one that raises or returns something unusable is logged and
the call goes on with the system clock or a random id. Without them the client
uses :class:`MessageFactory` itself, so they cost nothing when unset.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from segment_core.encoding import format_timestamp
from segment_core.errors import is_interruption
from segment_core.jsonvalues import short_repr
from segment_core.normalize import MAX_MESSAGE_ID_LENGTH, MessageFactory
from segment_core.signals import FailureLog

__all__ = ["InjectedMessageFactory"]


class InjectedMessageFactory(MessageFactory):
    """A :class:`MessageFactory` taking default timestamps and message ids from hooks."""

    def __init__(
        self,
        default_context: Mapping[str, Any] | None,
        default_integrations: Mapping[str, Any] | None,
        *,
        now: Callable[[], dt.datetime] | None,
        uid: Callable[[], str] | None,
    ) -> None:
        super().__init__(default_context, default_integrations)
        self._now = now
        self._uid = uid
        self._failures = FailureLog()  # called on every message: one error, then debug

    def _start(  # type: ignore[override]
        self,
        kind: str,
        user_id: object,
        anonymous_id: object,
        timestamp: object,
        message_id: object,
    ) -> dict[str, Any]:
        if timestamp is None and self._now is not None:
            timestamp = self._timestamp()
        if (message_id is None or message_id == "") and self._uid is not None:  # "": none given
            message_id = self._message_id()
        return MessageFactory._start(kind, user_id, anonymous_id, timestamp, message_id)

    def _timestamp(self) -> dt.datetime | None:
        assert self._now is not None
        try:
            value = self._now()
        except Exception as error:
            if is_interruption(error):  # a job's time limit: it stops the job, not the hook
                raise
            self._complain("now", "raised", exc_info=True)
            return None
        try:
            aware = isinstance(value, dt.datetime) and value.utcoffset() is not None
        except Exception as error:  # a tzinfo that fails: no usable clock either
            if is_interruption(error):
                raise
            aware = False
        if not aware:
            self._complain("now", f"must return an aware datetime, got {short_repr(value)}")
            return None
        try:
            format_timestamp(value)  # as the message will be: a time in UTC, years 1 to 9999
        except (ValueError, OverflowError):
            self._complain("now", f"returned {short_repr(value)}, which no timestamp can hold")
            return None
        return value

    def _message_id(self) -> str | None:
        assert self._uid is not None
        try:
            value = self._uid()
        except Exception as error:
            if is_interruption(error):
                raise
            self._complain("uid", "raised", exc_info=True)
            return None
        if isinstance(value, uuid.UUID):  # uuid.uuid4 itself: its text, as message_id=
            value = str(value)
        if not isinstance(value, str) or not 0 < len(value) <= MAX_MESSAGE_ID_LENGTH:
            self._complain(
                "uid",
                f"must return a string of 1 to {MAX_MESSAGE_ID_LENGTH} characters, "
                f"got {short_repr(value)}",
            )
            return None
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:  # a lone surrogate: no JSON text can hold it
                self._complain("uid", f"returned {short_repr(value)}, which UTF-8 cannot hold")
                return None
        return value

    def _complain(self, hook: str, problem: str, *, exc_info: bool = False) -> None:
        fallback = "the system clock" if hook == "now" else "a random id"
        self._failures.failed(
            hook, "%s hook %s; using %s", hook, problem, fallback, exc_info=exc_info
        )
