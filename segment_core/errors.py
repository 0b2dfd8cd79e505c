"""Exceptions raised by segment_core."""

from __future__ import annotations

import http
import json
import signal
import sys
from types import CodeType
from typing import Any, cast

__all__ = ["DeliveryError", "DeliveryResponse", "InvalidMessage", "MessageTooLarge"]

#: What job runners raise inside a running job to stop it at its time limit, from a
#: signal handler or from another thread: RQ's ``job_timeout`` and Celery's
#: ``soft_time_limit``. Looked up where already imported: never imported here.
_TIME_LIMITS = (
    ("rq.timeouts", "JobTimeoutException"),
    ("billiard.exceptions", "SoftTimeLimitExceeded"),
)


class InvalidMessage(ValueError, AssertionError):
    """A call was made with a message that cannot be sent (a programmer error).

    Raised at the call site: a missing id or event name, a value that cannot be
    encoded, a message over the size limit. The text names the field at fault.
    An ``AssertionError`` too: what analytics-python raises for a bad call, which
    code written for it catches.
    """


class MessageTooLarge(InvalidMessage):
    """A message over Segment's 32 KB limit; ``size``: its bytes encoded; the
    ``message_id`` and ``timestamp`` it had."""

    def __init__(
        self,
        text: str,
        size: int = 0,
        message_id: str | None = None,
        timestamp: str | None = None,
    ) -> None:
        super().__init__(text)
        self.size = size
        self.message_id = message_id
        self.timestamp = timestamp


class DeliveryError(Exception):
    """A batch could not be delivered: passed to ``on_error`` and ``batch_failed``."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def code(self) -> Any:
        """As analytics-python's ``APIError`` has it: ``"redirect"`` for a redirect
        not followed (a 3xx), else the answer's JSON ``code`` as it is when the
        answer holds both a ``code`` and a ``message``, else ``"unknown"``."""
        if self._redirected():
            return "redirect"
        answer = self._answer()
        return answer["code"] if "code" in answer and "message" in answer else "unknown"

    @property
    def message(self) -> Any:
        """As ``APIError.message``: a redirect's status phrase, else the answer's JSON
        ``message`` as it is when the answer holds both a ``code`` and a ``message``,
        else the answer's text as it came. With no text at all (a network error, a
        refused OAuth token, an empty answer), what went wrong."""
        if self._redirected():
            return DeliveryResponse(cast(int, self.status), self.body).reason
        answer = self._answer()
        if "code" in answer and "message" in answer:
            return answer["message"]
        return self.body or str(self)

    def _redirected(self) -> bool:
        return self.status is not None and 300 <= self.status < 400

    @property
    def response(self) -> DeliveryResponse | None:
        """Segment's answer, read as analytics-python's ``APIError.response`` (a
        ``requests`` response) is: ``status_code``, ``reason``, ``text``, ``content``,
        ``ok`` and ``json()``. None when no answer came (a network error)."""
        if self.status is None:
            return None
        return DeliveryResponse(self.status, self.body)

    def _answer(self) -> dict[str, Any]:
        try:
            # A byte-order mark before the JSON: requests' json() reads past it too.
            answer = json.loads(self.body.removeprefix("\ufeff")) if self.body else None
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}


class DeliveryResponse:
    """The answer a :class:`DeliveryError` came with: its status and its text (its
    first 500 bytes), named as a ``requests`` response names them."""

    __slots__ = ("status_code", "text")

    def __init__(self, status_code: int, text: str) -> None:
        self.status_code = status_code
        self.text = text

    @property
    def reason(self) -> str:
        """The status's phrase (``Bad Request``), or ``""`` for a status with none."""
        try:
            return http.HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def content(self) -> bytes:
        return self.text.encode()

    @property
    def ok(self) -> bool:
        """As ``requests`` has it: a status below 400."""
        return self.status_code < 400

    def json(self) -> Any:
        """The text read as JSON; :class:`ValueError` if it is none."""
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"<DeliveryResponse [{self.status_code}]>"


def is_interruption(error: BaseException) -> bool:
    """Whether ``error`` stops the program's work rather than reports a failure of the code
    it came out of.

    A guard that keeps going after an error (around a user hook, around the spool's
    disk) lets these through: anything not an ``Exception`` (``KeyboardInterrupt``,
    ``SystemExit``), a job's time limit (RQ's ``JobTimeoutException``, Celery's
    ``SoftTimeLimitExceeded``), and any exception a signal handler raised, which
    lands wherever the program happens to be and belongs to the program (an
    ``alarm()`` that raises ``TimeoutError``, say).
    """
    if not isinstance(error, Exception):
        return True
    for module_name, class_name in _TIME_LIMITS:
        limit = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(limit, type) and isinstance(error, limit):
            return True
    return _raised_by_signal_handler(error)


def _raised_by_signal_handler(error: BaseException) -> bool:
    """Whether a Python signal handler installed now is among the frames ``error`` left."""
    traceback = error.__traceback__
    if traceback is None:
        return False
    handlers = _signal_handler_codes()
    while traceback is not None:
        if traceback.tb_frame.f_code in handlers:
            return True
        traceback = traceback.tb_next
    return False


def _signal_handler_codes() -> set[CodeType]:
    codes = set()
    for number in range(1, signal.NSIG):  # (plain numbers: a set of enums takes longer)
        try:
            handler = signal.getsignal(number)
        except (OSError, ValueError):  # a number this platform does not use
            continue
        function = getattr(handler, "__func__", handler)  # a bound method's function
        code = getattr(function, "__code__", None)
        if isinstance(code, CodeType):
            codes.add(code)
    return codes
