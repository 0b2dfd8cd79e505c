"""What a real Flask app sends: page views, logins, secrets, proxies, hostile requests."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask, Response, g, jsonify, redirect, request, send_file, url_for
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.routing import BaseConverter

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


def test_a_304_of_a_file_or_of_data_is_no_page_view(app: Flask, sent: Sent, tmp_path: Path) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 report")

    @app.get("/files/report.pdf")
    def report_file() -> Response:
        return send_file(report, conditional=True, etag=True)

    @app.get("/api/totals")
    def totals() -> Response:
        response = jsonify(total=3)
        response.set_etag("v1")
        return response.make_conditional(request)

    client = app.test_client()
    # A browser's navigation to a PDF, or to data, asks for HTML too.
    for path in ("/files/report.pdf", "/api/totals"):
        with client.get(path, headers=NAVIGATE) as first:
            etag = first.headers["ETag"]
        with client.get(path, headers={**NAVIGATE, "If-None-Match": etag}) as reload:
            assert reload.status_code == 304
    assert pages(sent) == []


def test_a_success_that_shows_no_page_is_no_page_view(
    app: Flask, sent: Sent, tmp_path: Path
) -> None:
    document = tmp_path / "page.html"
    document.write_bytes(b"<p>" + b"x" * 2000 + b"</p>")

    @app.get("/saved")
    def saved() -> tuple[str, int]:
        return "", 204

    @app.get("/document")
    def whole_document() -> Response:
        return send_file(document, mimetype="text/html", conditional=True)

    client = app.test_client()
    assert client.get("/saved", headers=NAVIGATE).status_code == 204
    for part in ("bytes=0-999", "bytes=1000-"):
        with client.get("/document", headers={**NAVIGATE, "Range": part}) as ranged:
            assert ranged.status_code == 206
    assert pages(sent) == []
    with client.get("/document", headers=NAVIGATE) as whole:
        assert whole.status_code == 200
    assert [p["name"] for p in pages(sent)] == ["whole_document"]


def test_a_download_is_no_page_view(app: Flask, sent: Sent, tmp_path: Path) -> None:
    # An "export" link: the browser saves the file and stays on its page.
    document = tmp_path / "report.html"
    document.write_bytes(b"<p>report</p>")

    @app.get("/export")
    def export() -> Response:
        return send_file(document, mimetype="text/html", as_attachment=True)

    @app.get("/export.html")
    def export_rendered() -> Response:
        return Response("<p>report</p>", headers={"Content-Disposition": "attachment"})

    @app.get("/shown")
    def shown() -> Response:
        return send_file(document, mimetype="text/html", download_name="report.html")

    client = app.test_client()
    for url in ("/export", "/export.html", "/shown"):
        with client.get(url, headers=NAVIGATE) as response:
            assert response.status_code == 200, url
    assert [p["name"] for p in pages(sent)] == ["shown"]


@pytest.mark.parametrize(
    ("app_value", "expected"),
    [
        (None, "private"),
        ("public, max-age=60, s-maxage=600", "private, max-age=60, s-maxage=600"),
        ("no-cache", "private, no-cache"),
    ],
)
def test_the_response_that_sets_the_cookie_is_kept_out_of_shared_caches(
    app: Flask, app_value: str | None, expected: str
) -> None:
    @app.get("/shared")
    def shared() -> Response:
        response = Response("<p>for everyone</p>")
        if app_value is not None:
            response.headers["Cache-Control"] = app_value
        return response

    client = app.test_client()
    first = client.get("/shared")
    assert first.headers.getlist("Set-Cookie")[0].startswith("ajs_anonymous_id=")
    assert first.headers.getlist("Cache-Control") == [expected]
    assert first.headers["Vary"] == "Cookie"
    # A returning visitor's page is the app's to cache: nothing is added.
    again = client.get("/shared")
    assert "Set-Cookie" not in again.headers
    assert again.headers.get("Cache-Control") == app_value


def test_the_app_s_cache_control_lines_are_merged(app: Flask) -> None:
    @app.get("/two-lines")
    def two_lines() -> Response:
        response = Response("<p>page</p>")
        response.headers.add("Cache-Control", "public")
        response.headers.add("Cache-Control", "max-age=60")
        response.headers["Vary"] = "Accept-Encoding"
        return response

    response = app.test_client().get("/two-lines")
    assert response.headers.getlist("Cache-Control") == ["private, max-age=60"]
    assert response.headers["Vary"] == "Accept-Encoding, Cookie"


def test_a_blueprint_named_admin_is_tooling(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(SEGMENT_EXCLUDE_ROUTES=["tag"]).test_client()
    client.get("/backoffice/")
    client.get("/tags/x")
    client.get("/healthz")
    client.get("/")
    assert [p["name"] for p in pages(sent)] == ["home"]


def test_nested_blueprints_are_excluded_by_their_own_names(make_app: MakeApp, sent: Sent) -> None:
    app = make_app(SEGMENT_EXCLUDE_ROUTES=["internal"])
    site = Blueprint("site", __name__, url_prefix="/site")
    for name in ("admin", "internal", "shop"):
        nested = Blueprint(name, __name__, url_prefix=f"/{name}")
        nested.add_url_rule("/", "index", lambda: "<p>page</p>")
        site.register_blueprint(nested)
    app.register_blueprint(site)
    client = app.test_client()
    for path in ("/site/admin/", "/site/internal/", "/site/shop/"):
        assert client.get(path).status_code == 200
    # A full dotted name, and an enclosing blueprint, exclude what they hold.
    for excluded in ("site.shop", "site"):
        other = make_app(SEGMENT_EXCLUDE_ROUTES=[excluded])
        other.register_blueprint(site)
        assert other.test_client().get("/site/shop/").status_code == 200
    assert [p["name"] for p in pages(sent)] == ["site.shop.index"]


def test_a_blueprint_registered_under_another_name_is_excluded_by_its_own_too(
    make_app: MakeApp, sent: Sent
) -> None:
    app = make_app(SEGMENT_EXCLUDE_ROUTES=["reports"])
    reports = Blueprint("reports", __name__)
    reports.add_url_rule("/", "index", lambda: "<p>reports</p>")
    site = Blueprint("site", __name__)
    site.register_blueprint(reports, name="figures", url_prefix="/figures")
    app.register_blueprint(reports, url_prefix="/v1")
    app.register_blueprint(reports, name="reports_v2", url_prefix="/v2")
    app.register_blueprint(site, url_prefix="/site")
    client = app.test_client()
    for path in ("/v1/", "/v2/", "/site/figures/", "/"):
        assert client.get(path).status_code == 200, path
    assert [p["name"] for p in pages(sent)] == ["home"]


def test_every_flask_admin_page_is_tooling(make_app: MakeApp, sent: Sent) -> None:
    flask_admin = pytest.importorskip("flask_admin")

    class ReportsView(flask_admin.BaseView):  # type: ignore[misc]
        @flask_admin.expose("/")
        def index(self) -> str:
            return "<p>reports</p>"

    app = make_app()
    admin = flask_admin.Admin(app, name="Shop admin", endpoint="backoffice", url="/manage")
    admin.add_view(ReportsView(name="Reports"))
    admin.add_view(ReportsView(name="Users", endpoint="user"))
    client = app.test_client()
    for path in ("/manage/", "/manage/reportsview/", "/manage/user/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Set-Cookie" not in response.headers, path
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


def test_a_secret_a_url_value_preprocessor_takes_out_is_redacted(
    make_app: MakeApp, sent: Sent
) -> None:
    # Flask's URL processors pattern: the route's value moves to g before the view.
    app = make_app()
    invites = Blueprint("invites", __name__, url_prefix="/join/<token>")

    @invites.url_value_preprocessor
    def pull_token(endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.invite_token = values.pop("token") if values else None

    invites.add_url_rule("/", "show", lambda: f"<p>{len(g.invite_token)}</p>")
    app.register_blueprint(invites)
    client = app.test_client()
    client.get("/join/TOPSECRET-123/", headers={"Referer": "http://localhost/join/OLD-456/"})
    client.get("/", headers={"Referer": "http://localhost/join/OLD-789/"})
    invite, home = pages(sent)
    assert invite["properties"]["url"] == "http://localhost/join/REDACTED/"
    assert invite["properties"]["referrer"] == "http://localhost/join/REDACTED/"
    assert home["properties"]["referrer"] == "http://localhost/join/REDACTED/"


class PayloadConverter(BaseConverter):
    """A signed token in the path, read as its payload's text."""

    regex = r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"

    def to_python(self, value: str) -> Any:
        return value.split(".")[0]


class SignedConverter(BaseConverter):
    """A signed token in the path, decoded to its payload (as itsdangerous does)."""

    regex = r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"

    def to_python(self, value: str) -> Any:
        payload = value.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    def to_url(self, value: Any) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
        return f"{payload}.signature"


def test_secret_values_a_converter_turns_into_other_objects_are_redacted(
    make_app: MakeApp, sent: Sent
) -> None:
    app = make_app(SEGMENT_PAGE_NAME="path")
    app.url_map.converters["signed"] = SignedConverter
    app.add_url_rule("/verify/<signed:token>", "verify", lambda token: "<p>verified</p>")
    app.add_url_rule("/magic/<float:key>/go", "magic", lambda key: "<p>magic</p>")
    app.add_url_rule("/pin/<int:pin>", "pin", lambda pin: "<p>pin</p>")
    # Matched without its last slash too (Werkzeug's strict_slashes=False), by a
    # converter that keeps part of the text: the payload of "payload.signature".
    app.url_map.converters["payload"] = PayloadConverter
    app.add_url_rule(
        "/join/<payload:token>/", "join", lambda token: "<p>in</p>", strict_slashes=False
    )
    payload = base64.urlsafe_b64encode(b'{"uid": 7}').decode().rstrip("=")
    token = f"{payload}.SIGNEDbyTHEapp"
    client = app.test_client()
    # A token of plain words: found by the route alone, not by its look.
    for path in (f"/verify/{token}", "/magic/3.50/go", "/pin/0042", "/join/welcome.SIGNED"):
        client.get(path, headers={"Referer": f"http://localhost{path}"})
    verify, magic, pin, invite = pages(sent)
    assert invite["properties"]["path"] == "/join/REDACTED"
    assert invite["properties"]["url"] == "http://localhost/join/REDACTED"
    assert invite["properties"]["referrer"] == "http://localhost/join/REDACTED"
    assert "SIGNED" not in str(invite)
    assert verify["properties"]["path"] == verify["name"] == "/verify/REDACTED"
    assert verify["properties"]["referrer"] == "http://localhost/verify/REDACTED"
    assert magic["properties"]["path"] == "/magic/REDACTED/go"
    assert magic["properties"]["referrer"] == "http://localhost/magic/REDACTED/go"
    assert pin["properties"]["path"] == "/pin/REDACTED"
    # The page's fields (a timestamp's seconds may read "3.5" too).
    shown = str([(m["name"], m["properties"], m["context"]["page"]) for m in (verify, magic, pin)])
    assert "SIGNED" not in shown and "3.5" not in shown


def test_a_login_wall_s_next_url_loses_the_route_secret(make_app: MakeApp, sent: Sent) -> None:
    # The login_required decorator of Flask's docs: /login?next=<request.url>, an
    # absolute URL of the app, as a relative ?next=/invite/<key> is.
    app = make_app()

    @app.get("/join/<invite_key>")
    def join(invite_key: str) -> Any:
        return redirect(url_for("sign_in", next=request.url))

    @app.get("/sign-in")
    def sign_in() -> str:
        return "<p>sign in</p>"

    client = app.test_client()
    client.get("/join/INVKEY9d41be02", headers=NAVIGATE, follow_redirects=True)
    client.get("/sign-in?next=/join/INVKEY9d41be03", headers=NAVIGATE)
    absolute, relative = pages(sent)
    assert absolute["properties"]["search"] == "?next=http://localhost/join/REDACTED"
    assert relative["properties"]["search"] == "?next=/join/REDACTED"
    assert "INVKEY" not in json.dumps([absolute, relative])


def test_a_scheme_relative_next_url_of_the_app_loses_the_route_secret(
    make_app: MakeApp, sent: Sent
) -> None:
    app = make_app()

    @app.get("/join/<invite_key>")
    def join(invite_key: str) -> str:
        return "<p>join</p>"

    @app.get("/sign-in")
    def sign_in() -> str:
        return "<p>sign in</p>"

    client = app.test_client()
    client.get("/sign-in?next=%2F%2Flocalhost%2Fjoin%2FINVKEY9d41be04", headers=NAVIGATE)
    client.get("/sign-in?next=//LOCALHOST./join/INVKEY9d41be05", headers=NAVIGATE)
    escaped, written = pages(sent)
    assert escaped["properties"]["search"] == "?next=%2F%2Flocalhost%2Fjoin%2FREDACTED"
    assert written["properties"]["search"] == "?next=//LOCALHOST./join/REDACTED"


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
