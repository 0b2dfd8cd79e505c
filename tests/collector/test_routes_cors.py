"""What analytics.js in a page of another origin needs from the collector."""

from __future__ import annotations

from typing import Any

import requests


def test_preflight_and_cors_headers_on_v1_routes(segment_collector: Any) -> None:
    url = f"{segment_collector.url}/v1/t"
    preflight = requests.options(
        url,
        headers={"Origin": "http://127.0.0.1:9999", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"]
    answer = requests.post(
        url,
        data=b'{"type":"track","event":"Clicked","anonymousId":"a1","messageId":"m-cors",'
        b'"writeKey":"k"}',
        headers={"Content-Type": "text/plain", "Origin": "http://127.0.0.1:9999"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"


def test_a_page_of_another_origin_can_read_when_to_retry(segment_collector: Any) -> None:
    # analytics.js reads Retry-After of a 429; a browser hides it unless exposed.
    segment_collector.faults({"status": 429, "retry_after": 7})
    answer = requests.post(
        f"{segment_collector.url}/v1/t",
        data=b'{"type":"track","event":"Clicked","anonymousId":"a1","writeKey":"k"}',
        headers={"Content-Type": "text/plain", "Origin": "http://127.0.0.1:9999"},
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
