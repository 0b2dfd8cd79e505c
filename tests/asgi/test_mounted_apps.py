"""Flask and Django apps mounted in an ASGI app track their own requests.

A WSGI app never sees the ASGI scope that marks a request as tracked, and Django's
handler does not read it: the middleware stands aside for the requests routed to
such an app, whose own adapter knows its routes (and redacts their secrets).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from asgiref.wsgi import WsgiToAsgi
from fastapi import APIRouter, FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Host, Mount, Route

from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.collector.handle import CollectorHandle
from segment_flask import SegmentFlask
from tests.asgi.conftest import Sent, TestClient

with warnings.catch_warnings():
    # Deprecated in newer Starlette for a2wsgi, and what FastAPI's guide still shows.
    warnings.filterwarnings("ignore", message="starlette.middleware.wsgi is deprecated")
    from starlette.middleware.wsgi import WSGIMiddleware

SECRET = "s3cr3t-invite-key"
ROOT = Path(__file__).resolve().parents[2]


def legacy_app(client: Client | None) -> Flask:
    """A Flask app; with ``client``, set up with ``SegmentFlask``."""
    legacy = Flask("legacy")
    if client is not None:
        SegmentFlask(legacy, client=client)

    @legacy.get("/invite/<key>")
    def invite(key: str) -> str:
        return "<p>invite</p>"

    @legacy.get("/about")
    def about() -> str:
        return "<p>about</p>"

    return legacy


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse("<p>home</p>")


def a2wsgi_middleware(app: Flask) -> Any:
    a2wsgi = pytest.importorskip("a2wsgi")
    return a2wsgi.WSGIMiddleware(app)


def asgiref_middleware(app: Flask) -> Any:
    return WsgiToAsgi(app)  # type: ignore[no-untyped-call]


# How the Flask app is mounted: (its prefix, the route that mounts it).
MOUNTS: dict[str, Callable[[Flask], tuple[str, Mount]]] = {
    "starlette": lambda app: ("/legacy", Mount("/legacy", WSGIMiddleware(app))),
    "a2wsgi": lambda app: ("/legacy", Mount("/legacy", a2wsgi_middleware(app))),
    "asgiref": lambda app: ("/legacy", Mount("/legacy", asgiref_middleware(app))),
    "wsgi_app method": lambda app: ("/legacy", Mount("/legacy", WSGIMiddleware(app.wsgi_app))),
    "in ASGI middleware": lambda app: (
        "/legacy",
        Mount("/legacy", CORSMiddleware(WSGIMiddleware(app), allow_origins=["*"])),
    ),
    "in a mounted app": lambda app: (
        "/v1/legacy",
        Mount("/v1", Starlette(routes=[Mount("/legacy", WSGIMiddleware(app))])),
    ),
}


@pytest.mark.parametrize("how", MOUNTS)
def test_a_mounted_flask_app_with_segment_flask_tracks_its_own_requests(
    client: Client, sent: Sent, how: str
) -> None:
    prefix, mount = MOUNTS[how](legacy_app(client))
    app = FastAPI()
    app.add_api_route("/", home, response_class=HTMLResponse, name="home")
    app.router.routes.append(mount)
    app.add_middleware(SegmentMiddleware, client=client)
    with TestClient(app) as browser:
        response = browser.get(f"{prefix}/invite/{SECRET}")
        browser.get("/")  # the outer app's own page: the middleware's
    pages = sent(type="page")
    # One page call and one visitor: Flask's, whose route hides the key.
    assert [(m["name"], m["properties"]["path"]) for m in pages] == [
        ("invite", f"{prefix}/invite/REDACTED"),
        ("home", "/"),
    ]
    [cookie] = response.headers.get_list("set-cookie")
    assert cookie.startswith(f"ajs_anonymous_id={pages[0]['anonymousId']};")
    assert pages[1]["anonymousId"] == pages[0]["anonymousId"]
    assert SECRET not in str(pages)


def test_a_flask_app_on_a_host_route_tracks_its_own_requests(client: Client, sent: Sent) -> None:
    app = Starlette(
        routes=[
            Host("legacy.example.com", WSGIMiddleware(legacy_app(client))),
            Mount("/", routes=[Route("/", home, name="home")]),
        ]
    )
    with TestClient(SegmentMiddleware(app, client=client)) as browser:
        browser.get(f"http://legacy.example.com/invite/{SECRET}")
        browser.get("http://www.example.com/")
    pages = sent(type="page")
    assert [(m["name"], m["properties"]["url"]) for m in pages] == [
        ("invite", "http://legacy.example.com/invite/REDACTED"),
        ("home", "http://www.example.com/"),
    ]


def test_a_mounted_flask_app_without_segment_flask_is_tracked_by_the_middleware(
    client: Client, sent: Sent
) -> None:
    app = Starlette(routes=[Mount("/legacy", WSGIMiddleware(legacy_app(None)))])
    with TestClient(SegmentMiddleware(app, client=client)) as browser:
        response = browser.get("/legacy/about")
    [page] = sent(type="page")
    assert page["properties"]["path"] == "/legacy/about"
    assert response.headers["set-cookie"].startswith(f"ajs_anonymous_id={page['anonymousId']};")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_mounted_django_project_with_its_middleware_tracks_its_own_requests(
    segment_collector: CollectorHandle, kind: str
) -> None:
    # In a subprocess: Django's settings are the process's.
    run = subprocess.run(
        [sys.executable, "-m", "tests.asgi.mounted_django", kind],
        cwd=ROOT,
        env={**os.environ, "SEGMENT_HOST": segment_collector.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    pages = [e["message"] for e in segment_collector.events(type="page")]
    assert [(m["name"], m["properties"]["path"]) for m in pages] == [
        ("reset", "/django/reset/REDACTED/"),
        ("home", "/"),
    ]
    [cookie] = run.stdout.splitlines()
    assert cookie.startswith(f"ajs_anonymous_id={pages[0]['anonymousId']};")
    assert pages[1]["anonymousId"] == pages[0]["anonymousId"]


def test_the_lifespan_shutdown_flushes_the_client_of_a_mounted_app_that_tracks_itself(
    client: Client, segment_collector: CollectorHandle
) -> None:
    # The mounted app's client holds its events until told (no size or time trigger):
    # only the outer app's lifespan shutdown can deliver them before the server ends.
    holding = Client("test-key", host=segment_collector.url, flush_at=1000, flush_interval=3600)
    try:
        app = Starlette(routes=[Mount("/legacy", WSGIMiddleware(legacy_app(holding)))])
        with TestClient(SegmentMiddleware(app, client=client)) as browser:
            browser.get("/legacy/about")
            assert holding.stats()["pending"] == 1
        assert holding.stats()["pending"] == 0
        [page] = segment_collector.events(type="page")
        assert page["message"]["properties"]["path"] == "/legacy/about"
    finally:
        holding.shutdown(timeout=5)


def test_through_other_middleware_and_an_included_router_the_mount_is_still_found(
    client: Client, sent: Sent
) -> None:
    # The middleware wraps CORS middleware, not the app (no router of its own), and
    # FastAPI matches an included router's mount as a copy of it.
    router = APIRouter()
    router.mount("/legacy", WSGIMiddleware(legacy_app(client)))
    app = FastAPI()
    app.include_router(router, prefix="/v1")
    wrapped = SegmentMiddleware(CORSMiddleware(app, allow_origins=["*"]), client=client)
    with TestClient(wrapped) as browser:
        response = browser.get(f"/v1/legacy/invite/{SECRET}")
    if response.status_code == 404:
        pytest.skip("this FastAPI's include_router() leaves mounts out")
    [page] = sent(type="page")
    assert page["properties"]["path"] == "/v1/legacy/invite/REDACTED"
    [cookie] = response.headers.get_list("set-cookie")
    assert cookie.startswith(f"ajs_anonymous_id={page['anonymousId']};")


def test_through_other_middleware_the_mount_is_still_found(client: Client, sent: Sent) -> None:
    # The middleware wraps CORS middleware, not the app: it has no router of its own.
    app = Starlette(routes=[Mount("/legacy", WSGIMiddleware(legacy_app(client)))])
    wrapped = SegmentMiddleware(CORSMiddleware(app, allow_origins=["*"]), client=client)
    with TestClient(wrapped) as browser:
        browser.get(f"/legacy/invite/{SECRET}")
    [page] = sent(type="page")
    assert page["properties"]["path"] == "/legacy/invite/REDACTED"
