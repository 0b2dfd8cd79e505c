"""Fault injection: a queue of plans that make `POST /v1/*` requests fail on purpose.

A plan is a small JSON object. It answers with an HTTP status, waits, or closes the
connection, for the next `count` requests (default 1) or for the next `seconds`:

    {"status": 503, "count": 3}
    {"status": 429, "retry_after": 1}
    {"delay": 2.0}                  # wait, then handle the request normally
    {"delay": 2.0, "status": 503}   # wait, then answer 503
    {"close": true}                 # read the request, then drop the connection
    {"status": 503, "seconds": 5}   # answer 503 for the next 5 s

Plans run in the order they were added. A time-based plan's clock starts when it
reaches the head of the queue.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Fault", "FaultPlan", "FaultPlanError", "FaultQueue", "parse_plans"]

_KEYS = frozenset({"status", "retry_after", "delay", "close", "count", "seconds"})
MAX_DELAY_SECONDS = 300.0
MAX_RETRY_AFTER_SECONDS = 86_400.0
MAX_SECONDS = 86_400.0
MAX_HEADER_CHARACTERS = 100
# What a header value may hold: printable ASCII, spaces included.
_HEADER_TEXT = re.compile(r"[\x20-\x7e]+")


class FaultPlanError(ValueError):
    """A fault plan that cannot be understood; the message says which field."""


@dataclass(frozen=True)
class Fault:
    """What to do to one request."""

    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    close: bool = False

    @property
    def answers(self) -> bool:
        """True when the request is not handled normally (status or close)."""
        return self.close or self.status is not None


@dataclass(frozen=True)
class FaultPlan:
    fault: Fault
    count: int | None
    seconds: float | None
    deadline: float | None = None

    def describe(self, now: float) -> dict[str, Any]:
        description: dict[str, Any] = {}
        fault = self.fault
        if fault.status is not None:
            description["status"] = fault.status
        if fault.retry_after is not None:
            description["retry_after"] = fault.retry_after
        if fault.delay:
            description["delay"] = fault.delay
        if fault.close:
            description["close"] = True
        if self.count is not None:
            description["count"] = self.count
        if self.deadline is not None:
            description["seconds"] = round(max(self.deadline - now, 0.0), 3)
        elif self.seconds is not None:
            description["seconds"] = self.seconds
        return description


def parse_plans(payload: object) -> list[FaultPlan]:
    """Turn a plan or a list of plans (parsed JSON) into queue entries."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise FaultPlanError("the fault plan list is empty")
    return [_parse_plan(item, index) for index, item in enumerate(items)]


def _parse_plan(item: object, index: int) -> FaultPlan:
    where = f"fault plan #{index}"
    if not isinstance(item, dict):
        raise FaultPlanError(f"{where} must be an object")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise FaultPlanError(f"{where} has unknown keys: {', '.join(unknown)}")
    status = item.get("status")
    if status is not None and (
        isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599
    ):
        raise FaultPlanError(f"{where}: status must be an integer from 200 to 599")
    retry_after = _retry_after(item.get("retry_after"), where)
    delay = _number(item.get("delay", 0.0), f"{where}: delay")
    if delay > MAX_DELAY_SECONDS:
        raise FaultPlanError(f"{where}: delay must be at most {MAX_DELAY_SECONDS:g} seconds")
    close = item.get("close", False)
    if not isinstance(close, bool):
        raise FaultPlanError(f"{where}: close must be true or false")
    if status is None and not close and not delay:
        raise FaultPlanError(f"{where} needs at least one of status, delay, close")
    count = item.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise FaultPlanError(f"{where}: count must be a positive integer")
    seconds = item.get("seconds")
    if seconds is not None:
        seconds = _number(seconds, f"{where}: seconds")
        if not 0 < seconds <= MAX_SECONDS:
            raise FaultPlanError(f"{where}: seconds must be positive and at most {MAX_SECONDS:g}")
    if count is None and seconds is None:
        count = 1
    fault = Fault(status=status, retry_after=retry_after, delay=delay, close=close)
    return FaultPlan(fault=fault, count=count, seconds=seconds)


def _number(value: object, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise FaultPlanError(f"{what} must be a finite, non-negative number")
    return float(value)


def _retry_after(value: object, where: str) -> str | None:
    """The Retry-After header to send: whole seconds, or an HTTP date as given."""
    if value is None:
        return None
    what = f"{where}: retry_after"
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > MAX_HEADER_CHARACTERS or not _HEADER_TEXT.fullmatch(text):
            raise FaultPlanError(
                f"{what} must be seconds or an HTTP date, in at most "
                f"{MAX_HEADER_CHARACTERS} printable ASCII characters"
            )
        try:
            seconds = float(text)
        except ValueError:
            return text  # an HTTP date, sent as given
        value = seconds
    seconds = _number(value, what)
    if seconds > MAX_RETRY_AFTER_SECONDS:
        raise FaultPlanError(f"{what} must be at most {MAX_RETRY_AFTER_SECONDS:g} seconds")
    return str(int(seconds)) if seconds.is_integer() else f"{seconds:g}"


class FaultQueue:
    """Thread-safe queue of fault plans; `take()` says what to do to one request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._plans: deque[FaultPlan] = deque()
        #: How many times the plans were cleared: a delay in progress ends at the next.
        self.clears = 0

    def add(self, plans: list[FaultPlan]) -> None:
        with self._lock:
            self._plans.extend(plans)
            self._start_head(self._clock())

    def clear(self) -> None:
        """Drop the plans; delays in progress end (their requests go on at once)."""
        with self._lock:
            self._plans.clear()
            self.clears += 1

    def pending(self) -> list[dict[str, Any]]:
        """The plans still queued, as JSON-friendly dicts."""
        with self._lock:
            now = self._clock()
            self._drop_expired(now)
            return [plan.describe(now) for plan in self._plans]

    def take(self) -> Fault | None:
        """The fault for the request arriving now, or None to handle it normally."""
        with self._lock:
            now = self._clock()
            self._drop_expired(now)
            if not self._plans:
                return None
            plan = self._plans[0]
            if plan.count is not None:
                if plan.count <= 1:
                    self._plans.popleft()
                    self._start_head(now)
                else:
                    self._plans[0] = replace(plan, count=plan.count - 1)
            return plan.fault

    def _drop_expired(self, now: float) -> None:
        while self._plans:
            head = self._plans[0]
            if head.deadline is None or now < head.deadline:
                return
            self._plans.popleft()
            self._start_head(now)

    def _start_head(self, now: float) -> None:
        if self._plans:
            head = self._plans[0]
            if head.seconds is not None and head.deadline is None:
                self._plans[0] = replace(head, deadline=now + head.seconds)
