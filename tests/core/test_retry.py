"""Every branch of the retry policy, against a real server answering faults on demand."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest

from segment_core import Client, signals
from segment_core.retry import backoff_delay, is_retryable_status, parse_retry_after
from tests.receiver import Fault, Receiver


@pytest.mark.parametrize("status", [408, 410, 429, 460, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422, 501, 505])
def test_final_statuses(status: int) -> None:
    assert not is_retryable_status(status)


def test_backoff_grows_exponentially_to_the_cap_with_jitter() -> None:
    ceilings = [max(backoff_delay(n, minimum=0.5, maximum=60) for _ in range(200)) for n in (1, 4)]
    assert 0.4 < ceilings[0] <= 0.5
    assert 3.0 < ceilings[1] <= 4.0
    assert all(0.25 <= backoff_delay(20, minimum=0.5, maximum=60) <= 60 for _ in range(200))


@pytest.mark.parametrize("attempt", [1_026, 5_000, 10**6])
def test_the_ceiling_holds_past_the_retries_a_float_can_double(attempt: int) -> None:
    # max_retries has no upper bound: the ceiling stays the ceiling.
    assert 0.0005 <= backoff_delay(attempt, minimum=0.001, maximum=0.002) <= 0.002
    assert backoff_delay(attempt, minimum=5e-324, maximum=30.0) <= 30.0


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    parsed = parse_retry_after(date)
    assert parsed is not None and 25 <= parsed <= 31


@pytest.mark.parametrize(
    "fault",
    [Fault(500), Fault(503), Fault(429, retry_after="0"), Fault(close=True), Fault(408)],
    ids=["500", "503", "429", "closed", "408"],
)
def test_retried_until_delivered_with_the_same_message_id(
    fault: Fault, receiver: Receiver, make_client: Any
) -> None:
    receiver.fail_next(fault, fault)
    client = make_client()
    message = client.track("u", "E")[1]
    assert client.flush(10)
    delivered = receiver.messages()
    assert [m["messageId"] for m in delivered] == [message["messageId"]]
    answered = [r for r in receiver.requests]
    assert [r.headers.get("x-retry-count") for r in answered][-1] == "2"
    assert client.stats()["retries"] == 2
    assert client.stats()["sent"] == 1


def test_retry_after_is_honoured(receiver: Receiver, make_client: Any) -> None:
    receiver.fail_next(Fault(429, retry_after="0.3"))
    client = make_client(retry_backoff_min=0.0, retry_backoff_max=0.0)
    client.track("u", "E")
    started = time.monotonic()
    assert client.flush(10)
    assert time.monotonic() - started >= 0.3


def test_retry_after_is_capped(receiver: Receiver, make_client: Any) -> None:
    receiver.fail_next(Fault(429, retry_after="3600"))
    client = make_client(retry_after=0.0)
    client.track("u", "E")
    assert client.flush(10)
    assert len(receiver.messages()) == 1


@pytest.mark.parametrize("status", [400, 401, 501])
def test_final_failures_call_on_error_with_the_messages(
    status: int, receiver: Receiver, make_client: Any
) -> None:
    receiver.fail_next(Fault(status))
    errors: list[tuple[Exception, list[dict[str, Any]]]] = []
    client = make_client(on_error=lambda exc, batch: errors.append((exc, batch)))
    fired: list[dict[str, Any]] = []

    def on_failed(sender: Client, **kw: Any) -> None:
        fired.append(kw)

    signals.batch_failed.connect(on_failed)
    try:
        client.track("u", "E")
        assert client.flush(10)
    finally:
        signals.batch_failed.disconnect(on_failed)
    assert len(receiver.requests) == 1
    assert len(errors) == 1
    assert f"HTTP {status}" in str(errors[0][0])
    assert errors[0][1][0]["event"] == "E"
    # Every key of analytics-python's message, for handlers written for it.
    failed = errors[0][1][0]
    assert (failed["anonymousId"], failed["properties"], failed["integrations"]) == (None, {}, {})
    assert fired == [{"error": errors[0][0], "count": 1, "retrying": False}]
    stats = client.stats()
    assert (stats["failed"], stats["sent"]) == (1, 0)
    assert f"HTTP {status}" in stats["last_error"]


def test_max_retries_bounds_the_attempts(receiver: Receiver, make_client: Any) -> None:
    receiver.fail_next(*[Fault(503)] * 10)
    errors: list[Exception] = []
    client = make_client(max_retries=2, on_error=lambda exc, batch: errors.append(exc))
    client.track("u", "E")
    assert client.flush(10)
    assert len(receiver.requests) == 3
    assert len(errors) == 1


def test_total_backoff_budget_bounds_the_retries(receiver: Receiver, make_client: Any) -> None:
    receiver.fail_next(*[Fault(503)] * 50)
    client = make_client(
        max_total_backoff_duration=0.2, retry_backoff_min=0.1, retry_backoff_max=0.1
    )
    started = time.monotonic()
    client.track("u", "E")
    assert client.flush(10)
    assert client.stats()["failed"] == 1
    # The whole budget is spent: the last wait is cut to what is left of it. Delays
    # are drawn from [0.05, 0.1] s, so a 0.2 s budget allows at most 6 attempts.
    assert time.monotonic() - started >= 0.2
    assert 3 <= len(receiver.requests) <= 6


@pytest.mark.parametrize("status", [429, 503])
def test_a_rate_limit_spends_no_retry(receiver: Receiver, make_client: Any, status: int) -> None:
    # analytics-python 2.4 waits out answers with a Retry-After without counting
    # them: a rate limit longer than max_retries answers loses nothing.
    receiver.fail_next(*[Fault(status, retry_after="1")] * 3)
    errors: list[Exception] = []
    client = make_client(max_retries=1, on_error=lambda exc, batch: errors.append(exc))
    client.track("u", "E")
    assert client.flush(20)
    assert (len(receiver.requests), errors, client.stats()["sent"]) == (4, [], 1)


def test_the_retries_are_counted_again_after_a_rate_limit(
    receiver: Receiver, make_client: Any
) -> None:
    receiver.fail_next(Fault(503), Fault(429, retry_after="1"), Fault(503))
    client = make_client(max_retries=1, retry_backoff_min=0.01, retry_backoff_max=0.01)
    client.track("u", "E")
    assert client.flush(20)
    assert (len(receiver.requests), client.stats()["sent"]) == (4, 1)


@pytest.mark.parametrize(
    ("retry_after", "options"),
    [("5", {"retry_after": 0.0}), ("0.001", {"retry_backoff_min": 0.0})],
    ids=["retry_after=0", "retry_backoff_min=0"],
)
def test_a_rate_limit_waited_for_less_than_a_second_spends_a_retry(
    receiver: Receiver, make_client: Any, retry_after: str, options: dict[str, float]
) -> None:
    # Else nothing would bound requests made back to back but max_rate_limit_duration.
    receiver.fail_next(*[Fault(429, retry_after=retry_after)] * 100)
    client = make_client(max_retries=2, retry_backoff_max=0.01, **options)
    client.track("u", "E")
    assert client.flush(20)
    assert (len(receiver.requests), client.stats()["failed"]) == (3, 1)


def test_max_rate_limit_duration_bounds_a_rate_limit(receiver: Receiver, make_client: Any) -> None:
    receiver.fail_next(*[Fault(429, retry_after="1")] * 100)
    errors: list[Exception] = []
    client = make_client(
        max_rate_limit_duration=1.5, on_error=lambda exc, batch: errors.append(exc)
    )
    started = time.monotonic()
    client.track("u", "E")
    assert client.flush(20)
    # Tries at 0 and 1 s, and a last one as the 1.5 s end: then it is given up.
    assert time.monotonic() - started >= 1.5
    assert len(receiver.requests) == 3 and len(errors) == 1
    assert str(errors[0]).endswith("(rate limited for longer than max_rate_limit_duration, 1.5 s)")
    assert "HTTP 429" in str(errors[0]) and client.stats()["failed"] == 1


def test_a_rate_limit_outlasting_its_time_says_so_with_a_spool_too(
    receiver: Receiver, make_client: Any, tmp_path: Any
) -> None:
    receiver.fail_next(*[Fault(429, retry_after="1")] * 100)
    client = make_client(max_rate_limit_duration=1, spool_dir=str(tmp_path))
    client.track("u", "E")
    client.flush(20)
    assert str(client.stats()["last_error"]).endswith(
        "(rate limited for longer than max_rate_limit_duration, 1 s)"
    )


def test_a_rate_limit_wait_past_max_rate_limit_duration_is_cut_to_a_last_try(
    receiver: Receiver, make_client: Any
) -> None:
    receiver.fail_next(Fault(429, retry_after="120"))
    client = make_client(max_rate_limit_duration=0.3)
    client.track("u", "E")
    started = time.monotonic()
    assert client.flush(20)
    assert 0.3 <= time.monotonic() - started < 5
    assert (len(receiver.requests), client.stats()["sent"]) == (2, 1)


def test_413_splits_the_batch_until_it_fits(receiver: Receiver, make_client: Any) -> None:
    receiver.fail_next(Fault(413), Fault(413))
    client = make_client(flush_at=8, flush_interval=60)
    for i in range(8):
        client.track("u", "E", {"i": i})
    assert client.flush(10)
    assert sorted(m["properties"]["i"] for m in receiver.messages()) == list(range(8))
    assert [len(r.batch) for r in receiver.requests][:3] == [8, 4, 2]


def test_413_for_a_single_message_is_final(receiver: Receiver, make_client: Any) -> None:
    receiver.fail_next(Fault(413))
    errors: list[Exception] = []
    client = make_client(on_error=lambda exc, batch: errors.append(exc))
    client.track("u", "E")
    assert client.flush(10)
    assert len(errors) == 1 and client.stats()["failed"] == 1


@pytest.mark.parametrize(
    "host",
    [
        "http://127.0.0.1:9",
        # Backslashes in the path, which a regular expression's replacement would read.
        "http://127.0.0.1:9/a\\g<0>\\m",
    ],
)
def test_a_network_error_is_retried(host: str) -> None:
    # Nothing listens on this port: every attempt is refused, and retried.
    client = Client(
        "k",
        host=host,
        max_retries=3,
        retry_backoff_min=0.01,
        retry_backoff_max=0.01,
    )
    client.track("u", "E")
    assert client.flush(10)
    stats = client.stats()
    assert (stats["retries"], stats["failed"]) == (3, 1)
    assert "ConnectionError" in stats["last_error"]
    client.shutdown(1)


def test_an_on_error_hook_that_raises_does_not_stop_delivery(
    receiver: Receiver, make_client: Any
) -> None:
    receiver.fail_next(Fault(400))

    def broken(exc: Exception, batch: list[dict[str, Any]]) -> None:
        raise RuntimeError("bug in the hook")

    client = make_client(on_error=broken)
    client.track("u", "first")
    assert client.flush(10)
    client.track("u", "second")
    assert client.flush(10)
    assert [m["event"] for m in receiver.messages()] == ["second"]


@pytest.mark.parametrize(
    ("value", "cap"),
    [
        ("0", None),
        ("-5", None),
        ("0.01", None),
        ("5", 0.0),  # retry_after=0 caps the server's 5 s at 0
    ],
)
def test_a_retry_after_shorter_than_the_policy_spends_no_retries_at_once(
    receiver: Receiver, make_client: Any, value: str, cap: float | None
) -> None:
    # A rate limit that says "now": every retry at once would give the batch up
    # within milliseconds, still rate limited. The policy's backoff applies.
    receiver.fail_next(*[Fault(429, retry_after=value)] * 3)
    client = make_client(
        retry_after=cap, retry_backoff_min=0.2, retry_backoff_max=0.2, max_retries=3
    )
    client.track("u", "E")
    started = time.monotonic()
    assert client.flush(10)
    assert time.monotonic() - started >= 0.3  # three waits of at least 0.1 s each
    assert len(receiver.messages()) == 1


def test_last_error_says_why_while_retries_go_on(receiver: Receiver, make_client: Any) -> None:
    receiver.fail_next(*[Fault(503)] * 1000)
    client = make_client(retry_backoff_min=0.05, retry_backoff_max=0.05)
    client.track("u", "E")
    deadline = time.monotonic() + 10
    while client.stats()["retries"] < 2 and time.monotonic() < deadline:
        client.flush(0.05)
    stats = client.stats()
    assert stats["retries"] >= 2 and stats["failed"] == 0
    assert "503" in str(stats["last_error"])


def test_nothing_is_sent_once_shutdown_gave_up(receiver: Receiver, make_client: Any) -> None:
    # Past its deadline, shutdown() returns and the senders stop: what is left is
    # reported failed, with no more requests to a server in trouble.
    receiver.fail_next(*[Fault(500)] * 10_000)
    failed: list[int] = []
    client = make_client(
        max_batch_size=10,
        retry_backoff_min=0.2,
        retry_backoff_max=0.2,
        on_error=lambda error, messages: failed.append(len(messages)),
    )
    for i in range(200):
        client.track("u", "E", {"i": i})
    assert client.shutdown(0.5) is False
    sent = len(receiver.requests)
    deadline = time.monotonic() + 10
    while sum(failed) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the hook's count, with a deadline
    assert sum(failed) == 200  # every message reported
    assert len(receiver.requests) <= sent + 1  # at most the one under way at the deadline
