"""What a real FastAPI/Starlette app sends: docs, APIs, secrets, proxies, hostile requests."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.authentication import AuthenticationBackend
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from segment_asgi import SegmentMiddleware
from segment_core import Client
from tests.asgi.apps import HeaderAuth
from tests.asgi.conftest import Sent, TestClient

NAVIGATE = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def api(client: Client, *, trusted_hosts: list[str] | None = None, **options: Any) -> FastAPI:
    app = FastAPI(docs_url="/developer/docs", redoc_url="/developer/redoc")

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        return "<p>home</p>"

    @app.get("/cached", response_class=HTMLResponse)
    def cached() -> HTMLResponse:
        return HTMLResponse(status_code=304)

    @app.get("/api/orders")
    def orders(request: Request) -> dict[str, Any]:
        request.state.analytics.track("Listed Orders")
        return {"orders": []}

    @app.get("/invite/{invite_token}", response_class=HTMLResponse)
    def invite(invite_token: str, request: Request) -> str:
        request.state.analytics.track("Opened Invite")
        return "<p>invite</p>"

    @app.get("/raw/{rest:path}", response_class=HTMLResponse)
    def raw(rest: str) -> str:
        return "<p>raw</p>"

    app.add_middleware(SegmentMiddleware, client=client, **options)
    backend: AuthenticationBackend = HeaderAuth()
    app.add_middleware(AuthenticationMiddleware, backend=backend)
    if trusted_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts)
    return app


def pages(sent: Sent) -> list[dict[str, Any]]:
    return [m for m in sent() if m["type"] == "page"]


def test_docs_and_json_are_not_page_views(client: Client, sent: Sent) -> None:
    with TestClient(api(client)) as browser:
        for url in ("/developer/docs", "/developer/redoc", "/openapi.json", "/api/orders", "/"):
            response = browser.get(url, headers=NAVIGATE)
            assert response.status_code == 200, url
            # A new visitor gets the cookie from the app, and none from its tooling.
            assert ("ajs_anonymous_id" in response.cookies) == (url in ("/api/orders", "/")), url
            browser.cookies.clear()
        browser.get("/developer/docs/oauth2-redirect", headers=NAVIGATE)
    assert [p["name"] for p in pages(sent)] == ["home"]


def test_304_and_script_requests(client: Client, sent: Sent) -> None:
    with TestClient(api(client)) as browser:
        browser.get("/cached", headers=NAVIGATE)
        browser.get("/cached")
        browser.get("/", headers={"hx-request": "true"})
        browser.get("/", headers={"hx-request": "true", "hx-boosted": "true"})
        browser.get("/", headers={"sec-fetch-mode": "cors"})
        browser.get("/", headers={"sec-purpose": "prefetch;prerender"})
        browser.get("/", headers={"x-moz": "prefetch"})
    assert [p["name"] for p in pages(sent)] == ["cached", "home"]


def test_exclude_routes_and_lists_extend(client: Client, sent: Sent) -> None:
    with TestClient(api(client, exclude_routes=["home"], exclude_paths=["^/raw/"])) as browser:
        browser.get("/")
        browser.get("/raw/x")
        browser.get("/healthz")
        browser.get("/invite/x")
    assert [p["name"] for p in pages(sent)] == ["invite"]


def test_the_docs_can_be_counted_again_explicitly(client: Client, sent: Sent) -> None:
    options = {"exclude_routes": [], "replace_default_exclude_routes": True}
    with TestClient(api(client, **options)) as browser:
        browser.get("/developer/docs")
    assert [p["name"] for p in pages(sent)] == ["swagger_ui_html"]


def test_an_api_client_with_a_user_gets_user_id_only_and_no_cookie(
    client: Client, sent: Sent
) -> None:
    with TestClient(api(client)) as browser:
        response = browser.get("/api/orders", headers={"x-user": "ann"})
        head = browser.head("/")
    assert "set-cookie" not in response.headers and "set-cookie" not in head.headers
    [track] = sent()
    assert track["userId"] == "ann" and "anonymousId" not in track


def test_secret_path_parameters_are_redacted(client: Client, sent: Sent) -> None:
    with TestClient(api(client, page_name="path")) as browser:
        browser.get("/invite/t0k3n-v4lue", headers={"referer": "http://testserver/invite/0ld"})
    track, page = sent()
    for message in (track, page):
        assert message["context"]["page"]["path"] == "/invite/REDACTED"
        assert message["context"]["page"]["url"] == "http://testserver/invite/REDACTED"
    assert page["name"] == "/invite/REDACTED"
    assert "t0k3n" not in str([track, page])


def test_trusted_proxy_and_trusted_hosts(client: Client, sent: Sent) -> None:
    app = api(client, trusted_proxies=1, trusted_hosts=["shop.example", "testserver"])
    with TestClient(app) as browser:
        forwarded = {"x-forwarded-proto": "https", "x-forwarded-host": "shop.example"}
        response = browser.get("/", headers=forwarded)
        browser.get("/", headers={"x-forwarded-host": "evil.example"})
        assert browser.get("/", headers={"host": "evil.example"}).status_code == 400
    assert "secure" in response.headers["set-cookie"].lower()
    assert [p["properties"]["url"] for p in pages(sent)] == [
        "https://shop.example/",
        "http://testserver/",
    ]


def test_hostile_sizes_and_bytes(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), TestClient(api(client)) as browser:
        assert browser.get("/invite/x?utm_campaign=" + "c" * 12_000).status_code == 200
        long = browser.get("/raw/" + "p" * 60_000, headers={"user-agent": "U" * 65_536})
        assert long.status_code == 200
        browser.get("/raw/caf%E9/%C3%A9t%C3%A9")
    assert [r for r in caplog.records if r.name.startswith("segment")] == []
    track, _, long_page, bytes_page = sent()
    assert len(track["context"]["campaign"]["name"]) == 256
    assert len(long_page["properties"]["path"]) == 2048
    assert len(long_page["context"]["userAgent"]) == 512
    assert bytes_page["properties"]["path"] == "/raw/caf%E9/%C3%A9t%C3%A9"
