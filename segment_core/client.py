"""The client: analytics-python's API on a bounded, fork-safe, never-blocking pipeline."""

from __future__ import annotations

import decimal
import logging
import numbers
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from segment_core import _capture, _forks, lifecycle, signals
from segment_core._clock import monotonic
from segment_core.attributes import ClientSettings
from segment_core.batching import MAX_MESSAGE_BYTES
from segment_core.config import MAX_SECONDS, POSITIONAL_OPTIONS, Config
from segment_core.delivery import Delivery, sending_on_this_thread
from segment_core.encoding import encode, encode_simple
from segment_core.errors import InvalidMessage, MessageTooLarge, is_interruption
from segment_core.hosts import doubled_api_path, redact_url
from segment_core.injection import InjectedMessageFactory
from segment_core.jsonvalues import error_text
from segment_core.messages import Message
from segment_core.normalize import WHOLE_MESSAGE, MessageFactory, check_hook_result
from segment_core.returned import complete
from segment_core.spec import MESSAGE_TYPES, path_to
from segment_core.spool import Spool
from segment_core.stats import Stats
from segment_core.worker import SHUT_DOWN, Worker

__all__ = ["Client"]

logger = logging.getLogger("segment.core")
#: The parent of every logger of the library; analytics-python logs to this name too.
package_logger = logging.getLogger("segment")

Result = tuple[bool, dict[str, Any]]


class Client(ClientSettings):
    """Send Segment calls from any thread without blocking or breaking the caller.

    >>> client = Client("WRITE_KEY")                                # doctest: +SKIP
    >>> client.track("user-1", "Order Completed", {"revenue": 42})  # doctest: +SKIP
    (True, {...})

    Every call validates and encodes its message on the caller's thread (a mistake
    raises :class:`InvalidMessage` right there), then hands the bytes to a bounded
    buffer drained by a background thread. Calls return ``(accepted, message)``,
    the message with every key analytics-python's has. The settings are read-only
    attributes (``client.host``, ``client.flush_at``, ...): build a new client to
    change one.
    """

    #: analytics-python's ``Client.log``: the logger its users configure.
    log = package_logger
    #: analytics-python's ``Client.DefaultConfig``: the options' defaults
    #: (``Client.DefaultConfig.timeout``), under its names too (``upload_size``).
    DefaultConfig = Config

    def __init__(self, write_key: str | None = None, *args: Any, **options: Any) -> None:
        if args:  # analytics-python's positional order: Client(key, host, debug, ...)
            options = _positional_options(args, options)
        config = Config.from_options(write_key, **options)
        # The one public attribute set: every other one is refused (see ClientSettings).
        object.__setattr__(self, "config", config)
        _warn_doubled_api_path(config.host)
        if config.log_handler is not None and config.log_handler not in package_logger.handlers:
            package_logger.addHandler(config.log_handler)
        if config.debug:
            package_logger.setLevel(logging.DEBUG)
            if not package_logger.handlers:  # as analytics-python does: debug output is seen
                package_logger.addHandler(logging.StreamHandler())
            # A receiver of this client's own signal: without debug, calls do nothing
            # more. (Weakly held: it goes with the client.)
            signals.message_enqueued.connect(self._log_accepted, sender=self)
        self._factory = _message_factory(config)
        self._make_parts()
        #: A forked child's parts are still the parent's (see _own_parts).
        self._parents_parts = False
        self._registered = False
        self._shut_down = False
        #: What the finished shutdown returned: a later one has nothing left to do.
        self._shutdown_result: bool | None = None
        self._before_send = config.before_send
        self._hook_failures = signals.FailureLog()
        self._warned_disabled = False
        self._last_drop_log = 0.0
        #: Drops since the last one logged, which the next log line counts.
        self._drops_unlogged = 0
        self._outbox: list[dict[str, Any]] | None = None
        # Asked as the first message comes, then forgotten: see testing.divert_when.
        self._divert_check: tuple[Callable[[], object], list[dict[str, Any]]] | None = None
        #: Set to send in tests (an adapter's send_in_tests): a capture records what
        #: it accepts without holding it back (see testing.divert_in_tests).
        self._sends_in_tests = False
        #: Called once when the client is diverted to an outbox (see adapters).
        self._on_diverted: Callable[[Client], None] | None = None
        if not config.write_key and config.send:
            self._warn_disabled()
        # With a spool, adopt what dead processes left from now on, message or not.
        queued = config.enabled and not config.sync_mode
        self._spool = Spool(config) if config.spool_dir and queued else None
        # The common case, decided once: enqueue for the sender threads.
        self._queueing = self._sends_by_queue()
        if self._spool is not None:
            self._spool.attach(self._worker, self._delivery)
            self._register()
        _live.add(self)  # made anew in a forked child (see _after_fork_in_child)
        lifecycle.chain_sigterm()

    # -- analytics-python's calls, same names, same positional order -------------

    def identify(
        self,
        user_id: Any = None,
        traits: Any = None,
        context: Any = None,
        timestamp: Any = None,
        anonymous_id: Any = None,
        integrations: Any = None,
        message_id: Any = None,
    ) -> Result:
        """Who the user is: ``traits`` such as email, name, plan."""
        factory = self._factory
        message = factory.identify(
            user_id, traits, context, timestamp, anonymous_id, integrations, message_id
        )
        unchecked = factory.unchecked(context, integrations, message.get("traits"))
        return self._accept(message, unchecked)

    def track(
        self,
        user_id: Any = None,
        event: Any = None,
        properties: Any = None,
        context: Any = None,
        timestamp: Any = None,
        anonymous_id: Any = None,
        integrations: Any = None,
        message_id: Any = None,
    ) -> Result:
        """What the user did: an ``event`` name with ``properties``."""
        factory = self._factory
        message = factory.track(
            user_id, event, properties, context, timestamp, anonymous_id, integrations, message_id
        )
        unchecked = factory.unchecked(context, integrations, message.get("properties"))
        return self._accept(message, unchecked)

    def page(
        self,
        user_id: Any = None,
        category: Any = None,
        name: Any = None,
        properties: Any = None,
        context: Any = None,
        timestamp: Any = None,
        anonymous_id: Any = None,
        integrations: Any = None,
        message_id: Any = None,
    ) -> Result:
        """A page view, with the Spec's page fields in ``properties``."""
        factory = self._factory
        message = factory.page(
            user_id,
            category,
            name,
            properties,
            context,
            timestamp,
            anonymous_id,
            integrations,
            message_id,
        )
        unchecked = factory.unchecked(context, integrations, message.get("properties"))
        return self._accept(message, unchecked)

    def screen(
        self,
        user_id: Any = None,
        category: Any = None,
        name: Any = None,
        properties: Any = None,
        context: Any = None,
        timestamp: Any = None,
        anonymous_id: Any = None,
        integrations: Any = None,
        message_id: Any = None,
    ) -> Result:
        """A screen view in a mobile or desktop app."""
        factory = self._factory
        message = factory.screen(
            user_id,
            category,
            name,
            properties,
            context,
            timestamp,
            anonymous_id,
            integrations,
            message_id,
        )
        unchecked = factory.unchecked(context, integrations, message.get("properties"))
        return self._accept(message, unchecked)

    def group(
        self,
        user_id: Any = None,
        group_id: Any = None,
        traits: Any = None,
        context: Any = None,
        timestamp: Any = None,
        anonymous_id: Any = None,
        integrations: Any = None,
        message_id: Any = None,
    ) -> Result:
        """Associate the user with a group (a company, an account, a team)."""
        factory = self._factory
        message = factory.group(
            user_id, group_id, traits, context, timestamp, anonymous_id, integrations, message_id
        )
        unchecked = factory.unchecked(context, integrations, message.get("traits"))
        return self._accept(message, unchecked)

    def alias(
        self,
        previous_id: Any = None,
        user_id: Any = None,
        context: Any = None,
        timestamp: Any = None,
        integrations: Any = None,
        message_id: Any = None,
    ) -> Result:
        """Merge the identity ``previous_id`` into ``user_id``."""
        factory = self._factory
        message = factory.alias(previous_id, user_id, context, timestamp, integrations, message_id)
        return self._accept(message, factory.unchecked(context, integrations, None))

    def enqueue(self, message: Message) -> Result:
        """Send a typed message (:class:`Track`, :class:`Identify`, ...)."""
        kind = getattr(message, "type", None)
        typed = not isinstance(message, type) and hasattr(message, "call_kwargs")
        if not typed or kind not in MESSAGE_TYPES:
            raise InvalidMessage(
                "message must be a Track, Identify, Page, Screen, Group or Alias, got "
                + (
                    f"the class {message.__name__} (an instance: {message.__name__}(...))"
                    if isinstance(message, type)
                    else type(message).__name__
                )
            )
        return self._accept(self._factory.build(kind, **message.call_kwargs()))

    # -- lifecycle -------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything waiting now and wait for it, at most ``timeout`` seconds.

        ``None`` waits while messages keep being delivered, until ``shutdown_timeout``
        passes without one (with a spool, whose disk keeps the rest for the next
        process: at most ``shutdown_timeout``). Returns True when every message
        accepted before the call was delivered or definitively failed, and those the
        deliveries' hooks accepted while it waited (``on_error`` tracking the loss it
        reports, as analytics-python's ``flush()`` waits for them; a few rounds deep).
        After :meth:`shutdown`, nothing is sent any more: it returns what that returned.
        On a sender thread (in ``on_success``, ``on_error``, ``on_failure``, a
        signal receiver or a log handler the sender's logs reach; in ``sync_mode``,
        the calling thread during its call) it asks for delivery and returns at once
        whether everything accepted was delivered or definitively failed: that
        thread delivers the rest once its hook returns. In ``sync_mode`` it waits for
        the calls of other threads under way (not for those of a forked child's
        parent).
        With a spool, so it does when called again by a thread inside another
        ``flush()``, or while the spool writes a message (a signal handler's call, a
        finalizer's): what it would wait for is that thread. A ``timeout`` that is no
        number of seconds raises ``TypeError`` naming it, and a NaN ``ValueError``.
        """
        _checked_timeout(timeout)
        if self.config.sync_mode:  # the calls of other threads under way
            self._own_parts()  # a forked child waits for no call of its parent's threads
            if sending_on_this_thread():  # in a hook of a call's delivery
                return not self._sync_calls.keys() - {threading.get_ident()}
            return self._wait_for_sync_calls(monotonic() + self._timeout(timeout))
        if not self.config.enabled:
            return True
        if self._shutdown_result is not None:  # nothing is sent any more: it said what was
            return self._shutdown_result
        self._own_parts()
        if self._spool is not None:
            return self._spool.flush(self._timeout(timeout))
        # Without a timeout, as analytics-python's flush() waits for what its host takes:
        # while messages keep being delivered (nothing else would keep the rest).
        return self._worker.flush(self._timeout(timeout), patient=timeout is None)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """The end of ``with Client(...) as client:``: :meth:`shutdown`, within
        ``shutdown_timeout``."""
        self.shutdown()

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush, then stop the sender threads; later calls are refused (and counted).

        Returns by the deadline (``None``: ``shutdown_timeout``) and reports, as
        :meth:`flush` does, whether everything accepted was delivered or definitively
        failed by then (a failure went through ``on_error`` and ``on_failure``, and
        counts in ``stats()["failed"]``). What is not by then fails, through
        ``on_error`` and ``on_failure`` on this thread, before it returns (what the
        spool keeps on disk aside). Safe to call twice: the second returns the first's
        answer at once, or, while the first runs, once it has one (False if its own
        deadline comes first, or at once when called by the first's own hooks).

        On a sender thread (in a hook, as :meth:`flush`) it only starts: new calls are
        refused from now on, and it returns at once whether everything was already
        delivered or definitively failed. The senders go on delivering what was
        accepted, and a later ``shutdown()`` (the one at exit) waits for them.
        """
        _checked_timeout(timeout)
        if self._shutdown_result is not None:
            return self._shutdown_result
        self._own_parts()
        if self._shutdown_thread == threading.get_ident():
            return False  # from the shutdown's own hooks (on_error): its answer is not known
        if self._worker.on_sender_thread() or sending_on_this_thread():
            return self._begin_shutdown()  # in a hook (in sync_mode, of a call's delivery)
        timeout = self._timeout(timeout)
        deadline = monotonic() + timeout
        if not self._shutting_down.acquire(timeout=timeout):
            return False  # another shutdown still runs: nothing is known delivered yet
        self._shutdown_thread: int | None = threading.get_ident()
        try:
            if self._shutdown_result is not None:
                return self._shutdown_result
            return self._shutdown(deadline)
        finally:
            self._shutdown_thread = None
            self._shutting_down.release()

    def end_other_shutdowns_by(self, deadline: float) -> None:
        """For the process's exit, which ends it by ``deadline``: a :meth:`shutdown`
        under way on another thread (the app's ``shutdown(30)`` as SIGTERM comes)
        ends by then, and reports what it gives up (``on_error``, the log lines), as
        it would at its own deadline."""
        if self._shutting_down.locked() and self._shutdown_result is None:
            self._own_parts()
            # It ends a little before, to report what it gives up by the deadline.
            margin = min(_REPORT_MARGIN, max(0.0, deadline - monotonic()) / 4)
            self._worker.cut_short(deadline - margin)

    def _wait_for_sync_calls(self, deadline: float) -> bool:
        """Until the ``sync_mode`` calls of other threads have returned, or the deadline
        (a call of this thread's own, whose hook flushes, is not waited for); True
        when none is under way any more."""
        me = threading.get_ident()
        while self._sync_calls.keys() - {me}:
            if monotonic() >= self._worker.cut(deadline):  # (the process's exit's, sooner)
                return False
            time.sleep(_SYNC_CALLS_LOOK_EVERY)
        return True

    def _begin_shutdown(self) -> bool:
        """:meth:`shutdown` on a sender thread: refuse new calls, wait for nothing."""
        self._shut_down = True
        self._queueing = False
        return self.flush(0.0)

    def _shutdown(self, deadline: float) -> bool:
        self._shut_down = True
        self._queueing = False
        # A sync_mode call under way goes on to its answer (a SIGTERM during it lets
        # it finish), within the deadline; then it gives up its retries.
        answered = self._wait_for_sync_calls(deadline) if self.config.sync_mode else True
        self._sync_abandon.set()
        health = self._delivery.health
        if self.config.sync_mode or not self.config.enabled:
            health.report_given_up()
            if self.config.sync_mode:  # its connections, which no sender thread closes
                self._delivery.close()
            return answered
        self._worker.last_try_before(deadline)
        timeout = max(0.0, deadline - monotonic())
        spool = self._spool
        if spool is not None:
            spool.flush(timeout)
        delivered = self._worker.shutdown(max(0.0, self._worker.cut(deadline) - monotonic()))
        deadline = self._worker.cut(deadline)  # another shutdown cut this one short
        health.report_given_up()
        # Of the sender's messages, those on disk stay there for the next client (close()
        # says so); the others failed at the deadline.
        undelivered = self._worker.given_up
        where = ""
        if spool is not None:
            where = ", held in memory only (not in the spool)"
            delivered = spool.close(deadline - monotonic()) and delivered
        self._shutdown_result = delivered
        if undelivered > 0:
            logger.warning(
                "Segment client shut down with %d message(s) undelivered to %s%s; last error: %s",
                undelivered,
                health.host,
                where,
                health.describe_last_error(),
            )
        return delivered

    def _warn_undelivered(self, when: str) -> None:
        """One WARNING for what is not delivered yet (an ASGI app's flush at shutdown,
        which may be the process's last delivery): how many, the host, how many of
        them the spool holds on disk for the next process, and the last error."""
        self._own_parts()
        pending = self._worker.pending
        spool = self._spool
        on_disk = ""
        if spool is not None:
            kept = spool.in_buffer + spool.pending
            pending += spool.pending
            on_disk = f" ({kept} of them on disk in the spool, for the next process)"
        health = self._delivery.health
        logger.warning(
            "Segment: %d message(s) not delivered to %s %s%s; last error: %s",
            pending,
            health.host,
            when,
            on_disk,
            health.describe_last_error(),
        )

    def join(self, timeout: float | None = None) -> bool:
        """analytics-python's name for :meth:`shutdown`."""
        return self.shutdown(timeout)

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters: queued, accepted, sent, failed, dropped, retries, ..."""
        self._own_parts()
        snapshot = self._stats.snapshot(queued=self._worker.queued)
        spool = self._spool
        snapshot["accepted"] += self._worker.accepted if spool is None else spool.accepted
        snapshot["pending"] = self._worker.pending
        if spool is not None:
            snapshot["pending"] += spool.pending
            snapshot["spool"] = spool.snapshot()
            # Messages whose file was removed under the spool: failed, never sent.
            snapshot["failed"] += snapshot["spool"]["lost"]
        return snapshot

    # -- internals -------------------------------------------------------------

    def _accept(
        self, message: dict[str, Any], unchecked: object = WHOLE_MESSAGE, *, lean: bool = False
    ) -> Result:
        """Take a built message: ``before_send``, encoding, the size limit, the queue.

        ``unchecked``: what of the message the encoder must look into (see
        :meth:`MessageFactory.unchecked`): nothing, its properties, or all of it.
        ``lean``: a message the caller does not return at once is left without the
        keys of analytics-python's shape (see :func:`complete`) once queued.
        """
        if unchecked is None:
            data = encode_simple(message)
        elif unchecked is WHOLE_MESSAGE:
            data = encode(message)
        else:  # only the call's properties or traits may hold a float
            data = encode(message, numbers=unchecked)
        if self._before_send is not None:
            # The hook gets a copy as sent, checked as without a hook: a hook that
            # edits in place leaves the caller's own dicts (a typed message's) alone.
            changed = self._run_before_send(_capture.as_sent(data))
            if changed is None:
                self._drop(message, "before_send")
                return False, complete(message)
            if changed is not _UNCHANGED:
                message, data = self._hook_result_or_unchanged(changed, message, data)
        if len(data) > MAX_MESSAGE_BYTES:
            raise _too_big(message, len(data))
        if _capture.sinks or not self._queueing:
            done = self._accept_elsewhere(message, data)
            if done is not None:
                return done
        if not self._registered:  # before the first message is queued: a SIGTERM may follow
            if sys.is_finalizing() or lifecycle.exit_delivery_began():
                # After the exit's delivery (an atexit handler registered before the
                # import, a finalizer as the interpreter ends): nothing would deliver
                # it, and no thread may start to (Python 3.11 would wait for ever).
                self._drop(complete(message), SHUT_DOWN)
                return False, message
            self._register()
        spool = self._spool
        refused = self._worker.put(data) if spool is None else spool.put(data)
        if not lean:
            complete(message)
        if refused is not None:
            self._drop(complete(message), refused)
            return False, message
        if signals.message_enqueued.receivers:
            signals.emit(signals.message_enqueued, self, message=complete(message))
        return True, message

    def _accept_elsewhere(self, message: dict[str, Any], data: bytes) -> Result | None:
        """Everything but the common case: captured, disabled, shut down, or sync mode
        (a uWSGI master's calls too: see :meth:`_sends_by_queue`).

        None: the common case after all (the first message found no test running).
        """
        if self._divert_check is not None:
            self._settle_divert()
            undecided = self._divert_check is not None  # sent as usual, asked again later
            if (self._queueing or (undecided and self._sends_by_queue())) and not _capture.sinks:
                return None
        config = self.config
        # Tests see what was sent: JSON values, as of the call (the caller may reuse
        # or change its dicts afterwards). The call returns the caller's own values.
        if self._outbox is not None:  # test mode: see segment_core.testing.divert
            # Captured first: a capture that starts with a copy of the outbox (the
            # pytest plugin's segment_events) then finds it there, and counts it once.
            _capture.deliver(data, held=True)  # kept from the network: test mode's
            self._outbox.append(_capture.as_sent(data))
            return True, complete(message)
        if _capture.sinks:
            held = not self._sends_in_tests  # a capture means no network
            _capture.deliver(data, held)
            if held:
                return True, complete(message)
            if self._queueing:  # asked to send in tests: captured, and sent as usual
                return None
        complete(message)
        if not config.enabled:
            if not config.send:
                if config.debug:  # what would be sent, shown as the call accepts it
                    logger.debug(
                        "accepted %s message %s, not sent (send=False): %s",
                        message.get("type"),
                        message.get("messageId"),
                        data.decode(),
                    )
                return True, message
            self._drop(message, "disabled")
            return False, message
        if self._shut_down:
            self._drop(message, "shut_down")
            return False, message
        if not config.sync_mode and self._sends_by_queue():
            # A uWSGI worker, forked from the master that made the client: queued.
            self._queueing = True
            return None
        self._own_parts()
        self._stats.add(accepted=1)
        if not self._registered:  # a SIGTERM during the call lets it finish (shutdown_all)
            self._register()
        # The caller waits: retries only while the whole stays within ``timeout``.
        # Counted per thread, without a lock: each thread changes its own count alone
        # (a signal handler's call, nested in this one, leaves it as it found it).
        calls = self._sync_calls
        calling = threading.get_ident()
        calls[calling] = calls.get(calling, 0) + 1
        try:
            delivered = self._delivery.deliver(
                [data], self._sync_abandon, deadline=monotonic() + config.timeout
            )
        finally:
            if calls[calling] == 1:
                del calls[calling]
            else:  # a call nested in this one (a hook's, a signal handler's)
                calls[calling] -= 1
        signals.emit(signals.message_enqueued, self, message=message)
        return delivered, message

    def _log_accepted(self, _sender: object, *, message: dict[str, Any], **_: object) -> None:
        logger.debug("accepted %s message %s", message.get("type"), message.get("messageId"))

    def _run_before_send(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The hook's message, None to drop, or :data:`_UNCHANGED` when it failed."""
        assert self._before_send is not None
        try:
            result = self._before_send(message)
        except Exception as error:
            if is_interruption(error):  # a job's time limit: it stops the job, not the hook
                raise
            self._hook_failures.failed(
                "before_send", "before_send hook raised; sending the message unchanged"
            )
            return _UNCHANGED
        if result is not None and not isinstance(result, dict):
            self._hook_failures.failed(
                "before_send",
                "before_send must return a dict or None, got %s; sending the message unchanged",
                type(result).__name__,
                exc_info=False,
            )
            return _UNCHANGED
        return result

    def _hook_result_or_unchanged(
        self, changed: dict[str, Any], message: dict[str, Any], data: bytes
    ) -> tuple[dict[str, Any], bytes]:
        """What ``before_send`` returned, checked as a caller's message and encoded; a
        message the Spec or the size limit refuses is the hook's failure, not the
        caller's: logged naming the field, and the caller's message is sent."""
        try:
            checked = check_hook_result(changed)
            encoded = encode(checked)
            if len(encoded) > MAX_MESSAGE_BYTES:
                if len(data) > MAX_MESSAGE_BYTES:  # too big as the caller made it: the call's
                    # By what the hook's answer weighs (a call cut to fit must fit with
                    # what the hook adds, and go through it).
                    raise _too_big(message, max(len(data), len(encoded)))
                raise _too_big(checked, len(encoded))
        except InvalidMessage as error:
            if isinstance(error, MessageTooLarge) and len(data) > MAX_MESSAGE_BYTES:
                raise  # the caller's message was too big: no failure of the hook's
            self._hook_failures.failed(
                "before_send",
                "%s; sending the message unchanged",
                _as_the_hooks(str(error)),
                exc_info=False,
            )
            return message, data
        except Exception as error:  # a value whose own code raised as it was read
            if is_interruption(error):
                raise
            self._hook_failures.failed(
                "before_send",
                "before_send returned a message whose %s cannot be read (%s); sending the "
                "message unchanged",
                _unreadable_field(changed, message) or "values",
                error_text(error),
            )
            return message, data
        return checked, encoded

    def _divert_when(self, check: Callable[[], object], outbox: list[dict[str, Any]]) -> None:
        self._divert_check = (check, outbox)
        self._queueing = False  # the first message goes the slow way, which asks

    def _settle_divert(self, *, last: bool = False) -> None:
        """Ask the check :func:`~segment_core.testing.divert_when` left. An answer of
        None (not known yet: a test runner may start later) leaves it to be asked again
        at the next message, unless this is the ``last`` time, where it counts as no."""
        pending = self._divert_check
        if pending is None:
            return
        check, outbox = pending
        try:
            testing = check()
        except Exception as error:
            if is_interruption(error):
                raise
            logger.exception("could not tell whether tests are running; sending as usual")
            testing = False
        if testing is None and not last:
            return
        self._divert(outbox if testing else None)

    def _divert(self, outbox: list[dict[str, Any]] | None) -> None:
        self._divert_check = None
        self._sends_in_tests = False
        self._outbox = outbox
        self._queueing = outbox is None and self._sends_by_queue()
        hook, self._on_diverted = self._on_diverted, None
        if hook is not None and outbox is not None:
            hook(self)

    def _sends_by_queue(self) -> bool:
        """Whether an accepted message goes to the buffer (or the spool) to be sent.

        Not in a process uWSGI forks its workers from (its master, the app loaded
        there): no thread may run there (see :mod:`segment_core._forks`), and no exit
        handler runs there either; its calls are delivered as they are made, as in
        ``sync_mode``.
        """
        config = self.config
        return (
            config.enabled
            and not config.sync_mode
            and not self._shut_down
            and not _forks.forks_uwsgi_workers()
        )

    def _register(self) -> None:
        self._own_parts()  # a forked child's first message: its own parts first
        self._registered = True
        lifecycle.register(self)

    def _drop(self, message: dict[str, Any], reason: str) -> None:
        self._own_parts()
        self._stats.drop(reason)
        now = monotonic()
        # "disabled": said once, as the client was made without a write key.
        if reason not in _UNLOGGED_DROPS:
            if now - self._last_drop_log > 5.0:
                self._last_drop_log = now
                since = self._drops_unlogged
                self._drops_unlogged = 0
                logger.warning(
                    "Segment message dropped (%s)%s; see Client.stats()",
                    reason,
                    f"; {since} other drop(s) since the last warning" if since else "",
                )
            else:
                self._drops_unlogged += 1
        signals.emit(signals.message_dropped, self, message=message, reason=reason)

    def _warn_disabled(self) -> None:
        if not self._warned_disabled:
            self._warned_disabled = True
            logger.warning(
                "Segment client has no write key: events are discarded. Pass write_key= "
                "or set the SEGMENT_WRITE_KEY environment variable."
            )

    def _timeout(self, timeout: float | None) -> float:
        if timeout is None:
            return self.config.shutdown_timeout
        # Thread waits refuse longer ones (OverflowError); 30 days is as good as forever.
        if timeout > MAX_SECONDS:  # an integer beyond a float too
            return MAX_SECONDS
        return max(0.0, float(timeout)) if timeout > 0 else 0.0

    def _make_parts(self) -> None:
        """What delivers for one process: counters, buffer, senders, locks, connections."""
        self._stats = Stats()
        self._delivery = Delivery(self.config, self._stats, self)
        self._worker = Worker(self.config, self._delivery)
        self._sync_abandon = threading.Event()
        #: The threads inside a ``sync_mode`` call, and how many calls deep each is.
        self._sync_calls: dict[int, int] = {}
        #: Held by the shutdown under way: another waits for its answer.
        self._shutting_down = threading.Lock()
        #: The thread inside shutdown(): a call from its hooks (on_error) waits for nothing.
        self._shutdown_thread = None

    def _own_parts(self) -> None:
        """In a forked child, at its first use of the client: parts of its own (the
        parent's stay the parent's). Of its threads racing here, the first makes them.

        Not at the fork: gunicorn's gevent and eventlet workers monkey-patch
        ``threading`` after it, and locks, events and threads made before that are
        the OS's, on which one waiting green thread stops every other one.
        """
        if not self._parents_parts:
            return
        with _making_parts:
            if not self._parents_parts:
                return
            self._make_parts()
            if self._spool is not None:
                self._spool.after_fork(self._worker, self._delivery)
            self._parents_parts = False  # last: a thread that sees it finds them all

    def _after_fork(self) -> None:
        """At the fork, in the child: its parts are made at its first use (see
        :meth:`_own_parts`); the parent's files are closed now, whose locks would
        otherwise outlive the parent."""
        self._parents_parts = True
        # Registered for exit with the child's first message, once it can tell a
        # multiprocessing child (whose exit skips atexit) from the parent's copy.
        self._registered = False
        if self._spool is not None:
            self._spool.leave_parents_files()

    def __repr__(self) -> str:
        return f"<Client host={self.config.host!r} enabled={self.config.enabled}>"


def _positional_options(args: tuple[Any, ...], options: dict[str, Any]) -> dict[str, Any]:
    if len(args) > len(POSITIONAL_OPTIONS):
        raise TypeError(
            f"Client takes at most {len(POSITIONAL_OPTIONS) + 1} positional arguments "
            f"(write_key, {', '.join(POSITIONAL_OPTIONS)}); got {len(args) + 1}"
        )
    merged = dict(options)
    for name, value in zip(POSITIONAL_OPTIONS[: len(args)], args, strict=True):
        if name in merged:
            raise TypeError(f"Client got multiple values for {name!r}")
        merged[name] = value
    return merged


def _warn_doubled_api_path(host: str) -> None:
    """A ``host`` ending with ``/v1`` works for no server: say so as the client is made,
    not with every batch refused."""
    doubled = doubled_api_path(host)
    if doubled is not None:
        logger.warning(
            "Segment host %s ends with %s, and the client adds /v1/batch to it: events "
            "would go to %s/v1/batch; leave %s out of host",
            redact_url(host),
            doubled,
            redact_url(host).rstrip("/"),
            doubled,
        )


def _message_factory(config: Config) -> MessageFactory:
    if config.now is None and config.uid is None:
        return MessageFactory(config.default_context, config.default_integrations)
    return InjectedMessageFactory(
        config.default_context, config.default_integrations, now=config.now, uid=config.uid
    )


#: How often a shutdown looks whether the ``sync_mode`` calls under way have returned.
_SYNC_CALLS_LOOK_EVERY = 0.01

#: What :meth:`Client._run_before_send` returns for a hook that failed.
_UNCHANGED: dict[str, Any] = {}

#: Drops said otherwise: by the hook's choice, or once when the client was made.
_UNLOGGED_DROPS = frozenset({"before_send", "disabled"})

#: Every client not yet garbage: one fork hook for all of them, not one each.
_live: weakref.WeakSet[Client] = weakref.WeakSet()


#: Held while a forked child makes a client's parts (see Client._own_parts).
_making_parts = _forks.ProcessLock()


def _after_fork_in_child() -> None:
    for client in list(_live):
        client._after_fork()


def _start_spools_in_uwsgi_worker() -> None:
    # A uWSGI master's spools run no thread: each worker starts its own as uWSGI
    # forks it, before its first request, with parts of its own.
    for client in list(_live):
        spool = client._spool
        if spool is not None and spool.threadless:
            client._own_parts()
            spool.start()


_forks.in_every_child(_after_fork_in_child)
_forks.in_every_uwsgi_worker(_start_spools_in_uwsgi_worker)


def _unreadable_field(changed: dict[str, Any], message: dict[str, Any]) -> str | None:
    """The field of ``changed`` (what ``before_send`` returned) whose value raised as
    it was checked: the first one that, put back as ``message`` had it, lets the
    rest be read. Only on that failure's path."""
    try:
        fields = list(changed)
        for field in fields:
            probe = {key: value for key, value in changed.items() if key != field}
            if field in message:
                probe[field] = message[field]
            try:
                encode(check_hook_result(probe))
            except InvalidMessage:
                return field  # the rest reads (a rule it breaks is another matter)
            except Exception:
                continue
            return field
    except Exception:  # the result itself cannot be walked
        pass
    return None


def _as_the_hooks(problem: str) -> str:
    """An error about what ``before_send`` returned, saying so."""
    if problem.startswith("before_send"):
        return problem
    return f"before_send returned a message that cannot be sent: {problem}"


def _too_big(message: dict[str, Any], size: int) -> MessageTooLarge:
    """The refusal of a message past Segment's limit, naming its largest part."""
    where, weight = _largest_part(message)
    message_id, timestamp = message.get("messageId"), message.get("timestamp")
    return MessageTooLarge(
        f"message is {size} bytes encoded; Segment accepts at most {MAX_MESSAGE_BYTES} "
        f"bytes per message (the largest part: {where}, {weight} bytes)",
        size,
        message_id if isinstance(message_id, str) else None,
        timestamp if isinstance(timestamp, str) else None,
    )


def _largest_part(value: dict[str, Any], where: str = "") -> tuple[str, int]:
    """The path of the heaviest entry of ``value``, its key counted (down through
    objects: a property rather than ``properties``, but only while one entry holds
    most of its object's weight), and its weight encoded."""
    weights = {key: len(encode({key: item})) for key, item in value.items()}
    key = max(weights, key=weights.__getitem__)
    path = path_to(where, key)
    inner = value[key]
    if isinstance(inner, dict) and inner:
        inner_path, inner_weight = _largest_part(inner, path)
        if inner_weight * 2 > weights[key]:
            return inner_path, inner_weight
    return path, weights[key]


#: How long before the process's exit ends it a shutdown under way elsewhere ends (at
#: most a quarter of the time left), to report what it gave up by then.
_REPORT_MARGIN = 0.5


def _checked_timeout(timeout: object) -> None:
    """Raise ``TypeError`` naming ``timeout`` unless it is None or a number of seconds
    (an ``int``, a ``float``, a ``Decimal``, a ``Fraction``: not a bool or text), and
    ``ValueError`` for a NaN, which no deadline can be made of."""
    if timeout is None or type(timeout) is int:
        return
    if isinstance(timeout, (numbers.Real, decimal.Decimal)) and not isinstance(timeout, bool):
        if timeout.is_nan() if isinstance(timeout, decimal.Decimal) else timeout != timeout:
            raise ValueError(f"timeout must be a number of seconds or None, got {timeout!r}")
        return
    raise TypeError(
        f"timeout must be a number of seconds or None, got {type(timeout).__name__} {timeout!r:.40}"
    )
