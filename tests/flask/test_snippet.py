"""``{{ segment_snippet() }}``: the Jinja global ``SegmentFlask`` registers."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, Response, g, render_template_string, request, stream_template_string
from flask_login import login_user

from segment_core import Client
from segment_flask import SegmentFlask, segment_snippet
from tests.flask.app import User
from tests.flask.conftest import MakeApp, Sent
from tests.web.snippets import has_snippet, script_tags, snippet_settings

KEY = "website-key"
PAGE = "<html><head>{{ segment_snippet() }}</head><body>hi</body></html>"


def add_views(app: Flask) -> Flask:
    @app.get("/page")
    def page() -> str:
        return render_template_string(PAGE)

    @app.get("/login-page")
    def login_page() -> str:
        login_user(User("u-1"))
        request.analytics.identify("u-1")  # type: ignore[attr-defined]
        return render_template_string(PAGE)

    @app.post("/sso-return")
    def sso_return() -> str:  # another site's form, posted back
        login_user(User("u-2"))
        return render_template_string(PAGE)

    @app.get("/talisman")
    def talisman() -> str:
        request.csp_nonce = "talisman-nonce"  # type: ignore[attr-defined]
        return render_template_string(PAGE)

    @app.get("/g-nonce")
    def g_nonce() -> str:
        g.nonce = "g-nonce"
        return render_template_string(PAGE)

    @app.get("/ready")
    def ready() -> str:  # a health check: excluded by default
        return render_template_string(PAGE)

    return app


def test_the_snippet_carries_the_servers_visitor(make_app: MakeApp, sent: Sent) -> None:
    app = add_views(make_app(SEGMENT_BROWSER_WRITE_KEY=KEY))
    response = app.test_client().get("/page")
    html = response.get_data(as_text=True)
    settings = snippet_settings(html)
    cookie = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert settings["anonymousId"] == cookie
    assert (settings["writeKey"], settings["page"], settings["userId"]) == (KEY, False, None)
    [server_page] = sent(type="page")
    assert server_page["anonymousId"] == cookie


def test_a_user_the_view_logs_in(make_app: MakeApp) -> None:
    app = add_views(make_app(SEGMENT_BROWSER_WRITE_KEY=KEY))
    settings = snippet_settings(app.test_client().get("/login-page").get_data(as_text=True))
    assert settings["userId"] == "u-1"


def test_a_logged_in_user(make_app: MakeApp) -> None:
    app = add_views(make_app(SEGMENT_BROWSER_WRITE_KEY=KEY))
    client = app.test_client()
    client.get("/login-page")
    settings = snippet_settings(client.get("/page").get_data(as_text=True))
    assert settings["userId"] == "u-1"


def test_page_source_browser(make_app: MakeApp, sent: Sent) -> None:
    app = add_views(make_app(SEGMENT_BROWSER_WRITE_KEY=KEY, SEGMENT_PAGE_SOURCE="browser"))
    assert snippet_settings(app.test_client().get("/page").get_data(as_text=True))["page"]
    assert sent(type="page") == []


def test_nonces(make_app: MakeApp) -> None:
    app = add_views(make_app(SEGMENT_BROWSER_WRITE_KEY=KEY))
    assert script_tags(app.test_client().get("/talisman").get_data(as_text=True)) == [
        '<script nonce="talisman-nonce">\n'
    ]
    other = add_views(
        make_app(SEGMENT_BROWSER_WRITE_KEY=KEY, SEGMENT_CSP_NONCE=lambda request: g.nonce)
    )
    assert script_tags(other.test_client().get("/g-nonce").get_data(as_text=True)) == [
        '<script nonce="g-nonce">\n'
    ]


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({"Sec-GPC": "1"}, "/page"),
        ({"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}, "/page"),
        ({}, "/ready"),
    ],
)
def test_nothing_for_visitors_the_server_does_not_track(
    make_app: MakeApp, headers: dict[str, str], path: str
) -> None:
    app = add_views(make_app(SEGMENT_BROWSER_WRITE_KEY=KEY))
    response = app.test_client().get(path, headers=headers)
    assert response.status_code == 200
    assert not has_snippet(response.get_data(as_text=True))


def test_outside_a_request_nothing(make_app: MakeApp) -> None:
    app = make_app(SEGMENT_BROWSER_WRITE_KEY=KEY)
    with app.app_context():
        assert render_template_string(PAGE) == "<html><head></head><body>hi</body></html>"
    assert segment_snippet() == ""


def test_an_email_rendered_in_a_request_context_of_its_own_is_empty_and_silent(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(SEGMENT_BROWSER_WRITE_KEY=KEY)
    email = "<p>Welcome</p>{{ segment_snippet() }}"
    emails: list[str] = []

    @app.get("/signup")
    def signup() -> str:
        # A mail helper that pushes an app context of its own: a g without the view's.
        with app.app_context(), app.test_request_context("/welcome"):
            emails.append(render_template_string(email))
        return render_template_string(PAGE)

    @app.cli.command("send-welcome")
    def send_welcome() -> None:
        with app.test_request_context("/welcome"):
            emails.append(render_template_string(email))

    with caplog.at_level(logging.WARNING):
        page = app.test_client().get("/signup").get_data(as_text=True)
        result = app.test_cli_runner().invoke(args=["send-welcome"])
        with app.test_request_context("/welcome"):
            emails.append(render_template_string(email))
    assert result.exit_code == 0, result.output
    assert emails == ["<p>Welcome</p>"] * 3
    assert has_snippet(page)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("segment")] == []


def test_a_warning_when_the_app_serving_the_page_has_no_segment(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Flask(__name__)
    app.add_template_global(segment_snippet, "segment_snippet")
    app.add_url_rule("/page", "page", lambda: render_template_string(PAGE))
    with caplog.at_level(logging.WARNING, logger="segment.core.web"):
        html = app.test_client().get("/page").get_data(as_text=True)
    assert html == "<html><head></head><body>hi</body></html>"
    assert "is the middleware installed?" in caplog.text


def test_a_warning_when_the_snippet_has_no_browser_key(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="segment_flask"):
        make_app()
        assert "SEGMENT_BROWSER_WRITE_KEY" not in caplog.text
        make_app(SEGMENT_PAGE_SOURCE="browser")
    assert "SEGMENT_BROWSER_WRITE_KEY" in caplog.text


def test_a_bad_option_names_its_key(make_app: MakeApp) -> None:
    with pytest.raises(ValueError, match=r"SEGMENT_PAGE_SOURCE.*page_source must be"):
        make_app(SEGMENT_PAGE_SOURCE="everywhere")


def test_registered_on_every_app(make_app: MakeApp) -> None:
    app: Any = make_app()
    assert app.jinja_env.globals["segment_snippet"] is segment_snippet


def test_a_page_with_the_snippet_varies_on_cookie(segment_client: Client) -> None:
    # An app without sessions or logins: the Vary is the snippet's alone.
    app = Flask(__name__)
    app.config["SEGMENT_BROWSER_WRITE_KEY"] = KEY
    SegmentFlask(app, client=segment_client)
    app.add_url_rule("/page", "page", lambda: render_template_string(PAGE))
    app.add_url_rule("/plain", "plain", lambda: "<p>no snippet</p>")
    client = app.test_client()
    client.set_cookie("ajs_anonymous_id", "visitor-A-1111")
    response = client.get("/page")
    assert snippet_settings(response.get_data(as_text=True))["anonymousId"] == "visitor-A-1111"
    assert response.headers["Vary"] == "Cookie"
    assert response.headers["Cache-Control"] == "private"
    assert "Vary" not in client.get("/plain").headers


def test_a_page_naming_a_visitor_without_the_cookie_is_kept_out_of_shared_caches(
    segment_client: Client,
) -> None:
    # With set_cookie off, each new visitor gets an id of its own in the page and no
    # cookie: all send the same (empty) Cookie header, so Vary alone would let a
    # shared cache hand the first visitor's id to every other.
    app = Flask(__name__)
    app.config["SEGMENT_BROWSER_WRITE_KEY"] = KEY
    SegmentFlask(app, client=segment_client, set_cookie=False)
    public = {"Cache-Control": "public, max-age=600"}
    app.add_url_rule("/page", "page", lambda: (render_template_string(PAGE), 200, public))
    response = app.test_client().get("/page")
    assert snippet_settings(response.get_data(as_text=True))["anonymousId"]
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "private, max-age=600"
    assert response.headers["Vary"] == "Cookie"


@pytest.mark.parametrize(
    "headers",
    [{"Sec-GPC": "1"}, {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}],
    ids=["gpc", "bot"],
)
def test_the_inert_page_of_a_visitor_not_tracked_is_kept_out_of_shared_caches(
    segment_client: Client, headers: dict[str, str]
) -> None:
    # Stored by a shared cache, the page without analytics.js would be every visitor's.
    app = Flask(__name__)
    app.config["SEGMENT_BROWSER_WRITE_KEY"] = KEY
    SegmentFlask(app, client=segment_client, exclude_routes=["docs"])
    public = {"Cache-Control": "public, max-age=600"}
    app.add_url_rule("/page", "page", lambda: (render_template_string(PAGE), 200, public))
    app.add_url_rule("/ready", "ready", lambda: (render_template_string(PAGE), 200, public))
    app.add_url_rule("/docs", "docs", lambda: (render_template_string(PAGE), 200, public))
    app.add_url_rule("/streamed", "streamed", lambda: (stream_template_string(PAGE), 200, public))
    client = app.test_client()
    for path in ("/page", "/streamed"):  # a streamed one's headers go before its body
        response = client.get(path, headers=headers)
        assert not has_snippet(response.get_data(as_text=True))
        assert response.headers["Cache-Control"] == "private, max-age=600", path
        response.close()
    # A page no visitor is tracked on (a health check, API docs) is the same for all.
    for path in ("/ready", "/docs"):
        for asking in (headers, {}):
            response = client.get(path, headers=asking)
            assert response.headers["Cache-Control"] == "public, max-age=600", path


def test_an_excluded_route_gets_no_snippet(make_app: MakeApp, sent: Sent) -> None:
    app = add_views(
        make_app(
            SEGMENT_BROWSER_WRITE_KEY=KEY,
            SEGMENT_PAGE_SOURCE="browser",
            SEGMENT_EXCLUDE_ROUTES=["talisman"],
        )
    )
    assert not has_snippet(app.test_client().get("/talisman").get_data(as_text=True))
    assert has_snippet(app.test_client().get("/page").get_data(as_text=True))
    assert sent(type="page") == []


def test_a_logged_in_users_id_stays_with_a_cookie_of_another_name(make_app: MakeApp) -> None:
    app = add_views(make_app(SEGMENT_BROWSER_WRITE_KEY=KEY, SEGMENT_COOKIE_NAME="my_anon"))
    client = app.test_client()
    client.get("/login-page")
    client.delete_cookie("my_anon")  # a session from before the analytics cookie
    handed = [
        snippet_settings(client.get("/page").get_data(as_text=True))["anonymousId"] for _ in "abc"
    ]
    cookie = client.get_cookie("my_anon")
    assert len(set(handed)) == 1 and cookie is not None and cookie.value == handed[0]


def test_a_streamed_template_renders_the_snippet_and_varies_on_cookie(
    make_app: MakeApp, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    # Flask tears the request down before a streamed body is made.
    app = make_app(SEGMENT_BROWSER_WRITE_KEY=KEY)
    app.add_url_rule("/streamed", "streamed", lambda: stream_template_string(PAGE))
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get("/streamed")
        html = response.get_data(as_text=True)
        response.close()
    assert response.headers["Vary"] == "Cookie"
    cookie = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert snippet_settings(html)["anonymousId"] == cookie
    assert "did not see" not in caplog.text
    [page] = sent(type="page")
    assert page["anonymousId"] == cookie


@pytest.mark.parametrize("browser_key", [KEY, None])
def test_a_streamed_body_without_a_snippet_to_come_does_not_vary(
    segment_client: Client, browser_key: str | None
) -> None:
    # An app without sessions or logins: a Vary would be the snippet's alone.
    app = Flask(__name__)
    app.config["SEGMENT_BROWSER_WRITE_KEY"] = browser_key
    SegmentFlask(app, client=segment_client)
    app.add_url_rule("/streamed", "streamed", lambda: stream_template_string(PAGE))
    csv = Response(iter(["a,b\n"]), mimetype="text/csv")
    app.add_url_rule("/export", "export", lambda: csv)
    client = app.test_client()
    # A returning visitor: the response that sets the cookie varies for that alone.
    client.set_cookie("ajs_anonymous_id", "visitor-A-1111")
    assert "Vary" not in client.get("/export").headers  # no page: no snippet
    response = client.get("/streamed")
    assert has_snippet(response.get_data(as_text=True)) == (browser_key is not None)
    assert ("Vary" in response.headers) == (browser_key is not None)


def test_a_login_by_a_form_another_site_posts_keeps_the_browser_s_visitor(
    make_app: MakeApp, sent: Sent
) -> None:
    app = add_views(make_app(SEGMENT_BROWSER_WRITE_KEY=KEY))
    headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    response = app.test_client().post("/sso-return", headers=headers)
    assert "ajs_anonymous_id" not in response.headers.get("Set-Cookie", "")
    settings = snippet_settings(response.get_data(as_text=True))
    assert (settings["anonymousId"], settings["userId"]) == (None, "u-2")
    [identify] = sent(type="identify")
    assert identify["userId"] == "u-2"
