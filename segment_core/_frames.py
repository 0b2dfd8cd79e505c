"""The frame each thread runs, read without a deadlock of CPython before 3.12."""

from __future__ import annotations

import gc
import sys
from types import CodeType, FrameType

__all__ = ["current_frames", "frame_running", "runs_in"]


def current_frames() -> dict[int, FrameType]:
    """``sys._current_frames()``, with the cycle collector held off while it runs.

    Before Python 3.12 it makes the frames' objects while it holds the interpreter's
    list of threads: a collection they start that frees a ``threading.local`` takes
    that lock again, and the thread waits for itself for good.
    """
    if not gc.isenabled():
        return sys._current_frames()
    gc.disable()
    try:
        return sys._current_frames()
    finally:
        gc.enable()


def runs_in(code: CodeType | None, frame: FrameType | None) -> bool:
    """Whether ``frame``, or a frame that called it, runs ``code``."""
    return frame_running(code, frame) is not None


def frame_running(code: CodeType | None, frame: FrameType | None) -> FrameType | None:
    """``frame``, or the frame that called it, that runs ``code``; None when none does."""
    while frame is not None:
        if frame.f_code is code:
            return frame
        frame = frame.f_back
    return None
