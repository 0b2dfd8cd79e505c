"""Who the visitor is (cookie, Flask-Login, hooks), and what their request says."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from typing import Any

import pytest
from flask import Flask, Request, Response, g, redirect, render_template_string, request
from flask_login import UserMixin, current_user, login_user, logout_user
from werkzeug.datastructures import ImmutableMultiDict

from tests.flask.app import User
from tests.flask.conftest import MakeApp, Sent
from tests.web.snippets import snippet_settings

UUID = "8d2b4f34-1c4e-4b6e-9a3f-0c6d9f1e2a7b"


def test_cookie_set_once_and_reused(app: Flask, sent: Sent) -> None:
    client = app.test_client()
    first = client.get("/")
    [header] = first.headers.getlist("Set-Cookie")
    assert "Max-Age=31536000" in header and "Path=/" in header and "SameSite=Lax" in header
    assert "HttpOnly" not in header and "Secure" not in header and "Domain" not in header
    cookie = client.get_cookie("ajs_anonymous_id")
    assert cookie is not None
    second = client.get("/products/1")
    assert "Set-Cookie" not in second.headers
    assert [p["anonymousId"] for p in sent()] == [cookie.value, cookie.value]


def test_no_cookie_on_a_redirect_from_http_to_https(make_app: MakeApp) -> None:
    app = make_app()
    app.add_url_rule("/to-https", "to_https", lambda: redirect("https://localhost/to-https"))
    app.add_url_rule("/back-home", "back_home", lambda: redirect("/"))
    to_https = app.test_client().get("/to-https")
    assert to_https.status_code == 302 and "Set-Cookie" not in to_https.headers
    [header] = (
        app.test_client().get("/", base_url="https://localhost").headers.getlist("Set-Cookie")
    )
    assert header.endswith("; Secure")
    back_home = app.test_client().get("/back-home")  # another redirect keeps the cookie
    assert back_home.status_code == 302 and len(back_home.headers.getlist("Set-Cookie")) == 1


def test_cookie_on_https_with_domain_and_classic_format(make_app: MakeApp) -> None:
    app = make_app(SEGMENT_COOKIE_DOMAIN=".shop.example", cookie_format="quoted")
    response = app.test_client().get("/", base_url="https://www.shop.example")
    [header] = response.headers.getlist("Set-Cookie")
    assert header.startswith("ajs_anonymous_id=%22") and "%22;" in header
    assert "; Secure" in header and "; Domain=.shop.example;" in header


@pytest.mark.parametrize("value", [f"%22{UUID}%22", UUID])
def test_classic_and_raw_cookies(app: Flask, sent: Sent, value: str) -> None:
    client = app.test_client()
    client.set_cookie("ajs_anonymous_id", value)
    client.set_cookie("ajs_user_id", "%22user-5%22")
    response = client.get("/")
    assert "Set-Cookie" not in response.headers
    [page] = sent()
    assert page["anonymousId"] == UUID
    assert "userId" not in page  # the browser-written ajs_user_id decides nothing


OTHER_UUID = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"


@pytest.mark.parametrize(
    "header",
    [
        f"ajs_anonymous_id={UUID}",
        f'theme="dark \\"blue\\""; ajs_anonymous_id={UUID}; ajs_anonymous_id={OTHER_UUID}; n',
        f"caf\u00c3\u00a9=cr\u00c3\u00a8me; ajs_anonymous_id=%22{UUID}%22;;",
    ],
)
@pytest.mark.parametrize("secret_key", [None, "s3cret"], ids=["no session", "session"])
def test_the_view_reads_the_cookies_werkzeug_parses(
    make_app: MakeApp, header: str, secret_key: str | None
) -> None:
    app = make_app(SECRET_KEY=secret_key)  # with a key, the session reads the cookies first

    @app.get("/cookies")
    def cookies() -> dict[str, Any]:
        parsed = request.cookies
        return {
            "type": type(parsed).__name__,
            "items": list(parsed.items(multi=True)),
            "anonymous_id": request.analytics.anonymous_id,  # type: ignore[attr-defined]
        }

    response = app.test_client(use_cookies=False).get("/cookies", headers={"Cookie": header})
    expected = Request.from_values(headers={"Cookie": header}).cookies
    assert response.get_json() == {
        "type": type(expected).__name__,
        "items": [list(item) for item in expected.items(multi=True)],
        "anonymous_id": UUID,  # the first value, as request.cookies.get() gives
    }


def test_a_request_class_with_its_own_cookies_is_asked(make_app: MakeApp, sent: Sent) -> None:
    class SignedCookiesRequest(Request):
        @property
        def cookies(self) -> ImmutableMultiDict[str, str]:  # type: ignore[override]
            return ImmutableMultiDict({"ajs_anonymous_id": UUID})

    app = make_app()
    app.request_class = SignedCookiesRequest
    client = app.test_client(use_cookies=False)
    response = client.get("/", headers={"Cookie": f"ajs_anonymous_id={OTHER_UUID}"})
    assert "Set-Cookie" not in response.headers
    assert [page["anonymousId"] for page in sent()] == [UUID]


def test_the_user_cookie_counts_only_when_the_app_opts_in(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(SEGMENT_USER_ID_FROM_COOKIE=True).test_client()
    client.set_cookie("ajs_anonymous_id", UUID)
    client.set_cookie("ajs_user_id", "%22user-5%22")
    client.get("/")
    assert sent()[0]["userId"] == "user-5"


@pytest.mark.parametrize("set_cookie", [True, False])
def test_a_cookie_set_by_the_view_is_left_alone(
    make_app: MakeApp, sent: Sent, set_cookie: bool
) -> None:
    app = make_app(set_cookie=set_cookie)  # off too: the app that writes the id cookie itself
    response = app.test_client().get("/own-cookie", headers={"Accept": "text/html"})
    [header] = response.headers.getlist("Set-Cookie")
    assert header.startswith("ajs_anonymous_id=chosen-by-the-view;")
    # The id the browser keeps is the page call's.
    assert [m["anonymousId"] for m in sent() if m["type"] == "page"] == ["chosen-by-the-view"]


def test_excluded_paths_get_no_cookie(app: Flask) -> None:
    assert "Set-Cookie" not in app.test_client().get("/healthz").headers


def test_flask_login_user(app: Flask, sent: Sent) -> None:
    client = app.test_client()
    client.get("/login/ann-7")
    assert client.get("/whoami").get_json()["user_id"] == "ann-7"
    client.get("/")
    messages = sent()
    assert [(m["type"], m.get("name"), m.get("userId")) for m in messages] == [
        ("identify", None, "ann-7"),  # the login joins the visitor to the user
        ("page", "login", "ann-7"),
        ("page", "home", "ann-7"),  # /whoami answers JSON: not a page view
    ]
    assert len({m["anonymousId"] for m in messages}) == 1


def test_a_login_user_in_a_streamed_body_sends_no_identify_and_carries_the_user(
    make_app: MakeApp, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    from flask import stream_with_context

    from tests.flask.app import User

    app = make_app()

    @app.get("/stream-login")
    def stream_login() -> Any:
        def body() -> Any:
            yield "<p>signing in</p>"
            login_user(User("ann-7"))  # the response started: its headers are sent
            request.analytics.track("Signed In")  # type: ignore[attr-defined]
            yield "<p>done</p>"

        return app.response_class(stream_with_context(body()), mimetype="text/plain")

    response = app.test_client().get("/stream-login")
    assert response.get_data(as_text=True) == "<p>signing in</p><p>done</p>"
    visitor = response.headers["Set-Cookie"].split(";")[0].split("=")[1]
    messages = sent()
    assert [m["type"] for m in messages] == ["track"]
    assert (messages[0]["userId"], messages[0]["anonymousId"]) == ("ann-7", visitor)
    assert "sends no identify" in caplog.text


def test_a_logout_ends_the_user_for_the_rest_of_the_request(make_app: MakeApp, sent: Sent) -> None:
    app = make_app()

    @app.get("/logout")
    def logout() -> str:
        request.analytics.track("Signing Out")  # type: ignore[attr-defined]
        logout_user()
        request.analytics.track("Signed Out")  # type: ignore[attr-defined]
        return "<p>bye</p>"

    client = app.test_client()
    client.get("/login/ann-7")
    client.get("/logout")
    _, _, signing_out, signed_out, page = sent()
    assert signing_out["userId"] == "ann-7"
    assert "userId" not in signed_out and "userId" not in page
    assert signed_out["anonymousId"] == page["anonymousId"] == signing_out["anonymousId"]


def test_a_logout_expires_the_user_cookie_analytics_js_keeps(make_app: MakeApp) -> None:
    # logout_user(); return redirect(...): the page it leads to runs no
    # analytics.reset(), and must name no user in the browser either.
    app = make_app()

    @app.get("/logout")
    def logout() -> Any:
        logout_user()
        return redirect("/")

    client = app.test_client()
    client.get("/login/ann-7")
    client.set_cookie("ajs_user_id", "ann-7")
    response = client.get("/logout")
    assert response.status_code == 302
    assert "ajs_user_id=; Max-Age=0; Path=/; SameSite=Lax" in response.headers.getlist("Set-Cookie")
    assert response.headers["Cache-Control"] == "private"
    client.delete_cookie("ajs_user_id")  # none to expire: none written
    client.get("/login/ann-7")
    assert not [
        c for c in client.get("/logout").headers.getlist("Set-Cookie") if "ajs_user_id" in c
    ]


def test_a_logout_ends_the_user_whatever_a_user_id_hook_reading_g_says(
    make_app: MakeApp, sent: Sent
) -> None:
    # The app keeps its user in g for the request, as Flask's tutorial does.
    app = make_app(user_id=lambda request: g.get("user_id"))

    @app.before_request
    def load_user() -> None:
        g.user_id = current_user.get_id() if current_user.is_authenticated else None

    @app.get("/logout")
    def logout() -> str:
        request.analytics.track("Signing Out")  # type: ignore[attr-defined]
        logout_user()
        request.analytics.track("Signed Out")  # type: ignore[attr-defined]
        return "<p>bye</p>"

    client = app.test_client()
    client.get("/login/ann-7")
    client.get("/logout")
    *_, signing_out, signed_out, page = sent()
    assert signing_out["userId"] == "ann-7"
    assert "userId" not in signed_out and "userId" not in page
    assert signed_out["anonymousId"] == page["anonymousId"] == signing_out["anonymousId"]


class TokenUser(UserMixin):
    """Flask-Login's alternative tokens: ``get_id()`` is a token the app changes to
    end the user's sessions (at a password change)."""

    def __init__(self, user_id: object) -> None:
        self.id = user_id
        self.token = secrets.token_hex(8)

    def get_id(self) -> str:
        return self.token


class NoIdUser(UserMixin):
    """A user without an ``id`` attribute: ``get_id()`` is its id."""

    def __init__(self, name: str) -> None:
        self.name = name

    def get_id(self) -> str:
        return self.name


def token_login_app(make_app: MakeApp, user: Any) -> Flask:
    app = make_app(SEGMENT_BROWSER_WRITE_KEY="website-key")
    login_manager = app.login_manager  # type: ignore[attr-defined]
    login_manager.user_loader(lambda token: user if token == user.get_id() else None)

    @app.get("/sign-in")
    def sign_in() -> str:
        login_user(user)
        return "<p>in</p>"

    @app.get("/account")
    def account() -> str:
        return render_template_string("<head>{{ segment_snippet() }}</head>")

    return app


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [(42, "42"), (uuid.UUID(UUID), UUID), ("ann-7", "ann-7")],
)
def test_the_user_id_is_the_users_id_not_the_token_get_id_returns(
    make_app: MakeApp, sent: Sent, user_id: object, expected: str
) -> None:
    user = TokenUser(user_id)
    client = token_login_app(make_app, user).test_client()
    client.get("/sign-in")
    snippet = snippet_settings(client.get("/account").get_data(as_text=True))
    user.token = secrets.token_hex(8)  # sessions ended: the user signs in again
    client.get("/sign-in")
    client.get("/account")
    assert snippet["userId"] == expected
    messages = sent()
    assert [m["type"] for m in messages] == ["identify", "page", "page"] * 2
    assert {m["userId"] for m in messages} == {expected}


def test_a_user_without_an_id_attribute_is_named_by_get_id(make_app: MakeApp, sent: Sent) -> None:
    client = token_login_app(make_app, NoIdUser("ann")).test_client()
    client.get("/sign-in")
    client.get("/account")
    assert [(m["type"], m["userId"]) for m in sent()] == [
        ("identify", "ann"),
        ("page", "ann"),
        ("page", "ann"),
    ]


class UnreadableIdUser(UserMixin):
    """A user whose ``id`` fails to load (a dict-backed or lazily loaded record)."""

    @property
    def id(self) -> str:
        raise KeyError("id")

    def get_id(self) -> str:
        return "u-123"


class UnsavedUser(UserMixin):
    """A user logged in before the database gave it an id: ``get_id()`` is "None"."""

    id = None


def test_a_user_whose_id_cannot_be_read_is_named_by_get_id(make_app: MakeApp, sent: Sent) -> None:
    client = token_login_app(make_app, UnreadableIdUser()).test_client()
    client.get("/sign-in")
    assert [(m["type"], m["userId"]) for m in sent()] == [("identify", "u-123"), ("page", "u-123")]


def test_a_user_not_saved_yet_is_no_user(make_app: MakeApp, sent: Sent) -> None:
    client = token_login_app(make_app, UnsavedUser()).test_client()
    client.get("/sign-in")
    assert [(m["type"], m.get("userId")) for m in sent()] == [("page", None)]


def test_a_user_with_tokens_not_saved_yet_is_no_user_not_its_token(
    make_app: MakeApp, sent: Sent
) -> None:
    # A signup logging its user in before the commit gives the row its id: get_id()
    # is the session token, which no event may carry.
    user = TokenUser(None)
    client = token_login_app(make_app, user).test_client()
    client.get("/sign-in")
    messages = sent()
    assert [(m["type"], m.get("userId")) for m in messages] == [("page", None)]
    assert user.token not in json.dumps(messages)


def test_a_signup_logging_its_user_in_before_the_commit_is_identified_once_it_has_an_id(
    make_app: MakeApp, sent: Sent
) -> None:
    user = TokenUser(None)
    app = token_login_app(make_app, user)

    @app.get("/sign-up")
    def sign_up() -> str:
        login_user(user)
        user.id = 42  # the commit gives the row its id
        request.analytics.track("Signed Up")
        return "<p>welcome</p>"

    answer = app.test_client().get("/sign-up", headers={"Accept": "text/html"})
    messages = sent()
    assert [(m["type"], m.get("userId")) for m in messages] == [
        ("track", "42"),
        ("identify", "42"),
        ("page", "42"),
    ]
    track, identify, page = messages
    # The new visitor's id, joined to the user, and kept by the browser: the view's
    # call made before the identify too (a browser signing in, not an API client).
    assert track["anonymousId"] == identify["anonymousId"] == page["anonymousId"]
    assert f"ajs_anonymous_id={identify['anonymousId']}" in answer.headers["Set-Cookie"]
    assert user.token not in json.dumps(messages)


def test_an_identify_on_login_hook_decides_each_login(make_app: MakeApp, sent: Sent) -> None:
    asked: list[tuple[str, str]] = []

    def identify_on_login(request: Request, user: Any) -> bool:
        asked.append((request.path, user.id))
        return "as" not in request.args  # an admin signing in as this user

    client = make_app(identify_on_login=identify_on_login).test_client()
    client.get("/login/ann-7")
    client.get("/login/bob-8?as=1")
    assert asked == [("/login/ann-7", "ann-7"), ("/login/bob-8", "bob-8")]
    identifies = [m for m in sent() if m["type"] == "identify"]
    assert [m["userId"] for m in identifies] == ["ann-7"]


def test_user_id_hook_wins(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(SEGMENT_USER_ID="tests.flask.app.header_user").test_client()
    client.get("/login/ann-7")  # the hook names nobody: no identify either
    client.get("/login/ann-7", headers={"X-User": "acct-7"})
    client.get("/", headers={"X-User": "from-header"})
    assert [(m["type"], m.get("userId")) for m in sent()] == [
        ("page", None),
        ("identify", "acct-7"),
        ("page", "acct-7"),
        ("page", "from-header"),
    ]


def test_a_failing_user_loader_is_logged_and_the_request_goes_on(
    app: Flask, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    client.get("/login/broken")
    with caplog.at_level(logging.ERROR, logger="segment.flask"):
        response = client.get("/")
    assert response.status_code == 200
    assert "could not load Flask-Login's user" in caplog.text
    assert "userId" not in sent()[-1]


@pytest.mark.parametrize("loader", ["user_loader", "request_loader"])
def test_a_loader_that_tracks_runs_once_and_its_event_is_sent_once(
    make_app: MakeApp, sent: Sent, loader: str
) -> None:
    """A "last seen" event in Flask-Login's loader: the loader is not run again inside
    itself to name the user of its own call."""
    app = make_app()
    loads: list[str] = []

    def load_and_track(key: Any) -> User | None:
        loads.append(request.path)
        request.analytics.track("Session Resumed")
        return User("ann-7")

    if loader == "user_loader":
        app.login_manager.user_loader(load_and_track)  # type: ignore[attr-defined]
    else:
        app.login_manager._user_callback = None  # type: ignore[attr-defined]
        app.login_manager.request_loader(load_and_track)  # type: ignore[attr-defined]

    @app.get("/account")
    def account() -> str:
        request.analytics.track("Account Viewed")
        return "<p>" + str(current_user.id) + "</p>"

    client = app.test_client()
    if loader == "user_loader":
        client.get("/login/ann-7")
    loads.clear()
    before = len(sent())
    assert client.get("/account").status_code == 200
    assert client.get("/").status_code == 200  # the page call reads the user
    assert loads == ["/account", "/"]
    assert [(m["type"], m.get("event"), m.get("userId")) for m in sent()[before:]] == [
        ("track", "Session Resumed", None),
        ("track", "Account Viewed", "ann-7"),
        ("page", None, "ann-7"),
        ("track", "Session Resumed", None),
        ("page", None, "ann-7"),
    ]


# -- context ------------------------------------------------------------------------


def test_forwarded_for_ignored_unless_proxies_are_trusted(app: Flask, sent: Sent) -> None:
    app.test_client().get("/", headers={"X-Forwarded-For": "198.51.100.4"})
    assert sent()[0]["context"]["ip"] == "127.0.0.1"


@pytest.mark.parametrize("trusted", [1, ["127.0.0.0/8"], "127.0.0.1"])
def test_trusted_proxies(make_app: MakeApp, sent: Sent, trusted: object) -> None:
    app = make_app(SEGMENT_TRUSTED_PROXIES=trusted)
    app.test_client().get("/", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.4"})
    assert sent()[0]["context"]["ip"] == "198.51.100.4"


def test_anonymize_and_no_ip(make_app: MakeApp, sent: Sent) -> None:
    peer = {"REMOTE_ADDR": "198.51.100.4"}
    make_app(anonymize_ip=True).test_client().get("/", environ_base=peer)
    make_app(collect_ip=False).test_client().get("/", environ_base=peer)
    assert [m["context"]["ip"] for m in sent()] == ["198.51.100.0", "0.0.0.0"]


def test_secrets_are_redacted(app: Flask, sent: Sent) -> None:
    app.test_client().get(
        "/?token=s3cret&q=1", headers={"Referer": "https://a.example/reset?password=hunter2"}
    )
    [page] = sent()
    assert page["properties"]["url"] == "http://localhost/?token=REDACTED&q=1"
    assert page["properties"]["search"] == "?token=REDACTED&q=1"
    assert page["properties"]["referrer"] == "https://a.example/reset?password=REDACTED"
    assert "s3cret" not in str(page) and "hunter2" not in str(page)


# -- privacy ------------------------------------------------------------------------


def _consent(request: Any) -> bool:
    return bool(request.cookies.get("consent") == "yes")


@pytest.mark.parametrize(
    ("options", "headers"),
    [
        ({}, {"Sec-GPC": "1"}),
        ({"SEGMENT_HONOR_DNT": True}, {"DNT": "1"}),
        ({"consent": _consent}, {}),
    ],
)
def test_privacy_no_page_call_no_cookie(
    make_app: MakeApp, sent: Sent, options: dict[str, Any], headers: dict[str, str]
) -> None:
    response = make_app(**options).test_client().get("/track", headers=headers)
    assert "Set-Cookie" not in response.headers
    # The view's own call is the app's decision: it is sent.
    assert [m["type"] for m in sent()] == ["track"]


def test_consent_given(make_app: MakeApp, sent: Sent) -> None:
    client = make_app(consent=_consent).test_client()
    client.set_cookie("consent", "yes")
    assert "ajs_anonymous_id=" in client.get("/").headers["Set-Cookie"]
    assert len(sent()) == 1


@pytest.mark.parametrize(
    ("set_cookies", "expected"),
    [
        ([('"app-id-2"', {})], "app-id-2"),  # quoted as Werkzeug quotes it
        ([("first", {}), ("second", {})], "second"),  # the browser keeps the last
        ([("gone", {"max_age": 0})], None),  # a deletion: the request's own id
    ],
)
def test_the_id_cookie_the_view_sets_is_read_as_the_browser_keeps_it(
    make_app: MakeApp, sent: Sent, set_cookies: list[tuple[str, dict[str, Any]]], expected: Any
) -> None:
    app = make_app()

    @app.get("/sets-the-id")
    def sets_the_id() -> Response:
        response = Response("<p>hi</p>", content_type="text/html")
        for value, options in set_cookies:
            response.set_cookie("ajs_anonymous_id", value, **options)
        return response

    app.test_client().get("/sets-the-id", headers={"Accept": "text/html"})
    [page] = [m for m in sent() if m["type"] == "page"]
    if expected is None:
        assert page["anonymousId"] not in ("gone", "")
    else:
        assert page["anonymousId"] == expected
