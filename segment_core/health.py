"""Say, at the default log level, when events stop reaching the host and when they resume.

A retry is logged only at DEBUG, and a batch is given up only after minutes of
retries, so without this a client whose host is down or misconfigured would stay
silent for as long. One WARNING on the first failure (with the host and the
cause), then at most one reminder per ``REMINDER_SECONDS`` while it lasts, and
one line when a batch goes through again.

A host that fails now and then must not fill the log either: a failure within
``REMINDER_SECONDS`` of the last failure line is not logged until it lasts that
long, nor is its end; the next line counts those that came and went. Batches
given up for the same cause (an HTTP status, a kind of network error) make one
ERROR per ``REMINDER_SECONDS``, which counts the ones folded into it; those that
no such line counted yet when delivery recovers, or at shutdown, get a line then.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, replace

from segment_core._clock import monotonic

__all__ = ["REMINDER_SECONDS", "DeliveryHealth"]

logger = logging.getLogger("segment.core")

REMINDER_SECONDS = 60.0


class DeliveryHealth:
    """Tracks whether the last attempt to reach ``host`` worked; logs the changes."""

    def __init__(
        self,
        host: str,
        *,
        reminder_seconds: float = REMINDER_SECONDS,
        timeout: float | None = None,
    ) -> None:
        self.host = host
        self.last_error: str | None = None
        self._timeout = timeout
        # When each thread's request now under way started: the shutdown line says
        # so when a request hangs (no error yet, only a wait).
        self._waiting: dict[int, float] = {}
        self._reminder_seconds = reminder_seconds
        self._lock = threading.Lock()
        self._failing = False
        self._failures = 0  # failed attempts since the last success
        # The failure going on was logged: its end is logged too.
        self._announced = False
        self._last_logged = -math.inf  # the last failure line
        # Failures that came and went, unlogged, since the last failure line.
        self._unlogged_spells = 0
        self._give_ups: dict[object, _GiveUps] = {}

    def request_started(self) -> None:
        """The calling thread sends a request now and waits for its answer."""
        self._waiting[threading.get_ident()] = monotonic()

    def request_ended(self) -> None:
        """The calling thread's request got an answer or an error."""
        self._waiting.pop(threading.get_ident(), None)

    def failed(self, cause: str, *, retrying: bool) -> None:
        """One attempt failed with ``cause``."""
        now = monotonic()
        with self._lock:
            self.last_error = cause
            self._failures += 1
            self._failing = True
            if now - self._last_logged < self._reminder_seconds:
                return
            self._last_logged = now
            self._announced = True
            failures = self._failures
            spells, self._unlogged_spells = self._unlogged_spells, 0
        next_step = "retrying" if retrying else "not retrying this batch"
        if spells:
            next_step += f"; {spells} earlier failure(s) since the last such line recovered"
        if failures == 1:
            logger.warning("Segment: cannot deliver to %s: %s (%s)", self.host, cause, next_step)
        else:
            logger.warning(
                "Segment: still cannot deliver to %s after %d failed attempt(s): %s (%s)",
                self.host,
                failures,
                cause,
                next_step,
            )

    def succeeded(self) -> None:
        """A batch went through."""
        if not self._failing:  # the common case, without the lock
            return
        with self._lock:
            if not self._failing:
                return
            failures, self._failures, self._failing = self._failures, 0, False
            announced, self._announced = self._announced, False
            if not announced:
                self._unlogged_spells += 1
            folded = self._take_folded_give_ups()
        if announced:
            logger.warning(
                "Segment: delivering to %s again, after %d failed attempt(s)", self.host, failures
            )
        self._log_folded_give_ups(folded)

    def report_given_up(self) -> None:
        """Log the batches given up that no line has counted yet: at shutdown, no later
        line would."""
        with self._lock:
            folded = self._take_folded_give_ups()
        self._log_folded_give_ups(folded)

    def _take_folded_give_ups(self) -> list[_GiveUps]:
        """The give-ups folded since each cause's last line; those causes count from zero
        again (lock held)."""
        taken = []
        for held in self._give_ups.values():
            if held.batches:
                taken.append(replace(held))
                held.batches = held.messages = 0
        return taken

    def _log_folded_give_ups(self, folded: list[_GiveUps]) -> None:
        # Without this line, batches folded into a next line that never comes (the
        # host recovered, the process ends) would never be counted in the log.
        for held in folded:
            logger.error(
                "gave up on %d more batch(es), %d message(s), for %s for the same cause "
                "since the last such line: %s",
                held.batches,
                held.messages,
                self.host,
                held.cause,
            )

    def gave_up(self, count: int, attempts: int, cause: str, kind: object) -> None:
        """A batch of ``count`` message(s) failed for good after ``attempts`` attempt(s).

        ``kind`` tells causes apart (an HTTP status, an error's type): the first
        batch of a kind is logged at once, the next ones of that kind within
        ``REMINDER_SECONDS`` are counted into the next line.
        """
        now = monotonic()
        with self._lock:
            folded = self._give_ups.get(kind)
            if folded is not None and now - folded.logged_at < self._reminder_seconds:
                folded.batches += 1
                folded.messages += count
                folded.cause = cause
                return
            self._give_ups[kind] = _GiveUps(logged_at=now, cause=cause)
        if folded is None or not folded.batches:
            logger.error(
                "giving up on a batch of %d message(s) for %s after %d attempt(s): %s",
                count,
                self.host,
                attempts,
                cause,
            )
        else:
            logger.error(
                "giving up on a batch of %d message(s) for %s after %d attempt(s): %s "
                "(and on %d more batch(es), %d message(s), for the same cause since the "
                "last such line)",
                count,
                self.host,
                attempts,
                cause,
                folded.batches,
                folded.messages,
            )

    @property
    def failing(self) -> bool:
        """True from a failed attempt until a batch goes through again."""
        return self._failing

    def describe_last_error(self) -> str:
        """What held delivery back, for the shutdown line: a request still waiting, a cause."""
        started = min(self._waiting.copy().values(), default=None)
        if started is None:
            return (
                self.last_error or "none (no attempt had failed; messages were waiting to be sent)"
            )
        waited = monotonic() - started
        limit = (
            f"; timeout {self._timeout:g} s to connect and for each read" if self._timeout else ""
        )
        text = f"a request was still waiting for an answer after {waited:.1f} s{limit}"
        if self.last_error:
            text += f"; the attempt before it failed: {self.last_error}"
        return text


@dataclass
class _GiveUps:
    """Batches given up for one cause since its last line, not logged one by one."""

    logged_at: float
    cause: str  # the latest one's: its text varies within a kind
    batches: int = 0
    messages: int = 0
