"""``exclude_routes`` and Starlette's ``Mount`` names: a route's namespaces are the
names of the mounts it is reached through, as ``url_path_for`` spells them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Host, Mount, Route
from starlette.types import Receive, Scope, Send

from segment_asgi import SegmentMiddleware
from segment_core import Client
from tests.asgi.conftest import Sent, TestClient

SECRET = "s3cr3t-invite-token"


async def page(request: Request) -> Response:
    return HTMLResponse("<p>page</p>")


async def plain_admin(scope: Scope, receive: Receive, send: Send) -> None:
    """An admin app that does its own routing: no route of it is known."""
    await HTMLResponse("<p>admin</p>")(scope, receive, send)


def admin_app() -> Starlette:
    """What sqladmin and starlette-admin mount with ``name="admin"``."""
    return Starlette(
        routes=[Route("/", page, name="index"), Route("/user/list", page, name="list")]
    )


def shop_routes() -> list[Any]:
    return [
        Route("/", page, name="front"),
        Route("/cart", page, name="cart"),
        Route("/invite/{invite_token}", page, name="invite"),
    ]


def site(client: Client, **options: Any) -> TestClient:
    app = Starlette(
        routes=[
            Route("/", page, name="home"),
            Mount("/admin", app=admin_app(), name="admin"),
            Mount("/shop", routes=shop_routes(), name="shop"),
            Mount("/site", routes=[Mount("/shop", routes=shop_routes(), name="shop")], name="site"),
            Mount("/plain-admin", app=plain_admin, name="admin"),
            Mount("/wrapped-admin", app=CORSMiddleware(admin_app()), name="admin"),
        ]
    )
    return TestClient(SegmentMiddleware(app, client=client, **options))


def paths(sent: Sent) -> list[str]:
    return [m["properties"]["path"] for m in sent() if m["type"] == "page"]


def test_an_admin_mounted_as_admin_is_excluded_by_default(client: Client, sent: Sent) -> None:
    with site(client) as browser:
        for path in ("/admin/", "/admin/user/list", "/plain-admin/", "/wrapped-admin/user/list"):
            assert browser.get(path).status_code == 200, path
        browser.get("/shop/cart")
    assert paths(sent) == ["/shop/cart"]


@pytest.mark.parametrize(
    ("excluded", "counted"),
    [
        (["shop"], ["/"]),  # every shop, nested ones too
        (["shop:cart"], ["/", "/shop/", "/site/shop/", "/site/shop/cart"]),
        (["site"], ["/", "/shop/", "/shop/cart"]),
        (["site:shop"], ["/", "/shop/", "/shop/cart"]),
        (["site:shop:cart"], ["/", "/shop/", "/shop/cart", "/site/shop/"]),
        (["cart"], ["/", "/shop/", "/site/shop/"]),  # the route's own name, as before
    ],
)
def test_exclude_routes_match_mount_names(
    client: Client, sent: Sent, excluded: list[str], counted: list[str]
) -> None:
    with site(client, exclude_routes=excluded) as browser:
        for path in ("/", "/shop/", "/shop/cart", "/site/shop/", "/site/shop/cart"):
            assert browser.get(path).status_code == 200, path
    assert paths(sent) == counted


def test_the_page_name_stays_the_route_name(client: Client, sent: Sent) -> None:
    with site(client) as browser:
        browser.get("/site/shop/cart")
    assert [m["name"] for m in sent()] == ["cart"]


def test_the_same_routes_mounted_twice_are_told_apart_by_the_path(
    client: Client, sent: Sent
) -> None:
    routes = shop_routes()
    app = Starlette(
        routes=[Mount("/a", routes=routes, name="a"), Mount("/b", routes=routes, name="b")]
    )
    with TestClient(SegmentMiddleware(app, client=client, exclude_routes=["a"])) as browser:
        for path in ("/a/cart", "/b/cart", "/a/", "/b/"):
            browser.get(path)
    assert paths(sent) == ["/b/cart", "/b/"]


def test_a_host_name_counts_as_a_mount_name(client: Client, sent: Sent) -> None:
    app = Starlette(
        routes=[
            Host("admin.example.com", app=admin_app(), name="admin"),
            Mount("/", routes=shop_routes()),
        ]
    )
    with TestClient(SegmentMiddleware(app, client=client)) as browser:
        browser.get("http://admin.example.com/user/list")
        browser.get("http://www.example.com/cart")
    assert paths(sent) == ["/cart"]


def test_a_mount_added_after_the_first_request(client: Client, sent: Sent) -> None:
    app = Starlette(routes=[Route("/", page, name="home")])
    with TestClient(SegmentMiddleware(app, client=client)) as browser:
        browser.get("/")
        app.mount("/admin", admin_app(), name="admin")
        browser.get("/admin/user/list")
    assert paths(sent) == ["/"]


def test_a_fastapi_app_mounted_by_name_with_its_routers(client: Client, sent: Sent) -> None:
    admin = FastAPI()
    users = APIRouter(prefix="/users")
    users.add_api_route("/", page, response_class=HTMLResponse, name="users")
    admin.include_router(users)
    admin.add_api_route("/", page, response_class=HTMLResponse, name="index")
    app = FastAPI()
    app.add_api_route("/", page, response_class=HTMLResponse, name="home")
    app.mount("/admin", admin, name="admin")
    app.add_middleware(SegmentMiddleware, client=client)
    with TestClient(app) as browser:
        for path in ("/admin/", "/admin/users/", "/"):
            assert browser.get(path).status_code == 200, path
    assert paths(sent) == ["/"]


def test_a_same_app_referrer_in_a_named_mount_loses_its_secret(client: Client, sent: Sent) -> None:
    with site(client) as browser:
        referrer = f"http://testserver/shop/invite/{SECRET}"
        browser.get(f"/shop/?next=/site/shop/invite/{SECRET}", headers={"Referer": referrer})
        browser.get(f"/shop/invite/{SECRET}")
    [first, second] = [m for m in sent() if m["type"] == "page"]
    assert first["properties"]["referrer"] == "http://testserver/shop/invite/REDACTED"
    assert second["properties"]["path"] == "/shop/invite/REDACTED"
    assert SECRET not in str([first, second])


def test_a_mount_s_parameters_are_placeholders_in_the_template(client: Client, sent: Sent) -> None:
    """page_name="template": one name for every tenant, and no secret a mount captured."""
    tenant_app = Starlette(routes=[Route("/dashboard", page), Route("/reports/{report_id}", page)])
    app = Starlette(
        routes=[
            Mount("/t/{tenant}", app=tenant_app),
            Mount("/invite/{invite_token}", routes=[Route("/accept", page)]),
            Mount("/plain", app=tenant_app),
        ]
    )
    with TestClient(SegmentMiddleware(app, client=client, page_name="template")) as browser:
        for path in (
            "/t/acme/dashboard",
            "/t/globex/reports/7",
            f"/invite/{SECRET}/accept",
            "/plain/dashboard",
        ):
            assert browser.get(path).status_code == 200, path
    assert [m["name"] for m in sent(type="page")] == [
        "/t/{tenant}/dashboard",
        "/t/{tenant}/reports/{report_id}",
        "/invite/{invite_token}/accept",
        "/plain/dashboard",
    ]


def test_a_fastapi_app_mounted_at_a_path_with_a_parameter(client: Client, sent: Sent) -> None:
    tenant_app = FastAPI()
    tenant_app.add_api_route("/dashboard", page, response_class=HTMLResponse)
    app = FastAPI()
    app.mount("/t/{tenant}", tenant_app)
    app.add_middleware(SegmentMiddleware, client=client, page_name="template")
    with TestClient(app) as browser:
        for tenant in ("acme", "globex"):
            assert browser.get(f"/t/{tenant}/dashboard").status_code == 200
    assert [m["name"] for m in sent(type="page")] == ["/t/{tenant}/dashboard"] * 2
