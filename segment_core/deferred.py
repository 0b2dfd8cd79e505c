"""A web request's automatic page message, built and encoded by the sender thread.

Every value of the automatic page call is one the request's tracker derived
itself, as strings of bounded size: nothing of it can fail the Spec's checks, and
no caller waits for an error. So the request thread only hands over the values
(and the time of the call), and the sender builds and encodes the message when
it takes the batch: one thread doing the same work for a whole batch, with its
code and data still in the processor's caches, instead of once in every request.

The message is built once, whoever asks first: the sender, or the request reading
``analytics.page_message`` or the context the message holds (then it is built at
that moment, before the context can change). Its id is drawn when it is built.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from segment_core.batching import MAX_MESSAGE_BYTES
from segment_core.encoding import encode, encode_simple
from segment_core.errors import InvalidMessage
from segment_core.normalize import CheckedContext
from segment_core.returned import complete

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = ["SIZE_ESTIMATE", "DeferredPage"]

logger = logging.getLogger("segment.core")

#: What a deferred message counts for when the sender cuts batches by size before
#: encoding them (about an automatic page message's size); the batch is cut again
#: by the encoded sizes before it is sent.
SIZE_ESTIMATE = 1024

# One build at a time: the request thread and the sender may both ask for a message.
_build_lock = threading.Lock()


def _new_lock() -> None:
    global _build_lock
    _build_lock = threading.Lock()  # a sender may have held it at the fork


os.register_at_fork(after_in_child=_new_lock)


class DeferredPage:
    """The automatic page call's values, until the message is asked for."""

    __slots__ = (
        "_anonymous_id",
        "_client",
        "_context",
        "_data",
        "_message",
        "_name",
        "_properties",
        "_timestamp",
        "_user_id",
    )

    def __init__(
        self,
        client: Client,
        user_id: str | None,
        anonymous_id: str | None,
        name: str | None,
        properties: dict[str, str],
        context: CheckedContext,
        timestamp: str,
    ) -> None:
        self._client = client
        self._user_id = user_id
        self._anonymous_id = anonymous_id
        self._name = name
        self._properties = properties
        self._context = context
        self._timestamp = timestamp
        self._message: dict[str, Any] | None = None
        self._data: bytes | None = None

    def __len__(self) -> int:
        """Its encoded size once known; until then :data:`SIZE_ESTIMATE`."""
        data = self._data
        return SIZE_ESTIMATE if data is None else len(data)

    def message(self) -> dict[str, Any]:
        """The message as sent (the lean form: see :func:`complete`)."""
        message = self._message
        if message is None:
            message = self._build()[0]
        return message

    def data(self) -> bytes | None:
        """The encoded message, or None if it cannot be sent (logged and counted)."""
        if self._message is None:
            return self._build()[1]
        return self._data

    def _build(self) -> tuple[dict[str, Any], bytes | None]:
        with _build_lock:
            message = self._message
            if message is not None:
                return message, self._data
            factory = self._client._factory
            message = factory.request_page(
                self._user_id, self._anonymous_id, self._name, self._properties, self._context
            )
            message["timestamp"] = self._timestamp  # the time of the call
            data: bytes | None = None
            problem = None
            try:
                encoded = encode_simple(message) if factory._no_defaults else encode(message)
            except InvalidMessage as exc:
                problem = ("invalid", str(exc))
            else:
                if len(encoded) <= MAX_MESSAGE_BYTES:
                    data = encoded
                else:
                    size = f"{len(encoded)} bytes encoded, over Segment's {MAX_MESSAGE_BYTES}"
                    problem = ("too_large", size)
            self._data = data
            self._message = message
        if problem is not None:
            reason, why = problem
            logger.error(
                "segment: the automatic page call for %s was not sent: %s",
                str(self._properties.get("path", ""))[:200],
                why,
            )
            self._client._drop(complete(dict(message)), reason)
        return message, data
