"""`CollectorHandle`: query and steer a running collector over its HTTP API.

A handle works the same for a collector in this process (`run_in_background`) and
one in another process (`CollectorHandle.connect("http://127.0.0.1:8765")`).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import requests
import urllib3

from segment_core import _capture
from segment_core._clock import monotonic
from segment_core.http_exchange import SteadyTimeout, connection_pool

__all__ = ["CollectorError", "CollectorHandle"]

# Python-style spellings accepted for the API's filter names.
_FILTER_ALIASES = {"user_id": "userId", "anonymous_id": "anonymousId"}
WAIT_POLL_SECONDS = 0.02
#: How many events `wait_for` asks for at a time (unless given a `limit`).
WAIT_FOR_LIMIT = 100_000
#: The least time `wait_for` gives its last poll, however little is left.
MIN_POLL_TIMEOUT_SECONDS = 0.1


class CollectorError(RuntimeError):
    """The collector answered a query with an error."""


class CollectorHandle:
    """A client for a collector's query API.

    >>> with run_in_background() as collector:                      # doctest: +SKIP
    ...     send_some_events(host=collector.url)
    ...     [event] = collector.wait_for(1, type="track", event="Signed Up")
    ...     assert event["status"] == "good", event["reasons"]
    """

    def __init__(
        self,
        url: str,
        *,
        on_stop: Callable[[], None] | None = None,
        timeout: float = 10.0,
        write_key: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._on_stop = on_stop
        self._timeout = timeout
        # A collector started with a write key wants it on every route, as UTF-8.
        basic = base64.b64encode(f"{write_key}:".encode()).decode() if write_key else None
        self._headers = {"Authorization": f"Basic {basic}"} if basic else {}

    @classmethod
    def connect(cls, url: str, *, write_key: str | None = None) -> CollectorHandle:
        """A handle on a collector already running at `url`; `stop()` leaves it running."""
        return cls(url, write_key=write_key)

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        """Stored events, oldest first.

        Filters: `type`, `event`, `userId` (or `user_id`), `anonymousId` (or
        `anonymous_id`), `status` ("good"/"bad"), `after`, `limit` (default 1,000),
        `last` (the newest n; no more than `limit` when it is given too). Each takes
        one value: a list is refused (:class:`CollectorError`).
        """
        events: list[dict[str, Any]] = self._query_events(filters)["events"]
        return events

    def event(self, message_id: str) -> dict[str, Any]:
        """The event stored under `message_id`; KeyError when there is none."""
        # Dots too: the URL layer would drop a "." or ".." segment.
        path = "/collector/events/" + quote(message_id, safe="").replace(".", "%2E")
        response = self._send("GET", path)
        if response.status == 404:
            raise KeyError(message_id)
        event: dict[str, Any] = self._json(response)
        return event

    def summary(self) -> dict[str, Any]:
        """Counts: total, good, bad, duplicates, by_type, forgotten, requests, pending_faults."""
        summary: dict[str, Any] = self._request("GET", "/collector/summary")
        return summary

    def reset(self) -> None:
        """Forget every event and count, and clear pending faults."""
        self._request("POST", "/collector/reset")

    def faults(self, plan: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Queue one fault plan or several; returns the plans now pending."""
        pending: list[dict[str, Any]] = self._request("POST", "/collector/faults", json=plan)[
            "pending"
        ]
        return pending

    def clear_faults(self) -> None:
        self._request("DELETE", "/collector/faults")

    def wait_for(self, count: int, timeout: float = 10.0, **filters: Any) -> list[dict[str, Any]]:
        """Poll until at least `count` events match `filters`; return them all.

        Before each poll, the clients of this process sending to the collector are
        asked to send what they hold (as ``flush(0)``: without waiting for it).

        Each poll asks only for the events stored since the last one (`limit`, by
        default 100,000, at a time); with `last`, for the newest ones each time.
        Raises AssertionError, saying what it did see, when `timeout` passes first,
        also when the collector does not answer within the time left (a collector
        that refuses connections, still starting or stopped, is asked again meanwhile).
        """
        from segment_core.testing import start_sending_to

        deadline = monotonic() + timeout
        seen: list[dict[str, Any]] = []
        run: str | None = None
        while True:
            # What this process's clients hold for the collector goes now, not after
            # their flush_interval (5 s, as long as a test's timeout may be).
            start_sending_to(self.url)
            try:
                page = self._events_page(filters, seen, deadline)
            except requests.Timeout:
                raise AssertionError(
                    self._describe_no_answer(count, timeout, filters, seen)
                ) from None
            except requests.ConnectionError:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        self._describe_no_answer(count, timeout, filters, seen)
                    ) from None
                time.sleep(min(WAIT_POLL_SECONDS, remaining))
                continue
            if run is not None and page["run"] != run:
                seen = []  # reset or restarted: its cursors are another run's
            else:
                seen = page["events"] if "last" in filters else [*seen, *page["events"]]
            run = page["run"]
            if len(seen) >= count:
                return seen
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise AssertionError(self._describe_timeout(count, timeout, filters, seen))
            time.sleep(min(WAIT_POLL_SECONDS, remaining))

    def _events_page(
        self, filters: dict[str, Any], seen: list[dict[str, Any]], deadline: float
    ) -> dict[str, Any]:
        """The answer to one poll of `wait_for`: events after the last one seen."""
        params = {"limit": WAIT_FOR_LIMIT, **filters}
        if seen and "last" not in filters:
            params["after"] = seen[-1]["seq"]
        left = max(deadline - monotonic(), MIN_POLL_TIMEOUT_SECONDS)
        return self._query_events(params, timeout=min(self._timeout, left))

    def _query_events(self, filters: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """The answer of `/collector/events`: `events`, `cursor` and `run`."""
        params: dict[str, Any] = {}
        for name, value in filters.items():
            key = _FILTER_ALIASES.get(name, name)
            if value is not None and params.get(key) is not None:  # user_id and userId
                raise CollectorError(f"{key} is given 2 times; each filter takes one value")
            if value is not None or key not in params:
                params[key] = value
        body: dict[str, Any] = self._request("GET", "/collector/events", params=params, **kwargs)
        return body

    def stop(self) -> None:
        """Stop the collector if this handle started it."""
        if self._on_stop is not None:
            on_stop, self._on_stop = self._on_stop, None
            on_stop()

    def __enter__(self) -> CollectorHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"CollectorHandle({self.url!r})"

    def _describe_timeout(
        self,
        count: int,
        timeout: float,
        filters: dict[str, Any],
        matching: list[dict[str, Any]],
    ) -> str:
        lines = [
            f"expected at least {count} event(s) matching {filters} within {timeout:g}s, "
            f"saw {len(matching)} by then; the collector holds now (what arrived after "
            "the last look at the deadline too):"
        ]
        recent = self.events(last=20)
        for event in recent:
            message = event["message"] if isinstance(event["message"], dict) else {}
            label = message.get("event") or message.get("name") or ""
            line = (
                f"  {event['status']:4} {message.get('type')!s:8} {label!s:24} "
                f"userId={message.get('userId')!r} anonymousId={message.get('anonymousId')!r}"
            )
            if event["reasons"]:
                line += f" reasons={event['reasons']}"
            lines.append(line)
        if not recent:
            lines.append("  (no events)")
        lines.append(f"summary: {self.summary()}")
        lines.extend(_held_by_a_capture() or _held_in_the_outbox())
        return "\n".join(lines)

    def _describe_no_answer(
        self, count: int, timeout: float, filters: dict[str, Any], matching: list[dict[str, Any]]
    ) -> str:
        return (
            f"expected at least {count} event(s) matching {filters} within {timeout:g}s, "
            f"saw {len(matching)}; the collector at {self.url} did not answer in that time"
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._json(self._send(method, path, **kwargs))

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        timeout: float | None = None,
    ) -> _Reply:
        """One request, with urllib3 alone: a test's mocks of ``requests`` (responses,
        requests-mock) never catch it. A failure to get an answer raises as
        ``requests`` would (``requests.Timeout``, ``requests.ConnectionError``).

        A pool per call: no socket outlives it, so handles are thread-safe and never
        leak connections. One on this machine is reached directly, whatever
        ``HTTP_PROXY`` says.
        """
        # As requests writes them: a None value left out, a list's values repeated.
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        url = self.url + path + (f"?{query}" if query else "")
        headers = dict(self._headers)
        body = None
        if json is not None:
            body = _json_text(json)
            headers["Content-Type"] = "application/json"
        pool = connection_pool(self.url, None, size=1)
        wait = self._timeout if timeout is None else timeout
        try:
            response = pool.request(
                method,
                url,
                body=body,
                headers=headers,
                timeout=SteadyTimeout(total=wait),
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.NewConnectionError as error:  # refused: not a timeout
            raise requests.ConnectionError(str(error)) from error
        except urllib3.exceptions.TimeoutError as error:
            raise requests.Timeout(str(error)) from error
        except urllib3.exceptions.HTTPError as error:
            raise requests.ConnectionError(str(error)) from error
        finally:
            pool.clear()
        return _Reply(response.status, response.data, method, url)

    @staticmethod
    def _json(reply: _Reply) -> Any:
        if reply.status >= 400:
            text = reply.data.decode("utf-8", "replace")
            try:
                detail = json.loads(text).get("message", text)
            except (ValueError, AttributeError):
                detail = text
            raise CollectorError(f"{reply.method} {reply.url}: {detail}")
        return json.loads(reply.data)


@dataclass(frozen=True)
class _Reply:
    """The collector's answer to one request of a handle."""

    status: int
    data: bytes
    method: str
    url: str


def _json_text(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _held_in_the_outbox() -> list[str]:
    """Why this process's clients may have sent nothing: in test mode, what they
    accepted is in the test outbox, not on the network."""
    from segment_core.testing import outbox

    if not outbox:
        return []
    return [
        f"{len(outbox)} message(s) this test's clients accepted are in "
        "segment_core.testing.outbox: their clients are in test mode, which sends "
        "nothing (to send them to the collector, turn send_in_tests on: "
        'SEGMENT["SEND_IN_TESTS"], SEGMENT_SEND_IN_TESTS in Flask\'s config, '
        "send_in_tests=True for SegmentMiddleware and SegmentCelery)"
    ]


def _held_by_a_capture() -> list[str]:
    """Why this process's clients may have sent nothing: a capture keeps what they
    accept from the network (a capture means no network)."""
    if not _capture.sinks:
        return []
    # The oldest capture has taken every message since it began: those of clients set
    # to send in tests were sent all the same.
    held = _capture.held_back_by(_capture.sinks[0])
    if not held:
        return []
    return [
        "a capture (the segment_events fixture or segment_core.testing.capture()) is "
        "active in this process and holds back what its clients accept (but those "
        "set to send in tests): "
        f"{held} message(s) it captured were kept from the network, by it or by test "
        "mode (a test that uses the collector cannot capture too; an adapter's client "
        "sends in tests with send_in_tests)"
    ]
