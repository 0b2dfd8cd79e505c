"""FastAPI apps as they are usually built: routers included, apps mounted, the app
wrapped from outside, the docs served by the app itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from starlette.middleware.gzip import GZipMiddleware
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


def accounts(converted: bool) -> APIRouter:
    router = APIRouter()
    if converted:

        @router.get("/acct/{account_key:int}/home", response_class=HTMLResponse)
        def number(account_key: int) -> str:
            return "<p>account</p>"

    else:

        @router.get("/acct/{account_key}/home", response_class=HTMLResponse)
        def text(account_key: str) -> str:
            return "<p>account</p>"

    return router


def secrets_kept(app: FastAPI, path: str, secret_at: str) -> list[tuple[str, str, str]]:
    """The path, ``?next=`` and referrer of a page at ``path`` that has ``secret_at``
    (its prefix: the account key at the end) in all three."""
    app.add_middleware(segment_asgi.SegmentMiddleware, client=Client("k", send=False))
    with TestClient(app) as http, capture() as events:
        headers = {**HTML, "Referer": f"http://testserver{secret_at}/000777/home?tab=2"}
        http.get(f"{path}?next={secret_at}/000888/home", headers=headers)
    assert "000777" not in json.dumps(events) and "000888" not in json.dumps(events)
    return [
        (page["properties"]["path"], page["properties"]["search"], page["properties"]["referrer"])
        for page in page_calls(events)
    ]


def test_a_route_of_a_router_included_with_a_prefix_keeps_its_path_but_its_secret() -> None:
    for converted in (True, False):
        app = FastAPI()
        app.include_router(accounts(converted), prefix="/v2")
        assert secrets_kept(app, "/v2/acct/000999/home", "/v2/acct") == [
            (
                "/v2/acct/REDACTED/home",
                "?next=/v2/acct/REDACTED/home",
                "http://testserver/v2/acct/REDACTED/home?tab=2",
            )
        ], converted


def test_a_route_included_twice_with_prefixes_that_have_parameters_keeps_its_path() -> None:
    teams = APIRouter()
    teams.include_router(accounts(converted=True), prefix="/v2")
    app = FastAPI()
    app.include_router(teams, prefix="/org/{org:int}")
    assert secrets_kept(app, "/org/07/v2/acct/000999/home", "/org/07/v2/acct") == [
        (
            "/org/07/v2/acct/REDACTED/home",
            "?next=/org/07/v2/acct/REDACTED/home",
            "http://testserver/org/07/v2/acct/REDACTED/home?tab=2",
        )
    ]


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


def test_allowed_hosts_given_to_the_trusted_host_middleware_by_position_count() -> None:
    probe = shop()
    probe.add_middleware(TrustedHostMiddleware, ["testserver"])
    try:
        probe.build_middleware_stack()
    except TypeError:  # an older Starlette passes them ahead of the app they wrap
        pytest.skip("this Starlette takes a middleware's options by keyword only")
    app = shop()
    app.add_middleware(TrustedHostMiddleware, ["testserver"])
    app.add_middleware(
        segment_asgi.SegmentMiddleware, client=Client("k", send=False), trusted_proxies=1
    )
    with TestClient(app) as http, capture() as events:
        headers = {**HTML, "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
        assert http.get("/welcome", headers=headers).status_code == 200
    [page] = page_calls(events)
    assert page["properties"]["url"] == "https://testserver/welcome"


def test_a_forwarded_host_is_checked_through_other_middleware_around_the_app() -> None:
    """SegmentMiddleware(GZipMiddleware(app)) reads the app's TrustedHostMiddleware."""
    app = shop()
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["testserver"])
    wrapped = segment_asgi.SegmentMiddleware(
        GZipMiddleware(app), client=Client("k", send=False), trusted_proxies=1
    )
    with TestClient(wrapped) as http, capture() as events:
        headers = {**HTML, "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
        assert http.get("/welcome", headers=headers).status_code == 200
    [page] = page_calls(events)
    assert page["properties"]["url"] == "https://testserver/welcome"


def test_the_docs_of_a_mounted_app_are_no_page_views() -> None:
    outer = shop()
    outer.mount("/v2", FastAPI())
    outer.mount("/t/{tenant}", FastAPI())
    outer.add_middleware(segment_asgi.SegmentMiddleware, client=Client("k", send=False))
    with TestClient(outer) as http, capture() as events:
        for path in ("/v2/docs", "/v2/redoc", "/v2/docs/oauth2-redirect", "/docs", "/t/acme/docs"):
            assert http.get(path, headers=HTML).status_code == 200
        http.get("/welcome", headers=HTML)
    assert [e["properties"]["path"] for e in page_calls(events)] == ["/welcome"]


@pytest.mark.filterwarnings("ignore:The `root_path` parameter is deprecated")
@pytest.mark.parametrize("wrapped", [True, False])
def test_an_app_s_own_root_path_is_read_as_the_app_reads_it(wrapped: bool) -> None:
    """``FastAPI(root_path="/api")`` writes it into the scope as it runs: wrapped from
    outside, the middleware reads it too (its docs, exclusions, URLs, Referers)."""
    app = shop()
    app.root_path = "/api"  # as FastAPI(root_path="/api") sets it
    client = Client("k", send=False)
    if wrapped:
        served: Any = segment_asgi.SegmentMiddleware(app, client=client)
    else:
        app.add_middleware(segment_asgi.SegmentMiddleware, client=client)
        served = app
    with TestClient(served) as http, capture() as events:
        for path in ("/api/docs", "/api/redoc", "/api/docs/oauth2-redirect", "/api/static/a"):
            http.get(path, headers=HTML)
        referer = "http://testserver/api/invite/SECRET1"
        http.get("/api/welcome", headers={**HTML, "Referer": referer})
    [page] = page_calls(events)
    assert page["properties"]["url"] == "http://testserver/api/welcome"
    assert page["properties"]["referrer"] == "http://testserver/api/invite/REDACTED"
    assert page["name"] == "welcome"


def test_a_trusted_host_middleware_outside_needs_allowed_hosts() -> None:
    """Outside the middleware, ``TrustedHostMiddleware`` is out of its sight:
    ``allowed_hosts`` says which forwarded hosts to believe."""
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    urls = []
    for allowed in (["shop.example", "*.shop.example"], ["*"]):
        app = shop()
        app.add_middleware(
            segment_asgi.SegmentMiddleware,
            client=Client("k", send=False),
            trusted_proxies=1,
            allowed_hosts=allowed,
        )
        outside = TrustedHostMiddleware(app, allowed_hosts=["testserver"])
        with TestClient(outside) as http, capture() as events:
            for host in ("evil.example", "eu.shop.example"):
                headers = {**HTML, **forwarded, "X-Forwarded-Host": host}
                assert http.get("/welcome", headers=headers).status_code == 200
        urls.append([page["properties"]["url"] for page in page_calls(events)])
    assert urls == [
        ["https://testserver/welcome", "https://eu.shop.example/welcome"],
        ["https://evil.example/welcome", "https://eu.shop.example/welcome"],
    ]


def self_hosted_docs(**settings: Any) -> FastAPI:
    """FastAPI's guide to serving the docs' assets itself: its docs turned off, and
    served again by the app's own routes, hidden from the schema."""
    app = FastAPI(**settings)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title="API",
            oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
            swagger_js_url="/static/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui.css",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=str(app.openapi_url), title="API", redoc_js_url="/static/redoc.js"
        )

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        return "<p>home</p>"

    app.add_middleware(segment_asgi.SegmentMiddleware, client=Client("k", send=False))
    return app


def test_docs_served_by_the_app_itself_are_no_page_views() -> None:
    app = self_hosted_docs(docs_url=None, redoc_url=None)
    with TestClient(app) as http, capture() as events:
        for path in ("/docs", "/docs/oauth2-redirect", "/redoc", "/"):
            assert http.get(path, headers=HTML).status_code == 200, path
    assert [e["properties"]["path"] for e in page_calls(events)] == ["/"]


def test_pages_at_the_docs_urls_that_are_not_docs_are_page_views() -> None:
    """Only a route hidden from the schema, at a URL whose docs the app turned off."""
    moved = self_hosted_docs(docs_url="/developer/docs", redoc_url="/developer/redoc")
    listed = FastAPI(docs_url=None, redoc_url=None)

    @listed.get("/docs", response_class=HTMLResponse)
    def documentation() -> str:
        return "<p>our product's documentation</p>"

    listed.add_middleware(segment_asgi.SegmentMiddleware, client=Client("k", send=False))
    visited = []
    for app, path in ((moved, "/docs"), (moved, "/redoc"), (listed, "/docs")):
        with TestClient(app) as http, capture() as events:
            assert http.get(path, headers=HTML).status_code == 200, path
        visited += [e["properties"]["path"] for e in page_calls(events)]
    assert visited == ["/docs", "/redoc", "/docs"]


def test_a_page_named_by_template_has_every_prefix_its_routers_were_included_with() -> None:
    app = FastAPI()
    orders = APIRouter(prefix="/users/{user_id}")

    @orders.get("/orders/{order_id}", response_class=HTMLResponse)
    def order(user_id: int, order_id: int) -> str:
        return "<p>order</p>"

    async def about(request: Any) -> HTMLResponse:
        return HTMLResponse("<p>about</p>")

    orders.add_route("/about", about)
    tenants = APIRouter()
    tenants.include_router(orders, prefix="/t/{tenant}")
    app.include_router(tenants, prefix="/v1")
    app.include_router(orders, prefix="/v2")
    app.add_middleware(
        segment_asgi.SegmentMiddleware, client=Client("k", send=False), page_name="template"
    )
    with TestClient(app) as http, capture() as events:
        # add_route() adds a plain route: without the router's own prefix.
        for path in ("/v1/t/acme/users/7/orders/9", "/v2/users/7/orders/9", "/v2/about"):
            assert http.get(path, headers=HTML).status_code == 200, path
    assert [page["name"] for page in page_calls(events)] == [
        "/v1/t/{tenant}/users/{user_id}/orders/{order_id}",
        "/v2/users/{user_id}/orders/{order_id}",
        "/v2/about",
    ]


def test_a_mounted_sub_application_s_middleware_knows_its_docs_routes_and_mounts() -> None:
    """FastAPI's sub-application pattern: the middleware on the app mounted at /api."""
    api = FastAPI()

    @api.get("/items/{item_id}", response_class=HTMLResponse)
    def item(item_id: int) -> str:
        return "<p>item</p>"

    async def about(request: Any) -> HTMLResponse:
        return HTMLResponse("<p>about</p>")

    api.add_route("/about", about)
    api.mount("/help", FastAPI(), name="help")
    api.add_middleware(
        segment_asgi.SegmentMiddleware, client=Client("k", send=False), page_name="template"
    )
    app = FastAPI()
    app.mount("/api", api)
    visits = ("/api/docs", "/api/redoc", "/api/docs/oauth2-redirect", "/api/help/docs")
    with TestClient(segment_asgi.flushing_at_shutdown(app)) as http, capture() as events:
        for path in (*visits, "/api/items/1", "/api/about"):
            response = http.get(path, headers=HTML)
            assert response.status_code == 200, path
            assert ("set-cookie" in response.headers) is (path not in visits), path
            http.cookies.clear()
    assert [page["name"] for page in page_calls(events)] == ["/items/{item_id}", "/about"]


def test_an_app_s_own_page_at_a_docs_path_below_a_prefix_or_a_mount_is_a_page_view() -> None:
    """Only the app's docs URLs are its docs: not a page at /docs below another path."""
    app = FastAPI()
    guide = APIRouter()

    @guide.get("/docs", response_class=HTMLResponse)
    def product_docs() -> str:
        return "<p>our product's documentation</p>"

    app.include_router(guide, prefix="/guide")
    manual = FastAPI(docs_url=None, redoc_url=None)
    manual.include_router(guide)
    app.mount("/manual", manual)
    app.add_middleware(segment_asgi.SegmentMiddleware, client=Client("k", send=False))
    with TestClient(app) as http, capture() as events:
        for path in ("/guide/docs", "/manual/docs", "/docs"):
            assert http.get(path, headers=HTML).status_code == 200, path
    assert [page["properties"]["path"] for page in page_calls(events)] == [
        "/guide/docs",
        "/manual/docs",
    ]


def test_a_router_included_at_the_docs_url_and_elsewhere_is_docs_only_there() -> None:
    """The app serves its own docs page from a router it also includes elsewhere."""
    app = FastAPI(docs_url=None)
    docs = APIRouter()

    @docs.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def swagger_ui() -> str:
        return "<p>docs, or a help page</p>"

    app.include_router(docs)
    app.include_router(docs, prefix="/help")
    app.add_middleware(segment_asgi.SegmentMiddleware, client=Client("k", send=False))
    with TestClient(app) as http, capture() as events:
        for path in ("/docs", "/help/docs"):
            assert http.get(path, headers=HTML).status_code == 200, path
    assert [page["properties"]["path"] for page in page_calls(events)] == ["/help/docs"]
