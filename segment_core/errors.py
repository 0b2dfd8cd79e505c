"""Exceptions raised by segment_core."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DeliveryError", "InvalidMessage"]


class InvalidMessage(ValueError):
    """A call was made with a message that cannot be sent (a programmer error).

    Raised at the call site: a missing id or event name, a value that cannot be
    encoded, a message over the size limit. The text names the field at fault.
    """


class DeliveryError(Exception):
    """A batch could not be delivered: passed to ``on_error`` and ``batch_failed``."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def code(self) -> str:
        """The answer's JSON ``code``, else ``"unknown"`` (as analytics-python's ``APIError``)."""
        return str(self._answer().get("code", "unknown"))

    @property
    def message(self) -> str:
        """The answer's JSON ``message``, else its text (as ``APIError.message``)."""
        answer = self._answer()
        return str(answer["message"]) if "message" in answer else self.body or str(self)

    def _answer(self) -> dict[str, Any]:
        try:
            answer = json.loads(self.body) if self.body else None
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}
