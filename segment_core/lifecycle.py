"""Process lifecycle: nothing accepted is lost on a graceful exit.

- ``atexit``: every live client is shut down, each within its ``shutdown_timeout``.
- ``SIGTERM``: a handler is chained only where the process would otherwise die
  without running ``atexit`` (the handler is ``SIG_DFL``) and only from the main
  thread. Servers' own handlers (gunicorn, uvicorn, uWSGI) are never replaced.
- uWSGI: ``uwsgi.atexit`` is chained, with a warning when threads are disabled.
- gunicorn: put ``from segment_core.lifecycle import worker_exit`` in
  ``gunicorn.conf.py``; it shuts down every client as the worker exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import weakref
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = ["live_clients", "register", "shutdown_all", "worker_exit"]

logger = logging.getLogger("segment.core")

_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_lock = threading.Lock()
_installed = False
_sigterm_chained = False


def register(client: Client) -> None:
    """Track ``client`` so that it is shut down at exit."""
    global _installed
    with _lock:
        _clients.add(client)
        if not _installed:
            _installed = True
            atexit.register(shutdown_all)
            _chain_uwsgi()
    chain_sigterm()


def live_clients() -> list[Client]:
    return list(_clients)


def shutdown_all(timeout: float | None = None) -> bool:
    """Shut down every live client; True when everything accepted was delivered."""
    delivered = True
    for client in live_clients():
        try:
            delivered = client.shutdown(timeout) and delivered
        except Exception:  # never let one client stop the others at exit
            logger.exception("error while shutting down a Segment client")
            delivered = False
    return delivered


def worker_exit(server: Any = None, worker: Any = None) -> None:
    """gunicorn's ``worker_exit`` hook: deliver what the worker accepted before it exits."""
    shutdown_all()


def chain_sigterm() -> None:
    """Install the SIGTERM handler if the process has none and we are in the main thread."""
    global _sigterm_chained
    if _sigterm_chained or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or signals unavailable
        return
    _sigterm_chained = True


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    shutdown_all()
    # Then die the way SIG_DFL would have, so the exit status still says SIGTERM.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _chain_uwsgi() -> None:
    try:
        import uwsgi
    except ImportError:
        return
    previous = getattr(uwsgi, "atexit", None)

    def _uwsgi_atexit() -> None:
        shutdown_all()
        if previous is not None:
            previous()

    uwsgi.atexit = _uwsgi_atexit
    if not _uwsgi_threads_enabled(uwsgi):
        logger.warning(
            "uWSGI runs without --enable-threads: the Segment sender thread only runs "
            "while a request is being handled, so events may wait until the next request "
            "or the worker's exit. Start uWSGI with --enable-threads, or set "
            "sync_mode=True to send on the calling thread."
        )


def _uwsgi_threads_enabled(uwsgi: Any) -> bool:
    # uWSGI says itself whether Python threads run (has_threads); its options are
    # only a fallback for versions that do not.
    has_threads = getattr(uwsgi, "has_threads", None)
    if has_threads is not None:
        return bool(has_threads)
    options = getattr(uwsgi, "opt", {})
    for name in ("enable-threads", "threads"):
        value = options.get(name)
        if value not in (None, b"", "", b"0", "0", False, 0):
            return True
    return False
