"""The middleware in a Starlette app, through Starlette's test client and the real collector."""

from __future__ import annotations

import functools
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from segment_asgi import SegmentMiddleware, segment_snippet
from segment_core import Client
from tests.asgi.apps import ROUTES, HeaderAuth, ViewBug, starlette_app
from tests.asgi.conftest import Sent, TestClient, from_peer
from tests.cycles import left_to_the_collector
from tests.web.snippets import snippet_settings

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
UUID_VALUE = "8d2b4f34-1c4e-4b6e-9a3f-0c6d9f1e2a7b"

Browse = Callable[..., TestClient]


@pytest.fixture
def browse(client: Client) -> Iterator[Browse]:
    """``browse(**options)``: a test client on the app with those middleware options."""
    opened: list[TestClient] = []

    def browse(
        *, peer: str = "127.0.0.1", auth: bool = False, raise_errors: bool = True, **options: Any
    ) -> TestClient:
        app = starlette_app(client, auth=auth, **options)
        test_client = TestClient(from_peer(app, peer), raise_server_exceptions=raise_errors)
        opened.append(test_client)
        return test_client

    yield browse
    for test_client in opened:
        test_client.close()


@pytest.fixture
def browser(browse: Browse) -> TestClient:
    return browse()


def cookie_attributes(set_cookie: str) -> dict[str, str]:
    parts = [part.strip() for part in set_cookie.split(";")]
    attributes = {"": parts[0]}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        attributes[name.lower()] = value
    return attributes


def test_page_call_per_request(browser: TestClient, sent: Sent) -> None:
    response = browser.get(
        "/products/42/?utm_source=news&utm_campaign=spring+sale",
        headers={
            "user-agent": CHROME,
            "accept-language": "de-CH,de;q=0.9",
            "referer": "https://search.example/?q=shoes",
        },
    )
    assert response.status_code == 200
    [page] = sent()
    assert page["type"] == "page"
    assert page["name"] == "product-detail"
    assert uuid.UUID(page["anonymousId"])
    assert "userId" not in page
    search = "?utm_source=news&utm_campaign=spring+sale"
    assert page["properties"] == {
        "name": "product-detail",
        "path": "/products/42/",
        "referrer": "https://search.example/?q=shoes",
        "search": search,
        "url": f"http://testserver/products/42/{search}",
    }
    context = page["context"]
    assert context["ip"] == "127.0.0.1"
    assert context["userAgent"] == CHROME
    assert context["locale"] == "de-CH"
    assert context["campaign"] == {"source": "news", "name": "spring sale"}
    assert context["page"]["url"] == page["properties"]["url"]
    assert context["library"]["name"] == "segment-web"


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/", "home"),
        ("/shop/cart/", "cart"),  # behind a Mount
        ("/sync/", "sync_page"),  # Starlette names a route after its endpoint
    ],
)
def test_page_names(browser: TestClient, sent: Sent, url: str, name: str) -> None:
    assert browser.get(url).status_code == 200
    assert [m["name"] for m in sent()] == [name]


def test_page_name_by_route_template(browse: Browse, sent: Sent) -> None:
    browser = browse(page_name="template")
    for url in ("/products/1/", "/shop/cart/", "/"):
        browser.get(url)
    assert [m["name"] for m in sent()] == ["/products/{pk:int}/", "/shop/cart/", "/"]


def test_page_name_by_path(browse: Browse, sent: Sent) -> None:
    browse(page_name="path").get("/products/1/?a=b")
    assert [m["name"] for m in sent()] == ["/products/1/"]


def test_a_mounted_app_is_named_after_its_own_routes(client: Client, sent: Sent) -> None:
    """The middleware around an app mounted in another: never the outer app's route.

    (Where Starlette records no matched route, the outer router's routes must not
    be matched again with the mounted app's path.)
    """

    async def outer_home(request: Request) -> Response:
        return HTMLResponse("outer")

    async def inner_home(request: Request) -> Response:
        return HTMLResponse("inner")

    inner = Starlette(routes=[Route("/", inner_home, name="inner_home")])
    outer = Starlette(
        routes=[
            Route("/", outer_home, name="outer_home"),
            Mount("/sub", app=SegmentMiddleware(inner, client=client)),
        ]
    )
    with TestClient(outer) as browser:
        assert browser.get("/sub/").text == "inner"
        assert browser.get("/").text == "outer"
    assert [m["name"] for m in sent()] == ["inner_home"]


@pytest.mark.parametrize(
    "url", ["/healthz", "/static/app.css", "/favicon.ico", "/missing/", "/redirect/"]
)
def test_no_page_call(browser: TestClient, sent: Sent, url: str) -> None:
    browser.get(url, follow_redirects=False)
    assert sent() == []


def test_excluded_paths_option(browse: Browse, sent: Sent) -> None:
    browser = browse(exclude_paths=[r"^/products/"])
    browser.get("/products/1/")
    browser.get("/")
    assert [m["name"] for m in sent()] == ["home"]


def test_only_get_requests(browser: TestClient, sent: Sent) -> None:
    assert browser.post("/").status_code == 405
    assert browser.head("/").status_code == 200
    assert sent() == []


def test_redirect_counts_only_the_page_it_leads_to(browser: TestClient, sent: Sent) -> None:
    response = browser.get("/redirect/")
    assert [r.status_code for r in response.history] == [302]
    assert [m["name"] for m in sent()] == ["home"]


def test_bots_get_no_page_call_and_no_cookie(browser: TestClient, sent: Sent) -> None:
    response = browser.get("/", headers={"user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"})
    assert "set-cookie" not in response.headers
    assert sent() == []


def test_a_view_that_raises(browser: TestClient, sent: Sent) -> None:
    with pytest.raises(ViewBug, match="the view failed"):
        browser.get("/boom/")
    assert sent() == []


def test_a_view_that_raises_answered_500(browse: Browse, sent: Sent) -> None:
    browser = browse(raise_errors=False)
    assert browser.get("/boom/").status_code == 500
    assert browser.get("/missing/").status_code == 404
    assert sent() == []


# -- identity -------------------------------------------------------------------------


def test_cookie_set_once_and_reused(browser: TestClient, sent: Sent) -> None:
    first = browser.get("/")
    attributes = cookie_attributes(first.headers["set-cookie"])
    assert attributes == {
        "": f"ajs_anonymous_id={first.cookies['ajs_anonymous_id']}",
        "max-age": str(365 * 24 * 3600),
        "path": "/",
        "samesite": "Lax",
    }
    second = browser.get("/products/1/")
    assert "set-cookie" not in second.headers
    pages = sent()
    value = first.cookies["ajs_anonymous_id"]
    assert [p["anonymousId"] for p in pages] == [value, value]


def test_secure_cookie_on_https(browse: Browse) -> None:
    browser = browse(cookie_domain=".shop.example", cookie_format="quoted")
    response = browser.get("https://shop.example/")
    attributes = cookie_attributes(response.headers["set-cookie"])
    assert "secure" in attributes and attributes["domain"] == ".shop.example"
    value = attributes[""].partition("=")[2]
    assert value.startswith("%22") and value.endswith("%22")


@pytest.mark.parametrize("value", [f"%22{UUID_VALUE}%22", UUID_VALUE])
def test_classic_and_raw_cookies(browser: TestClient, sent: Sent, value: str) -> None:
    browser.cookies.set("ajs_anonymous_id", value)
    browser.cookies.set("ajs_user_id", "%22user-5%22")
    response = browser.get("/")
    assert "set-cookie" not in response.headers
    [page] = sent()
    assert page["anonymousId"] == UUID_VALUE
    assert "userId" not in page  # the browser-written ajs_user_id decides nothing


def test_the_user_cookie_counts_when_the_app_opts_in(browse: Browse, sent: Sent) -> None:
    browser = browse(user_id_from_cookie=True)
    browser.cookies.set("ajs_anonymous_id", UUID_VALUE)
    browser.cookies.set("ajs_user_id", "%22user-5%22")
    browser.get("/")
    assert sent()[0]["userId"] == "user-5"


@pytest.mark.parametrize("set_cookie", [True, False])
def test_a_cookie_set_by_the_view_is_left_alone(
    browse: Browse, sent: Sent, set_cookie: bool
) -> None:
    # With set_cookie off too: the app that writes the id cookie itself.
    response = browse(set_cookie=set_cookie).get("/own-cookie/")
    assert response.headers.get_list("set-cookie") == [
        "ajs_anonymous_id=chosen-by-the-view; Path=/; SameSite=lax"
    ]
    # The id the browser keeps is the page call's.
    assert [m["anonymousId"] for m in sent(type="page")] == ["chosen-by-the-view"]


def test_the_authenticated_user(browse: Browse, sent: Sent) -> None:
    browser = browse(auth=True)
    assert browser.get("/whoami/", headers={"x-user": "ann"}).json()["user_id"] == "ann"
    browser.get("/")
    # /whoami/ answers JSON: not a page view.
    assert [(m["name"], m.get("userId")) for m in sent()] == [("home", None)]


def test_an_authentication_middleware_inside_is_seen_too(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    middleware = [
        Middleware(SegmentMiddleware, client=client),
        Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
    ]
    app = Starlette(routes=ROUTES, middleware=middleware)
    with caplog.at_level(logging.WARNING, logger="segment.asgi"), TestClient(app) as browser:
        browser.get("/", headers={"x-user": "ann"})
        browser.get("/", headers={"x-user": "ann"})
    assert caplog.text == ""
    assert [m.get("userId") for m in sent()] == ["ann", "ann"]


def test_a_user_name_no_call_could_send_is_logged_and_no_user(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    # HTTP Basic's user name (Starlette's documented backend) is whatever the header says.
    browser = TestClient(starlette_app(client, auth=True))
    with caplog.at_level(logging.ERROR, logger="segment.core.web"):
        answer = browser.get("/track/", headers={"x-user": "u" * 40_000})
    assert answer.status_code == 200
    assert [(m["type"], m.get("userId")) for m in sent()] == [("track", None), ("page", None)]
    assert "user_id: 40,000 characters long, more than the 1,024 of a user id" in caplog.text


class DjangoUser:
    """What Channels' ``AuthMiddlewareStack`` puts in ``scope["user"]``: Django's user,
    which has no ``identity``."""

    is_authenticated = True

    def __init__(self, pk: int) -> None:
        self.pk = pk


def test_a_django_user_in_the_scope_is_named_by_its_primary_key(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    def with_user(app: Any) -> Any:
        async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await app({**scope, "user": DjangoUser(42)}, receive, send)

        return asgi

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(with_user), Middleware(SegmentMiddleware, client=client)],
    )
    with caplog.at_level(logging.ERROR), TestClient(app) as browser:
        browser.get("/")
    assert [m.get("userId") for m in sent()] == ["42"]
    assert caplog.records == []


class Column:
    """A query's column (a model's class attribute where a row's value was meant):
    comparing it makes a clause that is no bool."""

    def __eq__(self, other: object) -> Any:
        raise TypeError("Boolean value of this clause is not defined")

    __hash__ = object.__hash__


class ColumnUser:
    """A user whose primary key is a query's column."""

    is_authenticated = True
    pk = Column()


def test_a_user_in_the_scope_whose_id_cannot_be_read_is_logged_and_the_page_call_made(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    def with_user(app: Any) -> Any:
        async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await app({**scope, "user": ColumnUser()}, receive, send)

        return asgi

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(with_user), Middleware(SegmentMiddleware, client=client)],
    )
    with caplog.at_level(logging.ERROR), TestClient(app) as browser:
        assert "ajs_anonymous_id" in browser.get("/").headers["set-cookie"]
    assert [(m["type"], m.get("userId")) for m in sent()] == [("page", None)]
    assert "could not read scope['user']" in caplog.text


def test_user_id_hook(browse: Browse, sent: Sent) -> None:
    browser = browse(auth=True, user_id=lambda request: f"user:{request.user.display_name}")
    browser.get("/", headers={"x-user": "ann"})
    assert sent()[0]["userId"] == "user:ann"


def test_async_user_id_hook(browse: Browse, sent: Sent) -> None:
    async def user_id(request: Any) -> str:
        return f"async:{request.headers['x-account']}"

    browse(user_id=user_id).get("/", headers={"x-account": "7"})
    assert sent()[0]["userId"] == "async:7"


def test_a_partial_of_an_object_whose_call_is_async_is_awaited_as_user_id_hook(
    browse: Browse, sent: Sent
) -> None:
    class UserId:
        async def __call__(self, prefix: str, request: Any) -> str:
            return f"{prefix}:{request.headers['x-account']}"

    browse(user_id=functools.partial(UserId(), "async")).get("/", headers={"x-account": "8"})
    assert sent()[0]["userId"] == "async:8"


def test_an_async_user_id_hook_is_asked_again_once_the_app_has_run(
    client: Client, sent: Sent
) -> None:
    async def user_id(request: Any) -> str | None:
        session = request.scope.get("session")  # set by a middleware inside Segment's
        return None if session is None else session.get("uid")

    async def login(request: Request) -> Response:
        request.session["uid"] = "u-7"
        request.state.analytics.track("Signing In")
        return HTMLResponse("<p>in</p>")

    async def logout(request: Request) -> Response:
        request.session.clear()
        return HTMLResponse("<p>out</p>")

    app = Starlette(routes=[Route("/login", login), Route("/logout", logout)])
    app.add_middleware(SessionMiddleware, secret_key="not-a-secret")
    app.add_middleware(SegmentMiddleware, client=client, user_id=user_id)
    with TestClient(app) as browser:
        browser.get("/login")
        browser.get("/logout")
    signing_in, login_page, logout_page = sent()
    assert "userId" not in signing_in  # the hook's first answer, before the session
    assert login_page["userId"] == "u-7"
    assert "userId" not in logout_page
    assert len({m["anonymousId"] for m in (signing_in, login_page, logout_page)}) == 1


def test_a_logout_ends_the_user_for_the_rest_of_the_request(client: Client, sent: Sent) -> None:
    # scope["user"] names the user until the request ends: the view says it logged out.
    async def logout(request: Request) -> Response:
        request.state.analytics.track("Signing Out")
        request.state.analytics.logout()
        request.state.analytics.track("Signed Out")
        return HTMLResponse(f"<head>{segment_snippet(request)}</head><p>bye</p>")

    app = Starlette(
        routes=[Route("/logout", logout)],
        middleware=[
            Middleware(SegmentMiddleware, client=client, browser_write_key="website-key"),
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
        ],
    )
    with TestClient(app) as browser:
        browser.cookies.set("ajs_anonymous_id", UUID_VALUE)
        response = browser.get("/logout", headers={"x-user": "ann"})
    assert snippet_settings(response.text)["userId"] is None
    signing_out, signed_out, page = sent()
    assert signing_out["userId"] == "ann"
    assert "userId" not in signed_out and "userId" not in page
    assert {m["anonymousId"] for m in (signing_out, signed_out, page)} == {UUID_VALUE}


def test_a_logout_expires_the_user_cookie_analytics_js_keeps(client: Client) -> None:
    # A logout answered with a redirect: the page it leads to runs no
    # analytics.reset(), and must name no user in the browser either.
    async def logout(request: Request) -> Response:
        request.state.analytics.logout()
        return RedirectResponse("/", status_code=303)

    app = Starlette(
        routes=[Route("/logout", logout)],
        middleware=[
            Middleware(SegmentMiddleware, client=client),
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
        ],
    )
    with TestClient(app, follow_redirects=False) as browser:
        browser.cookies.set("ajs_anonymous_id", UUID_VALUE)
        browser.cookies.set("ajs_user_id", "ann")
        response = browser.get("/logout", headers={"x-user": "ann"})
        assert response.status_code == 303
        assert "ajs_user_id=; Max-Age=0; Path=/; SameSite=Lax" in response.headers.get_list(
            "set-cookie"
        )
        assert response.headers["cache-control"] == "private"
        browser.cookies.delete("ajs_user_id")  # none to expire: none written
        response = browser.get("/logout", headers={"x-user": "ann"})
        assert "set-cookie" not in response.headers


def test_excluded_paths_do_not_look_up_the_user(browse: Browse, sent: Sent) -> None:
    looked_up: list[str] = []

    async def user_id(request: Any) -> None:
        looked_up.append(request.url.path)

    browser = browse(user_id=user_id)
    browser.get("/healthz")
    browser.get("/static/app.css")
    assert looked_up == []
    browser.get("/")
    assert looked_up == ["/", "/"]  # as the request starts, and as the response starts


# -- context ------------------------------------------------------------------------


def test_forwarded_for_ignored_unless_proxies_are_trusted(browser: TestClient, sent: Sent) -> None:
    browser.get("/", headers={"x-forwarded-for": "198.51.100.4"})
    assert sent()[0]["context"]["ip"] == "127.0.0.1"


@pytest.mark.parametrize("trusted", [1, ["127.0.0.0/8"]])
def test_trusted_proxies(browse: Browse, sent: Sent, trusted: object) -> None:
    browse(trusted_proxies=trusted).get("/", headers={"x-forwarded-for": "6.6.6.6, 198.51.100.4"})
    assert sent()[0]["context"]["ip"] == "198.51.100.4"


def test_anonymize_and_no_ip(browse: Browse, sent: Sent) -> None:
    browse(peer="198.51.100.4", anonymize_ip=True).get("/")
    browse(peer="198.51.100.4", collect_ip=False).get("/")
    assert [m["context"]["ip"] for m in sent()] == ["198.51.100.0", "0.0.0.0"]


def test_secrets_are_redacted(browser: TestClient, sent: Sent) -> None:
    browser.get(
        "/?token=s3cret&q=1", headers={"referer": "https://a.example/reset?password=hunter2"}
    )
    [page] = sent()
    assert page["properties"]["url"] == "http://testserver/?token=REDACTED&q=1"
    assert page["properties"]["search"] == "?token=REDACTED&q=1"
    assert page["properties"]["referrer"] == "https://a.example/reset?password=REDACTED"
    assert "s3cret" not in str(page) and "hunter2" not in str(page)


# -- privacy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "headers"),
    [
        ({}, {"sec-gpc": "1"}),
        ({"honor_dnt": True}, {"dnt": "1"}),
        ({"consent": lambda request: request.cookies.get("consent") == "yes"}, {}),
    ],
)
def test_privacy_no_page_call_no_cookie(
    browse: Browse, sent: Sent, options: dict[str, Any], headers: dict[str, str]
) -> None:
    response = browse(**options).get("/track/", headers=headers)
    assert "set-cookie" not in response.headers
    # The view's own call is the app's decision: it is sent.
    assert [m["type"] for m in sent()] == ["track"]


def test_consent_given(browse: Browse, sent: Sent) -> None:
    browser = browse(consent=lambda request: request.cookies.get("consent") == "yes")
    browser.cookies.set("consent", "yes")
    assert "ajs_anonymous_id" in browser.get("/").cookies
    assert len(sent()) == 1


# -- explicit calls -------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/track/", "/sync-track/"])
def test_track_in_async_and_sync_endpoints(browser: TestClient, sent: Sent, url: str) -> None:
    browser.get(url, headers={"user-agent": CHROME})
    track, page = sent()
    assert track["event"] == "Clicked Buy" and track["properties"] == {"sku": "A1"}
    assert track["anonymousId"] == page["anonymousId"]
    assert track["context"]["userAgent"] == CHROME
    assert track["context"]["page"]["path"] == url


def test_identify_then_track_in_one_request(browser: TestClient, sent: Sent) -> None:
    browser.get("/identify/")
    identify, track, page = sent()
    assert identify["type"] == "identify" and identify["traits"] == {"plan": "pro"}
    assert identify["userId"] == track["userId"] == page["userId"] == "u-77"


def test_background_tasks_still_run(browser: TestClient, sent: Sent) -> None:
    browser.get("/background/")
    page, track = sent()
    assert (page["type"], track["event"]) == ("page", "Sent Receipt")
    assert track["anonymousId"] == page["anonymousId"]


def test_streaming_response(browser: TestClient, sent: Sent) -> None:
    assert browser.get("/stream/").text == "one two"
    [page] = sent()
    assert page["name"] == "stream"


# -- hooks ----------------------------------------------------------------------------


def broken(*args: object) -> bool:
    raise RuntimeError("bug in a user hook")


@pytest.mark.parametrize("option", ["page_filter", "page_properties", "page_name", "user_id"])
def test_a_bug_in_a_user_hook(
    browse: Browse, sent: Sent, option: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="segment.core.web"):
        response = browse(**{option: broken}).get("/")
    assert response.status_code == 200
    assert f"the {option} hook raised" in caplog.text
    assert len(sent()) == (0 if option == "page_filter" else 1)


def test_a_bug_in_an_async_user_id_hook(
    browse: Browse, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    async def user_id(request: Any) -> str:
        raise RuntimeError("bug in a user hook")

    with caplog.at_level(logging.ERROR, logger="segment.core.web"):
        assert browse(user_id=user_id).get("/").status_code == 200
    assert "the user_id hook raised" in caplog.text
    [page] = sent()
    assert "userId" not in page


def test_page_filter_and_properties_see_request_and_response(browse: Browse, sent: Sent) -> None:
    def page_filter(request: Any, response: Any) -> bool:
        return bool(request.url.path == "/" and response.status_code == 200)

    def page_properties(request: Any, response: Any) -> dict[str, Any]:
        return {"content_type": response.headers["content-type"]}

    browser = browse(page_filter=page_filter, page_properties=page_properties)
    browser.get("/products/1/")
    browser.get("/")
    [page] = sent()
    assert page["name"] == "home"
    assert page["properties"]["content_type"] == "text/html; charset=utf-8"


def test_page_calls_off_keeps_explicit_calls(browse: Browse, sent: Sent) -> None:
    browse(page_calls=False).get("/track/")
    assert [m["type"] for m in sent()] == ["track"]


@pytest.mark.parametrize("returning", [False, True])
def test_a_finished_request_is_freed_without_the_cycle_collector(
    browser: TestClient, sent: Sent, returning: bool
) -> None:
    if returning:
        browser.cookies.set("ajs_anonymous_id", UUID_VALUE)
    browser.get("/")  # warm-up: first-request work of the app
    assert left_to_the_collector(lambda: browser.get("/track/")) == []
    assert [m.get("event") or m["properties"]["path"] for m in sent()] == [
        "/",
        "Clicked Buy",
        "/track/",
    ]


def test_a_login_of_the_app_s_own_is_identified_by_the_middleware_s_options(
    client: Client, sent: Sent
) -> None:
    async def login(request: Request) -> Response:
        sent_identify = request.state.analytics.login(7, {"plan": "pro"})
        request.state.analytics.track("Signed In")
        return HTMLResponse(str(sent_identify))

    app = SegmentMiddleware(
        Starlette(routes=[Route("/login", login, methods=["POST"])]),
        client=client,
        identify_traits=lambda user: {"plan": user["plan"]},
    )
    with TestClient(app) as browser:
        assert browser.post("/login").text == "True"
        assert browser.post("/login", headers={"sec-gpc": "1"}).text == "False"
    [identify] = sent(type="identify")
    assert (identify["userId"], identify["traits"]) == ("7", {"plan": "pro"})
    # The view's own calls carry the user either way.
    assert [m["userId"] for m in sent(type="track")] == ["7", "7"]


@pytest.mark.parametrize("kind", ["plain", "async"])
def test_a_login_named_by_the_view_before_the_user_id_hook_can_read_it_is_identified(
    client: Client, sent: Sent, kind: str
) -> None:
    """FastAPI's way: a hook reading what a dependency stored in request.state, which
    a login view has still to store. Its login() names the user itself."""
    sessions: dict[str, str] = {}

    def plain(request: Request) -> str | None:
        return sessions.get(request.cookies.get("sid", ""))

    async def in_async(request: Request) -> str | None:
        return plain(request)

    async def login(request: Request) -> Response:
        request.state.analytics.login("u-42", {"plan": "pro"})
        request.state.analytics.track("Signed In")
        sessions["s1"] = "u-42"  # the session the response sets
        response = HTMLResponse("<p>welcome</p>")
        response.set_cookie("sid", "s1")
        return response

    async def home(request: Request) -> Response:
        request.state.analytics.track("Home Seen")
        return HTMLResponse("<p>home</p>")

    app = SegmentMiddleware(
        Starlette(routes=[Route("/login", login), Route("/", home)]),
        client=client,
        user_id=plain if kind == "plain" else in_async,
    )
    with TestClient(app) as browser:
        visitor = browser.get("/login").cookies["ajs_anonymous_id"]
        browser.get("/")
    [identify] = sent(type="identify")
    assert (identify["userId"], identify["anonymousId"]) == ("u-42", visitor)
    assert [(m["type"], m["userId"]) for m in sent() if m["type"] != "identify"] == [
        ("track", "u-42"),
        ("page", "u-42"),
        ("track", "u-42"),
        ("page", "u-42"),
    ]


@pytest.mark.parametrize("known_by", ["scope", "async hook", "async hook, then none"])
def test_a_login_over_the_user_signed_in_before_names_the_new_one_on_the_later_calls(
    client: Client, sent: Sent, known_by: str
) -> None:
    """An account switch: the scope's user, or what an async hook answers at the
    response's start (the user signed in before, or none), is not the user the view's
    login() named; the request's later calls and page call carry the login's."""

    async def from_header(request: Request) -> str | None:
        if getattr(request.state, "session_ended", False):
            return None
        return request.headers.get("x-user")

    async def login(request: Request) -> Response:
        request.state.session_ended = known_by.endswith("then none")
        request.state.analytics.login("bob")
        request.state.analytics.track("Signed In")
        return HTMLResponse("<p>welcome</p>")

    async def logout(request: Request) -> Response:
        request.state.analytics.login("bob")
        request.state.analytics.logout()
        request.state.analytics.track("Signed Out")
        return HTMLResponse("<p>bye</p>")

    routes = [Route("/login", login), Route("/logout", logout)]
    if known_by == "scope":
        middleware = [
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
            Middleware(SegmentMiddleware, client=client),
        ]
    else:
        middleware = [Middleware(SegmentMiddleware, client=client, user_id=from_header)]
    app = Starlette(routes=routes, middleware=middleware)
    with TestClient(app) as browser:
        browser.cookies.set("ajs_anonymous_id", UUID_VALUE)
        browser.get("/login", headers={"x-user": "ada"})
        browser.get("/logout", headers={"x-user": "ada"})
    assert [(m["type"], m.get("userId")) for m in sent()] == [
        ("identify", "bob"),
        ("track", "bob"),
        ("page", "bob"),
        ("identify", "bob"),
        ("track", None),
        ("page", None),
    ]


def test_a_login_once_the_response_started_sends_no_identify(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    """In a background task the request and its options are gone: the options could
    not be applied (identify_on_login, privacy), so no identify goes out."""
    from starlette.background import BackgroundTask

    async def login(request: Request) -> Response:
        def after() -> None:
            request.state.analytics.login(7)
            request.state.analytics.track("Signed In")

        return HTMLResponse("ok", background=BackgroundTask(after))

    app = SegmentMiddleware(
        Starlette(routes=[Route("/login", login, methods=["POST"])]),
        client=client,
        identify_on_login=False,
    )
    with TestClient(app) as browser:
        visitor = browser.post("/login").cookies["ajs_anonymous_id"]
    assert sent(type="identify") == []
    # The user, and the id the response's cookie gave the browser.
    assert [(m["userId"], m["anonymousId"]) for m in sent(type="track")] == [("7", visitor)]
    assert "sends no identify" in caplog.text


def test_a_lifespan_shutdown_does_not_wait_for_another_client_whose_host_is_down(
    client: Client, sent: Sent
) -> None:
    down = Client("k", host="http://127.0.0.1:9", shutdown_timeout=60)  # retrying
    try:
        assert down.track("u", "Held")[0]
        started = time.monotonic()
        with TestClient(SegmentMiddleware(Starlette(routes=ROUTES), client=client)) as http:
            http.get("/")
        # Far less than the other client's 60 s: it is not waited for once it fails.
        assert time.monotonic() - started < 30
    finally:
        down.shutdown(timeout=0)


def test_under_pytest_a_lifespan_shutdown_does_not_wait_for_another_client_s_silent_host(
    client: Client, sent: Sent
) -> None:
    # A host that takes the connection and never answers: no send fails for a minute.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        other = Client("k", host=host, shutdown_timeout=60, timeout=60)
        try:
            assert other.track("u", "Held")[0]
            started = time.monotonic()
            with TestClient(SegmentMiddleware(Starlette(routes=ROUTES), client=client)) as http:
                http.get("/")
            # The test's process goes on, and delivers at its exit: not waited for here.
            assert time.monotonic() - started < 30
            assert [m["type"] for m in sent()] == ["page"]
        finally:
            other.shutdown(timeout=0)


def test_a_client_s_before_send_runs_off_the_event_loop_for_the_page_call(
    segment_collector: Any,
) -> None:
    # A plain before_send may wait (a lookup in a sync store): the automatic page call
    # that runs it must hold up no other request of the event loop.
    threads: dict[str, int] = {}

    def before_send(message: dict[str, Any]) -> dict[str, Any]:
        threads.setdefault(message["type"], threading.get_ident())
        return message

    async def page(request: Request) -> HTMLResponse:
        threads["view"] = threading.get_ident()  # the event loop's thread
        return HTMLResponse("<p>page</p>")

    client = Client("key", host=segment_collector.url, before_send=before_send)
    app = Starlette(routes=[Route("/", page)])
    app.add_middleware(SegmentMiddleware, client=client)
    try:
        with TestClient(app) as browser:
            assert browser.get("/", headers={"Accept": "text/html"}).status_code == 200
    finally:
        client.shutdown(5)
    assert threads["page"] != threads["view"]
