"""How much memory a call leaves behind, measured with tracemalloc."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable


def memory_kept(call: Callable[[int], object], times: int = 200) -> int:
    """Bytes still allocated after ``call(0)`` … ``call(times - 1)`` (one warm-up call first)."""
    call(-1)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number in range(times):
            call(number)
        gc.collect()
        return int(tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()
