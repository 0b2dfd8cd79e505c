"""What the library redoes in a forked child, however the child was made.

``os.fork()`` runs the handlers given to ``os.register_at_fork``. A uWSGI worker
forked from the master that loaded the app does not, unless uWSGI runs with
``--py-call-osafterfork``: there the same handlers run from uWSGI's post-fork
hook. Without them, every worker would share the master's spool files, locks
and sender state. Each handler runs once per process, whichever of the two
calls first. (An app that imports ``uwsgidecorators`` after segment_core
replaces that hook: the client's own fork checks remain, and in uWSGI each id
checks its process, see ``normalize``.)

uWSGI forks its workers from its master, where the app is loaded (unless it runs
with ``lazy-apps``), without taking the GIL first: a Python thread running in the
master then is copied into each worker as the GIL's holder, and the worker waits
for the GIL forever. Threads are started there only once uWSGI has forked, by
the handlers given to :func:`in_every_uwsgi_worker`.

Locks are made in a child at their first use there, not by these handlers (see
:class:`ProcessLock`): gunicorn's gevent and eventlet workers monkey-patch
``threading`` after the fork, and only what is made after that is green.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["ProcessLock", "forks_uwsgi_workers", "in_every_child", "in_every_uwsgi_worker"]

_handlers: list[Callable[[], None]] = []
_uwsgi_handlers: list[Callable[[], None]] = []
#: uWSGI's module, in a process that runs in uWSGI.
_uwsgi: Any = None
#: The process the handlers last ran in (or were registered in).
_done_in = os.getpid()


def in_every_child(handler: Callable[[], None]) -> None:
    """Run ``handler`` in every child process forked from now on, first thing."""
    _handlers.append(handler)


def in_every_uwsgi_worker(handler: Callable[[], None]) -> None:
    """Run ``handler`` in every process uWSGI forks (a worker, a mule), after the
    handlers of :func:`in_every_child`; never after the app's own ``os.fork()``.

    It runs on the process's main thread, before its first request.
    """
    _uwsgi_handlers.append(handler)


def forks_uwsgi_workers() -> bool:
    """Whether uWSGI forks its workers from this process: its master with the app
    loaded there (no ``lazy-apps``), or the first process when there is no master."""
    uwsgi = _uwsgi
    if uwsgi is None:
        return False
    spooler = getattr(uwsgi, "i_am_the_spooler", None)
    return not (uwsgi.worker_id() or uwsgi.mule_id() or (spooler is not None and spooler()))


class ProcessLock:
    """A lock of its own in each process, made at its first use there.

    A forked child never sees the parent's, which another thread of the parent may
    have held as the fork came. It is made once the child runs its own code, not at
    the fork: gunicorn's gevent and eventlet workers monkey-patch ``threading`` after
    the fork, and a lock made before that is an OS lock, on which one waiting green
    thread stops every other one (the one holding it included).
    """

    __slots__ = ("_by_process",)

    def __init__(self) -> None:
        self._by_process: dict[int, threading.Lock] = {}

    def _here(self) -> threading.Lock:
        pid = os.getpid()
        lock = self._by_process.get(pid)
        if lock is None:
            # setdefault is atomic: of threads racing here, all get the first one's.
            lock = self._by_process.setdefault(pid, threading.Lock())
            for other in [key for key in list(self._by_process) if key != pid]:
                self._by_process.pop(other, None)  # a parent's: never this process's again
        return lock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._here().acquire(blocking, timeout)

    def release(self) -> None:
        self._here().release()

    def __enter__(self) -> bool:
        return self._here().acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._here().release()


def _after_uwsgi_fork() -> None:
    _run_in_child()
    for handler in _uwsgi_handlers:
        handler()


def _run_in_child() -> None:
    global _done_in
    pid = os.getpid()
    if pid == _done_in:
        return
    _done_in = pid
    for handler in _handlers:
        handler()


def _hook_uwsgi() -> bool:
    """Hook uWSGI's post-fork when running in it; whether it is."""
    global _uwsgi
    try:
        import uwsgi
    except ImportError:
        return False
    _uwsgi = uwsgi
    # uWSGI's decorators module sets the hook to its own chain as it is imported:
    # join that chain when it is there (importing it ourselves would replace the
    # app's spooler and mule hooks), else chain the hook.
    decorators: Any = sys.modules.get("uwsgidecorators")
    if decorators is not None:
        decorators.postfork(_after_uwsgi_fork)
        return True
    previous = getattr(uwsgi, "post_fork_hook", None)

    def post_fork() -> None:
        _after_uwsgi_fork()
        if previous is not None:
            previous()

    uwsgi.post_fork_hook = post_fork
    return True


os.register_at_fork(after_in_child=_run_in_child)
#: Whether this process runs in uWSGI (whose workers may run no at-fork handler).
UNDER_UWSGI = _hook_uwsgi()
