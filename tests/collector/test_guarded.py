"""Outside input the collector must answer with a 4xx, and who may drive it at all."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from segment_core.collector import CollectorHandle, run_in_background
from tests.collector.helpers import assert_error, batch, message, post

TIMEOUT = 10


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=TIMEOUT, **kwargs)


# -- cursors and counts ------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "after=99999999999999999999",
        "after=9223372036854775808",
        "after=-1",
        "after=1e3",
        "after=%EF%BC%91",  # a full-width digit: int() reads it, a cursor is ASCII
        "limit=0",
        "limit=99999999999999999999999",
        "limit=ten",
        "last=-5",
        "last=" + "9" * 5000,
    ],
)
def test_malformed_or_out_of_range_query_numbers_get_400(
    segment_collector: CollectorHandle, query: str
) -> None:
    post(segment_collector.url, batch(message()))
    assert_error(get(f"{segment_collector.url}/collector/events?{query}"), 400, "invalid_query")
    assert segment_collector.summary()["total"] == 1  # and the collector still answers


def test_the_largest_cursor_is_accepted(segment_collector: CollectorHandle) -> None:
    answer = get(f"{segment_collector.url}/collector/events?after=9223372036854775807&last=10**")
    assert answer.status_code == 400  # "10**" is not a number
    answer = get(f"{segment_collector.url}/collector/events?after=9223372036854775807")
    assert answer.status_code == 200
    assert answer.json()["events"] == []


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"Last-Event-ID": "99999999999999999999"}, ""),
        ({"Last-Event-ID": "abc"}, ""),
        ({"Last-Event-ID": "-5"}, ""),
        ({"Last-Event-ID": "x-"}, ""),
        ({"Last-Event-ID": "a b-3"}, ""),
        ({}, "?after=99999999999999999999"),
        ({}, "?after=-3"),
    ],
)
def test_stream_cursor_out_of_range_gets_400_not_a_dead_stream(
    segment_collector: CollectorHandle, headers: dict[str, str], query: str
) -> None:
    answer = get(f"{segment_collector.url}/collector/stream{query}", headers=headers)
    assert_error(answer, 400, "invalid_query")


def test_stream_with_a_valid_cursor_still_streams(segment_collector: CollectorHandle) -> None:
    post(segment_collector.url, batch(message()))
    url = f"{segment_collector.url}/collector/stream"
    with requests.get(url, headers={"Last-Event-ID": "0"}, stream=True, timeout=TIMEOUT) as answer:
        assert answer.status_code == 200
        # The stored event comes first, after the retry line and its id line.
        for line, _ in zip(answer.iter_lines(), range(20), strict=False):
            if line.startswith(b"event: message"):
                break
        else:
            raise AssertionError("no event in the stream")


# -- fault plans --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"delay": 1e308}',
        b'{"status": 503, "seconds": 1e308}',
        b'{"status": 429, "retry_after": 1e308}',
        b'{"status": 429, "retry_after": "nan"}',
        b'{"status": 429, "retry_after": "inf"}',
        b'{"status": 429, "retry_after": "-1"}',
        b'{"status": 429, "retry_after": "1\\r\\nSet-Cookie: a=b"}',
        b'{"status": 429, "retry_after": "\\u00e9t\\u00e9"}',
        b'{"status": 429, "retry_after": ""}',
        b'{"status": 503, "count": 1.5}',
    ],
)
def test_fault_plans_are_fully_checked_when_posted(
    segment_collector: CollectorHandle, body: bytes
) -> None:
    answer = requests.post(
        f"{segment_collector.url}/collector/faults",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert_error(answer, 400, "invalid_fault_plan")
    assert segment_collector.summary()["pending_faults"] == 0
    assert post(segment_collector.url, batch(message())).status_code == 200


@pytest.mark.parametrize("status", [204, 304, 200, 429, 599])
def test_an_accepted_plan_applies(segment_collector: CollectorHandle, status: int) -> None:
    segment_collector.faults({"status": status, "retry_after": 2})
    answer = post(segment_collector.url, batch(message()))
    assert answer.status_code == status
    assert answer.headers["Retry-After"] == "2"
    assert segment_collector.summary()["requests"]["faulted"] == 1
    assert post(segment_collector.url, batch(message())).status_code == 200


# -- the write key ------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed() -> Iterator[CollectorHandle]:
    with run_in_background(write_key="the-secret-key") as handle:
        yield handle


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/collector/summary"),
        ("GET", "/collector/events"),
        ("GET", "/collector/events/some-id"),
        ("GET", "/collector/stream"),
        ("POST", "/collector/reset"),
        ("GET", "/collector/faults"),
        ("POST", "/collector/faults"),
        ("DELETE", "/collector/faults"),
    ],
)
def test_the_write_key_protects_every_route(keyed: CollectorHandle, method: str, path: str) -> None:
    post(keyed.url, batch(message()), auth=("the-secret-key", ""))
    for auth in (None, ("wrong", ""), ("the-secret-keyX", "")):
        answer = requests.request(
            method, keyed.url + path, auth=auth, json={"status": 503}, timeout=TIMEOUT
        )
        assert answer.status_code == 401, (auth, answer.text)
        assert answer.headers["WWW-Authenticate"] == 'Basic realm="segment-collector"'
        assert "the-secret-key" not in answer.text
    assert keyed.summary()["pending_faults"] == 0
    assert keyed.summary()["total"] >= 1  # nothing was reset
    keyed.clear_faults()


def test_with_the_key_the_page_and_the_api_answer(keyed: CollectorHandle) -> None:
    keyed.reset()
    post(keyed.url, batch(message()), auth=("the-secret-key", ""))
    assert get(keyed.url + "/", auth=("the-secret-key", "")).status_code == 200
    [event] = keyed.wait_for(1)
    assert "the-secret-key" not in str(event)
    assert event["writeKey"].startswith("the-… sha256:")


# -- Host and requests of other origins ---------------------------------------


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:{port}", "localhost.evil.example:{port}", ""],
)
@pytest.mark.parametrize("path", ["/", "/collector/events", "/collector/summary", "/v1/batch"])
def test_a_host_that_is_not_the_collector_is_refused(
    segment_collector: CollectorHandle, host: str, path: str
) -> None:
    port = segment_collector.url.rsplit(":", 1)[1]
    answer = requests.request(
        "POST" if path.startswith("/v1/") else "GET",
        segment_collector.url + path,
        headers={"Host": host.format(port=port)},
        json=batch(message()),
        timeout=TIMEOUT,
    )
    assert_error(answer, 400, "host_not_allowed")
    assert segment_collector.summary()["total"] == 0


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "LOCALHOST"])
def test_the_collectors_own_names_are_accepted(
    segment_collector: CollectorHandle, name: str
) -> None:
    port = segment_collector.url.rsplit(":", 1)[1]
    answer = get(segment_collector.url + "/collector/summary", headers={"Host": f"{name}:{port}"})
    assert answer.status_code == 200


def test_allowed_hosts_extend_the_names() -> None:
    with run_in_background(allowed_hosts=["collector.internal", "10.0.0.7", "fd00::7"]) as handle:
        port = handle.url.rsplit(":", 1)[1]
        for name in ("collector.internal", "10.0.0.7", "[fd00::7]"):
            answer = get(handle.url + "/", headers={"Host": f"{name}:{port}"})
            assert answer.status_code == 200, name
        answer = get(handle.url + "/", headers={"Host": f"other.internal:{port}"})
        assert answer.status_code == 400


def test_a_refused_host_is_told_how_to_allow_it(segment_collector: CollectorHandle) -> None:
    port = segment_collector.url.rsplit(":", 1)[1]
    answer = get(segment_collector.url + "/", headers={"Host": f"collector.internal:{port}"})
    says = assert_error(answer, 400, "host_not_allowed")["message"]
    assert "--allowed-host NAME" in says and "allowed_hosts=[NAME]" in says


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("collector.internal:8765", "got 'collector.internal:8765'; use 'collector.internal'"),
        ("http://collector.internal", "use 'collector.internal'"),
        ("[::1]:8765", "use '::1'"),
        ("*.example.com", "got '*.example.com'"),
        ("", "got ''"),
    ],
)
def test_allowed_hosts_that_could_never_match_are_refused(given: str, says: str) -> None:
    with pytest.raises(ValueError, match=r"^allowed_hosts takes a host name") as raised:
        run_in_background(allowed_hosts=[given])
    assert says in str(raised.value)


def test_allowed_hosts_is_a_list_not_one_name() -> None:
    with pytest.raises(ValueError, match="allowed_hosts takes a list of host names"):
        run_in_background(allowed_hosts="collector.internal")


@pytest.mark.parametrize(("host", "local"), [("0.0.0.0", "127.0.0.1"), ("::", "[::1]")])
def test_on_every_address_the_handle_reaches_it(host: str, local: str) -> None:
    if ":" in host and not socket.has_ipv6:
        pytest.skip("this machine has no IPv6")
    with run_in_background(host=host) as handle:
        assert handle.url.startswith(f"http://{local}:")
        assert post(handle.url, batch(message())).status_code == 200
        assert handle.wait_for(1)[0]["status"] == "good"


def _is_an_address_of_this_machine(address: str) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_on_every_address_an_ipv4_client_names_the_address_it_reached(host: str) -> None:
    # Not one of the local names: accepted as the address the request arrived on,
    # which a dual-stack socket ("::") sees as ::ffff:127.0.0.2.
    address = "127.0.0.2"
    if ":" in host and not socket.has_ipv6:
        pytest.skip("this machine has no IPv6")
    if not _is_an_address_of_this_machine(address):
        pytest.skip(f"{address} is not an address of this machine")
    with run_in_background(host=host) as handle:
        port = handle.url.rsplit(":", 1)[1]
        sent = message()
        assert post(f"http://{address}:{port}", batch(sent)).status_code == 200
        assert handle.wait_for(1)[0]["messageId"] == sent["messageId"]
        answer = get(f"http://{address}:{port}/", headers={"Host": f"127.0.0.3:{port}"})
        assert_error(answer, 400, "host_not_allowed")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"},
        {"Origin": "http://127.0.0.1:1"},
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/collector/reset"), ("POST", "/collector/faults"), ("DELETE", "/collector/faults")],
)
def test_pages_of_other_origins_cannot_drive_the_control_routes(
    segment_collector: CollectorHandle, headers: dict[str, str], method: str, path: str
) -> None:
    post(segment_collector.url, batch(message()))
    answer = requests.request(
        method, segment_collector.url + path, headers=headers, json={"status": 503}, timeout=10
    )
    says = assert_error(answer, 403, "cross_origin")["message"]
    assert "pages of other origins" in says and "--allow-remote-control" in says
    assert segment_collector.summary()["total"] == 1
    assert segment_collector.summary()["pending_faults"] == 0


def test_the_collectors_own_page_can_reset(segment_collector: CollectorHandle) -> None:
    post(segment_collector.url, batch(message()))
    netloc = segment_collector.url.split("//", 1)[1]
    headers = {"Origin": f"http://{netloc}", "Sec-Fetch-Site": "same-origin"}
    answer = requests.post(segment_collector.url + "/collector/reset", headers=headers, timeout=10)
    assert answer.status_code == 200
    assert segment_collector.summary()["total"] == 0


def test_v1_keeps_its_cors_for_pages_of_other_origins(segment_collector: CollectorHandle) -> None:
    headers = {"Origin": "https://shop.example", "Sec-Fetch-Site": "cross-site"}
    answer = post(segment_collector.url, batch(message()), headers=headers)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example"


def test_allow_remote_control_lifts_the_cross_origin_check() -> None:
    with run_in_background(allow_remote_control=True) as handle:
        answer = requests.post(
            handle.url + "/collector/reset", headers={"Origin": "https://ci.example"}, timeout=10
        )
        assert answer.status_code == 200


# A test harness's page, of another origin than the collector's.
HARNESS = "http://localhost:3000"
FROM_HARNESS = {"Origin": HARNESS, "Sec-Fetch-Site": "cross-site"}


def preflight(url: str, method: str) -> requests.Response:
    """The browser's CORS preflight of a `fetch` with a JSON body from the harness."""
    headers = {
        "Origin": HARNESS,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type",
    }
    return requests.options(url, headers=headers, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def remote_controlled() -> Iterator[CollectorHandle]:
    with run_in_background(allow_remote_control=True) as handle:
        yield handle


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/collector/faults"), ("DELETE", "/collector/faults"), ("POST", "/collector/reset")],
)
def test_allow_remote_control_answers_the_preflights_of_the_control_routes(
    remote_controlled: CollectorHandle, method: str, path: str
) -> None:
    answer = preflight(remote_controlled.url + path, method)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == HARNESS
    assert method in answer.headers["Access-Control-Allow-Methods"].split(", ")
    assert "content-type" in answer.headers["Access-Control-Allow-Headers"].split(", ")


def test_allow_remote_control_lets_a_page_of_another_origin_read_the_control_answers(
    remote_controlled: CollectorHandle,
) -> None:
    url = remote_controlled.url
    remote_controlled.reset()
    planned = requests.post(
        url + "/collector/faults", json={"status": 503}, headers=FROM_HARNESS, timeout=TIMEOUT
    )
    assert planned.status_code == 200
    assert planned.headers["Access-Control-Allow-Origin"] == HARNESS
    assert remote_controlled.summary()["pending_faults"] == 1
    refused = requests.post(
        url + "/collector/faults", json={"status": 42}, headers=FROM_HARNESS, timeout=TIMEOUT
    )
    assert_error(refused, 400, "invalid_fault_plan")
    assert refused.headers["Access-Control-Allow-Origin"] == HARNESS
    cleared = requests.delete(url + "/collector/faults", headers=FROM_HARNESS, timeout=TIMEOUT)
    assert (cleared.status_code, cleared.json()) == (200, {"pending": []})
    assert cleared.headers["Access-Control-Allow-Origin"] == HARNESS
    post(url, batch(message()))
    reset = requests.post(url + "/collector/reset", headers=FROM_HARNESS, timeout=TIMEOUT)
    assert reset.status_code == 200
    assert reset.headers["Access-Control-Allow-Origin"] == HARNESS
    assert remote_controlled.summary()["total"] == 0


def test_allow_remote_control_with_a_write_key_still_needs_the_key() -> None:
    with run_in_background(allow_remote_control=True, write_key="remote-key") as handle:
        # A browser's preflight carries no credentials: it is answered all the same.
        assert preflight(handle.url + "/collector/faults", "POST").status_code == 204
        body = {"status": 503}
        without = requests.post(
            handle.url + "/collector/faults", json=body, headers=FROM_HARNESS, timeout=TIMEOUT
        )
        assert_error(without, 401, "unauthorized")
        assert without.headers["Access-Control-Allow-Origin"] == HARNESS  # readable
        assert handle.summary()["pending_faults"] == 0
        with_key = requests.post(
            handle.url + "/collector/faults",
            json=body,
            headers=FROM_HARNESS,
            auth=("remote-key", ""),
            timeout=TIMEOUT,
        )
        assert with_key.status_code == 200
        assert handle.summary()["pending_faults"] == 1


@pytest.mark.parametrize("path", ["/collector/faults", "/collector/reset"])
def test_without_allow_remote_control_the_control_routes_answer_no_preflight(
    segment_collector: CollectorHandle, path: str
) -> None:
    answer = preflight(segment_collector.url + path, "POST")
    assert answer.status_code == 403
    assert "Access-Control-Allow-Origin" not in answer.headers
