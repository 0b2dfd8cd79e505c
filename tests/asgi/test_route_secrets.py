"""Secrets a route captures from the path never leave: in the page, a same-app
``Referer``, and calls made before the app routed. And a mounted app's paths are
its own: its assets are excluded below its mount point."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.convertors import Convertor, register_url_convertor
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Host, Mount, Route, Router, WebSocketRoute
from starlette.websockets import WebSocket

from segment_asgi import SegmentMiddleware
from segment_core import Client
from tests.asgi.conftest import Sent, TestClient

TOKEN = "s3cr3t-t0k3n"
# Lower case: Starlette 0.37, the lowest supported, routes no upper-case UUID (the
# case is tested with Flask, whose converter takes both).
UUID = "5f3b1c2d-1111-4222-8333-444455556666"


async def html(request: Request) -> HTMLResponse:
    return HTMLResponse("<p>page</p>")


def routes() -> list[Any]:
    return [
        Route("/", html),
        Route("/invite/{invite_token}", html),
        Route("/reset/{reset_token:uuid}", html),
    ]


def referrers_sent(sent: Sent) -> list[str]:
    return [m["properties"]["referrer"] for m in sent(type="page")]


def test_a_same_app_referrer_loses_its_secret_with_the_middleware_added(
    client: Client, sent: Sent
) -> None:
    app = Starlette(routes=routes())
    app.add_middleware(SegmentMiddleware, client=client)
    with TestClient(app) as browser:
        browser.get("/", headers={"referer": f"http://testserver/invite/{TOKEN}?a=1"})
        browser.get("/", headers={"referer": f"http://other.example/invite/{TOKEN}"})
    assert referrers_sent(sent) == [
        "http://testserver/invite/REDACTED?a=1",
        f"http://other.example/invite/{TOKEN}",  # another site's path: its own business
    ]


def test_a_same_app_referrer_behind_a_proxy_that_ends_tls_loses_its_secret(
    client: Client, sent: Sent
) -> None:
    # The proxy's hops are not trusted: the app sees http, the browser said https.
    app = Starlette(routes=routes())
    app.add_middleware(SegmentMiddleware, client=client)
    with TestClient(app, base_url="http://shop.example") as browser:
        browser.get("/", headers={"referer": f"https://shop.example/invite/{TOKEN}"})
        browser.get("/", headers={"referer": f"https://shop.example:443/invite/{TOKEN}"})
    assert referrers_sent(sent) == [
        "https://shop.example/invite/REDACTED",
        "https://shop.example:443/invite/REDACTED",
    ]


def test_a_same_app_referrer_into_a_mounted_app_loses_its_secret(
    client: Client, sent: Sent
) -> None:
    inner = Starlette(routes=routes())
    outer = Starlette(routes=[Route("/", html), Mount("/sub", inner)])
    with TestClient(SegmentMiddleware(outer, client=client)) as browser:
        browser.get("/", headers={"referer": f"http://testserver/sub/invite/{TOKEN}"})
        browser.get("/", headers={"referer": f"http://testserver/sub/reset/{UUID}"})
    assert referrers_sent(sent) == [
        "http://testserver/sub/invite/REDACTED",
        "http://testserver/sub/reset/REDACTED",
    ]


def test_the_middleware_of_a_mounted_app_matches_the_referrer_below_its_mount(
    client: Client, sent: Sent
) -> None:
    inner = Starlette(routes=routes())
    inner.add_middleware(SegmentMiddleware, client=client)
    outer = Starlette(routes=[Mount("/sub", inner)])
    with TestClient(outer) as browser:
        browser.get("/sub/", headers={"referer": f"http://testserver/sub/invite/{TOKEN}"})
        browser.get("/sub/", headers={"referer": f"http://testserver/invite/{TOKEN}"})
    assert referrers_sent(sent) == [
        "http://testserver/sub/invite/REDACTED",
        f"http://testserver/invite/{TOKEN}",  # not a page of the mounted app
    ]


def test_an_app_wrapped_in_other_middleware_keeps_its_route_secrets(
    client: Client, sent: Sent
) -> None:
    """SegmentMiddleware(GZipMiddleware(app)): the app's router is found inside the
    middleware around it, mounted or not."""
    wrapped = SegmentMiddleware(GZipMiddleware(Starlette(routes=routes())), client=client)
    inner = SegmentMiddleware(GZipMiddleware(Starlette(routes=routes())), client=client)
    mounted = Starlette(routes=[Route("/", html), Mount("/sub", inner)])
    for app, mount in ((wrapped, ""), (mounted, "/sub")):
        with TestClient(app) as browser:
            browser.get(
                f"{mount}/?next={mount}/invite/{TOKEN}",
                headers={"referer": f"http://testserver{mount}/invite/{TOKEN}"},
            )
    pages = [m["properties"] for m in sent(type="page")]
    assert [(page["url"], page["referrer"]) for page in pages] == [
        ("http://testserver/?next=/invite/REDACTED", "http://testserver/invite/REDACTED"),
        (
            "http://testserver/sub/?next=/sub/invite/REDACTED",
            "http://testserver/sub/invite/REDACTED",
        ),
    ]


def test_a_call_before_the_app_routed_carries_no_path_secret(client: Client, sent: Sent) -> None:
    async def audit(request: Request, call_next: RequestResponseEndpoint) -> Response:
        request.state.analytics.track("Request Seen")
        return await call_next(request)

    app = Starlette(routes=routes())
    app.add_middleware(BaseHTTPMiddleware, dispatch=audit)
    app.add_middleware(SegmentMiddleware, client=client)
    with TestClient(app) as browser:
        browser.get(f"/invite/{TOKEN}")
        browser.get(f"/reset/{UUID}")
    messages = sent()
    assert [m["type"] for m in messages] == ["track", "page", "track", "page"]
    for message in messages:
        assert message["context"]["page"]["path"] in ("/invite/REDACTED", "/reset/REDACTED")
    assert TOKEN not in str(messages) and UUID not in str(messages)


def test_the_secrets_of_a_host_route_are_hidden_by_the_host_they_are_on(
    client: Client, sent: Sent
) -> None:
    async def audit(request: Request, call_next: RequestResponseEndpoint) -> Response:
        request.state.analytics.track("Request Seen")  # before the app routed
        return await call_next(request)

    # On tenants' hosts /invite/... holds a secret; elsewhere the same path is a slug.
    tenant = Router(routes=routes())
    app = Starlette(
        routes=[Host("{tenant}.example.com", tenant), Route("/invite/{slug}", html), *routes()]
    )
    app.add_middleware(BaseHTTPMiddleware, dispatch=audit)
    app.add_middleware(SegmentMiddleware, client=client)
    acme = {"host": "acme.example.com"}
    with TestClient(app) as browser:
        browser.get("/", headers={**acme, "referer": f"http://acme.example.com/invite/{TOKEN}"})
        browser.get(f"/invite/{TOKEN}", headers=acme)
        browser.get("/", headers=acme, params={"next": f"/invite/{TOKEN}"})
        browser.get("/", headers={"referer": f"http://testserver/invite/{TOKEN}"})
    messages = sent()
    assert [m["type"] for m in messages] == ["track", "page"] * 4
    pages = [m["context"]["page"] for m in messages]
    assert [(p["url"], p["referrer"]) for p in pages[1::2]] == [
        ("http://acme.example.com/", "http://acme.example.com/invite/REDACTED"),
        ("http://acme.example.com/invite/REDACTED", ""),
        ("http://acme.example.com/?next=%2Finvite%2FREDACTED", ""),
        ("http://testserver/", f"http://testserver/invite/{TOKEN}"),  # a slug there
    ]
    assert pages[0::2] == pages[1::2]  # the calls made before routing hide the same
    assert TOKEN not in str(messages[:-2])


def test_the_assets_of_an_app_below_a_root_path_get_no_cookie(client: Client) -> None:
    app = Starlette(routes=[Route("/", html), Route("/static/app.css", html)])
    with TestClient(SegmentMiddleware(app, client=client), root_path="/api") as browser:
        assert "set-cookie" not in browser.get("/api/static/app.css").headers
        assert "set-cookie" in browser.get("/api/").headers


def test_a_websocket_s_route_secrets_are_hidden_too(client: Client, sent: Sent) -> None:
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        websocket.state.analytics.track("WS Opened")
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws/{token}", socket)])
    with (
        TestClient(SegmentMiddleware(app, client=client, websockets=True)) as browser,
        browser.websocket_connect(f"/ws/{TOKEN}"),
    ):
        pass
    [track] = sent()
    assert track["context"]["page"]["path"] == "/ws/REDACTED"
    assert TOKEN not in str(track)


def test_response_headers_given_as_any_iterable_are_kept(client: Client, sent: Sent) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = ((name, value) for name, value in [(b"content-type", b"text/html")])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<p>hi</p>"})

    browser = TestClient(SegmentMiddleware(app, client=client))  # no lifespan: a bare app
    response = browser.get("/", headers={"accept": "text/html"})
    assert response.headers["content-type"] == "text/html"
    assert "ajs_anonymous_id=" in response.headers["set-cookie"]
    assert [m["type"] for m in sent()] == ["page"]


class SignedConvertor(Convertor):
    """A signed token in the path, decoded to its payload (as itsdangerous does)."""

    regex = r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"

    def convert(self, value: str) -> Any:
        payload = value.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    def to_string(self, value: Any) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
        return f"{payload}.signature"


register_url_convertor("signed", SignedConvertor())
SIGNED = base64.urlsafe_b64encode(b'{"uid": 7}').decode().rstrip("=") + ".SIGNEDbyTHEapp"


def test_a_token_a_convertor_decodes_is_redacted_as_the_path_writes_it(
    client: Client, sent: Sent
) -> None:
    async def confirm(request: Request) -> HTMLResponse:
        request.state.analytics.track(
            "Email Confirmed", {"uid": request.path_params["token"]["uid"]}
        )
        return HTMLResponse("<p>confirmed</p>")

    app = Starlette(
        routes=[
            Route("/", html),
            Route("/confirm/{token:signed}", confirm),
            Mount("/team/{team}", routes=[Route("/join/{invite_token:signed}", html)]),
            # A mount's own value: read with the mount's pattern.
            Mount("/org/{org_token:signed}", routes=[Route("/members", html)]),
        ]
    )
    app.add_middleware(SegmentMiddleware, client=client)
    with TestClient(app) as browser:
        browser.get(f"/confirm/{SIGNED}")
        browser.get(f"/team/red/join/{SIGNED}")
        browser.get(f"/org/{SIGNED}/members")
        browser.get("/", headers={"referer": f"http://testserver/confirm/{SIGNED}"})
        browser.get("/", params={"next": f"/team/red/join/{SIGNED}"})
    messages = sent()
    assert [m.get("event") or m["type"] for m in messages] == ["Email Confirmed", *["page"] * 5]
    pages = [m["context"]["page"] for m in messages]
    assert pages[0] == pages[1]
    assert [p["path"] for p in pages[1:4]] == [
        "/confirm/REDACTED",
        "/team/red/join/REDACTED",
        "/org/REDACTED/members",
    ]
    assert pages[4]["referrer"] == "http://testserver/confirm/REDACTED"
    assert pages[5]["search"] == "?next=%2Fteam%2Fred%2Fjoin%2FREDACTED"
    assert "SIGNED" not in json.dumps(messages)


def test_the_app_s_own_url_in_a_value_loses_its_route_secret(client: Client, sent: Sent) -> None:
    async def invite(request: Request) -> Response:
        # A login wall, as FastAPI apps write it: back to the URL asked for, after.
        return RedirectResponse(f"/login?next={request.url}")

    app = Starlette(routes=[Route("/invite/{invite_token}", invite), Route("/login", html)])
    app.add_middleware(SegmentMiddleware, client=client)
    with TestClient(app) as browser:
        assert browser.get(f"/invite/{TOKEN}").url.path == "/login"
    [login] = sent(type="page")
    assert login["properties"]["search"] == "?next=http://testserver/invite/REDACTED"
    assert (
        login["properties"]["url"]
        == "http://testserver/login?next=http://testserver/invite/REDACTED"
    )


class InviteNumberConvertor(Convertor):
    """An invite's link text (base 36, a multiple of a large prime), read as its number."""

    regex = "[0-9a-z]+"

    def convert(self, value: str) -> int:
        return int(value, 36) // 1000003

    def to_string(self, value: int) -> str:
        number, digits = value * 1000003, ""
        while number:
            number, digit = divmod(number, 36)
            digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
        return digits


register_url_convertor("invite_number", InviteNumberConvertor())
INVITE_ONE = "lflv"  # invite number 1


def test_route_objects_are_read_from_the_path_through_mounts_and_hosts(
    client: Client, sent: Sent
) -> None:
    tenant = Starlette(routes=[Route("/about", html)])
    app = Starlette(
        routes=[
            Route("/", html),
            # Invite number 1: "/v1/" holds a "1", the path's own text is "lflv".
            Route("/v1/invite/{invite_key:invite_number}", html),
            Mount("/org/{org_key:invite_number}", routes=[Route("/home", html)]),
            Host("{tenant_key}.example.com", tenant),
        ]
    )
    with TestClient(SegmentMiddleware(app, client=client)) as browser:
        browser.get(f"/v1/invite/{INVITE_ONE}")
        browser.get(f"/org/{INVITE_ONE}/home")
        browser.get("/", headers={"referer": f"http://testserver/org/{INVITE_ONE}/home"})
        # A host's value: none of the path to hide.
        browser.get("/about", headers={"host": "acme.example.com"})
    pages = [m["context"]["page"] for m in sent(type="page")]
    assert [p["path"] for p in pages] == [
        "/v1/invite/REDACTED",
        "/org/REDACTED/home",
        "/",
        "/about",
    ]
    assert pages[2]["referrer"] == "http://testserver/org/REDACTED/home"
    assert INVITE_ONE not in json.dumps(pages)


def test_a_scheme_relative_or_backslashed_url_of_the_app_loses_its_route_secret(
    client: Client, sent: Sent
) -> None:
    app = Starlette(routes=[Route("/invite/{invite_token}", html), Route("/login", html)])
    with TestClient(SegmentMiddleware(app, client=client), base_url="http://shop.example") as b:
        b.get("/login", params={"next": f"//shop.example/invite/{TOKEN}"})
        b.get("/login", params={"next": f" https:\\\\shop.example.\\invite\\{TOKEN}"})
    searches = [m["properties"]["search"] for m in sent(type="page")]
    assert searches == [
        "?next=%2F%2Fshop.example%2Finvite%2FREDACTED",
        "?next=https%3A%5C%5Cshop.example.%2Finvite%2FREDACTED",
    ]


def test_a_routes_first_call_its_own_page_call_or_a_snapshot_carries_no_path_secret(
    client: Client, sent: Sent
) -> None:
    snapshots: list[dict[str, Any]] = []

    async def invitation(request: Request) -> HTMLResponse:
        if request.query_params.get("then") == "page":
            request.state.analytics.page("Invitation")
        snapshots.append(request.state.analytics.snapshot())  # a job enqueued
        return HTMLResponse("<p>invitation</p>")

    app = Starlette(routes=[Route("/invite/{invite_token}", invitation)])
    app.add_middleware(SegmentMiddleware, client=client)
    with TestClient(app) as browser:
        browser.get(f"/invite/{TOKEN}?then=page")
        browser.get(f"/invite/{TOKEN}?then=snapshot")
    own, automatic = sent(type="page")
    assert own["name"] == "Invitation"
    assert own["properties"]["url"] == "http://testserver/invite/REDACTED?then=page"
    assert automatic["properties"]["path"] == "/invite/REDACTED"
    assert [s["context"]["page"]["path"] for s in snapshots] == ["/invite/REDACTED"] * 2
    assert TOKEN not in json.dumps([sent(), snapshots])


def test_a_mounted_app_s_middleware_reading_the_context_leaves_its_routes_secrets_hidden(
    client: Client, sent: Sent
) -> None:
    # The mounted app has not matched its own route yet when its middleware reads.
    class AppInfo(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            request.state.analytics.context["app"] = {"name": "shop"}
            request.state.analytics.track("Shop Entered")  # a call, before its route
            return await call_next(request)

    async def invite(request: Request) -> HTMLResponse:
        request.state.analytics.track("Invite Opened")
        return HTMLResponse("<p>invite</p>")

    shop = Starlette(routes=[Route("/invite/{invite_token}", invite, name="invite")])
    shop.add_middleware(AppInfo)
    app = Starlette(routes=[Mount("/shop", shop)])
    app.add_middleware(SegmentMiddleware, client=client)
    with TestClient(app) as browser:
        browser.get(f"/shop/invite/{TOKEN}")
    entered, track, page = sent()
    assert track["context"]["app"] == {"name": "shop"}
    paths = [m["context"]["page"]["path"] for m in (entered, track, page)]
    assert paths == ["/shop/invite/REDACTED"] * 3
    assert page["name"] == "invite"
    assert TOKEN not in json.dumps(sent())


@pytest.mark.parametrize(
    "headers",
    [{"sec-gpc": "1"}, {"user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}],
    ids=["gpc", "bot"],
)
def test_a_background_task_of_a_visitor_without_a_page_call_hides_the_route_s_secrets(
    client: Client, sent: Sent, headers: dict[str, str]
) -> None:
    async def invite(request: Request) -> HTMLResponse:
        analytics = request.state.analytics
        return HTMLResponse("<p>invite</p>", background=BackgroundTask(analytics.track, "Mailed"))

    app = Starlette(routes=[Route("/invite/{invite_token}", invite)])
    app.add_middleware(SegmentMiddleware, client=client)
    with TestClient(app) as browser:
        browser.get(f"/invite/{TOKEN}", headers=headers)
    [mailed] = sent()
    assert mailed["context"]["page"]["path"] == "/invite/REDACTED"
