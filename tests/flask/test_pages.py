"""The automatic page call: one per page view, named, with the request's context."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, g, request, send_from_directory, session, stream_with_context
from flask_login import current_user, login_user

from segment_core.scope import analytics, current
from segment_flask import page_tracked
from tests.cycles import left_to_the_collector
from tests.flask.app import User, ViewBug
from tests.flask.conftest import MakeApp, Sent

NAVIGATE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def test_page_call_per_request(app: Flask, sent: Sent) -> None:
    response = app.test_client().get(
        "/products/42?utm_source=news&utm_campaign=spring+sale",
        headers={
            "User-Agent": CHROME,
            "Accept-Language": "de-CH,de;q=0.9",
            "Referer": "https://search.example/?q=shoes",
        },
    )
    assert response.status_code == 200
    [page] = sent()
    assert page["type"] == "page"
    assert page["name"] == "product"
    assert uuid.UUID(page["anonymousId"])
    assert "userId" not in page
    search = "?utm_source=news&utm_campaign=spring+sale"
    assert page["properties"] == {
        "name": "product",
        "path": "/products/42",
        "referrer": "https://search.example/?q=shoes",
        "search": search,
        "url": f"http://localhost/products/42{search}",
    }
    context = page["context"]
    assert context["ip"] == "127.0.0.1"
    assert context["userAgent"] == CHROME
    assert context["locale"] == "de-CH"
    assert context["campaign"] == {"source": "news", "name": "spring sale"}
    assert context["page"]["url"] == page["properties"]["url"]
    assert context["library"]["name"] == "segment-web"


def test_url_under_a_mount_point_and_https(app: Flask, sent: Sent) -> None:
    app.test_client().get(
        "/products/7", base_url="https://shop.example/store", headers={"User-Agent": CHROME}
    )
    [page] = sent()
    assert page["properties"]["url"] == "https://shop.example/store/products/7"
    assert page["properties"]["path"] == "/store/products/7"


def test_path_is_percent_encoded_as_sent(app: Flask, sent: Sent) -> None:
    app.test_client().get("/tags/caf%C3%A9%20cr%C3%A8me?q=caf%C3%A9")
    [page] = sent()
    assert page["properties"]["path"] == "/tags/caf%C3%A9%20cr%C3%A8me"
    assert page["properties"]["url"] == "http://localhost/tags/caf%C3%A9%20cr%C3%A8me?q=caf%C3%A9"


def test_page_name_by_route_template(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(page_name="template").test_client()
    client.get("/products/1")
    client.get("/")
    assert [m["name"] for m in sent()] == ["/products/<int:pk>", "/"]


def test_page_name_by_config_key(make_app: MakeApp, sent: Sent) -> None:
    make_app(SEGMENT_PAGE_NAME="path").test_client().get("/products/1")
    assert [m["name"] for m in sent()] == ["/products/1"]


@pytest.mark.parametrize(
    "url", ["/healthz", "/static/app.css", "/favicon.ico", "/missing", "/gone", "/redirect"]
)
def test_no_page_call(app: Flask, sent: Sent, url: str) -> None:
    response = app.test_client().get(url)
    assert response.status_code in (200, 302, 404)
    response.close()
    assert sent() == []


def test_static_files_under_a_custom_url_are_excluded(segment_client: Any, sent: Sent) -> None:
    from flask import Flask as FlaskApp

    from segment_flask import SegmentFlask
    from tests.flask.app import STATIC

    app = FlaskApp("assets", static_folder=str(STATIC), static_url_path="/assets")
    SegmentFlask(app, client=segment_client)
    response = app.test_client().get("/assets/app.css")
    assert response.status_code == 200
    assert "ajs_anonymous_id" not in response.headers.get("Set-Cookie", "")
    response.close()
    assert sent() == []


def test_a_blueprint_s_static_files_and_those_at_the_site_s_root_are_excluded(
    segment_client: Any, sent: Sent
) -> None:
    """A shared cache keeps them: no cookie, no ``Vary: Cookie``, no user looked up."""
    from flask import Blueprint
    from flask import Flask as FlaskApp

    from segment_flask import SegmentFlask
    from tests.flask.app import STATIC

    app = FlaskApp("site", static_folder=str(STATIC), static_url_path="")
    shop = Blueprint("shop", __name__, static_folder=str(STATIC), url_prefix="/shop")
    catalog = Blueprint("catalog", __name__, static_folder=str(STATIC))
    shop.register_blueprint(catalog, url_prefix="/catalog")
    app.register_blueprint(shop)
    pages = Blueprint("pages", __name__)

    @pages.route("/pages/<filename>")
    def static(filename: str) -> str:  # the app's own view, so named: its pages count
        return f"<p>{filename}</p>"

    app.register_blueprint(pages)
    asked: list[str] = []

    def user_id(request: Any) -> str:
        asked.append(request.path)
        return "u1"

    SegmentFlask(app, client=segment_client, user_id=user_id)
    files = ("/app.css", "/shop/static/app.css", "/shop/catalog/static/app.css")
    for url in files:
        response = app.test_client().get(url)
        assert response.status_code == 200, url
        assert "Set-Cookie" not in response.headers, url
        assert "Cookie" not in response.headers.get("Vary", ""), url
        response.close()
    assert sent() == [] and asked == []
    assert app.test_client().get("/pages/terms").status_code == 200
    assert [m["name"] for m in sent()] == ["pages.static"]


def test_the_app_s_hooks_have_request_analytics_on_static_files(
    segment_client: Any, sent: Sent
) -> None:
    """As on an excluded path: no page call and no cookie, but a ``before_request``
    function reading ``request.analytics`` works there."""
    from flask import Flask as FlaskApp

    from segment_flask import SegmentFlask
    from tests.flask.app import STATIC

    app = FlaskApp("assets", static_folder=str(STATIC))
    SegmentFlask(app, client=segment_client)
    seen: list[str] = []

    @app.before_request
    def note_the_visitor() -> None:
        seen.append(request.analytics.anonymous_id)

    response = app.test_client().get("/static/app.css")
    assert response.status_code == 200 and response.data == (STATIC / "app.css").read_bytes()
    assert "Set-Cookie" not in response.headers
    response.close()
    assert len(seen) == 1 and uuid.UUID(seen[0])
    assert sent() == []


def test_a_static_file_asks_no_consent_and_does_not_vary_on_the_cookie(
    segment_client: Any, sent: Sent
) -> None:
    """A consent hook reading the session would make every asset vary on the cookie
    (a shared cache would keep one copy per visitor): none is asked where no
    automatic call is made."""
    from flask import Flask as FlaskApp

    from segment_flask import SegmentFlask
    from tests.flask.app import STATIC

    app = FlaskApp("assets", static_folder=str(STATIC))
    app.secret_key = "consent-in-the-session"
    asked: list[str] = []

    def consent(request: Any) -> bool:
        asked.append(request.path)
        return bool(session.get("consented", True))

    SegmentFlask(app, client=segment_client, consent=consent)

    @app.get("/")
    def home() -> str:
        return "<p>home</p>"

    client = app.test_client()
    asset = client.get("/static/app.css")
    assert asset.status_code == 200 and "Vary" not in asset.headers
    asset.close()
    assert asked == []
    assert client.get("/").status_code == 200
    assert asked == ["/"] and [m["type"] for m in sent()] == ["page"]


def test_a_single_page_app_s_deep_links_with_static_files_at_the_site_s_root(
    segment_client: Any, sent: Sent
) -> None:
    """Flask's static route at the root takes every path no other route matches; a
    path that names no file is the app's to answer (here the 404 handler's
    ``index.html``), and counts as a page view as it would with ``/static``."""
    from flask import Flask as FlaskApp

    from segment_flask import SegmentFlask
    from tests.flask.app import STATIC

    app = FlaskApp("spa", static_folder=str(STATIC), static_url_path="")
    SegmentFlask(app, client=segment_client)

    @app.errorhandler(404)
    def index(error: Exception) -> tuple[str, int]:
        request.analytics.track("Deep Link Opened")
        return "<!doctype html><div id=app></div>", 200

    client = app.test_client()
    asset = client.get("/app.css")
    assert asset.status_code == 200 and "Set-Cookie" not in asset.headers
    asset.close()
    page = client.get("/orders/5?utm_source=mail")
    assert page.status_code == 200
    assert "ajs_anonymous_id=" in page.headers["Set-Cookie"]
    for escaping in ("/../app.css", "/%2e%2e/app.css"):
        assert client.get(escaping).status_code == 200  # no file: the app's page
    track, deep_link, *escapes = sent()
    assert track["event"] == "Deep Link Opened"
    assert deep_link["type"] == "page" and deep_link["properties"]["path"] == "/orders/5"
    # A page no route serves: named by its path, not after the static view that found no file.
    assert deep_link["name"] == "/orders/5"
    assert deep_link["context"]["campaign"] == {"source": "mail"}
    assert deep_link["anonymousId"] == track["anonymousId"]
    assert [m["type"] for m in escapes] == ["track", "page", "track", "page"]


@pytest.mark.parametrize("page_name", ["route", "template"])
def test_a_single_page_app_s_deep_links_are_named_by_their_paths(
    segment_client: Any, sent: Sent, page_name: str
) -> None:
    """Every deep link of a single-page app served from the site's root is named by
    its path, as its home page is, with either naming of routes: the static view
    that matched them serves none of them."""
    from flask import Flask as FlaskApp

    from segment_flask import SegmentFlask
    from tests.flask.app import STATIC

    app = FlaskApp("spa", static_folder=str(STATIC), static_url_path="")
    SegmentFlask(app, client=segment_client, page_name=page_name)

    @app.errorhandler(404)
    def index(error: Exception) -> str:
        return "<!doctype html><div id=app></div>"

    @app.get("/about")
    def about() -> str:
        return "<p>about</p>"

    client = app.test_client()
    for path in ("/", "/dashboard", "/orders/42", "/about"):
        assert client.get(path).status_code == 200
    named = "about" if page_name == "route" else "/about"
    assert [m["name"] for m in sent()] == ["/", "/dashboard", "/orders/42", named]


def test_an_excluded_blueprint_s_single_page_app_stays_excluded(
    segment_client: Any, sent: Sent
) -> None:
    """A blueprint's static view that finds no file leaves the request to the
    blueprint's 404 handler: a page of no route, but still the blueprint's, which
    ``exclude_routes`` (and its default ``admin``) keeps out."""
    from flask import Blueprint
    from flask import Flask as FlaskApp

    from segment_flask import SegmentFlask
    from tests.flask.app import STATIC

    app = FlaskApp("spas")
    SegmentFlask(app, client=segment_client, exclude_routes=["admin", "backoffice"])
    for name in ("admin", "backoffice", "shop"):
        blueprint = Blueprint(name, __name__, static_folder=str(STATIC), static_url_path="")

        @blueprint.errorhandler(404)
        def index(error: Exception) -> str:
            request.analytics.track("Deep Link Opened")
            return "<!doctype html><div id=app></div>"

        app.register_blueprint(blueprint, url_prefix=f"/{name}")

    client = app.test_client()
    for name in ("admin", "backoffice", "shop"):
        response = client.get(f"/{name}/orders/7")
        assert response.status_code == 200
        assert ("Set-Cookie" in response.headers) is (name == "shop")
    tracks = [m for m in sent() if m["type"] == "track"]
    pages = [m for m in sent() if m["type"] == "page"]
    assert len(tracks) == 3  # request.analytics works in each
    assert [(m["name"], m["properties"]["path"]) for m in pages] == [
        ("/shop/orders/7", "/shop/orders/7")
    ]


def test_exclude_paths_option(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(SEGMENT_EXCLUDE_PATHS=[r"^/products/"]).test_client()
    client.get("/products/1")
    client.get("/")
    assert [m["name"] for m in sent()] == ["home"]


def test_only_get_requests(app: Flask, sent: Sent) -> None:
    client = app.test_client()
    client.post("/track")
    client.head("/")
    assert [m["type"] for m in sent()] == ["track"]


def test_redirect_counts_only_the_page_it_leads_to(app: Flask, sent: Sent) -> None:
    response = app.test_client().get("/redirect", follow_redirects=True)
    assert [r.status_code for r in response.history] == [302]
    assert [m["name"] for m in sent()] == ["home"]


def test_bots_get_no_page_call_and_no_cookie(app: Flask, sent: Sent) -> None:
    response = app.test_client().get(
        "/", headers={"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}
    )
    assert "Set-Cookie" not in response.headers
    assert sent() == []


def test_a_view_that_raises(app: Flask, sent: Sent) -> None:
    with pytest.raises(ViewBug, match="the view failed"):
        app.test_client().get("/boom")
    assert sent() == []


def test_a_view_that_raises_is_a_500_without_page_call(app: Flask, sent: Sent) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert sent() == []


def test_streaming_response_page_call_after_close(app: Flask, sent: Sent) -> None:
    response = app.test_client().get("/stream", buffered=False)
    assert response.is_streamed
    assert sent() == []  # not yet: the body has not been sent
    assert response.get_data() == b"one two"
    response.close()
    [page] = sent()
    assert page["name"] == "stream"


def test_analytics_is_bound_while_a_streamed_body_is_made(app: Flask, sent: Sent) -> None:
    @app.get("/export")
    def export() -> Response:
        @stream_with_context
        def rows() -> Iterator[str]:
            yield "<p>row 1</p>"
            analytics().track("Export Streamed")  # a helper below the view
            seen_in_g.append(g._segment is request.analytics)  # type: ignore[attr-defined]
            yield "<p>row 2</p>"

        kept_in_g.append(g._get_current_object())  # type: ignore[attr-defined]
        return Response(rows(), mimetype="text/html")

    seen_in_g: list[bool] = []
    kept_in_g: list[Any] = []
    response = app.test_client().get("/export", buffered=False)
    assert response.get_data() == b"<p>row 1</p><p>row 2</p>"
    response.close()
    assert current() is None  # unbound after the body, whichever Flask kept the context
    assert seen_in_g == [True]
    assert "_segment" not in vars(kept_in_g[0])  # gone as it closed
    track, page = sent()
    assert track["event"] == "Export Streamed" and page["name"] == "export"
    assert track["anonymousId"] == page["anonymousId"]


def test_a_streamed_page_whose_body_fails_gets_its_page_call(app: Flask, sent: Sent) -> None:
    """The visitor has the page's start, with its status."""

    @app.get("/report")
    def report() -> Response:
        def rows() -> Iterator[str]:
            yield "<p>row</p>"
            raise RuntimeError("the report's database went away")

        return Response(rows(), mimetype="text/html")

    with pytest.raises(RuntimeError, match="database went away"):
        app.test_client().get("/report", buffered=True)
    [page] = sent()
    assert page["type"] == "page" and page["name"] == "report"
    assert current() is None


@pytest.mark.parametrize("with_context", [True, False], ids=["stream_with_context", "plain"])
def test_the_hooks_of_a_streamed_page_see_the_request_s_context(
    make_app: MakeApp, sent: Sent, with_context: bool
) -> None:
    # They run as the response closes, after Flask left the request's contexts.
    def properties(native: Any, response: Any) -> dict[str, Any]:
        user = current_user.get_id() if current_user.is_authenticated else None
        return {"tenant": g.tenant, "lang": session.get("lang"), "user": user, "path": request.path}

    def wanted(native: Any, response: Any) -> bool:
        return bool(g.tenant == "acme")

    app = make_app(SEGMENT_PAGE_PROPERTIES=properties, SEGMENT_PAGE_FILTER=wanted)

    @app.before_request
    def tenant() -> None:
        g.tenant = "acme"

    @app.get("/report")
    def report() -> Response:
        session["lang"] = "fr"
        login_user(User("ann-7"))

        def rows() -> Iterator[str]:
            yield "<p>row 1</p>"
            yield "<p>row 2</p>"

        return Response(stream_with_context(rows()) if with_context else rows())

    response = app.test_client().get("/report")
    assert response.get_data() == b"<p>row 1</p><p>row 2</p>"
    response.close()
    identify, page = sent()
    assert identify["type"] == "identify" and page["name"] == "report"
    assert {k: page["properties"][k] for k in ("tenant", "lang", "user", "path")} == {
        "tenant": "acme",
        "lang": "fr",
        "user": "ann-7",
        "path": "/report",
    }


def test_a_page_sent_as_a_file_is_a_page_view(app: Flask, sent: Sent, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>the single-page app</p>")

    @app.get("/app/<path:path>")
    def spa(path: str) -> Response:
        return send_from_directory(tmp_path, "index.html")

    with app.test_client().get("/app/orders/7", headers=NAVIGATE) as response:
        assert response.status_code == 200 and "ajs_anonymous_id=" in response.headers["Set-Cookie"]
    [page] = sent()
    assert page["properties"]["path"] == "/app/orders/7"


def test_page_calls_off_keeps_explicit_calls(make_app: MakeApp, sent: Sent) -> None:
    make_app(SEGMENT_PAGE_CALLS=False).test_client().get("/track")
    assert [m["type"] for m in sent()] == ["track"]


def test_page_filter(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(SEGMENT_PAGE_FILTER="tests.flask.app.only_home").test_client()
    client.get("/products/1")
    client.get("/")
    assert [m["name"] for m in sent()] == ["home"]


def test_page_tracked_signal(app: Flask, sent: Sent) -> None:
    received: list[tuple[Any, dict[str, Any]]] = []

    def on_page(sender: Any, message: dict[str, Any]) -> None:
        received.append((sender, message))

    with page_tracked.connected_to(on_page, app):
        client = app.test_client()
        client.get("/")
        client.get("/healthz")
    [page] = sent()
    [(sender, message)] = received
    assert sender is app
    assert message["messageId"] == page["messageId"]
    assert message["name"] == "home"


def test_page_tracked_only_for_its_app(make_app: MakeApp, sent: Sent) -> None:
    first, second = make_app(), make_app()
    received: list[Any] = []
    with page_tracked.connected_to(lambda sender, message: received.append(sender), first):
        second.test_client().get("/")
        first.test_client().get("/")
    assert received == [first]
    assert len(sent()) == 2


@pytest.mark.parametrize("returning", [False, True])
def test_a_finished_request_is_freed_without_the_cycle_collector(
    app: Flask, sent: Sent, returning: bool
) -> None:
    browser = app.test_client()
    if returning:
        browser.set_cookie("ajs_anonymous_id", "3b241101-e2bb-4255-8caf-4136c566a962")
    browser.get("/")  # warm-up: first-request work of the app
    assert left_to_the_collector(lambda: browser.get("/products/42")) == []
    assert left_to_the_collector(lambda: browser.get("/stream").close()) == []
    paths = [page["properties"]["path"] for page in sent()]
    assert paths == ["/", "/products/42", "/stream"]
