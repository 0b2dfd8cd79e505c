"""What the library redoes in a forked child, however the child was made.

``os.fork()`` runs the handlers given to ``os.register_at_fork``. A uWSGI worker
forked from the master that loaded the app does not, unless uWSGI runs with
``--py-call-osafterfork``: there the same handlers run from uWSGI's post-fork
hook. Without them, every worker would share the master's spool files, locks
and sender state. Each handler runs once per process, whichever of the two
calls first. (An app that imports ``uwsgidecorators`` after segment_core
replaces that hook: the client's own fork checks remain, and in uWSGI each id
checks its process, see ``normalize``.)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["in_every_child"]

_handlers: list[Callable[[], None]] = []
#: The process the handlers last ran in (or were registered in).
_done_in = os.getpid()


def in_every_child(handler: Callable[[], None]) -> None:
    """Run ``handler`` in every child process forked from now on, first thing."""
    _handlers.append(handler)


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
    try:
        import uwsgi
    except ImportError:
        return False
    # uWSGI's decorators module sets the hook to its own chain as it is imported:
    # join that chain when it is there (importing it ourselves would replace the
    # app's spooler and mule hooks), else chain the hook.
    decorators: Any = sys.modules.get("uwsgidecorators")
    if decorators is not None:
        decorators.postfork(_run_in_child)
        return True
    previous = getattr(uwsgi, "post_fork_hook", None)

    def post_fork() -> None:
        _run_in_child()
        if previous is not None:
            previous()

    uwsgi.post_fork_hook = post_fork
    return True


os.register_at_fork(after_in_child=_run_in_child)
#: Whether this process runs in uWSGI (whose workers may run no at-fork handler).
UNDER_UWSGI = _hook_uwsgi()
