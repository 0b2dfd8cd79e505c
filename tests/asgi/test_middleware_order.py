"""Whatever their order: middleware inside ``SegmentMiddleware`` (sessions, HTTPS
redirects) run after it has started the request, and it still gets their answers."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.httpsredirect import HTTPSRedirectMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from segment_asgi import SegmentMiddleware
from segment_core import Client
from tests.asgi.conftest import Sent, TestClient


async def accept_cookies(request: Request) -> Response:
    request.session["consent"] = True
    return HTMLResponse("<p>thanks</p>")


async def log_in(request: Request) -> Response:
    request.session["user"] = "ann"
    return RedirectResponse("/home", status_code=303)


async def home(request: Request) -> Response:
    return HTMLResponse("<p>home</p>")


ROUTES = [
    Route("/accept-cookies", accept_cookies),
    Route("/login", log_in, methods=["POST"]),
    Route("/home", home, name="home"),
]


def session_consent(request: Request) -> bool:
    return request.session.get("consent") is True


def session_user(request: Request) -> str | None:
    user: str | None = request.session.get("user")
    return user


async def async_session_user(request: Request) -> str | None:
    return session_user(request)


def outermost(client: Client, *inner: Middleware, **options: Any) -> Starlette:
    """An app with ``SegmentMiddleware`` outside ``inner`` (added last with
    ``add_middleware``, which puts each one outside those added before)."""
    return Starlette(
        routes=ROUTES, middleware=[Middleware(SegmentMiddleware, client=client, **options), *inner]
    )


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("segment_first", [True, False], ids=["outermost", "innermost"])
def test_a_consent_stored_in_the_session_counts_in_either_order(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture, segment_first: bool
) -> None:
    segment = Middleware(SegmentMiddleware, client=client, consent=session_consent)
    session = Middleware(SessionMiddleware, secret_key="s")
    middleware = [segment, session] if segment_first else [session, segment]
    with TestClient(Starlette(routes=ROUTES, middleware=middleware)) as browser:
        browser.get("/accept-cookies")
        for _ in range(3):
            browser.get("/home")
        assert browser.cookies.get("ajs_anonymous_id")
    homes = [m for m in sent(type="page") if m["name"] == "home"]
    assert len(homes) == 3
    assert len({m["anonymousId"] for m in homes}) == 1  # one visitor, kept by its cookie
    assert errors(caplog) == []


def test_a_consent_hook_that_fails_once_the_app_ran_is_logged_once_per_request(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: Request) -> bool:
        raise RuntimeError("bug in a user hook")

    with TestClient(outermost(client, consent=broken)) as browser:
        assert "set-cookie" not in browser.get("/home").headers
        assert "set-cookie" not in browser.get("/home").headers
    assert sent() == []
    assert errors(caplog) == ["segment: the consent hook raised; going on with False"] * 2


@pytest.mark.parametrize("hook", [session_user, async_session_user], ids=["sync", "async"])
def test_a_user_id_hook_reading_the_session_from_outside_it(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture, hook: Any
) -> None:
    app = outermost(client, Middleware(SessionMiddleware, secret_key="s"), user_id=hook)
    with TestClient(app) as browser:
        browser.get("/home")
        browser.post("/login", follow_redirects=False)
        browser.cookies.delete("ajs_anonymous_id")  # a new visitor, who has a session
        browser.get("/home")
    assert [m.get("userId") for m in sent(type="page")] == [None, "ann"]
    assert errors(caplog) == []


def test_a_redirect_to_https_sets_no_cookie_the_https_page_sets_a_secure_one(
    client: Client,
) -> None:
    app = outermost(client, Middleware(HTTPSRedirectMiddleware))
    with TestClient(app, base_url="https://www.example.com") as browser:
        redirect = browser.get("http://www.example.com/home", follow_redirects=False)
        assert redirect.status_code == 307
        assert redirect.headers["location"] == "https://www.example.com/home"
        assert "set-cookie" not in redirect.headers
        page = browser.get("https://www.example.com/home")
    assert "ajs_anonymous_id=" in page.headers["set-cookie"]
    assert "secure" in page.headers["set-cookie"].lower()


def test_other_redirects_keep_the_visitor_s_cookie(client: Client, sent: Sent) -> None:
    with TestClient(outermost(client, Middleware(SessionMiddleware, secret_key="s"))) as browser:
        login = browser.post("/login", follow_redirects=False)  # on plain http
        assert login.status_code == 303
        assert "ajs_anonymous_id=" in login.headers["set-cookie"]


async def tracked_home(request: Request) -> Response:
    request.state.analytics.track("Home Viewed")
    return HTMLResponse("<p>home</p>")


def test_an_async_user_id_hook_failing_as_requests_start_is_told_once(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    """Its first answer is the view's calls' user: when it raised for want of the
    session a middleware inside sets up, and named the user later, the view's calls
    went without the user; the app is told how to put it right."""
    app = outermost(
        client, Middleware(SessionMiddleware, secret_key="s"), user_id=async_session_user
    )
    app.add_route("/tracked", tracked_home)
    with TestClient(app) as browser:
        browser.post("/login", follow_redirects=False)
        browser.get("/tracked")
        browser.get("/tracked")
    events = [(m["type"], m.get("userId")) for m in sent() if m["type"] in ("track", "page")]
    assert events == [("track", None), ("page", "ann")] * 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "segment: the async user_id hook raised as the request started (AssertionError: "
    )
    assert "put SegmentMiddleware inside it" in warnings[0]
