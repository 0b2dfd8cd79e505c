"""Pure functions that pack encoded messages into request bodies within Segment's limits."""

from __future__ import annotations

import bisect
import itertools
import operator
from collections import deque
from collections.abc import Iterable, Sequence

from segment_core.encoding import encode

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "batch_body",
    "pack",
    "take_batch",
]

#: Segment rejects a message over 32 KB serialized.
MAX_MESSAGE_BYTES = 32 * 1024
#: Segment accepts 500 KB per request; leave headroom for the envelope and proxies.
MAX_BATCH_BYTES = 475_000
#: Segment accepts at most 2,500 messages per batch.
MAX_BATCH_MESSAGES = 2500

_HEAD = b'{"batch":['
# '],"sentAt":"2024-01-01T00:00:00.000Z","writeKey":' plus the closing brace.
_ENVELOPE_FIXED = len(_HEAD) + len(b'],"sentAt":"2024-01-01T00:00:00.000Z","writeKey":}')


def envelope_size(write_key: str) -> int:
    """Bytes a body adds around its messages for this write key."""
    return _ENVELOPE_FIXED + len(encode(write_key))


def take_batch(
    buffer: deque[bytes],
    *,
    max_messages: int = MAX_BATCH_MESSAGES,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[bytes]:
    """Pop from the left of ``buffer`` as many messages as fit in one body.

    ``max_bytes`` bounds the joined messages with their commas; the caller leaves
    room for the envelope. Always takes at least one message when there is one
    (every message is at most ``MAX_MESSAGE_BYTES``, far below any batch limit).
    """
    popleft = buffer.popleft
    batch = [popleft() for _ in range(min(len(buffer), max_messages))]
    if sum(map(len, batch)) + len(batch) - 1 <= max_bytes:
        return batch  # nearly always: everything waiting fits
    # Cut where the next message would pass max_bytes (each comes with a comma),
    # and put the rest back in front, in order. Only appends race this: at the right.
    ends = list(map(operator.add, itertools.accumulate(map(len, batch)), range(len(batch))))
    fits = max(1, bisect.bisect_right(ends, max_bytes))
    buffer.extendleft(reversed(batch[fits:]))
    del batch[fits:]
    return batch


def pack(
    messages: Iterable[bytes],
    *,
    max_messages: int = MAX_BATCH_MESSAGES,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[list[bytes]]:
    """Every message, in order, in as few batches as the limits allow."""
    buffer = deque(messages)
    batches = []
    while buffer:
        batches.append(take_batch(buffer, max_messages=max_messages, max_bytes=max_bytes))
    return batches


def batch_body(messages: Sequence[bytes], *, write_key: str, sent_at: str) -> bytes:
    """The JSON body of ``POST /v1/batch``, joined from already encoded messages."""
    return b"".join(
        (
            _HEAD,
            b",".join(messages),
            b'],"sentAt":"',
            sent_at.encode(),
            b'","writeKey":',
            encode(write_key),
            b"}",
        )
    )
