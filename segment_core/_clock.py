"""The clock of every elapsed-time measurement: deadlines, intervals, backoff, batch age.

Test suites freeze time for the timestamps they assert. freezegun replaces
``time.monotonic`` too, in the ``time`` module and in every module holding it; its
fake answers the real time only to calls a few frames from the ``threading``
module: a batch's age set on the caller's thread and read by a sender would be
years off, and a deadline set on a frozen clock would never come.

So the library reads the original function through its bound ``__call__``, an
object freezegun does not recognise and leaves in place, and as cheap to call.
Loaded while time is frozen, when ``time.monotonic`` is already the fake, it reads
``clock_gettime(CLOCK_MONOTONIC)``, which neither freezegun nor time-machine
patches (time-machine leaves ``time.monotonic`` alone).

Wall-clock times (a message's ``timestamp``, ``sentAt``, an HTTP date) keep
reading the clock a test may freeze: tests assert them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from types import BuiltinFunctionType

__all__ = ["monotonic"]


def _unpatched_monotonic() -> Callable[[], float]:
    if isinstance(time.monotonic, BuiltinFunctionType):  # the original
        return time.monotonic.__call__
    clock_id = getattr(time, "CLOCK_MONOTONIC", None)
    if clock_id is None:  # Windows has no clock_gettime
        return time.monotonic
    return functools.partial(time.clock_gettime, clock_id)


#: Seconds of a clock that only goes forward, and that time-freezing libraries leave alone.
monotonic: Callable[[], float] = _unpatched_monotonic()
