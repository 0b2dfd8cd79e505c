"""Process lifecycle: nothing accepted is lost on a graceful exit.

- ``atexit``: every live client is shut down, each within its ``shutdown_timeout``.
  Registered as the package is imported: ``atexit`` runs the last registered
  first, so what the app registers afterwards (a handler that tracks a last
  event) runs while the clients still accept calls.
- ``SIGTERM``: a handler is chained only where the process would otherwise die
  without running ``atexit`` (the handler is ``SIG_DFL``, and nothing outside
  Python catches it, as gevent's ``signal_handler()`` does), only from the main
  thread, and only once there is something to deliver for: a client built there,
  a first message queued there, or ``segment_core.write_key`` set there, as a
  script that calls from worker threads only does. Importing the
  package changes nothing about how the process dies (a Python-level handler
  waits for the main thread to leave C code; ``faulthandler.register`` installs
  one Python cannot see). Servers' own handlers (gunicorn, uvicorn, uWSGI) are never
  replaced. It delivers, then ends the process as ``SIG_DFL`` would; a signal
  that stops the main thread inside a client lets that call finish (it may hold
  a lock the delivery needs) while another thread delivers; one that comes while
  ``atexit`` delivers lets that delivery finish (within ``shutdown_timeout``), then
  ends the process. With ``SEGMENT_WRITE_KEY`` set, the package's import on the
  main thread chains it too: the process is set up to send. A forked child starts
  with SIGTERM's default action, chained again by its first message; SIGTERM is
  held across the fork (see :func:`_hold_sigterm`), so a child terminated as it
  starts (``Pool.terminate()``) still ends.
- A child forked from a thread other than the main one ends, without ``atexit``,
  when its last thread does: once its own threads have ended, its clients are shut
  down (see :func:`_watch_main_thread_forked_off`).
- uWSGI: ``uwsgi.atexit`` is chained, with a warning when threads are disabled.
- gunicorn: put ``from segment_core.lifecycle import worker_exit`` in
  ``gunicorn.conf.py``; it delivers what the worker accepted as it exits (the
  ``atexit`` delivery that may follow shares its ``shutdown_timeout``); a worker
  recycled by ``max_requests`` leaves it to its spool as a recycled Celery child does.
- Job runners whose processes end after each job (an RQ work-horse, a recycled
  Celery child) call ``shutdown_all(leave_to_spool=True)``.
- ASGI: the app's lifespan shutdown flushes first (see ``lifespan``); the exit's
  delivery that follows shares that flush's ``shutdown_timeout`` (see
  :func:`shutdown_flush_ended`).
- A development server's reloader (Django's ``runserver``, Werkzeug's, uvicorn's
  ``--reload``) serves the edited code only once the old process has ended: there
  the delivery as it ends waits at most :data:`RELOAD_WAIT` (see :func:`shutdown_wait`).
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import importlib
import logging
import math
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from segment_core import _forks
from segment_core._clock import monotonic
from segment_core._frames import current_frames, frame_running

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = [
    "chain_sigterm",
    "live_clients",
    "register",
    "reloaded_by_dev_server",
    "shutdown_after_app_threads",
    "shutdown_all",
    "shutdown_flush_ended",
    "shutdown_wait",
    "worker_exit",
]

logger = logging.getLogger("segment.core")

_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_lock = _forks.ProcessLock()
_uwsgi_chained = False
_sigterm_chained = False
#: The process whose exit waited for the app's threads (see shutdown_after_app_threads).
_app_threads_waited_in: int | None = None
#: None; "delivering" once SIGTERM came; "delivered" once every client shut down.
_sigterm_state: str | None = None
#: The process whose ``multiprocessing`` exit shuts the clients down.
_exit_hooked_in: int | None = None
#: The Celery prefork child whose ``worker_process_shutdown`` shuts the clients down.
_celery_hooked_in: int | None = None
#: The RQ work-horse whose ``os._exit`` shuts the clients down.
_rq_hooked_in: int | None = None
#: The gunicorn worker of this process, as gunicorn's arbiter forked it (if it did).
_gunicorn_worker: Any = None
#: Clients whose flush at the app's shutdown ran out of time: when it did, and how
#: many batches they had delivered by then.
_flush_ran_out: weakref.WeakKeyDictionary[Client, tuple[float, int]] = weakref.WeakKeyDictionary()


def register(client: Client) -> None:
    """Track ``client`` so that it is shut down at exit."""
    global _uwsgi_chained
    with _lock:
        _clients.add(client)
        if not _uwsgi_chained:
            _uwsgi_chained = True
            _chain_uwsgi()
        _hook_multiprocessing_exit()
        _hook_celery_child_exit()
        _hook_rq_work_horse_exit()
        _watch_main_thread_forked_off()
    chain_sigterm()


def _hook_multiprocessing_exit() -> None:
    """In a ``multiprocessing`` child, shut down as it ends (once per process).

    A child started by fork or forkserver (a ``Process``, a ``Pool``'s worker)
    leaves through ``os._exit()``, past ``atexit``; the exit function of
    ``multiprocessing`` runs its finalizers first.
    """
    global _exit_hooked_in
    if _exit_hooked_in == os.getpid() or not _in_a_child_of_a_pool():
        return
    _exit_hooked_in = os.getpid()
    from multiprocessing import util

    # billiard's children (Celery's prefork pool) run the same finalizers as they end.
    util.Finalize(None, shutdown_after_app_threads, exitpriority=0)


def _hook_celery_child_exit() -> None:
    """In a child of Celery's prefork pool, shut down as it ends (once per process).

    Recycled (``--max-tasks-per-child``) or stopped, it leaves through
    ``os._exit()`` from inside its work loop, past ``atexit`` and the finalizers;
    Celery's ``worker_process_shutdown`` signal comes first. ``SegmentCelery``
    delivers there too; this covers an app that only uses ``segment_core``.
    """
    global _celery_hooked_in
    if _celery_hooked_in == os.getpid():
        return
    celery_signals = sys.modules.get("celery.signals")
    if celery_signals is None or not _in_a_child_of_a_pool():
        return
    _celery_hooked_in = os.getpid()
    celery_signals.worker_process_shutdown.connect(_shut_down_as_celery_child_exits, weak=False)
    # A first message the app's own receiver of that signal accepts comes too late for
    # it (Celery reads the receivers before it calls them): the exit delivers it.
    _deliver_before_os_exit("a Celery child")


def _shut_down_as_celery_child_exits(**ignored: Any) -> None:
    shutdown_after_app_threads(leave_to_spool=True)


def _hook_rq_work_horse_exit() -> None:
    """In an RQ work-horse, deliver as it leaves through ``os._exit()`` (once per
    process).

    RQ forks one per job and ends it with ``os._exit()``, past ``atexit``;
    ``segment_rq.Worker`` delivers as each job ends. A horse of another worker class
    (the plain ``rq worker``: an app that only changed its import) has its
    ``os._exit`` deliver first, within one ``shutdown_timeout``.
    """
    global _rq_hooked_in
    if _rq_hooked_in == os.getpid() or "rq.worker" not in sys.modules:
        return
    worker = _rq_worker_of_this_horse()
    if worker is None or getattr(worker, "_segment_in_horse", False):
        return
    _rq_hooked_in = os.getpid()
    _deliver_before_os_exit("an RQ work-horse")


def _deliver_before_os_exit(process: str) -> None:
    """Have this process's ``os._exit()`` deliver first, within one ``shutdown_timeout``
    (a fork's child: no other process runs this one's code). A job runner's process,
    which ends after a job or a few: with a spool, what a failed send left stays on
    disk for the next one (``leave_to_spool``)."""
    leave = os._exit

    def deliver_then_exit(status: int) -> NoReturn:
        try:
            shutdown_after_app_threads(leave_to_spool=True)
        except BaseException:  # leaving all the same
            logger.exception("Segment: delivery as %s exits failed", process)
        finally:
            leave(status)

    os._exit = deliver_then_exit


def _rq_worker_of_this_horse() -> Any:
    """The RQ worker whose ``main_work_horse`` the main thread runs, if any."""
    rq_worker = sys.modules["rq.worker"]
    frame = current_frames().get(threading.main_thread().ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "main_work_horse":
            worker = frame.f_locals.get("self")
            if isinstance(worker, getattr(rq_worker, "BaseWorker", ())):
                return worker
        frame = frame.f_back
    return None


def _in_a_child_of_a_pool() -> bool:
    """Whether this process is a child started by ``multiprocessing``, or by billiard
    (its fork, which Celery's prefork pool uses): both leave through ``os._exit()``."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None and multiprocessing.parent_process() is not None:
        return True
    billiard = sys.modules.get("billiard.process")
    if billiard is None:
        return False
    try:
        return billiard.current_process()._parent_pid is not None
    except Exception:  # another billiard than the one read here: not known as a child
        return False


def shutdown_after_app_threads(*, leave_to_spool: bool = False) -> bool:
    """A process's exit through ``os._exit()`` (a ``multiprocessing`` child, a job
    runner's): shut down once the threads the interpreter would have waited for have
    ended (the app's, a ``ThreadPoolExecutor``'s, those of ``start_thread``), within
    one ``shutdown_timeout``; True when all was delivered.

    Its exit functions run before the interpreter's own wait for those threads: what
    they track would otherwise be refused; it is sent as they go. The wait comes once
    per process (a later call shuts down at once). ``leave_to_spool``: as for
    :func:`shutdown_all`.
    """
    global _app_threads_waited_in
    if not _app_threads() or _app_threads_waited_in == os.getpid():
        # None left, or waited for once already in this process (each exit hook of
        # a process asks): what outlived that wait is not waited for again.
        return shutdown_all(leave_to_spool=leave_to_spool)
    _app_threads_waited_in = os.getpid()
    clients = live_clients()
    deadline = monotonic() + longest_shutdown_timeout(clients)
    start_sending(clients)  # what they hold goes out while the threads finish
    from segment_core.scope import wait_for_bound_calls  # it imports this module

    # The app's background work (start_thread) first: it may still use its pools.
    # What it tracks meanwhile is sent as it goes.
    wait_for_bound_calls(max(0.0, deadline - monotonic()), sending=send_what_clients_hold)
    _let_thread_pools_end()
    # What the threads track as they go is sent meanwhile: a thread that outlives the
    # wait leaves only what it tracked last to the delivery.
    _wait_for_app_threads(deadline, sending=True)
    return shutdown_all(max(0.0, deadline - monotonic()), leave_to_spool=leave_to_spool)


#: How often what the app's threads track is sent while an exit waits for them.
SENDING_EVERY = 0.2


def _let_thread_pools_end() -> None:
    """What the interpreter's exit does before it waits for the threads: run the
    functions registered with ``threading._register_atexit``, by which a
    ``concurrent.futures`` pool's threads end once their work is done (an idle one
    would be waited for in vain).

    In a thread of its own: they wait for that work, and the wait for the threads
    is bounded. A process that leaves through ``os._exit()`` never runs them; one
    that runs them later (a ``multiprocessing`` child) finds nothing left to do.
    """
    functions = list(getattr(threading, "_threading_atexits", ()))
    if not functions:
        return

    def run() -> None:
        for function in reversed(functions):  # as the interpreter calls them
            try:
                function()
            except Exception:
                logger.exception("Segment: a thread pool could not be ended at exit")

    threading.Thread(target=run, name="segment-exit-pools", daemon=True).start()


def _app_threads(ended: threading.Thread | None = None) -> list[threading.Thread]:
    """The threads the interpreter's exit waits for: alive, no daemon, not this one,
    nor ``ended`` (known to have ended, though ``threading`` may still say it runs)."""
    current = threading.current_thread()
    return [
        thread
        for thread in threading.enumerate()
        if not thread.daemon and thread not in (current, ended) and thread.is_alive()
    ]


def _wait_for_app_threads(
    deadline: float | None, ended: threading.Thread | None = None, *, sending: bool = False
) -> None:
    """Until :func:`_app_threads` are none (those they start too), or ``deadline``;
    ``sending``: the live clients send what the threads track as they go."""
    while True:
        for thread in _app_threads(ended):
            remaining = None if deadline is None else deadline - monotonic()
            if remaining is not None and remaining <= 0:
                return
            if sending:
                thread.join(SENDING_EVERY if remaining is None else min(SENDING_EVERY, remaining))
                send_what_clients_hold()
            else:
                thread.join(remaining)
        if not _app_threads(ended):
            return


#: The main thread of the process the package was imported in, unless that process
#: was forked off another thread (its main thread is then a ``Thread``): its end
#: finalizes the interpreter, which runs ``atexit``. (A process forked off a thread
#: started with ``_thread.start_new_thread``, the package imported only after the
#: fork, cannot be told from the first process.)
_finalizing_main: threading.Thread | None = threading.main_thread()
if not isinstance(_finalizing_main, getattr(threading, "_MainThread", threading.Thread)):
    _finalizing_main = None
#: The process whose main thread :func:`_watch_main_thread_forked_off` watches.
_main_watched_in: int | None = None


def _watch_main_thread_forked_off() -> None:
    """In a child forked from a thread other than the main one, shut down as a
    normal exit would once the app's threads have ended (lock held).

    Such a child's only thread of its own (``os.fork()`` in a ``Thread``, from a
    thread pool, or from a thread of such a child) never finalizes the interpreter:
    when it returns, the process goes on while any thread does, and ends without
    ``atexit``. Without this, the library's sender threads would keep the process
    alive for ever, and what it accepted would never be delivered.
    """
    global _main_watched_in
    main = threading.main_thread()
    if main is _finalizing_main or _main_watched_in == os.getpid():
        return
    _main_watched_in = os.getpid()
    threading.Thread(
        target=_shut_down_after, args=(main,), name="segment-exit", daemon=True
    ).start()


def _shut_down_after(main: threading.Thread) -> None:
    """Wait, as the interpreter's exit does, for ``main`` and every thread that is
    no daemon; then shut every client down, which ends the library's threads."""
    try:
        _wait_for_forking_thread(main)
        _wait_for_app_threads(None, ended=main)
        shutdown_all()
        _end_if_only_the_librarys_threads_remain(main)
    except Exception:
        logger.exception("error while shutting down the Segment clients")


def _end_if_only_the_librarys_threads_remain(main: threading.Thread) -> None:
    """End the process, with the status its last thread's end would have given it
    (0), when no thread but the library's runs: a sender given up on at the deadline
    still waits for an answer that may never come (a host that does not answer),
    and would keep the process that long."""
    while True:
        ours = _library_threads(main)
        if not ours:
            return  # the process ends as this thread does
        if _only_these_run(ours, main):
            break
        # An app's thread keeps it, as it would without the library: until it ends.
        time.sleep(_LOOK_FOR_THE_APPS_THREADS_EVERY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


#: How often the wait for a forked child's forking thread looks whether it ended (seconds).
_LOOK_FOR_THE_FORKING_THREAD_EVERY = 0.05


def _wait_for_forking_thread(main: threading.Thread) -> None:
    """Until ``main``, the thread that forked this process, has ended.

    ``main.join()`` cannot always tell: for a thread that ``threading`` did not
    start (``_thread.start_new_thread``), the child's main thread is either a
    ``_DummyThread``, which cannot be joined, or (Python 3.13) a ``_MainThread``
    marked ended only by the interpreter's exit, which never comes here. So on
    Linux the OS is asked: the forking thread leads the child's threads (its id is
    the process's), and its task stays listed, a zombie, once it has ended.
    Elsewhere, ``join()``.
    """
    task = f"/proc/self/task/{os.getpid()}/stat"
    if _task_state(task) is None:  # no /proc
        main.join()
        return
    while _task_state(task) not in (None, "Z", "X"):
        time.sleep(_LOOK_FOR_THE_FORKING_THREAD_EVERY)


#: How often a forked child whose sender waits on looks whether its app's threads ended.
_LOOK_FOR_THE_APPS_THREADS_EVERY = 0.2


def _library_threads(main: threading.Thread) -> list[threading.Thread]:
    here = threading.current_thread()
    return [
        thread
        for thread in threading.enumerate()
        if thread is not here and thread is not main and _runs_library_code(thread)
    ]


def _only_these_run(ours: list[threading.Thread], main: threading.Thread) -> bool:
    """Whether no thread but ``ours`` (the library's) and this one runs: also none
    ``threading`` does not know of (``_thread``'s, C code's), seen in /proc."""
    here = threading.current_thread()
    tasks = _live_tasks()
    if tasks is not None:
        return not tasks - {thread.native_id for thread in (*ours, here)}
    return not any(
        thread.is_alive()
        for thread in threading.enumerate()
        if thread is not here and thread is not main and thread not in ours
    )


def _runs_library_code(thread: threading.Thread) -> bool:
    """Whether ``thread`` is one the library started (its target is the library's)."""
    target = getattr(thread, "_target", None)  # threading.Thread's, while it runs
    module = getattr(target, "__module__", None)
    return isinstance(module, str) and module.partition(".")[0] == "segment_core"


def _live_tasks() -> set[int] | None:
    """The ids of this process's threads that have not ended, from /proc (None
    without it): also those ``threading`` does not know (``_thread``'s, C code's)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    return {
        int(task)
        for task in tasks
        if _task_state(f"/proc/self/task/{task}/stat") not in (None, "Z", "X")
    }


def _task_state(stat_path: str) -> str | None:
    """The state letter in a Linux task's ``stat`` file (``R``, ``S``, ``Z``...); None
    when it cannot be read (the task is gone, or this is no Linux)."""
    try:
        with open(stat_path, "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return fields[0].decode("ascii", "replace") if fields else None


def live_clients() -> list[Client]:
    return list(_clients)


def shutdown_all(timeout: float | None = None, *, leave_to_spool: bool = False) -> bool:
    """Shut down every live client; True when everything accepted was delivered or
    definitively failed (see :meth:`Client.shutdown`).

    The clients deliver side by side: the whole takes at most ``timeout`` (each
    client's ``shutdown_timeout`` when None), however many clients there are.

    ``leave_to_spool``: a client with a ``spool_dir`` waits for delivery only while
    its sends succeed. While its last attempt failed (none went through since),
    what it holds stays on disk for the next process of the same spool, at once:
    for processes that end after every job (an RQ work-horse, a recycled Celery
    child), which would otherwise each wait out ``shutdown_timeout`` during an
    outage.
    """
    clients = live_clients()
    start_sending(clients)
    started = monotonic()
    failing: list[Client] = []
    if leave_to_spool:
        failing = _wait_while_sends_succeed([c for c in clients if _spooled(c)], started, timeout)
    delivered = True
    for client in clients:
        try:
            remaining = 0.0 if client in failing else _remaining(client, started, timeout)
            client.end_other_shutdowns_by(monotonic() + remaining)  # the process ends then
            delivered = client.shutdown(remaining) and delivered
        except Exception:  # never let one client stop the others at exit
            logger.exception("error while shutting down a Segment client")
            delivered = False
    return delivered


def _flush_before_the_exit(*, leave_to_spool: bool = False) -> None:
    """Deliver what every live client holds, side by side, each within its
    ``shutdown_timeout``; the clients go on accepting calls.

    The exit's delivery that follows shares that time: where a flush ran out of it,
    the exit waits only for what is left (see :func:`shutdown_flush_ended`).
    ``leave_to_spool``: as for :func:`shutdown_all`.
    """
    clients = live_clients()
    start_sending(clients)
    started = monotonic()
    failing: list[Client] = []
    if leave_to_spool:
        failing = _wait_while_sends_succeed([c for c in clients if _spooled(c)], started, None)
    for client in clients:
        try:
            remaining = 0.0 if client in failing else _remaining(client, started, None)
            deadline = monotonic() + remaining
            delivered = client.flush(remaining)
        except Exception:
            logger.exception("error while flushing a Segment client")
            continue
        shutdown_flush_ended(client, deadline=deadline, delivered=delivered)


def longest_shutdown_timeout(clients: list[Client]) -> float:
    """The longest of ``clients``' ``shutdown_timeout`` (the default's without any: a
    thread's first call builds one)."""
    from segment_core.config import Config

    return max((c.config.shutdown_timeout for c in clients), default=Config.shutdown_timeout)


def send_what_clients_hold() -> None:
    """:func:`start_sending` for every live client: what an exit's wait calls as it goes."""
    start_sending(live_clients())


def start_sending(clients: list[Client]) -> None:
    """Start every sender of ``clients`` on what it holds now, without waiting."""
    for client in clients:
        try:
            client.flush(0)
        except Exception:
            logger.exception("error while flushing a Segment client")


def _remaining(client: Client, started: float, timeout: float | None) -> float:
    budget = shutdown_wait(client)[0] if timeout is None else timeout
    remaining = max(0.0, started + budget - monotonic())
    if timeout is None:  # the client's own shutdown_timeout: shared with the app's flush
        remaining = min(remaining, _left_after_shutdown_flush(client))
    return remaining


#: The longest a development server's reloaded process waits for delivery as it ends
#: (seconds): the reloader serves the edited code only once that process is gone.
RELOAD_WAIT = 1.0


def shutdown_wait(client: Client) -> tuple[float, str]:
    """How long ``client`` delivers for as the app or the process ends, and how a log
    line names that: its ``shutdown_timeout``, or at most :data:`RELOAD_WAIT` in a
    process that a development server's reloader replaces after every edit."""
    timeout = client.config.shutdown_timeout
    if timeout > RELOAD_WAIT and reloaded_by_dev_server():
        return RELOAD_WAIT, f"{RELOAD_WAIT:g}s (a development server's reload)"
    return timeout, f"shutdown_timeout={timeout:g}s"


def reloaded_by_dev_server() -> bool:
    """Whether this process serves under a development server's reloader, which ends
    it at every edit and waits for that before it serves the new code: Django's
    ``runserver`` (``RUN_MAIN``), Werkzeug's (``flask run --debug``;
    ``WERKZEUG_RUN_MAIN``), or uvicorn's ``--reload``."""
    if os.environ.get("RUN_MAIN") == "true" or os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        return True
    # uvicorn --reload serves from a process that multiprocessing spawned with
    # uvicorn's Config (its --workers processes too, with reload off).
    multiprocessing: Any = sys.modules.get("multiprocessing")
    if multiprocessing is None or multiprocessing.parent_process() is None:
        return False
    process = multiprocessing.current_process()
    target = getattr(process, "_target", None)
    config = (getattr(process, "_kwargs", None) or {}).get("config")
    return (
        getattr(target, "__module__", None) == "uvicorn._subprocess"
        and getattr(config, "reload", False) is True
    )


def shutdown_flush_ended(client: Client, *, deadline: float, delivered: bool) -> None:
    """Note how the flush of ``client`` at the app's shutdown (ASGI lifespan, gunicorn's
    ``worker_exit`` hook while threads still run) ended.

    The process's exit follows it, and delivers as part of the same shutdown: where
    that flush ran out of time at ``deadline``, the exit waits only for what is left
    of it, while no batch went through since (the host still does not answer). A
    server whose host hangs then ends within one ``shutdown_timeout``, not two;
    with a spool, what is left stays on disk for the next process.
    """
    if delivered:
        _flush_ran_out.pop(client, None)
        return
    batches = _batches_delivered(client)
    if batches is not None:
        _flush_ran_out[client] = (deadline, batches)


def _stop_begins(clients: list[Client]) -> None:
    """A server's graceful stop began (SIGTERM): what the clients hold goes now, and
    the stop's delivery counts its ``shutdown_timeout`` from here (see
    :func:`_left_after_shutdown_flush`)."""
    for client in clients:
        counts = _attempt_counts(client)
        if counts is not None:
            _stop_began[client] = (monotonic() + shutdown_wait(client)[0], *counts)
    start_sending(clients)


def _attempt_counts(client: Client) -> tuple[int, int, int, int] | None:
    """The batches ``client`` delivered, the attempts that failed, the messages that
    failed for good (a host's verdict), and the messages it holds, now."""
    try:
        stats = client.stats()
        return (
            int(stats["batches"]),
            int(stats["retries"]),
            int(stats["failed"]),
            int(stats["pending"]),
        )
    except Exception:
        logger.exception("error while reading a Segment client's stats")
        return None


def _left_after_stop_began(client: Client) -> float:
    """What is left of the ``shutdown_timeout`` of a stop that began (SIGTERM to a
    gunicorn worker) when, since then, no batch went through and attempts failed to
    be retried (a host down, or answering 5xx), or messages waited with no answer at
    all (none refused for good: a host that hangs): the app's threads the
    interpreter waited for meanwhile took the rest (inf: no such stop, or the host
    answers, if only to refuse a batch for good)."""
    began = _stop_began.get(client)
    if began is None:
        return math.inf
    deadline, batches, retries, failed, pending = began
    counts = _attempt_counts(client)
    if counts is None or counts[0] != batches:
        return math.inf
    retried = counts[1] != retries
    unanswered = bool(pending) and counts[2] == failed
    if not (retried or unanswered):
        return math.inf
    return max(0.0, deadline - monotonic())


#: The stops that began, by client: their deadline, and :func:`_attempt_counts` then.
_stop_began: weakref.WeakKeyDictionary[Client, tuple[float, int, int, int, int]] = (
    weakref.WeakKeyDictionary()
)


def _left_after_shutdown_flush(client: Client) -> float:
    """What is left of the time the app's shutdown flush of ``client`` had, or of its
    stop (:func:`_left_after_stop_began`); inf: none ran out."""
    ran_out = _flush_ran_out.get(client)
    if ran_out is None:
        return _left_after_stop_began(client)
    deadline, batches = ran_out
    if _batches_delivered(client) != batches:  # the host answers again: a new wait is worth it
        return math.inf
    return max(0.0, deadline - monotonic())


def _batches_delivered(client: Client) -> int | None:
    try:
        return int(client.stats()["batches"])
    except Exception:
        logger.exception("error while reading a Segment client's stats")
        return None


def _spooled(client: Client) -> bool:
    try:
        return "spool" in client.stats()
    except Exception:
        logger.exception("error while reading a Segment client's stats")
        return False


#: How often a wait of ``leave_to_spool`` looks whether a send failed (seconds).
_LOOK_EVERY = 0.05


def flush_while_sends_succeed(clients: list[Client], *, ends_by: float | None = None) -> None:
    """Flush ``clients``, each within its ``shutdown_timeout`` (or by the monotonic time
    ``ends_by``, the app's shutdown's end, which the process's exit then shares: see
    :func:`shutdown_flush_ended`), until delivered or an attempt failed (its host
    does not answer: not waited for)."""
    started = monotonic()
    timeout = None if ends_by is None else max(0.0, ends_by - started)
    _wait_while_sends_succeed(clients, started, timeout)
    if ends_by is None:
        return
    for client in clients:
        try:
            delivered = client.flush(0)  # whether all is delivered, waiting for nothing
        except Exception:
            logger.exception("error while flushing a Segment client")
            continue
        shutdown_flush_ended(client, deadline=ends_by, delivered=delivered)


def _wait_while_sends_succeed(
    clients: list[Client], started: float, timeout: float | None
) -> list[Client]:
    """Flush ``clients`` (each with a spool) until delivered, out of time, or an attempt of
    this process failed; the clients whose attempts failed."""
    failing: list[Client] = []
    waiting = list(clients)
    while waiting:
        for client in list(waiting):
            try:
                # Failing now (an attempt failed, and none went through since), not
                # once in the process's life: one 503 hours ago is no outage.
                if client._delivery.health.failing:
                    failing.append(client)
                    waiting.remove(client)
                    continue
                remaining = _remaining(client, started, timeout)
                if not remaining or client.flush(min(_LOOK_EVERY, remaining)):
                    waiting.remove(client)
            except Exception:
                logger.exception("error while flushing a Segment client")
                waiting.remove(client)
    return failing


def worker_exit(server: Any = None, worker: Any = None) -> None:
    """gunicorn's ``worker_exit`` hook: deliver what the worker accepted before it exits.

    The interpreter lets the threads the app started (``start_thread``, an
    executor's, a gthread worker's pool) finish after this hook, then runs
    ``atexit``. While such a thread is alive, the hook only delivers what was
    accepted so far, and ``atexit`` shuts the clients down once the threads ended:
    their calls are delivered too. Both share one ``shutdown_timeout``: where the
    hook's delivery ran out of it, ``atexit`` waits only for what is left, while no
    batch went through since.
    """
    if getattr(worker, "pid", None) not in (None, os.getpid()):
        return  # gunicorn's arbiter, for a worker that is already gone: not our exit
    # Recycled (--max-requests), the worker leaves what a failing Segment did not
    # take to its spool's next process, which gunicorn starts once this one ended.
    recycled = _recycled(worker)
    if _app_threads_alive():
        _flush_before_the_exit(leave_to_spool=recycled)
    else:
        shutdown_all(leave_to_spool=recycled)


def _note_gunicorn_worker() -> None:
    """The gunicorn worker this process is to run, when gunicorn's arbiter forked it:
    ``spawn_worker`` is on the stack as the fork returns (the library imported
    before, ``--preload``), and as the worker loads the app (imported then)."""
    global _gunicorn_worker
    _gunicorn_worker = None
    arbiter = sys.modules.get("gunicorn.arbiter")
    spawn = getattr(getattr(arbiter, "Arbiter", None), "spawn_worker", None)
    code = getattr(spawn, "__code__", None)
    if code is None:
        return
    main = current_frames().get(threading.main_thread().ident or 0)
    for frame in (sys._getframe(1), main, *_suspended_greenlet_frames()):
        spawning = frame_running(code, frame)
        if spawning is not None:
            _gunicorn_worker = spawning.f_locals.get("worker")
            _deliver_as_the_worker_stops(_gunicorn_worker)
            return


def _suspended_greenlet_frames() -> list[FrameType]:
    """Where the greenlets below this one stopped: with gevent, a request's greenlet
    runs on the main thread, whose own stack (the worker's loop) is the hub's."""
    getcurrent = getattr(sys.modules.get("greenlet"), "getcurrent", None)
    frames: list[FrameType] = []
    if callable(getcurrent):
        with contextlib.suppress(Exception):
            parent = getcurrent().parent
            while parent is not None:
                frame = getattr(parent, "gr_frame", None)
                if frame is not None:
                    frames.append(frame)
                parent = parent.parent
    return frames


def _deliver_as_the_worker_stops(worker: Any) -> None:
    """A gunicorn worker's graceful stop: see :func:`deliver_as_the_stop_begins`.

    The worker registers ``handle_exit`` for SIGTERM as it starts, after the fork
    (``--preload``: this runs before, and the worker registers the one given here)
    and before it loads the app (the library imported then: registered again).
    """
    handle_exit = getattr(worker, "handle_exit", None)
    if not callable(handle_exit) or getattr(handle_exit, "delivers", False):
        return
    try:
        worker.handle_exit = _delivering_first(handle_exit)
    except AttributeError:  # a worker class that refuses attributes: left as it is
        return
    if not deliver_as_the_stop_begins():
        # Imported by a request of a gthread worker: its main thread registers it.
        defer = getattr(getattr(worker, "method_queue", None), "defer", None)
        if callable(defer):
            with contextlib.suppress(Exception):
                defer(deliver_as_the_stop_begins)


def deliver_as_the_stop_begins() -> bool:
    """Where a server's graceful stop (SIGTERM, to its ``handle_exit``: a gunicorn
    worker's, uvicorn's) lets requests in progress finish before the worker's last
    delivery (its exit, its lifespan shutdown), send what the clients hold as the
    stop begins: the server kills a worker whose request outlasts its graceful
    timeout (a stream, a long poll), and the requests finished before lose nothing
    then. False when called off the main thread (of the OS: a gevent worker's
    greenlets run on it), the one that registers handlers; else True.
    """
    try:
        handler = signal.getsignal(signal.SIGTERM)
        if getattr(handler, "__name__", None) != "handle_exit" or not callable(handler):
            return True
        server = getattr(handler, "__self__", None)
        gunicorn_worker = _is_a(server, "gunicorn.workers.base", "Worker")
        if not gunicorn_worker and not _is_a(server, "uvicorn.server", "Server"):
            return True  # a handler of the app's own, or of a server not known here
        signal.signal(signal.SIGTERM, _delivering_first(handler))
        if gunicorn_worker:
            signal.siginterrupt(signal.SIGTERM, False)  # as the worker set it
    except ValueError:  # not the main thread
        return False
    except OSError:  # pragma: no cover - a platform without SIGTERM's handlers
        pass
    return True


def _is_a(value: object, module: str, name: str) -> bool:
    """Whether ``value`` is an instance of class ``name`` of ``module`` (a subclass's
    too), without importing the module: not imported, nothing is one of its."""
    kind = getattr(sys.modules.get(module), name, None)
    return isinstance(kind, type) and isinstance(value, kind)


def _delivering_first(handle_exit: Callable[[int, FrameType | None], object]) -> Any:
    """``handle_exit``, which then starts the clients' delivery of what they hold."""

    def handle_exit_and_deliver(signum: int, frame: FrameType | None) -> None:
        handle_exit(signum, frame)
        clients = live_clients()
        # Not on this thread, which the signal stopped perhaps inside a client; with
        # no thread to be had, the last delivery comes as before.
        with contextlib.suppress(RuntimeError):
            if clients:
                _thread.start_new_thread(_stop_begins, (clients,))

    handle_exit_and_deliver.__name__ = "handle_exit"
    handle_exit_and_deliver.delivers = True  # type: ignore[attr-defined]
    return handle_exit_and_deliver


_note_gunicorn_worker()
_forks.in_every_child(_note_gunicorn_worker)


def _gunicorn_worker_of_this_process() -> Any:
    """The gunicorn worker this process runs, if any (not one of a process it forked:
    gunicorn sets the worker's ``pid`` in its own process)."""
    worker = _gunicorn_worker
    return worker if getattr(worker, "pid", None) == os.getpid() else None


def _recycled(worker: Any) -> bool:
    """Whether a gunicorn worker ends because it served its ``max_requests``."""
    served, most = getattr(worker, "nr", 0), getattr(worker, "max_requests", 0)
    return isinstance(served, int) and isinstance(most, int) and 0 < most <= served


def _app_threads_alive() -> bool:
    """Whether a thread the interpreter waits for at exit (not a daemon) is still running."""
    this = threading.current_thread()
    main = threading.main_thread()
    return any(
        not thread.daemon and thread is not this and thread is not main
        for thread in threading.enumerate()
    )


def chain_sigterm() -> None:
    """Install the SIGTERM handler if the process has none and we are in the main thread.

    SIGINT is left alone: Python's own handler raises KeyboardInterrupt, and
    ``atexit`` delivers; one set to ``SIG_DFL`` is a program's choice to end at
    once on Ctrl-C, even inside a long C call, where a handler would only run
    once the call returned.
    """
    global _sigterm_chained
    if _sigterm_chained and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        return
    # Not chained, or no more: a handler the app set since (asyncio's, whose loop
    # sets SIGTERM back to SIG_DFL as asyncio.run() ends) left the process none.
    # With gevent or eventlet every green thread runs on the main one (eventlet's
    # first is not even main_thread()); a real thread of theirs is refused below.
    if threading.current_thread() is not threading.main_thread() and not _threads_are_green():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        if _caught_outside_python(signal.SIGTERM):
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or signals unavailable
        return
    _sigterm_chained = True


def _caught_outside_python(signum: int) -> bool:
    """Whether the process catches ``signum`` though Python's handler says ``SIG_DFL``.

    Python only knows the handlers set through :mod:`signal` (or there as it
    started). One set later in C, such as gevent's ``signal_handler()`` (in its
    event loop) or ``faulthandler.register()``, shows in Linux's ``SigCgt`` mask;
    elsewhere this answers False.
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"SigCgt:"):
                    return bool(int(line[7:], 16) >> (signum - 1) & 1)
    except (OSError, ValueError):
        pass
    return False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _sigterm_state
    package = sys.modules.get("segment_core")
    if package is not None and not getattr(package, "_imported", False) and not _clients:
        # Chained as the package is imported (SEGMENT_WRITE_KEY), and the signal came
        # before the import ended: nothing was accepted yet, and the delivery would
        # import what the main thread is still importing. The process ends as SIG_DFL
        # ends it.
        _die(signum)
        return
    if _sigterm_state == "delivered":  # sent by _shut_down_then_signal below
        _die(signum)
    if _sigterm_state == "delivering":  # a repeated SIGTERM: the first one is at work
        return
    _sigterm_state = "delivering"
    if _exit_delivery_running:
        # atexit is delivering already, within shutdown_timeout, and the process
        # ends once it is done (no thread can start any more to do it again).
        return
    green = _threads_are_green()
    if green or _inside_this_package(frame):
        # With gevent or eventlet (a gevent.pywsgi or eventlet.wsgi server), the
        # handler runs in their event loop, where nothing may wait. Otherwise, the
        # main thread was stopped inside a client, perhaps holding one of its locks,
        # which shutting down from here would wait for forever. Either goes on
        # (refused calls are dropped, and counted); another thread shuts the clients
        # down, then signals again.
        try:
            if green:  # a greenlet, started without waiting for it to start
                _thread.start_new_thread(_shut_down_then_signal, (signum,))
            else:
                threading.Thread(
                    target=_shut_down_then_signal,
                    args=(signum,),
                    name="segment-sigterm",
                    daemon=True,
                ).start()
        except RuntimeError:  # no thread to be had: the call goes on, and atexit delivers
            _sigterm_state = None
        return
    _shut_down_after_bound_calls()
    _die(signum)


def _shut_down_after_bound_calls() -> None:
    """SIGTERM's delivery: once the threads of ``start_thread`` and the functions of
    ``with_binding`` still running elsewhere have returned (the view's background
    work), within the clients' ``shutdown_timeout``, which the delivery shares."""
    from segment_core.scope import shutdown_after_bound_calls  # it imports this module

    # The main thread, which the signal interrupted, is not waited for: its call
    # goes on only once the handler returns (or never, where it ends the process).
    shutdown_after_bound_calls(leave_to_spool=False, excluding=threading.main_thread().ident)


def _threads_are_green() -> bool:
    """Whether gevent or eventlet monkey-patched ``threading``: its threads are
    greenlets of one event loop, which runs this process's signal handlers."""
    gevent_monkey: Any = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("threading"):
        return True
    eventlet_patcher: Any = sys.modules.get("eventlet.patcher")
    return eventlet_patcher is not None and bool(eventlet_patcher.is_monkey_patched("thread"))


def _shut_down_then_signal(signum: int) -> None:
    global _sigterm_state
    try:
        _shut_down_after_bound_calls()
    finally:
        _sigterm_state = "delivered"
        _signal_main_thread(signum)


def _signal_main_thread(signum: int) -> None:
    """Signal the main thread, whose handler then ends the process (see :func:`_die`).

    To the process, the kernel may hand the signal to this very thread: the main
    thread, waiting in a call the signal does not interrupt, would run its handler
    only when that call returns (never, for ``signal.pause()``). Sent to it, the
    signal interrupts it; sent again while the process lives, in case its handler
    was not run.
    """
    main = threading.main_thread().ident
    if _threads_are_green() or main is None or not hasattr(signal, "pthread_kill"):
        os.kill(os.getpid(), signum)  # one OS thread: the signal reaches it
        return
    for _ in range(_RESIGNAL_TIMES):
        try:
            signal.pthread_kill(main, signum)
        except (OSError, ValueError):  # the main thread is gone: the process ends with us
            os.kill(os.getpid(), signum)
            return
        time.sleep(_RESIGNAL_INTERVAL)
    os.kill(os.getpid(), signum)


#: How often, and how long apart, the main thread is signalled again.
_RESIGNAL_TIMES = 50
_RESIGNAL_INTERVAL = 0.1


def _die(signum: int) -> None:
    """End the process the way ``SIG_DFL`` would have, so its status still says SIGTERM."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _inside_this_package(frame: FrameType | None) -> bool:
    """Whether ``frame``, or a frame that called it, runs this package's code."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(_PACKAGE_DIRECTORY):
            return True
        frame = frame.f_back
    return False


_PACKAGE_DIRECTORY = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _hold_sigterm() -> None:
    """Before a fork: block SIGTERM in the forking thread while the handler is ours.

    CPython forgets, in a child, every signal that came before it readied its own
    signal handling, so a Python-level handler would lose a SIGTERM sent to a
    child that has not run yet (``multiprocessing.Pool.terminate()`` right after a
    worker's start), and the parent's ``join()`` would wait for it forever. Blocked,
    the signal waits in the kernel until :func:`_release_sigterm_in_child` has set
    its default action back, then ends the child. The parent, blocked only in this
    thread and only for the fork, misses none either.
    """
    try:
        if signal.getsignal(signal.SIGTERM) is not _on_sigterm:
            return
        held_before = signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGTERM,))
    except (AttributeError, OSError, ValueError):  # no signal masks here
        return
    if signal.SIGTERM not in held_before:
        _sigterm_held_in.add(threading.get_ident())


def _release_sigterm() -> None:
    """After a fork, in the parent: unblock what :func:`_hold_sigterm` blocked."""
    ident = threading.get_ident()
    if ident in _sigterm_held_in:
        _sigterm_held_in.discard(ident)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGTERM,))


def _release_sigterm_in_child() -> None:
    """After a fork, in the child: SIGTERM's default action, then unblocked.

    A child has accepted nothing yet (its parent's messages stay the parent's), so
    a SIGTERM before its first message ends it at once, by the kernel; its first
    message chains the handler again (see :func:`chain_sigterm`). A Python-level
    handler inherited from the parent could miss a signal in a child just started.
    """
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (OSError, ValueError):  # not the main interpreter
        pass
    _release_sigterm()


#: The threads whose SIGTERM :func:`_hold_sigterm` blocked for the fork under way.
_sigterm_held_in: set[int] = set()


def _forget_sigterm() -> None:
    global _sigterm_state, _sigterm_chained
    _sigterm_state = None  # a child forked meanwhile got no SIGTERM of its own yet
    # The child may set SIGTERM back to SIG_DFL (an RQ work-horse does): its first
    # message looks again.
    _sigterm_chained = False


_forks.in_every_child(_forget_sigterm)
# Registered after _forks' own: in the child, the state above is forgotten first.
os.register_at_fork(
    before=_hold_sigterm, after_in_parent=_release_sigterm, after_in_child=_release_sigterm_in_child
)
# The parent's flush: a child's clients start with counters of their own.
_forks.in_every_child(_flush_ran_out.clear)


def _chain_uwsgi() -> None:
    try:
        import uwsgi
    except ImportError:
        return
    previous = getattr(uwsgi, "atexit", None)

    def _uwsgi_atexit() -> None:
        # Once the app's background work (start_thread, with_binding, its own
        # threads) is over, within shutdown_timeout: what it tracks is sent as it
        # goes. uWSGI ends the worker without waiting for Python's threads.
        shutdown_after_app_threads()
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


def _deliver_at_exit() -> None:
    """``atexit``: shut every client down; a SIGTERM that came meanwhile, once that
    is done, ends the process as ``SIG_DFL`` would have."""
    global _exit_delivery_running, _exit_delivery_began_in
    _exit_delivery_running = True
    _exit_delivery_began_in = os.getpid()
    try:
        _resolve_without_new_threads()
        # Recycled, with no worker_exit hook in gunicorn.conf.py: as in worker_exit.
        shutdown_all(leave_to_spool=_recycled(_gunicorn_worker_of_this_process()))
    except KeyboardInterrupt:
        # A second Ctrl-C: stop now, with one line rather than a traceback.
        _say_interrupted()
    finally:
        _exit_delivery_running = False
    if _sigterm_state == "delivering":
        _die(signal.SIGTERM)


def _resolve_without_new_threads() -> None:
    """Where gevent patched ``socket``, have this thread's hub resolve host names on
    the calling thread from now on.

    gevent's default resolver runs each lookup (an IP address's too) in a pool
    thread, and CPython 3.12.0 to 3.12.2 start no thread once the interpreter is
    exiting, ``atexit`` included: every send of the exit would fail at once.
    """
    if not (3, 12) <= sys.version_info[:3] < (3, 12, 3):
        return
    gevent_monkey: Any = sys.modules.get("gevent.monkey")
    if gevent_monkey is None or not gevent_monkey.is_module_patched("socket"):
        return
    try:
        gevent: Any = sys.modules["gevent"]
        blocking: Any = importlib.import_module("gevent.resolver.blocking")
        gevent.get_hub().resolver = blocking.Resolver()
    except Exception:
        logger.debug("segment: could not switch gevent to its blocking resolver", exc_info=True)


def _say_interrupted() -> None:
    """What an interrupted exit leaves: messages not delivered, and those of requests
    still waiting for their answer, which may have arrived."""
    pending = asking = 0
    for client in live_clients():
        try:
            undelivered = client.stats()["pending"]
            in_requests = client._delivery.awaiting_answer()
            pending += max(0, undelivered - in_requests)
            asking += in_requests
        except Exception:
            logger.exception("error while reading a Segment client's stats")
    may_have_arrived = ""
    if asking:
        may_have_arrived = (
            f", and {asking} in a request still waiting for its answer (they may have arrived)"
        )
    logger.warning(
        "Segment: delivery at exit interrupted; %d message(s) not delivered%s",
        pending,
        may_have_arrived,
    )


#: Whether ``atexit``'s delivery has begun (a SIGTERM then waits for it).
_exit_delivery_running = False
#: The process whose ``atexit`` delivery began (a forked child's has not).
_exit_delivery_began_in: int | None = None


def exit_delivery_began() -> bool:
    """Whether this process's ``atexit`` delivery has begun: a client's first call
    after that is refused, as nothing would deliver it (an ``atexit`` handler the
    app registered before importing ``segment_core`` runs then)."""
    return _exit_delivery_began_in == os.getpid()


# Registered as the package is imported rather than at the first message: an
# ``atexit`` handler registered then would run before the app's own (the last
# registered runs first), refusing what they track. With no client, it does nothing.
atexit.register(_deliver_at_exit)
if os.environ.get("SEGMENT_WRITE_KEY"):
    # Set up to send: its first call may come from a worker thread, where no
    # handler can be chained.
    chain_sigterm()
