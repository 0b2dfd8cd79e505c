"""What a real Flask app sends: page views, logins, secrets, proxies, hostile requests."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, Response
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from tests.flask.conftest import MakeApp, Sent

NAVIGATE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def pages(sent: Sent) -> list[dict[str, Any]]:
    return [m for m in sent() if m["type"] == "page"]


def test_json_is_not_a_page_view(app: Flask, sent: Sent) -> None:
    client = app.test_client()
    client.get("/api/orders")
    client.get("/")
    assert [m.get("name") or m.get("event") for m in sent()] == ["Listed Orders", "home"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Requested-With": "XMLHttpRequest"}, []),
        ({"HX-Request": "true"}, []),
        ({"HX-Request": "true", "HX-Boosted": "true"}, ["home"]),
        ({"Turbo-Frame": "list"}, []),
        ({"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, []),
        ({"Sec-Fetch-Mode": "navigate"}, ["home"]),
        ({"Sec-Purpose": "prefetch;prerender"}, []),
        ({"Purpose": "prefetch"}, []),
    ],
)
def test_navigations_only(
    app: Flask, sent: Sent, headers: dict[str, str], expected: list[str]
) -> None:
    app.test_client().get("/", headers=headers)
    assert [p["name"] for p in pages(sent)] == expected


def test_a_304_counts_when_html_was_asked_for(app: Flask, sent: Sent) -> None:
    client = app.test_client()
    client.get("/cached", headers=NAVIGATE)
    client.get("/cached", headers={"Accept": "*/*"})
    client.get("/cached")
    assert [p["name"] for p in pages(sent)] == ["cached"]


def test_a_blueprint_named_admin_is_tooling(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(SEGMENT_EXCLUDE_ROUTES=["tag"]).test_client()
    client.get("/backoffice/")
    client.get("/tags/x")
    client.get("/healthz")
    client.get("/")
    assert [p["name"] for p in pages(sent)] == ["home"]


def test_lists_extend_defaults_unless_replaced(make_app: MakeApp, sent: Sent) -> None:
    make_app(SEGMENT_EXCLUDE_PATHS=["^/tags/"]).test_client().get("/healthz")
    assert pages(sent) == []
    client = make_app(
        SEGMENT_EXCLUDE_PATHS=["^/tags/"], SEGMENT_REPLACE_DEFAULT_EXCLUDE_PATHS=True
    ).test_client()
    client.get("/healthz")
    client.get("/tags/x")
    assert [p["name"] for p in pages(sent)] == ["healthz"]


def test_login_identify_with_traits(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(SEGMENT_IDENTIFY_TRAITS=lambda user: {"plan": "pro"}).test_client()
    response = client.get("/login/ann-7")
    identify, page = sent()
    assert identify["type"] == "identify"
    assert identify["traits"] == {"plan": "pro"}
    assert identify["anonymousId"] == page["anonymousId"]
    assert f"ajs_anonymous_id={identify['anonymousId']}" in response.headers["Set-Cookie"]


def test_login_identify_off(make_app: MakeApp, sent: Sent) -> None:
    make_app(SEGMENT_IDENTIFY_ON_LOGIN=False).test_client().get("/login/ann-7")
    assert [m["type"] for m in sent()] == ["page"]


def test_a_known_user_without_cookie_gets_user_id_only(app: Flask, sent: Sent) -> None:
    client = app.test_client()
    client.get("/login/ann-7")
    client.delete_cookie("ajs_anonymous_id")
    sent()
    response = client.get("/api/orders")
    assert "ajs_anonymous_id" not in response.headers.get("Set-Cookie", "")
    track = sent()[-1]
    assert track["userId"] == "ann-7" and "anonymousId" not in track


def test_head_and_options_get_no_cookie(app: Flask) -> None:
    client = app.test_client()
    assert "Set-Cookie" not in client.head("/").headers
    assert "Set-Cookie" not in client.options("/").headers


def test_secret_route_parameters_and_same_app_referrers(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(SEGMENT_PAGE_NAME="path").test_client()
    client.get("/invite/s3cr3t-k3y", headers={"Referer": "http://localhost/invite/0ld-k3y?a=1"})
    track, page = sent()
    for message in (track, page):
        assert message["context"]["page"]["path"] == "/invite/REDACTED"
        assert message["context"]["page"]["url"] == "http://localhost/invite/REDACTED"
        assert message["context"]["page"]["referrer"] == "http://localhost/invite/REDACTED?a=1"
    assert page["name"] == "/invite/REDACTED"
    assert "k3y" not in str([track, page])


def test_a_mounted_app_redacts_its_own_pages_in_the_referrer(make_app: MakeApp, sent: Sent) -> None:
    app = make_app()

    @app.get("/reset/<uuid:reset_token>")
    def reset(reset_token: Any) -> str:
        return "reset"

    app.wsgi_app = DispatcherMiddleware(Response("elsewhere"), {"/shop": app.wsgi_app})  # type: ignore[method-assign]
    client = app.test_client()
    token = "5f3b1c2d-1111-4222-8333-444455556666".upper()
    client.get(f"/shop/reset/{token}", headers={"Referer": "http://localhost/shop/invite/0ld-k3y"})
    client.get("/shop/", headers={"Referer": "http://localhost/invite/0ld-k3y"})
    reset_page, home = pages(sent)
    assert reset_page["properties"]["path"] == "/shop/reset/REDACTED"
    assert reset_page["properties"]["referrer"] == "http://localhost/shop/invite/REDACTED"
    # Outside the mount point: a page of another app on the site, left alone.
    assert home["properties"]["referrer"] == "http://localhost/invite/0ld-k3y"


def test_a_mounted_app_s_assets_get_no_cookie_and_no_user_lookup(make_app: MakeApp) -> None:
    app = make_app()
    app.wsgi_app = DispatcherMiddleware(Response("elsewhere"), {"/shop": app.wsgi_app})  # type: ignore[method-assign]
    client = app.test_client()
    for path in ("/shop/static/app.css", "/shop/favicon.ico"):
        with client.get(path) as response:
            assert response.status_code == 200 and "Set-Cookie" not in response.headers, path
    assert "Set-Cookie" in client.get("/shop/").headers


def test_trusted_proxy_scheme_and_host(make_app: MakeApp, sent: Sent) -> None:
    app = make_app(SEGMENT_TRUSTED_PROXIES=1, TRUSTED_HOSTS=["shop.example", "localhost"])
    client = app.test_client()
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"}
    response = client.get("/", headers=headers)
    assert "Secure" in response.headers["Set-Cookie"]
    client.get("/", headers={"X-Forwarded-Host": "evil.example"})
    first, second = pages(sent)
    assert first["properties"]["url"] == "https://shop.example/"
    assert second["properties"]["url"] == "http://localhost/"


def test_a_spoofed_host_is_refused_by_trusted_hosts(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(TRUSTED_HOSTS=["localhost"]).test_client()
    client.get("/invite/x", headers={"Host": "evil.example"})
    assert "evil.example" not in str(sent())
    assert pages(sent) == []


def test_hostile_sizes(app: Flask, sent: Sent, caplog: pytest.LogCaptureFixture) -> None:
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        assert client.get("/invite/x?utm_campaign=" + "c" * 12_000).status_code == 200
        response = client.get(
            "/raw/" + "p" * 65_536,
            headers={"User-Agent": "U" * 65_536, "Referer": "http://r.example/" + "r" * 65_536},
        )
    assert response.status_code == 200
    assert [r for r in caplog.records if r.name.startswith("segment")] == []
    track, invite_page, page_two = sent()
    assert len(invite_page["properties"]["search"]) <= 2049
    assert len(track["context"]["campaign"]["name"]) == 256
    assert len(page_two["properties"]["path"]) == 2048
    assert len(page_two["properties"]["referrer"]) == 2048


def test_invalid_utf8_in_the_path_is_kept_as_sent(app: Flask, sent: Sent) -> None:
    app.test_client().get("/raw/caf%E9/%C3%A9t%C3%A9")
    [page] = sent()
    assert page["properties"]["path"] == "/raw/caf%E9/%C3%A9t%C3%A9"
