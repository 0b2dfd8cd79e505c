"""Fault injection: statuses, Retry-After, delays, dropped connections, time windows."""

from __future__ import annotations

import concurrent.futures
import email.utils
import time
from typing import Any

import pytest
import requests

from segment_core.collector import CollectorError, CollectorHandle
from tests.collector.helpers import assert_error, batch, message, post


def send(collector: CollectorHandle) -> requests.Response:
    return post(collector.url, batch(message()))


def test_status_for_a_count_of_requests(segment_collector: CollectorHandle) -> None:
    pending = segment_collector.faults({"status": 503, "count": 3})
    assert pending == [{"status": 503, "count": 3}]
    for _ in range(3):
        body = assert_error(send(segment_collector), 503, "injected_fault")
        assert "503" in body["message"]
    assert send(segment_collector).status_code == 200
    summary = segment_collector.summary()
    assert summary["total"] == 1  # faulted requests are not stored
    assert summary["requests"] == {"accepted": 1, "rejected": 0, "faulted": 3}


def test_a_probe_s_get_takes_no_planned_fault(segment_collector: CollectorHandle) -> None:
    segment_collector.faults({"status": 503, "count": 1})
    assert requests.get(f"{segment_collector.url}/v1/batch", timeout=10).status_code == 405
    assert_error(send(segment_collector), 503, "injected_fault")  # the client's POST's
    assert send(segment_collector).status_code == 200


def test_429_with_retry_after(segment_collector: CollectorHandle) -> None:
    segment_collector.faults({"status": 429, "retry_after": 1, "count": 1})
    response = send(segment_collector)
    assert_error(response, 429, "injected_fault")
    assert response.headers["Retry-After"] == "1"
    reset_at = int(response.headers["X-RateLimit-Reset"])
    assert time.time() - 60 < reset_at < time.time() + 60
    answer = send(segment_collector)
    assert answer.status_code == 200
    assert "X-RateLimit-Reset" not in answer.headers


def test_retry_after_as_an_http_date(segment_collector: CollectorHandle) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    segment_collector.faults({"status": 429, "retry_after": date})
    assert send(segment_collector).headers["Retry-After"] == date


@pytest.mark.parametrize("seconds", [90, 3600, 86_000])
def test_rate_limit_reset_is_the_moment_of_an_http_date(
    segment_collector: CollectorHandle, seconds: int
) -> None:
    when = int(time.time()) + seconds
    date = email.utils.formatdate(when, usegmt=True)
    segment_collector.faults({"status": 429, "retry_after": date})
    response = send(segment_collector)
    assert response.headers["Retry-After"] == date
    assert response.headers["X-RateLimit-Reset"] == str(when)


def test_rate_limit_reset_of_a_past_http_date_is_now(segment_collector: CollectorHandle) -> None:
    segment_collector.faults({"status": 429, "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    before = int(time.time())
    reset_at = int(send(segment_collector).headers["X-RateLimit-Reset"])
    assert before <= reset_at <= time.time() + 1


@pytest.mark.parametrize("retry_after", ["0.5", "1", "2.25"])
def test_rate_limit_reset_is_never_before_the_retry_after(
    segment_collector: CollectorHandle, retry_after: str
) -> None:
    segment_collector.faults({"status": 429, "retry_after": retry_after})
    before = time.time()
    reset_at = int(send(segment_collector).headers["X-RateLimit-Reset"])
    assert before + float(retry_after) <= reset_at <= time.time() + float(retry_after) + 1


@pytest.mark.parametrize("status", [413, 400, 500, 408])
def test_other_statuses_default_to_one_request(
    segment_collector: CollectorHandle, status: int
) -> None:
    segment_collector.faults({"status": status})
    assert_error(send(segment_collector), status, "injected_fault")
    assert send(segment_collector).status_code == 200


def test_delay_then_handle_normally(segment_collector: CollectorHandle) -> None:
    segment_collector.faults({"delay": 0.3, "count": 1})
    started = time.monotonic()
    response = send(segment_collector)
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert segment_collector.summary()["total"] == 1  # a slow answer is still an answer


def test_delay_longer_than_the_client_waits(segment_collector: CollectorHandle) -> None:
    segment_collector.faults({"delay": 1.0})
    with pytest.raises(requests.Timeout):
        requests.post(segment_collector.url + "/v1/batch", json=batch(message()), timeout=0.2)
    # The server still stores it when the delay ends, as a slow real server would.
    segment_collector.wait_for(1, timeout=5)


def test_delay_then_status(segment_collector: CollectorHandle) -> None:
    segment_collector.faults({"delay": 0.2, "status": 503})
    started = time.monotonic()
    assert_error(send(segment_collector), 503, "injected_fault")
    assert time.monotonic() - started >= 0.2


def test_close_without_a_response(segment_collector: CollectorHandle) -> None:
    segment_collector.faults({"close": True, "count": 2})
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            send(segment_collector)
    assert send(segment_collector).status_code == 200
    summary = segment_collector.summary()
    assert (summary["total"], summary["requests"]["faulted"]) == (1, 2)


def test_time_window(segment_collector: CollectorHandle) -> None:
    started = time.monotonic()
    segment_collector.faults({"status": 503, "seconds": 0.5})
    statuses = []
    deadline = started + 10
    while time.monotonic() < deadline:
        status = send(segment_collector).status_code
        statuses.append(status)
        if status == 200:
            break
    assert statuses[0] == 503 and statuses[-1] == 200
    assert set(statuses[:-1]) == {503}
    assert time.monotonic() - started >= 0.5


def test_plans_run_in_order(segment_collector: CollectorHandle) -> None:
    segment_collector.faults([{"status": 500}, {"status": 503, "count": 2}])
    segment_collector.faults({"status": 429})
    codes = [send(segment_collector).status_code for _ in range(5)]
    assert codes == [500, 503, 503, 429, 200]


def test_time_window_starts_when_its_turn_comes(segment_collector: CollectorHandle) -> None:
    segment_collector.faults([{"status": 500, "count": 1}, {"status": 503, "seconds": 30}])
    assert send(segment_collector).status_code == 500
    assert send(segment_collector).status_code == 503
    [window] = requests.get(segment_collector.url + "/collector/faults", timeout=10).json()[
        "pending"
    ]
    assert window["status"] == 503 and 25 < window["seconds"] <= 30


def test_a_huge_list_of_plans_is_refused_without_being_kept(
    segment_collector: CollectorHandle,
) -> None:
    def spaces() -> Any:
        for _ in range(64):  # 64 MiB sent, never held whole
            yield b" " * (1 << 20)

    answer = requests.post(f"{segment_collector.url}/collector/faults", data=spaces(), timeout=60)
    assert_error(answer, 400, "request_too_large")
    assert segment_collector.summary()["pending_faults"] == 0


def test_clear_faults(segment_collector: CollectorHandle) -> None:
    segment_collector.faults({"status": 503, "count": 10})
    segment_collector.clear_faults()
    assert send(segment_collector).status_code == 200
    assert segment_collector.summary()["pending_faults"] == 0


@pytest.mark.parametrize(
    ("plan", "status"), [({"delay": 120}, 200), ({"delay": 120, "status": 503}, 503)]
)
def test_clearing_the_plans_ends_a_delay_in_progress(
    segment_collector: CollectorHandle, plan: dict[str, Any], status: int
) -> None:
    """A test's reset (and the collector's stop) does not leave a request held: it
    goes on at once, answered as planned, before the next test begins."""
    segment_collector.faults(plan)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(send, segment_collector)
        deadline = time.monotonic() + 20
        while segment_collector.summary()["pending_faults"]:  # until the request holds it
            assert time.monotonic() < deadline, "the request never came"
            time.sleep(0.02)
        segment_collector.clear_faults()
        assert answer.result(timeout=60).status_code == status
    assert segment_collector.summary()["total"] == (1 if status == 200 else 0)


def test_faults_leave_the_query_api_alone(segment_collector: CollectorHandle) -> None:
    segment_collector.faults({"status": 503, "count": 1})
    assert segment_collector.summary()["pending_faults"] == 1
    assert segment_collector.events() == []
    assert requests.get(segment_collector.url + "/", timeout=10).status_code == 200
    assert_error(send(segment_collector), 503, "injected_fault")


def test_faults_apply_to_single_call_routes(segment_collector: CollectorHandle) -> None:
    segment_collector.faults({"status": 502})
    response = post(segment_collector.url, message(), path="/v1/track")
    assert_error(response, 502, "injected_fault")


@pytest.mark.parametrize(
    "plan",
    [
        {},
        {"status": 99},
        {"status": "503"},
        {"status": 503, "count": 0},
        {"status": 503, "seconds": -1},
        {"delay": -1},
        {"delay": 301},
        {"close": "yes"},
        {"status": 503, "bogus": 1},
        {"status": 429, "retry_after": -5},
        [],
        ["not a plan"],
    ],
)
def test_invalid_plans(segment_collector: CollectorHandle, plan: Any) -> None:
    response = requests.post(segment_collector.url + "/collector/faults", json=plan, timeout=10)
    assert_error(response, 400, "invalid_fault_plan")
    with pytest.raises(CollectorError):
        segment_collector.faults(plan)
    assert segment_collector.summary()["pending_faults"] == 0


def test_invalid_plan_json(segment_collector: CollectorHandle) -> None:
    response = requests.post(segment_collector.url + "/collector/faults", data=b"{", timeout=10)
    assert_error(response, 400, "invalid_json")
