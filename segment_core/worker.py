"""The bounded buffer and the background thread(s) that drain it.

Enqueue is O(1) and never blocks on the network: it appends bytes and wakes a
sender only when that can change what the sender does (the first message of a
quiet period, which starts the ``flush_interval`` timer; ``flush_at`` reached; a
full batch waiting), so a busy request thread rarely hands the GIL over.

Batches grow under load: a batch made due by ``flush_at`` leaves at once when
traffic is light, but at most one such batch leaves every ``BUSY_SEND_INTERVAL``
seconds. Under load a send then carries everything that arrived meanwhile, so
a busy worker makes two POSTs per second instead of one per ``flush_at``
events, or one after another while a POST takes longer than that (the interval
runs from the start of the last send). ``flush()``, shutdown, a full batch
(2,500 messages, or half of ``max_queue_size`` when that is smaller) and the
batch after one that a limit cut short with as many messages again left waiting
(more than one request can carry) are never held back.

Every accepted message has a sequence number. A sender takes a run of them out
of the buffer and marks it in flight until it is delivered or definitively
failed, so ``flush()`` knows exactly when everything accepted before it is done.

When the OS refuses a thread (its thread limit, or no memory for a stack), the
message stays accepted in the buffer: the next call tries again, and
``flush()`` or shutdown deliver on the calling thread meanwhile.

The lock is never held while a thread starts: with gevent or eventlet threads are
greenlets, and a start switches to the new one, which takes the lock first thing.
Such a greenlet belongs to the event loop of the OS thread that starts it, and only
the process's first thread runs its loop for good (a threadpool's thread runs its
own only while one of its tasks waits). A call from another OS thread then starts
no sender, nor sends on its own thread (its sockets would be its loop's): with
gevent it asks the first thread's loop to start them (known to a worker made
there); otherwise the next call on the first thread starts them.

eventlet's ``monkey_patch()`` after the client was used replaces the lock with a
green one, but not the conditions made on it: the next call makes a new lock and
conditions, and green senders; those started before stop.

The lock is re-entrant: a finalizer the garbage collector runs, or a signal
handler, may call ``track()`` or ``flush()`` on a thread that holds it, and must
not wait for itself. A sender thread never waits for its own batch: ``flush()``
there (a hook's, a signal receiver's) asks for delivery and returns at once. A
batch's messages stop counting as pending once their outcome is counted, before
its hooks run; ``flush()`` elsewhere waits for the hooks too.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from segment_core._clock import monotonic
from segment_core.batching import MAX_BATCH_BYTES, envelope_size, take_batch
from segment_core.config import Config
from segment_core.delivery import (
    LAST_TRY_LEAD,
    Delivery,
    HeldBatch,
    RetryWait,
    sending_on_this_thread,
)
from segment_core.lifecycle import _threads_are_green

__all__ = ["Worker"]

logger = logging.getLogger("segment.core")

QUEUE_FULL = "queue_full"
SHUT_DOWN = "shut_down"
#: The shortest time between two sends that ``flush_at`` made due (seconds).
BUSY_SEND_INTERVAL = 0.5
#: The longest wait between two looks at an empty buffer when ``flush_interval`` is 0.
_IDLE_CHECK = 0.05
#: How many times a flush() waits again for what was accepted while it waited.
_FLUSH_ROUNDS = 4
#: After an unexpected error of the sender loop: the pause, and the least time
#: between two logs of it (seconds).
_ERROR_PAUSE = 0.5
_ERROR_LOG_INTERVAL = 60.0
#: When a sender thread could not be started last said so (for every client).
_last_start_failure_log = -math.inf


class Worker:
    """Buffers encoded messages and delivers them from daemon threads started on demand."""

    def __init__(self, config: Config, delivery: Delivery) -> None:
        self._config = config
        self._delivery = delivery
        delivery.counted = self._counted
        self._max_bytes = MAX_BATCH_BYTES - envelope_size(config.write_key or "")
        self._max_queue_size = config.max_queue_size
        self._flush_at = config.batch_due_at
        # A batch held back under load leaves at once when full, or at half the queue
        # (so that a small max_queue_size never fills while a batch is held back).
        self._full_batch = config.full_batch
        #: Counts the locks made: a sender goes on only while the one it started with
        #: is the worker's (see _sends_for).
        self._generation = 0
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._make_lock()
        self._buffer: deque[bytes] = deque()
        self._oldest_at = 0.0
        self._last_send_at = -math.inf
        # The last batch was cut by a limit (messages or bytes) and left at least as
        # many messages waiting: the sender is what holds delivery back, so the next
        # batch is not held.
        self._left_behind = False
        self._taken = 0
        # Runs taken by a sender until their hooks ran, by the sequence number of their
        # first message: how many of their messages are not yet counted delivered or
        # failed.
        self._in_flight: dict[int, int] = {}
        self._flush_upto = 0
        self._closing = False
        #: The latest end of every wait of a flush (see :meth:`cut_short`), or None.
        self._cut_at: float | None = None
        # The threads in flush(), and how many messages a delivery's hooks accepted
        # while one waited (on a sender thread, or on that thread itself when it
        # sends what it waits for): it waits for those too.
        self._flushing: dict[int, int] = {}
        self._accepted_by_hooks = 0
        self._abandon = RetryWait()
        #: Messages failed at shutdown's deadline (those the spool keeps on disk aside).
        self.given_up = 0
        self._threads: list[threading.Thread] = []
        #: A caller is starting the sender threads (with the lock released).
        self._starting = False
        #: Runs a function in a new green thread of the event loop, called from any OS
        #: thread (see _ask_event_loop_to_start).
        self._event_loop_call = _event_loop_caller()
        #: The event loop was asked to start the senders, and has not yet.
        self._event_loop_asked = False
        self._last_error_log = -math.inf

    def _make_lock(self) -> None:
        """A new lock and its conditions; the senders started before stop."""
        self._lock = threading.RLock()
        self._lock_type = type(self._lock)
        self._has_work = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)
        self._generation += 1

    def _lock_replaced(self) -> bool:
        """Whether ``threading`` was monkey-patched since the lock was made, and the
        lock replaced (eventlet's ``monkey_patch()`` turns every ``RLock`` green): the
        conditions still use the old one, and refuse to wait or notify."""
        return type(self._lock) is not self._lock_type

    def _remake_lock(self) -> None:
        """After :meth:`_lock_replaced`: a green lock, conditions and senders (started
        by the next call); what was accepted stays."""
        self._make_lock()
        self._threads = []
        self._starting = False

    def _remake_what_is_stale(self) -> None:
        """The parts a fork or a late monkey-patch made unusable, made again."""
        if self._pid != os.getpid():
            self.after_fork()
        elif self._lock_replaced():
            self._remake_lock()

    def retry_now(self) -> None:
        """Batches waiting to retry are sent again now, not once their wait is over."""
        self._abandon.hurry()

    def last_try_before(self, deadline: float) -> None:
        """A shutdown ends at ``deadline``: batches whose wait to retry would end
        after it are tried once more just before it (:data:`LAST_TRY_LEAD`)."""
        self._abandon.last_try_at(deadline - LAST_TRY_LEAD)

    def cut_short(self, deadline: float) -> None:
        """Every flush under way (a shutdown's, on another thread) ends by ``deadline``
        at the latest, as if its own came then: the process ends by then (a SIGTERM
        during an app's ``shutdown(30)``), and what that shutdown gives up at its
        deadline must be reported before."""
        with self._lock:
            if self._cut_at is None or deadline < self._cut_at:
                self._cut_at = deadline
            self._progress.notify_all()
        self.last_try_before(deadline)  # a batch waiting to retry: tried once before

    def cut(self, deadline: float) -> float:
        """``deadline``, or the earlier one :meth:`cut_short` set."""
        cut = self._cut_at
        return deadline if cut is None or deadline <= cut else cut

    def after_fork(self) -> None:
        """In a forked child: a fresh buffer, lock and threads; the parent's queue stays its own."""
        self._reset()
        self._delivery.reset_after_fork()

    @property
    def accepted(self) -> int:
        """Messages accepted so far: taken by a sender, or still buffered."""
        return self._taken + len(self._buffer)

    @property
    def queued(self) -> int:
        return len(self._buffer)

    @property
    def pending(self) -> int:
        """Accepted messages not yet delivered nor definitively failed."""
        with self._lock:
            return len(self._buffer) + sum(self._in_flight.values())

    def on_sender_thread(self) -> bool:
        """Whether the caller is one of the sender threads (in a hook, say)."""
        return threading.current_thread() in self._threads

    def put(self, item: bytes) -> str | None:
        """Accept ``item``; return ``None``, or the reason it was refused."""
        if self._pid != os.getpid():
            self.after_fork()
        buffer = self._buffer
        size = len(buffer)
        if size >= self._max_queue_size:
            return QUEUE_FULL
        count = size + 1
        if size and count != self._flush_at and count % self._full_batch and self._threads:
            # Fast path, no lock: a sender already knows the buffer is not empty and
            # this message changes nothing it waits for. (deque.append is atomic.)
            if self._closing:
                return SHUT_DOWN
            buffer.append(item)
            if self._closing:  # shutdown began meanwhile: take it back if still here
                return self._withdraw(item)
            if self._flushing and self._in_a_delivery():
                self._accepted_by_hooks += 1
            return None
        if self._lock_replaced():
            self._remake_lock()
        with self._lock:  # (re-entrant: see the module's docstring)
            if self._closing:
                return SHUT_DOWN
            size = len(buffer)
            if size >= self._max_queue_size:
                return QUEUE_FULL
            if not size:
                self._oldest_at = monotonic()
            buffer.append(item)
            # Counted again: a call nested in this one (a signal handler's) may have
            # appended meanwhile.
            count = len(buffer)
            if size == 0 or count == self._flush_at or count % self._full_batch == 0:
                self._has_work.notify()
            if self._flushing and self._in_a_delivery():
                self._accepted_by_hooks += 1
            if not self._threads and not self._starting:
                if _off_the_event_loop():
                    self._ask_event_loop_to_start()
                else:
                    self._start_senders()
        return None

    def _withdraw(self, item: bytes) -> str | None:
        with self._lock:
            try:
                self._buffer.remove(item)
            except ValueError:
                return None  # a sender took it: it is being delivered
            self._progress.notify_all()  # a flush waiting for it waits for one less
            return SHUT_DOWN

    def flush(self, timeout: float, *, patient: bool = False) -> bool:
        """Send everything accepted so far now; wait at most ``timeout`` seconds for it.

        ``patient``: the wait goes on while messages keep being delivered; it ends once
        ``timeout`` passes without one delivered (the host does not take them; a
        batch that fails for good is no delivery).
        On a sender thread it waits for nothing: what is left would wait for this
        thread's own batch, or for this thread.
        """
        self._remake_what_is_stale()
        if self.on_sender_thread() or threading.get_ident() in self._flushing:
            # (A hook of a delivery this thread's own flush() makes: as on a sender.)
            return self._ask_for_delivery()
        deadline = monotonic() + timeout
        with self._lock:
            target = self._taken + len(self._buffer)
            self._flush_upto = max(self._flush_upto, target)
            self._has_work.notify_all()
            delivered = self._delivery.sent
            flushing = threading.get_ident()
            self._flushing[flushing] = self._flushing.get(flushing, 0) + 1
            try:
                return self._wait_for(target, deadline, timeout, delivered, patient=patient)
            finally:
                if self._flushing[flushing] == 1:
                    del self._flushing[flushing]
                else:
                    self._flushing[flushing] -= 1

    def _in_a_delivery(self) -> bool:
        """Whether the caller runs a delivery's hooks: a sender thread, a nested send's,
        or a thread in :meth:`flush` that sends what it waits for itself."""
        return (
            self.on_sender_thread()
            or sending_on_this_thread()
            or threading.get_ident() in self._flushing
        )

    def _wait_for(
        self, target: int, deadline: float, timeout: float, delivered: int, *, patient: bool
    ) -> bool:
        """:meth:`flush`'s wait (the lock held) until the first ``target`` messages
        are done, and those a delivery's hooks accepted meanwhile."""
        rounds, hooked = 1, self._accepted_by_hooks
        while True:
            if self._done_upto() >= target:
                # What a delivery hook accepted as it waited (a track() of a loss, as
                # analytics-python's flush() waits for it), a few rounds deep: a hook
                # that tracks each delivery would make it wait for ever.
                if self._accepted_by_hooks == hooked or rounds == _FLUSH_ROUNDS:
                    break
                rounds, hooked = rounds + 1, self._accepted_by_hooks
                target = self._taken + len(self._buffer)
                self._flush_upto = max(self._flush_upto, target)
                self._has_work.notify_all()
                continue
            if self._closing and not self._buffer and not self._in_flight:
                # Shutting down and nothing left: a message put() took back as
                # the shutdown began was counted in the target, and never comes.
                break
            if patient and self._delivery.sent != delivered:
                # Delivered since (not failed): the host takes them, so wait on.
                delivered = self._delivery.sent
                deadline = monotonic() + timeout
            deadline = self.cut(deadline)
            remaining = deadline - monotonic()
            if remaining <= 0:
                return False
            idle = not self._threads and not self._starting
            if idle and self._buffer and self._taken < target:
                if not _off_the_event_loop():
                    if not self._start_senders():
                        self._send_here(target, deadline)
                    continue
                self._ask_event_loop_to_start()  # then waits for the senders
            self._progress.wait(remaining)
        return True

    def shutdown(self, timeout: float) -> bool:
        """Refuse new messages, deliver what was accepted within ``timeout``, stop the threads."""
        self._remake_what_is_stale()
        deadline = monotonic() + timeout
        with self._lock:
            self._closing = True
            self._has_work.notify_all()
        delivered = self.flush(timeout)
        if not delivered:
            self.given_up += self._give_up()
        for thread in self._threads:
            # A sender given up on may wait for an answer for up to its timeout: not
            # for it.
            if thread is not threading.current_thread() and not self._abandon.is_set():
                thread.join(max(0.0, deadline - monotonic()))
        if not any(thread.is_alive() for thread in self._threads):
            self._delivery.close()
        return delivered

    def _give_up(self) -> int:
        """At shutdown's deadline: what is not delivered fails now, once, and counts as
        done (see :meth:`Delivery.give_up`); how many messages failed."""
        with self._lock:
            waiting = list(self._buffer)
            self._buffer.clear()
            self._taken += len(waiting)
            # Every batch a sender holds is given up below: none is waited for any more.
            self._in_flight.clear()
            self._progress.notify_all()
        failed = self._delivery.give_up(waiting)
        # Senders waiting to retry stop now instead of outliving the deadline.
        self._abandon.set()
        return failed

    def _ask_for_delivery(self) -> bool:
        """:meth:`flush` on a sender thread: the senders send everything now, this one
        once its hook returns; whether all accepted is counted delivered or failed."""
        with self._lock:
            self._flush_upto = max(self._flush_upto, self._taken + len(self._buffer))
            self._has_work.notify_all()
            return not self._buffer and not any(self._in_flight.values())

    def _counted(self, start: int, count: int) -> None:
        """``count`` messages of the run ``start`` are counted delivered or failed (before
        their hooks run): no longer pending."""
        with self._lock:
            left = self._in_flight.get(start)
            if left is not None:  # (else given up at shutdown)
                self._in_flight[start] = max(0, left - count)

    def _done_upto(self) -> int:
        """Every message with a lower sequence number is delivered or failed (lock held)."""
        return min(self._in_flight, default=self._taken)

    def _start_senders(self) -> bool:
        """Start the sender threads (lock held, and released while they start); whether
        one runs.

        A refusal of the OS is no error of the caller's: the message stays accepted,
        and the next call tries again.
        """
        started: list[threading.Thread] = []
        self._starting = True
        self._lock.release()
        try:
            self._start_each(started)
        finally:
            self._lock.acquire()
            self._starting = False
            self._threads.extend(started)
            self._has_work.notify_all()  # the new senders wait for the caller to finish
            if not started:  # a flush() waiting for them delivers on its own thread
                self._progress.notify_all()
        return bool(self._threads)

    def _ask_event_loop_to_start(self) -> None:
        """Off the event loop's thread (lock held, no sender running): have the loop
        start the senders, when this worker knows it; else its next call does."""
        call = self._event_loop_call
        if call is None or self._event_loop_asked:
            return
        try:
            call(self._start_senders_on_event_loop)
        except ValueError:  # its loop was destroyed: none to ask
            self._event_loop_call = None
            return
        self._event_loop_asked = True

    def _start_senders_on_event_loop(self) -> None:
        """What another OS thread asked for, in a green thread of the event loop."""
        if self._pid != os.getpid():  # (asked in the parent, just before a fork)
            return
        with self._lock:
            self._event_loop_asked = False
            if not self._threads and not self._starting:
                self._start_senders()

    def _start_each(self, started: list[threading.Thread]) -> None:
        """Start ``max_in_flight`` sender threads into ``started`` (lock released)."""
        global _last_start_failure_log
        for index in range(self._config.max_in_flight):
            thread = threading.Thread(
                target=self._run,
                args=(self._generation,),
                name=f"segment-sender-{index}",
                daemon=True,
            )
            try:
                thread.start()
            except RuntimeError as error:  # "can't start new thread"
                now = monotonic()
                if _at_interpreter_shutdown(error):
                    # An atexit handler's call (Python 3.12 refuses threads then):
                    # the exit's shutdown delivers it on the calling thread.
                    logger.debug("Segment sends on the calling thread at exit (%s)", error)
                elif now - _last_start_failure_log >= _ERROR_LOG_INTERVAL:
                    _last_start_failure_log = now
                    logger.warning(
                        "Segment could not start a sender thread (%s); accepted messages "
                        "wait for a later call to start one, or for flush() or shutdown "
                        "to send them. (Each Client keeps a sender thread: build one per "
                        "process, not one per task or request.)",
                        error,
                    )
                break
            started.append(thread)

    def _send_here(self, target: int, deadline: float) -> None:
        """Deliver on the calling thread (lock held) what was accepted before ``target``,
        while no sender thread could start; no retry waits past ``deadline``."""
        while self._buffer and self._taken < target and monotonic() < deadline:
            start = self._taken
            batch = take_batch(
                self._buffer, max_messages=self._config.max_batch_size, max_bytes=self._max_bytes
            )
            self._taken += len(batch)
            self._in_flight[start] = len(batch)
            held = self._delivery.hold(batch, run=start)
            self._lock.release()
            try:
                self._delivery.deliver_held(held, self._abandon, deadline)
            finally:
                self._lock.acquire()
                self._in_flight.pop(start, None)  # (gone if shutdown gave it up)
                self._progress.notify_all()

    def _sends_for(self, generation: int) -> bool:
        """Whether a sender started with the lock of ``generation`` goes on: not once
        the lock was replaced or made again (it never takes the new one, whose waits
        are another OS thread's)."""
        return generation == self._generation and not self._lock_replaced()

    def _run(self, generation: int) -> None:
        with self._lock:
            # Started by a call that released the lock meanwhile: that call (a put()
            # among them) finishes first, as it would holding the lock.
            while self._starting:
                self._has_work.wait()
        while self._sends_for(generation):
            try:
                with self._lock:
                    taken = self._next_batch(generation)
            except Exception:
                # A bug here must not end the thread: accepted messages would wait for ever.
                self._pause_after_error()
                continue
            if taken is None:
                return
            start, held = taken
            try:
                self._delivery.deliver_held(held, self._abandon)
            except BaseException:  # pragma: no cover - deliver() already guards itself
                logger.exception("sender thread error")
            finally:
                with self._lock:
                    self._in_flight.pop(start, None)  # (gone if shutdown gave it up)
                    if self._sends_for(generation):  # (else the conditions are not its lock's)
                        self._progress.notify_all()

    def _pause_after_error(self) -> None:
        """Log an unexpected error of the sender loop (once a minute), then pause.

        The pause keeps an error that repeats from spinning; the loop then goes on,
        sending what is due without the wait that failed.
        """
        now = monotonic()
        if now - self._last_error_log >= _ERROR_LOG_INTERVAL:
            self._last_error_log = now
            logger.exception("Segment sender thread error; it goes on")
        time.sleep(_ERROR_PAUSE)

    def _next_batch(self, generation: int) -> tuple[int, HeldBatch] | None:
        """Wait (lock held) until a batch is due; ``None`` once closing and drained, or
        once this sender is to stop (see :meth:`_sends_for`)."""
        config = self._config
        while self._sends_for(generation):
            size = len(self._buffer)
            if not size:
                if self._closing:
                    return None
                # Bounded: an append on put()'s lock-free path may race this check.
                self._has_work.wait(max(config.flush_interval, _IDLE_CHECK))
                continue
            now = monotonic()
            due_at = self._oldest_at + config.flush_interval
            if size >= self._flush_at:
                held_until = now if self._left_behind else self._last_send_at + BUSY_SEND_INTERVAL
                due_at = min(due_at, held_until)
            if (
                now >= due_at
                or size >= self._full_batch
                or self._closing
                or self._taken < self._flush_upto
            ):
                start = self._taken
                batch = take_batch(
                    self._buffer, max_messages=config.max_batch_size, max_bytes=self._max_bytes
                )
                self._taken += len(batch)
                self._in_flight[start] = len(batch)
                self._last_send_at = now
                self._left_behind = len(batch) < size and len(self._buffer) >= len(batch)
                # Held as it leaves the buffer (lock held): shutdown's give-up sees
                # every message, in the buffer or in a sender's hands.
                return start, self._delivery.hold(batch, run=start)
            # Bounded: lock-free appends racing each other may skip the flush_at wake-up.
            self._has_work.wait(min(due_at - now, BUSY_SEND_INTERVAL))
        return None


def _off_the_event_loop() -> bool:
    """Whether green threads started here would never run: gevent's or eventlet's,
    from an OS thread other than the process's first (a threadpool's)."""
    return threading.get_native_id() != _first_thread_id() and _threads_are_green()


def _event_loop_caller() -> Callable[[Callable[[], None]], object] | None:
    """With gevent's threads, on the process's first thread: what has its event loop
    run a function in a new green thread, called from any OS thread."""
    gevent_monkey: Any = sys.modules.get("gevent.monkey")
    if gevent_monkey is None or not gevent_monkey.is_module_patched("threading"):
        return None
    if threading.get_native_id() != _first_thread_id():
        return None
    gevent: Any = sys.modules["gevent"]
    loop = gevent.get_hub().loop
    return functools.partial(loop.run_callback_threadsafe, gevent.spawn)


def _first_thread_id() -> int:
    """The OS id of the process's first thread, whose event loop green threads run on.

    On Linux it is the process id, in a forked child too (where eventlet's
    ``threading`` keeps the parent's).
    """
    if sys.platform == "linux":
        return os.getpid()
    return threading.main_thread().native_id or 0


def _at_interpreter_shutdown(error: RuntimeError) -> bool:
    """Whether a thread was refused because the interpreter is exiting."""
    return sys.is_finalizing() or "interpreter shutdown" in str(error)
