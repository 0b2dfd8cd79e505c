"""Exceptions raised by segment_core."""

from __future__ import annotations

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
