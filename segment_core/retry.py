"""The retry policy of Segment's newest official library (see SPEC.md).

Retry 408, 410, 429, 460 and every 5xx but 501 and 505, and network errors;
never any other 4xx. Exponential backoff with full jitter, ``Retry-After``
honoured up to a cap, and a total time budget per batch.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import time

__all__ = ["backoff_delay", "is_retryable_status", "parse_http_date", "parse_retry_after"]

_RETRYABLE_CLIENT_ERRORS = frozenset({408, 410, 429, 460})
_FINAL_SERVER_ERRORS = frozenset({501, 505})


def is_retryable_status(status: int) -> bool:
    if status in _RETRYABLE_CLIENT_ERRORS:
        return True
    return 500 <= status <= 599 and status not in _FINAL_SERVER_ERRORS


def backoff_delay(
    attempt: int, *, minimum: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): full jitter.

    The ceiling doubles from ``minimum`` each attempt up to ``maximum``; the delay
    is drawn uniformly between ``minimum / 2`` and the ceiling so that retries from
    many processes spread out but never hammer the server back to back.
    """
    # Doubled at most 2,100 times: past that any positive float is beyond any ceiling.
    try:
        grown = math.ldexp(minimum, min(max(0, attempt - 1), 2_100))
    except OverflowError:  # beyond a float: the ceiling, whatever it is
        grown = maximum
    ceiling = min(maximum, grown)
    return (rng or random).uniform(min(minimum / 2, ceiling), ceiling)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    when = parse_http_date(value)
    if when is None:
        return None
    return max(0.0, when - (time.time() if now is None else now))


def parse_http_date(value: str) -> float | None:
    """An HTTP date (``Date``, ``Retry-After``) as a Unix time; None when unusable.

    A date without a usable zone (RFC 5322's ``-0000``) is read as UTC, as HTTP
    dates are, never as this machine's local time. A date whose year is out of
    Python's range (year 9999 plus an offset) is unusable, not an error.
    """
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        return when.timestamp()
    except (TypeError, ValueError, OverflowError):
        return None
