"""FastAPI apps as they are usually built: routers included, apps mounted, the app
wrapped from outside."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware

import segment_asgi
from segment_core import Client
from segment_core.testing import capture
from tests.asgi.conftest import TestClient

HTML = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}


def shop() -> FastAPI:
    app = FastAPI()
    invites = APIRouter(prefix="/invite")

    @invites.get("/{key}", response_class=HTMLResponse)
    def invite(key: str) -> str:
        return "<p>invite</p>"

    app.include_router(invites)

    @app.get("/welcome", response_class=HTMLResponse)
    def welcome() -> str:
        return "<p>welcome</p>"

    return app


def page_calls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "page"]


def test_a_route_of_an_included_router_loses_its_secrets_everywhere() -> None:
    app = shop()
    app.add_middleware(segment_asgi.SegmentMiddleware, client=Client("k", send=False))
    with TestClient(app) as http, capture() as events:
        http.get("/welcome", headers={**HTML, "Referer": "http://testserver/invite/SECRET1"})
        http.get("/welcome?next=/invite/SECRET2", headers=HTML)
        http.get("/invite/SECRET3", headers=HTML)
    assert len(page_calls(events)) == 3
    assert "SECRET" not in json.dumps(events)
    referrer = page_calls(events)[0]["properties"]["referrer"]
    assert referrer == "http://testserver/invite/REDACTED"


def test_a_forwarded_host_is_checked_when_the_app_is_wrapped_from_outside() -> None:
    options = {"client": Client("k", send=False), "trusted_proxies": 1}
    apps = [
        segment_asgi.SegmentMiddleware(  # type: ignore[arg-type]
            TrustedHostMiddleware(shop(), allowed_hosts=["testserver"]), **options
        )
    ]
    inner = shop()
    inner.add_middleware(TrustedHostMiddleware, allowed_hosts=["testserver"])
    apps.append(segment_asgi.SegmentMiddleware(inner, **options))  # type: ignore[arg-type]
    for app in apps:
        with TestClient(app) as http, capture() as events:
            headers = {**HTML, "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
            assert http.get("/welcome", headers=headers).status_code == 200
        [page] = page_calls(events)
        assert page["properties"]["url"] == "https://testserver/welcome"


def test_the_docs_of_a_mounted_app_are_no_page_views() -> None:
    outer = shop()
    outer.mount("/v2", FastAPI())
    outer.add_middleware(segment_asgi.SegmentMiddleware, client=Client("k", send=False))
    with TestClient(outer) as http, capture() as events:
        for path in ("/v2/docs", "/v2/redoc", "/v2/docs/oauth2-redirect", "/docs"):
            assert http.get(path, headers=HTML).status_code == 200
        http.get("/welcome", headers=HTML)
    assert [e["properties"]["path"] for e in page_calls(events)] == ["/welcome"]
