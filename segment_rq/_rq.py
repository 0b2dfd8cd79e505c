"""``Queue`` and ``Worker``: RQ jobs act for the visitor who enqueued them.

- :class:`Queue` puts the visitor's snapshot in ``job.meta["segment_visitor"]``
  when a job is enqueued for a visitor (in a request, a thread given the
  request's context, or a job that has one), a job made with ``Job.create`` and
  given to ``enqueue_job`` or ``schedule_job`` included, and binds it while a
  synchronous queue (``is_async=False``) runs the job on the spot.
- :class:`Worker` binds it while the job runs (in the work-horse) and while the
  worker's own process waits for it and ends it (the job's ``on_stopped``
  callback, a ``work_horse_killed_handler``), and delivers what the work-horse
  holds before it leaves: RQ forks a work-horse per job, which exits through
  ``os._exit()``, so ``atexit`` never runs there (nor the wait for the job's
  threads: those of ``start_thread`` / ``with_binding`` are waited for first).
  Jobs that raise included. Within ``shutdown_timeout``; with a ``spool_dir``,
  only while sends succeed (what a failed send left stays on disk, for the next
  process).
- :class:`SimpleWorker` runs jobs in the worker's own process: the same
  binding; delivery at the worker's exit (``atexit``).
- Both build the client as they start working: with a spool, the worker's own
  process delivers what dead processes left, without waiting for a job. RQ
  imports the jobs' module only when a job runs (``Worker``: in each work-horse),
  so a client set only there is not the one the waiting worker has: a spool it
  should tend is set where the worker builds its client (``SEGMENT_SPOOL_DIR``,
  Django's settings, or a module it imports as it starts: ``rq worker -c``'s).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import pickle
import threading
from contextvars import Token
from typing import Any

import rq
import rq.worker

try:
    from rq.exceptions import StopRequested
except ImportError:  # older RQ
    from rq.worker import StopRequested  # type: ignore[attr-defined,no-redef]

import segment_core
from segment_core import lifecycle
from segment_core.adapters import keep_loggers_on
from segment_core.errors import is_interruption
from segment_core.scope import (
    Analytics,
    bind,
    current_or_found,
    reset,
    restore,
)
from segment_core.testing import diverted

__all__ = ["META_KEY", "Queue", "SimpleWorker", "Worker"]

logger = logging.getLogger("segment.rq")

#: The ``job.meta`` key that carries the visitor's snapshot.
META_KEY = "segment_visitor"
#: The variable that carries the worker's client options to a spawned work-horse.
HORSE_CLIENT_VARIABLE = "SEGMENT_RQ_WORKER_CLIENT"
#: The most it carries: Linux holds an environment variable of at most 128 KiB.
MAX_CARRIED_CHARACTERS = 100_000


class Queue(rq.Queue):
    """An ``rq.Queue`` whose jobs carry the visitor bound when they are enqueued.

    ``queue.enqueue(send_receipt, order.id)`` in a view: the job's events join the
    visitor's; so do those of a job made with ``Job.create`` and given to
    :meth:`enqueue_job` or :meth:`schedule_job`. A ``meta`` given by the caller is
    kept; an explicit ``meta={"segment_visitor": analytics.snapshot()}`` wins over
    the bound one.
    A synchronous queue (``is_async=False``) runs the job bound to it, as a worker does.
    """

    def create_job(self, *args: Any, **kwargs: Any) -> Any:
        meta = _with_visitor(kwargs.get("meta"))
        if meta is not None:
            kwargs["meta"] = meta
        return super().create_job(*args, **kwargs)

    def enqueue_job(self, job: Any, *args: Any, **kwargs: Any) -> Any:
        """RQ's two-step enqueue (``Job.create`` first): the job carries the visitor too."""
        _carry_visitor(job)
        return super().enqueue_job(job, *args, **kwargs)

    def schedule_job(self, job: Any, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`enqueue_job`, for a job made with ``Job.create`` and scheduled."""
        _carry_visitor(job)
        return super().schedule_job(job, *args, **kwargs)

    def run_sync(self, job: Any) -> Any:
        # Here, in the caller's context: a job whose meta names no visitor, or none
        # that can be read, runs for none, as a worker runs it, not for the caller's.
        token = _bind_visitor(job, in_callers_context=True)
        try:
            return super().run_sync(job)
        finally:
            if token is not None:
                reset(token)


class _BindsVisitor(rq.worker.BaseWorker):
    def work(self, *args: Any, **kwargs: Any) -> bool:
        _start_client()
        worked: bool = super().work(*args, **kwargs)
        return worked

    def request_stop(self, signum: Any, frame: Any) -> None:
        """RQ stops an idle worker by raising ``StopRequested`` from its signal
        handler; raised inside a finalizer (redis-py's ``__del__``s run whenever the
        garbage collector does), it is swallowed, and the worker went back to wait
        for a job, up to its dequeue timeout (405 s). The request is kept here too,
        and seen before the worker waits again (:meth:`heartbeat`)."""
        self._stop_requested = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    _segment_dequeuing = False

    def dequeue_job_and_maintain_ttl(self, *args: Any, **kwargs: Any) -> Any:
        self._segment_dequeuing = True
        try:
            return super().dequeue_job_and_maintain_ttl(*args, **kwargs)
        finally:
            self._segment_dequeuing = False

    def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        super().heartbeat(*args, **kwargs)
        if self._stop_requested and self._segment_dequeuing:  # (before each wait)
            raise StopRequested()

    def unsubscribe(self) -> None:
        """RQ's thread that listens for commands waits up to 60 s for a message, and
        is told to stop only after the worker unsubscribed: when the reply woke it
        first, it waited again, and the stop waited for it (redis-py 8.2 joins it),
        a minute after a SIGTERM. It is told first here; the reply then ends it."""
        running = getattr(self.pubsub_thread, "_running", None)
        if isinstance(running, threading.Event):
            running.clear()
        super().unsubscribe()  # type: ignore[no-untyped-call]

    def teardown(self) -> None:
        """RQ stops an idle worker (SIGTERM, Ctrl+C) by raising from its signal
        handler wherever the worker is: between sending a Redis command and reading
        its reply, the reply is left on a connection that goes back to the pool, and
        the worker's last commands read it instead of their own (it exits 1 with
        "Wrong number of response items"). Its last commands get new connections."""
        _drop_idle_connections(self.connection)
        super().teardown()  # type: ignore[no-untyped-call]

    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        token = _bind_visitor(job)
        try:
            performed: bool = super().perform_job(job, queue, *args, **kwargs)
            return performed
        finally:
            if token is not None:
                reset(token)


class Worker(_BindsVisitor, rq.Worker):
    """An ``rq.Worker`` that binds each job's visitor and delivers before each horse exits.

    ``rq worker --worker-class segment_rq.Worker``.
    """

    _segment_in_horse = False

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        self._segment_in_horse = True
        super().main_work_horse(*args, **kwargs)

    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            if self._segment_in_horse:
                _deliver()

    def monitor_work_horse(self, job: Any, *args: Any, **kwargs: Any) -> None:
        """Binds the job's visitor in this process while its work-horse runs: where
        the job ends without the work-horse, the job's ``on_stopped`` callback (RQ's
        stop-job command) and the ``work_horse_killed_handler`` act for it."""
        token = _bind_visitor(job, quiet=True)  # a bad snapshot: the work-horse says so
        try:
            super().monitor_work_horse(job, *args, **kwargs)
        finally:
            if token is not None:
                reset(token)


class SimpleWorker(_BindsVisitor, rq.SimpleWorker):
    """An ``rq.SimpleWorker`` (no fork) that binds each job's visitor."""


if hasattr(rq.worker, "SpawnWorker"):  # RQ 2 and later

    class SpawnWorker(Worker, rq.worker.SpawnWorker):
        """An ``rq.worker.SpawnWorker`` (work-horses started with ``posix_spawn``,
        where forking is unsafe) that binds each job's visitor and delivers before
        each horse exits, as :class:`Worker` does.

        A spawned horse is a new interpreter, which imports neither the worker's
        settings module (``rq worker -c``) nor Django's settings: the options of the
        worker's client go to each horse in its environment (read by it alone, not in
        its command line, which every user of the machine may read), and the horse
        builds its client from them, so that its events go where the worker's would,
        with its spool. An option that cannot be pickled (a lambda as ``on_error``),
        or too large to carry, is left out, with a WARNING.

        ``rq worker --worker-class segment_rq.SpawnWorker``.
        """

        def fork_work_horse(self, job: Any, queue: Any) -> None:
            carried = _client_options_for_horses()
            if carried is not None:
                os.environ[HORSE_CLIENT_VARIABLE] = carried
            try:
                super().fork_work_horse(job, queue)
            finally:  # the horse has its copy: no other child of the worker's gets it
                os.environ.pop(HORSE_CLIENT_VARIABLE, None)

        def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
            _build_horse_client(os.environ.pop(HORSE_CLIENT_VARIABLE, None))
            super().main_work_horse(*args, **kwargs)

    __all__ += ["SpawnWorker"]


def _with_visitor(meta: Any) -> dict[str, Any] | None:
    """A copy of ``meta`` (a job's, or None) with the bound visitor's snapshot; None
    when nothing is bound, or ``meta`` carries a snapshot already (the caller's wins)."""
    obj = current_or_found()
    if obj is None:
        return None
    carried = dict(meta or {})
    if META_KEY in carried:
        return None
    try:
        carried[META_KEY] = obj.snapshot()
    except Exception as error:  # enqueueing the job matters more than its visitor
        if is_interruption(error):  # the time limit of the job enqueueing this one
            raise
        logger.exception("segment: could not attach the visitor to an RQ job")
        return None
    return carried


def _carry_visitor(job: Any) -> None:
    """Give a job made by ``Job.create`` the bound visitor's snapshot, as
    :meth:`Queue.create_job` gives the jobs it makes."""
    if META_KEY in _meta(job):  # made by create_job, or given by the caller
        return
    meta = _with_visitor(_meta(job))
    if meta is not None:
        job.meta = meta


def _bind_visitor(
    job: Any, *, quiet: bool = False, in_callers_context: bool = False
) -> Token[Analytics | None] | None:
    """Bind the visitor ``job`` carries, if any; the token to reset it with.
    ``quiet``: a snapshot that cannot be read is not logged (another process does).
    ``in_callers_context``: the job runs where a visitor may be bound already (a
    synchronous queue's): a ``meta`` that names none binds an empty one instead."""
    try:
        meta = _meta(job)
        obj = restore(meta.get(META_KEY), source=f"RQ job {job.id!r}", quiet=quiet)
        if obj is None and in_callers_context and META_KEY in meta:
            obj = Analytics()
        return None if obj is None else bind(obj)
    except Exception:  # the job runs, bound or not
        logger.exception("segment: could not bind the visitor of an RQ job")
        return None


def _meta(job: Any) -> dict[str, Any]:
    meta = getattr(job, "meta", None)
    return meta if isinstance(meta, dict) else {}


def _start_client() -> None:
    """Build the jobs' client in the worker's own process as it starts working.

    With a spool, this long-lived process then delivers what dead processes left
    (a work-horse the OOM killer took, the worker before a restart) while no job
    runs, and again at its exit (``atexit``). Work-horses get clients of their own.
    The library's loggers are turned on again first: a worker script's
    ``dictConfig`` turned them off (its delivery failures would go unseen).
    """
    keep_loggers_on()
    try:
        segment_core.get_client()
    except Exception:  # the worker runs all the same; jobs build the client again
        logger.exception("segment: could not build the client as the RQ worker starts")


def _client_options_for_horses() -> str | None:
    """The options of the worker's client, pickled and written in base64, for a
    spawned work-horse to build its own with (None when the client sends nothing:
    no write key, or diverted in tests). An option that cannot be pickled is left
    out, and so are the largest while they make it more than an environment
    variable holds (a hook holding large data): one WARNING per option."""
    try:
        client = segment_core.get_client()
        config = client.config
        if not config.write_key or diverted(client):
            return None
        options: dict[str, Any] = {}
        sizes: dict[str, int] = {}
        for option in dataclasses.fields(config):
            value = getattr(config, option.name)
            if value is option.default or value == option.default:
                continue  # the horse's client has it as well
            try:
                sizes[option.name] = len(pickle.dumps(value))
            except Exception:
                _left_out(option.name, "cannot be pickled: make it a function of a module")
                continue
            options[option.name] = value
        while True:
            carried = base64.b64encode(pickle.dumps(options)).decode("ascii")
            if len(carried) <= MAX_CARRIED_CHARACTERS:
                return carried
            largest = max(sizes, key=sizes.__getitem__)
            size = sizes.pop(largest)
            _left_out(largest, f"pickles to {size} bytes, too large to carry: load its data there")
            del options[largest]
    except Exception:  # the job runs all the same; the horse builds its client itself
        logger.exception("segment: could not pass the worker's client to its work-horse")
        return None


def _left_out(option: str, why: str) -> None:
    """One WARNING per option the work-horses' client goes without."""
    if option not in _left_out_warned:
        _left_out_warned.add(option)
        logger.warning(
            "segment: SpawnWorker's work-horses build their client without the worker's "
            "%s, which %s",
            option,
            why,
        )


#: The options the work-horses' client went without, each told once.
_left_out_warned: set[str] = set()


def _build_horse_client(carried: str | None) -> None:
    """In a spawned work-horse: the worker's client, built from the options it
    ``carried``, as the default client, unless the horse has one already."""
    if carried is None or segment_core.default_client is not None:
        return
    try:
        # Written by the worker's own process for this one (its environment).
        options = pickle.loads(base64.b64decode(carried))
        # A hook of the worker's settings module imports it: one that sets the
        # default client has set it now, and is kept.
        if segment_core.default_client is None:
            segment_core.default_client = segment_core.Client(**options)
    except Exception:  # the job runs; its calls use what the environment gives
        logger.exception("segment: could not build the worker's client in its work-horse")


def _drop_idle_connections(connection: Any) -> None:
    pool = getattr(connection, "connection_pool", None)
    try:
        if pool is not None:
            pool.disconnect(inuse_connections=False)
    except Exception:  # the worker's exit goes on; a broken connection says so itself
        logger.debug("segment: could not close the RQ worker's idle connections", exc_info=True)


def _deliver() -> None:
    """The work-horse leaves through ``os._exit()`` next: deliver what it holds now,
    and what the job's threads still send.

    With a spool, what a failed send left stays on disk for the next process: the
    worker takes its next job once the job's threads ended (within
    ``shutdown_timeout``), even during an outage.
    """
    try:
        # The threads the job started (its own, an executor's, start_thread's) first,
        # as the interpreter would have waited for them.
        if not lifecycle.shutdown_after_app_threads(leave_to_spool=True):
            logger.warning("segment: an RQ work-horse exits with events undelivered")
    except Exception:
        logger.exception("segment: delivery at an RQ work-horse's exit failed")
