"""Apps that route without Starlette's router: Litestar, and any app that writes
its route's template and parameters into the scope as Litestar does.

Their ``routes`` are no Starlette routes: never matched as if they were (no
error logged), while the template and parameters they leave in the scope name
the page and keep the route's secrets out of every call.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Mount

from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.scope import analytics
from tests.asgi.conftest import Sent, TestClient

SECRET = "s3cr3t-invite-token"
TEMPLATE = "/invite/{invite_token}"


class OwnRoute:
    """A route of a framework with a router of its own (no Starlette ``matches()``)."""

    def __init__(self, path_format: str) -> None:
        self.path_format = path_format


class SelfRoutingApp:
    """Routes as Litestar does: its routes in a list, the matched route's template
    and parameters written into the scope, itself as ``scope["app"]``, then the
    route's handler (``view``, which may be wrapped in middleware) called."""

    def __init__(self, view: Any) -> None:
        self.routes = [OwnRoute(TEMPLATE)]
        self.view = view

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["app"] = self
            root_path = scope.get("root_path", "")
            path = scope["path"].removeprefix(root_path)
            folder, _, token = path.rpartition("/")
            if folder == "/invite":
                scope["path_template"] = TEMPLATE
                scope["path_params"] = {"invite_token": token}
        await self.view(scope, receive, send)


async def invite(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        analytics().track("Invite Opened")
        await HTMLResponse("<p>invite</p>")(scope, receive, send)


def assert_no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("where", ["around the app", "inside the app"])
def test_the_route_in_the_scope_names_the_page_and_hides_its_secrets(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    # Inside: Litestar's app middleware, around each route's handler.
    app = (
        SegmentMiddleware(SelfRoutingApp(invite), client=client)
        if where == "around the app"
        else SelfRoutingApp(SegmentMiddleware(invite, client=client))
    )
    with caplog.at_level(logging.ERROR), TestClient(app) as browser:
        browser.get(
            f"/invite/{SECRET}", headers={"referer": f"http://testserver/invite/{SECRET}-2"}
        )
    [track, page] = sent()
    assert track["context"]["page"]["path"] == "/invite/REDACTED"
    assert (page["name"], page["properties"]["path"]) == (TEMPLATE, "/invite/REDACTED")
    assert_no_error_logged(caplog)


def test_its_routes_are_not_matched_as_starlette_s_by_a_call_made_before_it_routed(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    class TimedApp(SelfRoutingApp):
        """Makes a call before it routes (in a middleware of its own)."""

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                analytics().track("Request Started")
            await super().__call__(scope, receive, send)

    with (
        caplog.at_level(logging.ERROR),
        TestClient(SegmentMiddleware(TimedApp(invite), client=client)) as browser,
    ):
        browser.get(f"/invite/{SECRET}")
    assert_no_error_logged(caplog)
    assert [m["type"] for m in sent()] == ["track", "track", "page"]


def test_the_route_in_the_scope_of_a_mounted_app_is_below_its_mount(
    client: Client, sent: Sent
) -> None:
    app = Starlette(routes=[Mount("/community", SelfRoutingApp(invite))])
    with TestClient(SegmentMiddleware(app, client=client)) as browser:
        browser.get(f"/community/invite/{SECRET}")
    [track, page] = sent()
    assert track["context"]["page"]["path"] == "/community/invite/REDACTED"
    assert page["name"] == f"/community{TEMPLATE}"
    assert SECRET not in str([track, page])


def test_litestar(client: Client, sent: Sent, caplog: pytest.LogCaptureFixture) -> None:
    litestar = pytest.importorskip("litestar")
    define_middleware = pytest.importorskip("litestar.middleware").DefineMiddleware
    litestar_test_client = pytest.importorskip("litestar.testing").TestClient

    async def invite_view() -> str:
        analytics().track("Invite Opened")
        return "<p>invite</p>"

    invite_page = litestar.get("/invite/{invite_token:str}", media_type="text/html")(invite_view)
    apps = [
        litestar.Litestar(
            [invite_page], middleware=[define_middleware(SegmentMiddleware, client=client)]
        ),
        SegmentMiddleware(litestar.Litestar([invite_page]), client=client),
    ]
    with caplog.at_level(logging.ERROR):
        for app in apps:
            with litestar_test_client(app) as browser:
                assert browser.get(f"/invite/{SECRET}").status_code == 200
    messages = sent()
    assert [m["type"] for m in messages] == ["track", "page"] * 2
    assert {m["context"]["page"]["path"] for m in messages} == {"/invite/REDACTED"}
    assert {m["name"] for m in messages if m["type"] == "page"} == {TEMPLATE}
    assert_no_error_logged(caplog)
