"""Apps that route by subdomain or host: a URL of the app on another of its hosts."""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

import pytest
from flask import Blueprint, Flask, Response
from flask_login import login_required
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from segment_core import Client
from segment_flask import SegmentFlask
from tests.flask.conftest import MakeApp, Sent

NAVIGATE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
FLASK_VERSION = tuple(int(part) for part in version("flask").split(".")[:2])


def pages(sent: Sent) -> list[dict[str, Any]]:
    return [m for m in sent() if m["type"] == "page"]


def tenant_app(make_app: MakeApp) -> Flask:
    """A shop on ``shop.test`` whose tenants have subdomains: an invitation, behind a
    login on the shop's own host, is a tenant's page; a password reset is the shop's."""
    app = make_app(SERVER_NAME="shop.test")
    app.subdomain_matching = True
    app.login_manager.login_view = "sign_in"  # type: ignore[attr-defined]
    tenant = Blueprint("tenant", __name__, subdomain="<tenant>")

    @tenant.get("/invite/<key>")
    @login_required  # type: ignore[misc]
    def invite(tenant: str, key: str) -> str:
        return "<p>invite</p>"

    @tenant.get("/")
    def tenant_home(tenant: str) -> str:
        return "<p>tenant</p>"

    app.register_blueprint(tenant)
    app.add_url_rule("/sign-in", "sign_in", lambda: "<p>sign in</p>")
    app.add_url_rule("/reset/<token>", "reset", lambda token: "<p>reset</p>")
    return app


def test_a_login_wall_s_next_url_on_a_tenant_subdomain_loses_the_route_secret(
    make_app: MakeApp, sent: Sent
) -> None:
    # Flask-Login sends the visitor to http://shop.test/sign-in?next=<request.url>:
    # the tenant's URL, on another host of the app.
    client = tenant_app(make_app).test_client()
    wall = client.get("/invite/INVKEY9d41be10", base_url="http://acme.shop.test", headers=NAVIGATE)
    assert wall.location == (
        "http://shop.test/sign-in?next=http%3A%2F%2Facme.shop.test%2Finvite%2FINVKEY9d41be10"
    )
    client.get(wall.location, headers=NAVIGATE)
    [sign_in] = pages(sent)
    assert sign_in["properties"]["url"] == (
        "http://shop.test/sign-in?next=http%3A%2F%2Facme.shop.test%2Finvite%2FREDACTED"
    )
    assert sign_in["context"]["page"]["search"] == sign_in["properties"]["search"]
    assert "INVKEY" not in json.dumps(sign_in)


def test_referrers_of_the_app_s_other_hosts_lose_their_route_secrets(
    make_app: MakeApp, sent: Sent
) -> None:
    client = tenant_app(make_app).test_client()
    visits = [
        # A tenant's page, seen on the shop's host, any scheme or default port.
        ("http://shop.test", "http://acme.shop.test/invite/INVKEY9d41be11"),
        ("https://shop.test", "https://ACME.shop.test:443/invite/INVKEY9d41be12?a=1"),
        # The shop's page, seen on a tenant's host; and a path in its query, a path
        # of the shop's host (only the shop routes /reset/<token>).
        ("http://globex.shop.test", "http://shop.test/reset/RSTTOK9d41be13"),
        ("http://globex.shop.test", "http://shop.test/sign-in?next=/reset/RSTTOK9d41be14"),
        # Another site's page is no page of the app.
        ("http://shop.test", "http://acme.shop.test.example/invite/KEPT1"),
    ]
    for origin, referrer in visits:
        client.get("/", base_url=origin, headers={**NAVIGATE, "Referer": referrer})
    referrers = [p["properties"]["referrer"] for p in pages(sent)]
    assert referrers == [
        "http://acme.shop.test/invite/REDACTED",
        "https://ACME.shop.test:443/invite/REDACTED?a=1",
        "http://shop.test/reset/REDACTED",
        "http://shop.test/sign-in?next=/reset/REDACTED",
        "http://acme.shop.test.example/invite/KEPT1",
    ]


def test_a_mounted_app_of_subdomains_routes_its_other_hosts_below_the_mount(
    make_app: MakeApp, sent: Sent
) -> None:
    app = tenant_app(make_app)
    app.wsgi_app = DispatcherMiddleware(Response("elsewhere"), {"/shop": app.wsgi_app})  # type: ignore[method-assign]
    client = app.test_client()
    for referrer in (
        "http://acme.shop.test/shop/invite/INVKEY9d41be15",
        "http://acme.shop.test/invite/KEPT2",  # outside the mount point: another app's
    ):
        client.get("/shop/", base_url="http://shop.test", headers={**NAVIGATE, "Referer": referrer})
    client.get(
        "/shop/sign-in?next=//acme.shop.test/shop/invite/INVKEY9d41be16",
        base_url="http://shop.test",
        headers=NAVIGATE,
    )
    first, second, sign_in = pages(sent)
    assert first["properties"]["referrer"] == "http://acme.shop.test/shop/invite/REDACTED"
    assert second["properties"]["referrer"] == "http://acme.shop.test/invite/KEPT2"
    assert sign_in["properties"]["search"] == "?next=//acme.shop.test/shop/invite/REDACTED"


def test_a_next_url_on_another_host_of_an_app_that_routes_by_host(
    segment_client: Client, sent: Sent
) -> None:
    app = Flask("hosts", host_matching=True, static_host="static.shop.test")
    for path, endpoint in (("/invite/<key>", "invite"), ("/sign-in", "sign_in")):
        app.add_url_rule(path, endpoint, lambda **values: "<p>x</p>", host="<tenant>.shop.test")
    app.add_url_rule("/reset/<token>", "reset", lambda token: "<p>x</p>", host="shop.test:8000")
    SegmentFlask(app, client=segment_client)
    client = app.test_client()
    client.get(
        "/sign-in?next=http://globex.shop.test/invite/INVKEY9d41be17",
        base_url="http://acme.shop.test",
        headers={**NAVIGATE, "Referer": "http://shop.test:8000/reset/RSTTOK9d41be18"},
    )
    client.get(
        "/sign-in?next=https://shop.test:8443/reset/KEPT3",  # no host of the app
        base_url="http://acme.shop.test",
        headers={**NAVIGATE, "Referer": "http://globex.shop.test/invite/INVKEY9d41be19"},
    )
    # A path in another site's URL is taken for one of this host, as it always was.
    client.get(
        "/sign-in?next=https://sso.example/authorize?next=/invite/INVKEY9d41be20",
        base_url="http://acme.shop.test",
        headers=NAVIGATE,
    )
    first, second, third = pages(sent)
    assert first["properties"]["search"] == "?next=http://globex.shop.test/invite/REDACTED"
    assert first["properties"]["referrer"] == "http://shop.test:8000/reset/REDACTED"
    assert second["properties"]["search"] == "?next=https://shop.test:8443/reset/KEPT3"
    assert second["properties"]["referrer"] == "http://globex.shop.test/invite/REDACTED"
    assert third["properties"]["search"] == (
        "?next=https://sso.example/authorize?next=/invite/REDACTED"
    )
    assert "9d41be" not in json.dumps([first, second, third])


@pytest.mark.skipif(FLASK_VERSION < (3, 1), reason="before 3.1, other hosts are not found")
def test_a_server_name_without_subdomains_routes_every_host_alike(
    make_app: MakeApp, sent: Sent
) -> None:
    # Without subdomain_matching, Flask routes a request on any host as SERVER_NAME's.
    app = make_app(SERVER_NAME="shop.test")
    app.add_url_rule("/reset/<token>", "reset", lambda token: "<p>reset</p>")
    client = app.test_client()
    client.get("/?next=/reset/RSTTOK9d41be24", base_url="http://www.shop.test", headers=NAVIGATE)
    client.get(
        "/",
        base_url="http://localhost",
        headers={**NAVIGATE, "Referer": "http://localhost/reset/RSTTOK9d41be25"},
    )
    on_subdomain, on_localhost = pages(sent)
    assert on_subdomain["properties"]["search"] == "?next=/reset/REDACTED"
    assert on_localhost["properties"]["referrer"] == "http://localhost/reset/REDACTED"


@pytest.mark.skipif(FLASK_VERSION >= (3, 1), reason="since 3.1, subdomain_matching is needed")
def test_before_flask_3_1_a_server_name_alone_routes_subdomains(
    make_app: MakeApp, sent: Sent
) -> None:
    app = make_app(SERVER_NAME="shop.test")
    tenant = Blueprint("tenant", __name__, subdomain="<tenant>")
    tenant.add_url_rule("/invite/<key>", "invite", lambda tenant, key: "<p>invite</p>")
    app.register_blueprint(tenant)
    client = app.test_client()
    client.get(
        "/",
        base_url="http://shop.test",
        headers={**NAVIGATE, "Referer": "http://acme.shop.test/invite/INVKEY9d41be23"},
    )
    [home] = pages(sent)
    assert home["properties"]["referrer"] == "http://acme.shop.test/invite/REDACTED"
