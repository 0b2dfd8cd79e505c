"""What a piece of code leaves to the cycle collector instead of freeing it at once."""

from __future__ import annotations

import gc
from collections.abc import Callable

from segment_core.web import RequestInfo, RequestTracker
from segment_core.web._tracker import RequestAnalytics

#: segment_core's objects of one request.
REQUEST_OBJECTS = (RequestTracker, RequestAnalytics, RequestInfo)


def left_to_the_collector(
    run: Callable[[], object], kinds: tuple[type, ...] = REQUEST_OBJECTS
) -> list[str]:
    """The type names of the objects of ``kinds`` that only the cycle collector frees
    after ``run()``: garbage kept alive by reference cycles."""
    gc.collect()
    gc.disable()
    try:
        run()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return sorted(type(o).__name__ for o in gc.garbage if isinstance(o, kinds))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
