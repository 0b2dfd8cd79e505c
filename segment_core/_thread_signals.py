"""The library's own threads leave the process's signals to the main thread.

A signal sent to the process goes to any one of its threads that does not block it.
Python runs a signal's handler on the main thread only, once that thread runs Python
code again: taken by a sender thread, a SIGTERM would wait while the main thread
sleeps in a call the signal did not interrupt (a ``multiprocessing`` pool worker
waiting for its next task), for ever. Blocked in every thread the library starts,
such a signal reaches the main thread, as it would in the process without them.
"""

from __future__ import annotations

import contextlib
import signal

__all__ = ["leave_signals_to_the_main_thread"]

#: The signals sent to a process to tell it something (not a fault of a thread's own).
_PROCESS_SIGNALS = frozenset(
    getattr(signal, name)
    for name in (
        "SIGTERM",
        "SIGINT",
        "SIGHUP",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGALRM",
        "SIGCHLD",
        "SIGWINCH",
        "SIGTTIN",
        "SIGTTOU",
    )
    if hasattr(signal, name)
)


def leave_signals_to_the_main_thread() -> None:
    """Block the process's signals in the calling thread, one the library started
    (not with gevent or eventlet: their threads are the main thread's greenlets)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        return
    from segment_core.lifecycle import _threads_are_green

    if _threads_are_green():
        return
    with contextlib.suppress(OSError, ValueError):  # never expected: it goes on as it was
        signal.pthread_sigmask(signal.SIG_BLOCK, _PROCESS_SIGNALS)
