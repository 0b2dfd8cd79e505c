"""What analytics.js in a page of another origin needs from the collector."""

from __future__ import annotations

from typing import Any

import requests

PAGE_ORIGIN = "http://127.0.0.1:9999"


def vary(response: requests.Response) -> set[str]:
    return {name.strip().lower() for name in response.headers.get("vary", "").split(",")}


def test_preflight_and_cors_headers_on_v1_routes(segment_collector: Any) -> None:
    url = f"{segment_collector.url}/v1/t"
    preflight = requests.options(
        url,
        headers={"Origin": PAGE_ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"]
    answer = requests.post(
        url,
        data=b'{"type":"track","event":"Clicked","anonymousId":"a1","messageId":"m-cors",'
        b'"writeKey":"k"}',
        headers={"Content-Type": "text/plain", "Origin": PAGE_ORIGIN},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == PAGE_ORIGIN


def test_preflight_allows_the_headers_a_page_asks_to_send(segment_collector: Any) -> None:
    # analytics.js sends what `deliveryStrategy.config.headers` names, e.g. X-Tenant.
    preflight = requests.options(
        f"{segment_collector.url}/v1/b",
        headers={
            "Origin": PAGE_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-tenant, X-Request-Id",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    allowed = {
        name.strip() for name in preflight.headers["access-control-allow-headers"].split(",")
    }
    assert {"content-type", "x-tenant", "x-request-id", "x-retry-count"} <= allowed
    assert {"origin", "access-control-request-headers"} <= vary(preflight)


def test_preflight_names_only_header_names(segment_collector: Any) -> None:
    preflight = requests.options(
        f"{segment_collector.url}/v1/t",
        headers={
            "Origin": PAGE_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-tenant, x bad(name)",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    allowed = preflight.headers["access-control-allow-headers"]
    assert "bad" not in allowed and "x-tenant" not in allowed
    assert "content-type" in allowed


def test_a_page_sending_credentials_gets_its_own_origin_back(segment_collector: Any) -> None:
    # With `credentials: "include"` a browser refuses `*`: the origin must be named.
    preflight = requests.options(
        f"{segment_collector.url}/v1/t",
        headers={"Origin": PAGE_ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert preflight.headers["access-control-allow-credentials"] == "true"
    body = b'{"type":"track","event":"Clicked","anonymousId":"a1","writeKey":"k"}'
    for path in ("/v1/t", "/v1/nowhere"):  # an answer and an error alike
        answer = requests.post(
            segment_collector.url + path,
            data=body,
            headers={"Content-Type": "text/plain", "Origin": PAGE_ORIGIN},
            timeout=10,
        )
        assert answer.headers["access-control-allow-origin"] == PAGE_ORIGIN, path
        assert answer.headers["access-control-allow-credentials"] == "true", path
        assert "origin" in vary(answer), path
    without_origin = requests.post(
        f"{segment_collector.url}/v1/t",
        data=body,
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert without_origin.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in without_origin.headers


def test_the_other_routes_do_not_answer_pages_of_other_origins(segment_collector: Any) -> None:
    summary = requests.get(
        f"{segment_collector.url}/collector/summary", headers={"Origin": PAGE_ORIGIN}, timeout=10
    )
    assert summary.status_code == 200
    assert "access-control-allow-origin" not in summary.headers
    assert "access-control-allow-credentials" not in summary.headers


def test_a_page_posting_beside_v1_can_read_the_404(segment_collector: Any) -> None:
    # analytics.js with an apiHost that lacks /v1 posts to /t: its page must see why.
    url = f"{segment_collector.url}/t"
    preflight = requests.options(
        url,
        headers={"Origin": PAGE_ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == PAGE_ORIGIN
    answer = requests.post(
        url, data=b"{}", headers={"Content-Type": "text/plain", "Origin": PAGE_ORIGIN}, timeout=10
    )
    assert answer.status_code == 404
    assert answer.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert answer.json()["message"] == "there is no route /t; events go to /v1/t"
    prefixed = requests.post(f"{segment_collector.url}/seg/p", data=b"{}", timeout=10)
    # A route that takes it: the collector serves from its root.
    assert prefixed.json()["message"] == "there is no route /seg/p; events go to /v1/p"
    # A route's own answer, for any method, stays closed to other origins.
    for method in ("get", "post", "options"):
        known = requests.request(
            method, f"{segment_collector.url}/collector/events/nope",
            headers={"Origin": PAGE_ORIGIN}, timeout=10,
        )  # fmt: skip
        assert known.status_code in (404, 405)
        assert "access-control-allow-origin" not in known.headers


def test_a_page_of_another_origin_can_read_when_to_retry(segment_collector: Any) -> None:
    # analytics.js reads Retry-After of a 429; a browser hides it unless exposed.
    segment_collector.faults({"status": 429, "retry_after": 7})
    answer = requests.post(
        f"{segment_collector.url}/v1/t",
        data=b'{"type":"track","event":"Clicked","anonymousId":"a1","writeKey":"k"}',
        headers={"Content-Type": "text/plain", "Origin": PAGE_ORIGIN},
        timeout=10,
    )
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    exposed = {
        name.strip().lower() for name in answer.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"retry-after", "x-ratelimit-reset"} <= exposed


def test_analytics_js_short_routes_store_their_call(segment_collector: Any) -> None:
    for route, kind in [("t", "track"), ("p", "page"), ("i", "identify"), ("s", "screen")]:
        body: dict[str, Any] = {"anonymousId": "a1", "messageId": f"m-{route}", "writeKey": "k"}
        if kind == "track":
            body["event"] = "Clicked"
        answer = requests.post(f"{segment_collector.url}/v1/{route}", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        stored = segment_collector.event(f"m-{route}")
        assert stored["status"] == "good", stored["reasons"]
        assert stored["message"]["type"] == kind
    assert requests.post(f"{segment_collector.url}/v1/x", json={}, timeout=10).status_code == 404


def test_analytics_js_batching_route(segment_collector: Any) -> None:
    body = {
        "writeKey": "k",
        "sentAt": "2024-01-01T00:00:00.000Z",
        "batch": [{"type": "page", "anonymousId": "a1", "messageId": "m-b1"}],
    }
    answer = requests.post(f"{segment_collector.url}/v1/b", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert segment_collector.event("m-b1")["status"] == "good"
