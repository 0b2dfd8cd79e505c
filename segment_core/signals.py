"""Blinker signals fired by every client; the sender is the :class:`Client`.

- ``message_enqueued(client, message=dict)``: a message was accepted.
- ``message_dropped(client, message=dict, reason=str)``: a message was not accepted
  (``"queue_full"``, ``"disabled"``, ``"shut_down"``, ``"before_send"``).
- ``batch_sent(client, count=int, status=int)``: a batch was delivered.
- ``batch_failed(client, error=Exception, count=int, retrying=bool)``: a request
  failed; ``retrying`` says whether it will be tried again.
"""

from __future__ import annotations

import logging
from typing import Any

from blinker import NamedSignal, Namespace

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


def emit(signal: NamedSignal, sender: object, **kwargs: Any) -> None:
    """Send ``signal`` if anyone listens; a receiver that raises is logged, never propagated."""
    if not signal.receivers:
        return
    try:
        signal.send(sender, **kwargs)
    except Exception as error:
        if is_interruption(error):  # a job's time limit: it stops the job, not the receiver
            raise
        logger.exception("a receiver of the %s signal raised", signal.name)
