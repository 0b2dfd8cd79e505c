"""Delivers one batch with the retry policy; shared by the worker thread and sync mode."""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from segment_core import signals
from segment_core._capture import as_sent
from segment_core._clock import monotonic
from segment_core.config import Config
from segment_core.errors import DeliveryError, is_interruption
from segment_core.health import DeliveryHealth
from segment_core.hosts import redact_url
from segment_core.jsonvalues import short_repr
from segment_core.retry import backoff_delay
from segment_core.returned import complete
from segment_core.stats import Stats
from segment_core.transport import Outcome, Transport

__all__ = ["Abandon", "Delivery", "HeldBatch", "RetryWait", "sending_on_this_thread"]

logger = logging.getLogger("segment.core")
#: The largest number of seconds a float holds: a longer integer is no delay.
_LONGEST_FLOAT = sys.float_info.max

#: How many deliveries this thread is inside (a hook's call nests one in another).
_sending = threading.local()


def sending_on_this_thread() -> bool:
    """Whether this thread is inside a delivery: its hooks (``on_success``, ...) run
    there, the thread of a nested call's send included."""
    return getattr(_sending, "depth", 0) > 0


#: How long before a shutdown's deadline the last try of a batch is made, where its
#: backoff would end past the deadline: a request's time to be answered.
LAST_TRY_LEAD = 0.5
#: What a message the client shut down before sending failed with.
SHUT_DOWN_BEFORE_DELIVERY = "client shut down before delivery"
#: ... and one whose request was still waiting for an answer then.
_NO_ANSWER_BY_SHUTDOWN = (
    "client shut down while a request was waiting for an answer (the batch may have arrived)"
)


class Abandon(Protocol):
    """What a sender's retry waits on: set at shutdown's deadline (``threading.Event``)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class RetryWait:
    """The :class:`Abandon` of a client's sender threads: :meth:`set` at shutdown's
    deadline stops every retry; :meth:`hurry` ends the waits under way, whose batches
    are sent again at once (a test's receiver fixed, say); :meth:`last_try_at` ends
    those that would outlast a shutdown's deadline at a moment before it, for one
    last try."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._set = False
        self._hurried = 0
        self._last_try: float | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._changed:
            self._set = True
            self._changed.notify_all()

    def hurry(self) -> None:
        with self._changed:
            self._hurried += 1
            self._changed.notify_all()

    def last_try_at(self, moment: float) -> None:
        """A shutdown's deadline comes: the waits that began before ``moment`` (a time
        of :func:`monotonic`) and would end after it end then, once. A moment past
        already leaves no time for a try: the waits go on to the deadline."""
        if moment <= monotonic():
            return
        with self._changed:
            self._last_try = moment
            self._changed.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether it was set, after ``timeout`` seconds at most, once hurried, or at
        the moment of a last try (see :meth:`last_try_at`)."""
        with self._changed:
            hurried = self._hurried
            started = monotonic()
            end = None if timeout is None else started + timeout
            while not self._set and self._hurried == hurried:
                stop = end
                last = self._last_try
                if last is not None and last > started and (stop is None or last < stop):
                    stop = last
                left = None if stop is None else stop - monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(left)
            return self._set


@dataclass(eq=False)
class HeldBatch:
    """A batch taken for delivery, until its outcome is reported.

    Whoever releases it (see :meth:`Delivery.release`) reports it: the sender at its
    outcome, or the client at shutdown's deadline, where a sender may still wait
    for an answer or a retry. Its outcome is reported once either way.
    """

    batch: list[bytes]
    attempts: int = 0
    #: The worker's run it belongs to (see :attr:`Delivery.counted`); None in sync mode.
    run: int | None = None
    #: A request for it waits for its answer now.
    asking: bool = False
    last_error: str = ""


#: The least wait of a rate limit, in seconds (see :meth:`Delivery._rate_limit_wait`):
#: servers write ``Retry-After`` in whole seconds.
RATE_LIMIT_LEAST_WAIT = 1.0


def _within(delay: float, left: float) -> float | None:
    """``delay`` cut to ``left``, what is left of a budget: its last try comes as the
    budget ends, not a wait before it; None (no retry) once nothing is left."""
    return min(delay, left) if left > 0 else None


class Delivery:
    """Sends batches: retries what may succeed later, splits on 413, reports the rest."""

    def __init__(
        self,
        config: Config,
        stats: Stats,
        sender: object,
        transport_factory: Callable[[Config], Transport] = Transport,
    ) -> None:
        self._config = config
        self._stats = stats
        self._sender = sender
        self._transport_factory = transport_factory
        self._transport = transport_factory(config)
        self.health = DeliveryHealth(redact_url(config.host), timeout=config.timeout)
        #: The retry number of the ``backoff`` hook's last failure (0: none yet).
        self._backoff_failed_at = 0
        #: With a spool: told of each batch delivered or failed for good, and asked to
        #: keep a batch that ran out of retries for a later attempt; it returns the
        #: messages it could not keep (never written to disk), which fail.
        self.settled: Callable[[list[bytes]], None] | None = None
        self.keep: Callable[[list[bytes]], list[bytes]] | None = None
        #: The worker's: told that messages of a run (a :class:`HeldBatch`'s ``run``)
        #: are counted delivered or failed, before the hooks run, so that neither
        #: ``stats()`` nor a ``flush()`` in a hook takes them for pending.
        self.counted: Callable[[int, int], None] | None = None
        self._held: set[HeldBatch] = set()
        self._held_lock = threading.Lock()
        self._make_nested_parts()

    @property
    def sent(self) -> int:
        """Messages delivered so far (``stats()["sent"]``)."""
        return self._stats.sent

    def _make_nested_parts(self) -> None:
        """What a :meth:`deliver` called inside another on the same thread uses."""
        # Whether this thread is inside deliver().
        self._delivering = threading.local()
        # The Delivery of such sends, made by the first one: with a registry, a lock
        # and connections of its own, it waits for none the interrupted send holds.
        # (Its failures are logged on their own; the counters are the client's.)
        self._nested: Delivery | None = None
        self._nested_lock = threading.Lock()

    def reset_after_fork(self) -> None:
        # The parent's connection pool must not be shared with the child, nor its
        # batches: the child never reports them.
        self._transport = self._transport_factory(self._config)
        self._held = set()
        self._held_lock = threading.Lock()
        self._make_nested_parts()

    def close(self) -> None:
        self._transport.close()
        if self._nested is not None:
            self._nested.close()

    def hold(self, batch: list[bytes], run: int | None = None) -> HeldBatch:
        """``batch``, taken for delivery: from now on :meth:`give_up` sees it."""
        held = HeldBatch(batch, run=run)
        with self._held_lock:
            self._held.add(held)
        return held

    def _holds(self, held: HeldBatch) -> bool:
        """Whether ``held`` is still this sender's to report (not given up at shutdown)."""
        with self._held_lock:
            return held in self._held

    def awaiting_answer(self) -> int:
        """Messages of the requests that wait for their answer now (they may arrive)."""
        with self._held_lock:
            return sum(len(held.batch) for held in self._held if held.asking)

    def release(self, held: HeldBatch) -> bool:
        """Whether the caller is the one to report ``held``'s outcome: False once
        :meth:`give_up` reported it."""
        with self._held_lock:
            if held not in self._held:
                return False
            self._held.remove(held)
            return True

    def deliver(self, batch: list[bytes], abandon: Abandon, deadline: float | None = None) -> bool:
        """Send ``batch``; return once every message is delivered or definitively failed.

        ``deadline`` (a time of :func:`segment_core._clock.monotonic`): no retry is
        started that would wait past it. True if every message was delivered.

        Called again by a thread inside it (sync mode: a signal handler's call, a
        finalizer's the garbage collector runs, a hook's), it sends on a thread of its
        own, which it waits for until ``deadline`` (``timeout`` without one): the send
        it interrupted holds its connection, and perhaps a lock, until it goes on. Not
        delivered by then, it returns False, and the batch may still arrive.
        """
        delivering = self._delivering
        if getattr(delivering, "here", False):
            return self._deliver_on_a_thread(batch, abandon, deadline)
        delivering.here = True
        _sending.depth = getattr(_sending, "depth", 0) + 1
        try:
            return self.deliver_held(self.hold(batch), abandon, deadline)
        finally:
            delivering.here = False
            _sending.depth -= 1

    def _deliver_on_a_thread(
        self, batch: list[bytes], abandon: Abandon, deadline: float | None
    ) -> bool:
        """:meth:`deliver` on a thread of its own, waited for until ``deadline``."""
        delivered: list[bool] = []

        def send() -> None:
            delivered.append(self._delivery_of_nested_sends().deliver(batch, abandon, deadline))

        # Not a daemon: a batch not delivered by the deadline still is before the
        # process ends.
        thread = threading.Thread(target=send, name="segment-nested-send")
        try:
            thread.start()
        except RuntimeError as error:  # "can't start new thread" (at exit, say)
            # Sent here, it could wait for the send it interrupted for ever: it fails,
            # counted, without hooks (which could wait for it too).
            self._stats.add(failed=len(batch))
            self._stats.error(f"no thread to send a nested call's message on: {error}")
            return False
        wait = self._config.timeout if deadline is None else deadline - monotonic()
        thread.join(max(0.0, wait))
        return delivered == [True]

    def _delivery_of_nested_sends(self) -> Delivery:
        with self._nested_lock:
            if self._nested is None:
                self._nested = Delivery(
                    self._config, self._stats, self._sender, self._transport_factory
                )
            return self._nested

    def deliver_held(
        self, held: HeldBatch, abandon: Abandon, deadline: float | None = None
    ) -> bool:
        """:meth:`deliver` for a batch :meth:`hold` took."""
        pending = [held]
        delivered = True
        while pending:
            current = pending.pop()
            try:
                if abandon.is_set():  # shut down past its deadline: no more requests
                    if self.release(current):
                        self._stop_at_shutdown(current, SHUT_DOWN_BEFORE_DELIVERY, 0)
                    delivered = False
                    continue
                more = self._deliver_one(current, abandon, deadline)
            except BaseException as exc:  # a bug here must never stop delivery for good
                if is_interruption(exc):  # (see _deliver_one)
                    self._interrupted([h.batch for h in pending if self.release(h)], exc)
                    raise
                logger.exception("unexpected error while delivering a batch")
                if self.release(current):
                    error = Outcome(status=None, error=f"{type(exc).__name__}: {exc}")
                    self._fail(current.batch, error, 0, current)
                delivered = False
            else:
                if more is None:
                    delivered = False
                else:
                    pending.extend(more)
        return delivered

    def give_up(self, waiting: list[bytes]) -> int:
        """At shutdown's deadline: fail, once, what is not delivered yet, and return how
        many messages failed.

        That is ``waiting`` (taken from the buffer, never sent) and every batch a sender
        still holds: one waiting to retry, one waiting for an answer (which may yet
        come: Segment de-duplicates a batch sent again by ``messageId``). What the spool
        keeps on disk does not fail: it is delivered later. The process may end right
        after the shutdown, and the hooks with it: they run now, on this thread.
        """
        with self._held_lock:
            held, self._held = self._held, set()
        failed = 0
        if waiting:
            failed += self._stop_at_shutdown(HeldBatch(waiting), SHUT_DOWN_BEFORE_DELIVERY, 0)
        for batch in held:
            if batch.asking:
                error = _NO_ANSWER_BY_SHUTDOWN
                attempts = batch.attempts + 1
            else:
                error, attempts = SHUT_DOWN_BEFORE_DELIVERY, batch.attempts
            if batch.last_error:
                error += f"; last error: {batch.last_error}"
            failed += self._stop_at_shutdown(batch, error, attempts)
        return failed

    def _deliver_one(
        self, held: HeldBatch, abandon: Abandon, deadline: float | None
    ) -> list[HeldBatch] | None:
        """What is left to send of ``held`` (halves of it), or None if it was not delivered.

        In sync mode this runs on the caller's thread: a job's time limit may stop it
        in a request or a wait, and must reach the job. The batch then counts as
        failed, unless it was already reported (and a hook that follows was stopped).
        """
        batch = held.batch
        #: The retries ``max_retries`` and ``max_total_backoff_duration`` bound, and
        #: when that budget began: both start again after a rate limit.
        retries, retries_since = 0, monotonic()
        #: When the server first answered with a rate limit, if it did.
        rate_limited_since: float | None = None
        try:
            while True:
                self.health.request_started()
                held.asking = True
                try:
                    outcome = self._transport.post(batch, retry_count=held.attempts)
                finally:
                    held.asking = False
                    self.health.request_ended()
                if outcome.ok:
                    self.health.succeeded()
                    if not self.release(held):
                        return None  # given up at shutdown, and reported as failed then
                    self._stats.add(sent=len(batch), batches=1)
                    if self.settled is not None:
                        try:
                            self.settled(batch)
                        except Exception:  # delivered all the same: never counted failed too
                            logger.exception("error while settling a delivered batch")
                    self._settle(held)
                    signals.emit(
                        signals.batch_sent, self._sender, count=len(batch), status=outcome.status
                    )
                    if self._config.on_success is not None:
                        self._report_each(batch, self._config.on_success, "on_success")
                    return []
                if outcome.status == 413 and len(batch) > 1:
                    # A proxy (or a smaller server limit) refused the size: halve and resend.
                    half = len(batch) // 2
                    logger.info("batch of %d refused as too large; splitting it", len(batch))
                    return self._split(held, [batch[half:], batch[:half]])
                if not self._holds(held):
                    return None  # given up at shutdown meanwhile: reported then, once
                held.attempts += 1
                attempt = held.attempts
                wait = self._rate_limit_wait(outcome)
                if wait is not None:
                    # The server said when to come back: no retry is spent, and the
                    # count starts again after it (as analytics-python counts); the
                    # whole rate limit has max_rate_limit_duration.
                    now = monotonic()
                    if rate_limited_since is None:
                        rate_limited_since = now
                    retries, retries_since = 0, now
                    left = self._config.max_rate_limit_duration - (now - rate_limited_since)
                    delay = _within(wait, left)
                    if delay is None:
                        outcome = self._rate_limit_outlasted(outcome)
                else:
                    retries += 1
                    delay = self._retry_delay(outcome, retries, retries_since)
                held.last_error = outcome.error
                self._stats.error(outcome.error)  # the latest, while retries go on too
                if delay is not None and deadline is not None and monotonic() + delay > deadline:
                    delay = self._last_try_delay(deadline)
                self.health.failed(outcome.error, retrying=delay is not None)
                if delay is None:
                    if self.release(held):
                        unkept = batch if outcome.final_for_spool else self._keep(batch)
                        if unkept:
                            self._fail(unkept, outcome, attempt, held)
                        else:
                            self._settle(held)
                    return None
                self._stats.add(retries=1)
                self._report_failure(batch, outcome, retrying=True)
                if self._config.debug:
                    logger.debug(
                        "retry %d of a batch in %.2fs after %s", attempt, delay, outcome.error
                    )
                if abandon.wait(delay):
                    if self.release(held):
                        stopped = f"{SHUT_DOWN_BEFORE_DELIVERY}; last error: {outcome.error}"
                        self._stop_at_shutdown(held, stopped, attempt)
                    return None
        except BaseException as exc:  # KeyboardInterrupt, gevent.Timeout, a job's limit...
            if is_interruption(exc) and self.release(held):
                self._interrupted([batch], exc)
            raise

    def _split(self, held: HeldBatch, halves: list[list[bytes]]) -> list[HeldBatch] | None:
        """``held`` as its ``halves``, each held in its place; None if it was given up."""
        parts = [HeldBatch(half, run=held.run, last_error=held.last_error) for half in halves]
        with self._held_lock:
            if held not in self._held:
                return None
            self._held.remove(held)
            self._held.update(parts)
        return parts

    def _interrupted(self, batches: list[list[bytes]], error: BaseException) -> None:
        """Sync mode: a job's time limit stopped the caller while it sent ``batches``.

        They count as failed, ``last_error`` saying why. No hook runs: the job is to
        stop now, not to run more of the app's code.
        """
        count = sum(len(batch) for batch in batches)
        if count:
            self._stats.add(failed=count)
            self._stats.error(f"interrupted by {type(error).__name__}: {error}")

    def _stop_at_shutdown(self, held: HeldBatch, error: str, attempts: int) -> int:
        """A batch the client shut down before delivering: what is on disk stays there,
        the rest fails; how many failed."""
        unkept = self._keep(held.batch)
        if unkept:
            self._fail(unkept, Outcome(status=None, error=error), attempts, held)
        else:
            self._settle(held)
        return len(unkept)

    def _settle(self, held: HeldBatch) -> None:
        """``held``'s outcome is counted: its messages are pending no more (see :attr:`counted`)."""
        if held.run is not None and self.counted is not None:
            self.counted(held.run, len(held.batch))

    def _keep(self, batch: list[bytes]) -> list[bytes]:
        """What of ``batch`` the spool could not keep for a later attempt (all, without one)."""
        return batch if self.keep is None else self.keep(batch)

    def _last_try_delay(self, deadline: float) -> float | None:
        """The wait before one last try of a batch whose backoff would end past
        ``deadline`` (a flush's on the caller's thread): the try is made
        :data:`LAST_TRY_LEAD` seconds before it, so that an outage ending meanwhile
        loses nothing; None (no retry) where less time is left, and in ``sync_mode``,
        whose caller waits for it. (A sender thread's wait ends so at a shutdown:
        see :class:`RetryWait`.)"""
        if self._config.sync_mode:
            return None
        left = deadline - monotonic() - LAST_TRY_LEAD
        return left if left > 0 else None

    def _rate_limit_wait(self, outcome: Outcome) -> float | None:
        """The wait of a rate limit: a retryable answer whose ``Retry-After`` the client
        waits for (at most ``retry_after``) a second or more, and no less than the
        policy's least. None for any other answer: a shorter wait (``0``, or
        ``retry_after=0``) is a retry like any, so that no rate limit makes requests
        back to back; a redirect's is no rate limit either."""
        if outcome.retry_after is None or outcome.deferred or not outcome.retryable:
            return None
        config = self._config
        wait = min(outcome.retry_after, config.max_retry_after)
        return wait if wait >= max(RATE_LIMIT_LEAST_WAIT, config.retry_backoff_min) else None

    def _rate_limit_outlasted(self, outcome: Outcome) -> Outcome:
        """``outcome``, its error saying that the rate limit outlasted the time given."""
        seconds = f"{self._config.max_rate_limit_duration:g}"
        return dataclasses.replace(
            outcome,
            error=f"{outcome.error} (rate limited for longer than max_rate_limit_duration, "
            f"{seconds} s)",
        )

    def _retry_delay(self, outcome: Outcome, attempt: int, started: float) -> float | None:
        config = self._config
        if not outcome.retryable or attempt > config.max_retries:
            return None
        delay = (
            backoff_delay(
                attempt, minimum=config.retry_backoff_min, maximum=config.retry_backoff_max
            )
            if config.backoff is None
            else self._custom_backoff(attempt)
        )
        if outcome.retry_after is not None:
            # The server's wait wins, at most retry_after; one shorter than the
            # policy's least ("0", or retry_after=0) would spend every retry at once,
            # and is not taken.
            wait = min(outcome.retry_after, config.max_retry_after)
            if wait >= config.retry_backoff_min:
                delay = wait
        return _within(delay, config.max_total_backoff_duration - (monotonic() - started))

    def _fail(self, batch: list[bytes], outcome: Outcome, attempts: int, held: HeldBatch) -> None:
        """``batch`` (``held``'s, but what the spool kept) failed for good: counted,
        then reported."""
        self._stats.add(failed=len(batch))
        self._stats.error(outcome.error)
        if self.settled is not None:
            self.settled(batch)
        self._settle(held)
        # The same cause: the same status, or the same kind of error ("ReadTimeoutError:
        # ..."), whose text varies with the connection's details.
        kind = outcome.status if outcome.status is not None else outcome.error.partition(":")[0]
        self.health.gave_up(len(batch), attempts, outcome.error, kind)
        error = self._report_failure(batch, outcome, retrying=False)
        if self._config.on_error is not None:
            try:
                self._config.on_error(error, _decode_all(batch))
            except Exception as exc:
                if is_interruption(exc):  # sync mode: a job's time limit stops the job
                    raise
                logger.exception("on_error hook raised")
        on_failure = self._config.on_failure
        if on_failure is not None:
            self._report_each(batch, lambda message: on_failure(message, error), "on_failure")

    def _custom_backoff(self, attempt: int) -> float:
        """The ``backoff`` option's delay; the default policy's when the hook misbehaves
        (logged once per batch: its first failure at ERROR, the batch's next ones at
        DEBUG)."""
        config = self._config
        assert config.backoff is not None
        try:
            delay = config.backoff(attempt)
        except Exception as exc:
            if is_interruption(exc):  # sync mode: a job's time limit stops the job
                raise
            logger.log(
                self._backoff_failure_level(attempt),
                "backoff hook raised; using the default retry policy",
                exc_info=True,
            )
        else:
            if (
                isinstance(delay, (int, float))
                and not isinstance(delay, bool)
                and 0 <= delay < float("inf")
                and (type(delay) is float or delay <= _LONGEST_FLOAT)
            ):
                return float(delay)
            logger.log(
                self._backoff_failure_level(attempt),
                "backoff must return a number of seconds >= 0, got %s; "
                "using the default retry policy",
                short_repr(delay),  # never fails, whatever the hook answered
            )
        return backoff_delay(
            attempt, minimum=config.retry_backoff_min, maximum=config.retry_backoff_max
        )

    def _backoff_failure_level(self, attempt: int) -> int:
        """ERROR for the first failure of the ``backoff`` hook in a batch (its retries
        are numbered from 1 again), DEBUG for the batch's next ones."""
        last, self._backoff_failed_at = self._backoff_failed_at, attempt
        return logging.ERROR if attempt <= last or last == 0 else logging.DEBUG

    @staticmethod
    def _report_each(batch: list[bytes], hook: Callable[[dict[str, Any]], None], name: str) -> None:
        """Call a per-message hook for each message; a hook that raises is logged once a batch."""
        failed = 0
        for item in batch:
            try:
                hook(as_sent(item))
            except Exception as exc:
                if is_interruption(exc):  # sync mode: a job's time limit stops the job
                    raise
                failed += 1
                if failed == 1:
                    logger.exception("%s hook raised", name)
        if failed > 1:
            logger.error("%s hook raised for %d messages of one batch", name, failed)

    def _report_failure(self, batch: list[bytes], outcome: Outcome, *, retrying: bool) -> Exception:
        error = DeliveryError(outcome.error, status=outcome.status, body=outcome.body)
        signals.emit(
            signals.batch_failed, self._sender, error=error, count=len(batch), retrying=retrying
        )
        return error


def _decode_all(batch: list[bytes]) -> list[dict[str, Any]]:
    """The batch for ``on_error``: messages with every key analytics-python's have,
    so that handlers written for it (``m["anonymousId"]``) read them."""
    return [complete(as_sent(item)) for item in batch]
