"""Blinker signals fired by every client; the sender is the :class:`Client`.

- ``message_enqueued(client, message=dict)``: a message was accepted.
- ``message_dropped(client, message=dict, reason=str)``: a message was not accepted
  (``"queue_full"``, ``"disabled"``, ``"shut_down"``, ``"before_send"``).
- ``batch_sent(client, count=int, status=int)``: a batch was delivered.
- ``batch_failed(client, error=Exception, count=int, retrying=bool)``: a request
  failed; ``retrying`` says whether it will be tried again.

Each receiver is called on its own: one that raises is logged (its first failure
at ERROR, with the traceback, the rest at DEBUG) and the others still run.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Hashable
from inspect import ismethod
from typing import Any

from blinker import NamedSignal, Namespace

from segment_core.config import is_async
from segment_core.errors import is_interruption

__all__ = [
    "batch_failed",
    "batch_sent",
    "emit",
    "message_dropped",
    "message_enqueued",
    "namespace",
]

logger = logging.getLogger("segment.core")

namespace = Namespace()

message_enqueued = namespace.signal("message_enqueued")
message_dropped = namespace.signal("message_dropped")
batch_sent = namespace.signal("batch_sent")
batch_failed = namespace.signal("batch_failed")


class FailureLog:
    """Logs the first failure of each hook at ERROR, the ones after it at DEBUG.

    A hook that fails on every message would otherwise log a traceback per message.
    ``hook`` is anything that tells the hooks apart (a name, an id).
    """

    def __init__(self) -> None:
        self._failed: set[Hashable] = set()

    def failed(self, hook: Hashable, text: str, *args: object, exc_info: bool = True) -> None:
        level = logging.DEBUG if hook in self._failed else logging.ERROR
        # Noted before it is logged: a handler that sends the record through the
        # client, whose hook fails again, logs that failure at DEBUG, not again.
        self._failed.add(hook)
        try:
            logger.log(level, text, *args, exc_info=exc_info, stacklevel=2)  # where it failed
        except BaseException:
            # The log call failed itself (a hook recursing into the client, out of stack
            # at this depth): the ERROR is left to the next failure.
            if level == logging.ERROR:
                self._failed.discard(hook)
            raise


#: The failures of each sender's receivers: a receiver failing for one client is
#: still logged at ERROR the first time it fails for another.
_receiver_failures: weakref.WeakKeyDictionary[object, FailureLog] = weakref.WeakKeyDictionary()


def emit(signal: NamedSignal, sender: object, **kwargs: Any) -> None:
    """Send ``signal`` if anyone listens; a receiver that raises is logged, never propagated."""
    if not signal.receivers:
        return
    if getattr(signal, "is_muted", False):  # blinker 1.7's Signal.muted()
        return
    for receiver in signal.receivers_for(sender):
        _call_receiver(signal, receiver, sender, kwargs)


def _call_receiver(
    signal: NamedSignal, receiver: Callable[..., Any], sender: object, kwargs: dict[str, Any]
) -> None:
    if is_async(receiver):  # as blinker's send(): nothing here awaits it
        _failures_of(sender).failed(
            _identity(receiver),
            "a receiver of the %s signal is a coroutine function; signals do not await it",
            signal.name,
            exc_info=False,
        )
        return
    try:
        receiver(sender, **kwargs)
    except Exception as error:
        if is_interruption(error):  # a job's time limit: it stops the job, not the receiver
            raise
        _failures_of(sender).failed(
            _identity(receiver), "a receiver of the %s signal raised", signal.name
        )


def _identity(receiver: Callable[..., Any]) -> Hashable:
    """What tells a receiver apart, without holding it (blinker holds most weakly)."""
    if ismethod(receiver):  # made anew at each access: its function and object are not
        return id(receiver.__func__), id(receiver.__self__)
    return id(receiver)


def _failures_of(sender: object) -> FailureLog:
    try:
        return _receiver_failures.setdefault(sender, FailureLog())
    except TypeError:  # a sender that cannot be weakly referenced: each failure is news
        return FailureLog()
