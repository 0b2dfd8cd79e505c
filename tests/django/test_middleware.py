"""The middleware in Django's sync mode, checked through a real client and collector."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.test import Client

from segment_core.scope import analytics
from tests.django.conftest import Sent
from tests.django.views import ViewBug

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def test_page_call_per_request(client: Client, sent: Sent) -> None:
    response = client.get(
        "/products/42/?utm_source=news&utm_campaign=spring+sale",
        HTTP_USER_AGENT=CHROME,
        HTTP_ACCEPT_LANGUAGE="de-CH,de;q=0.9",
        HTTP_REFERER="https://search.example/?q=shoes",
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
        ("/shop/cart/", "shop:cart"),  # namespaced
        ("/unnamed/blue-shoes/", "/unnamed/<slug:slug>/"),  # no name: the route
        ("/legacy/2019/", "legacy"),
    ],
)
def test_page_names(client: Client, sent: Sent, url: str, name: str) -> None:
    client.get(url)
    assert [m["name"] for m in sent()] == [name]


def test_page_name_by_route_template(client: Client, sent: Sent, segment: Any) -> None:
    segment(PAGE_NAME="template")
    client.get("/products/1/")
    client.get("/legacy/2019/")
    client.get("/")
    names = [m["name"] for m in sent()]
    assert names == ["/products/<int:pk>/", "/legacy/(?P<year>[0-9]{4})/", "/"]


@pytest.mark.parametrize(
    "url", ["/healthz", "/assets/app.css", "/favicon.ico", "/missing/", "/redirect/"]
)
def test_no_page_call(client: Client, sent: Sent, url: str) -> None:
    client.get(url)
    assert sent() == []


def test_excluded_paths_option(client: Client, sent: Sent, segment: Any) -> None:
    segment(EXCLUDE_PATHS=[r"^/products/"])
    client.get("/products/1/")
    client.get("/")
    assert [m["name"] for m in sent()] == ["home"]


def test_only_get_requests(client: Client, sent: Sent) -> None:
    client.post("/")
    client.head("/")
    assert sent() == []


def test_redirect_counts_only_the_page_it_leads_to(client: Client, sent: Sent) -> None:
    response = client.get("/redirect/", follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert [m["name"] for m in sent()] == ["home"]


def test_bots_get_no_page_call_and_no_cookie(client: Client, sent: Sent) -> None:
    response = client.get("/", HTTP_USER_AGENT="Mozilla/5.0 (compatible; Googlebot/2.1)")
    assert "ajs_anonymous_id" not in response.cookies
    assert sent() == []


def test_a_view_that_raises(client: Client, sent: Sent) -> None:
    with pytest.raises(ViewBug, match="the view failed"):
        client.get("/boom/")
    assert sent() == []


def test_a_view_that_raises_without_the_test_client_reraising(sent: Sent) -> None:
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert sent() == []


# -- identity -------------------------------------------------------------------------


def test_cookie_set_once_and_reused(client: Client, sent: Sent) -> None:
    first = client.get("/")
    cookie = first.cookies["ajs_anonymous_id"]
    assert cookie["path"] == "/"
    assert cookie["max-age"] == 365 * 24 * 3600
    assert cookie["samesite"] == "Lax"
    assert not cookie["httponly"] and not cookie["secure"] and not cookie["domain"]
    second = client.get("/products/1/")
    assert "ajs_anonymous_id" not in second.cookies
    pages = sent()
    assert [p["anonymousId"] for p in pages] == [cookie.value, cookie.value]


def test_secure_cookie_on_https(client: Client, segment: Any) -> None:
    segment(COOKIE_DOMAIN=".shop.example", COOKIE_FORMAT="quoted")
    response = client.get("/", secure=True, HTTP_HOST="shop.example")
    cookie = response.cookies["ajs_anonymous_id"]
    assert cookie["secure"] and cookie["domain"] == ".shop.example"
    assert cookie.value.startswith("%22") and cookie.value.endswith("%22")


def test_scheme_from_secure_proxy_ssl_header(client: Client, sent: Sent, settings: Any) -> None:
    def secure_cookie(**headers: Any) -> bool:
        client.cookies.clear()  # a new visitor each time: the cookie is set
        return bool(client.get("/", **headers).cookies["ajs_anonymous_id"]["secure"])

    assert not secure_cookie()  # the scheme found once with the setting unset
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert secure_cookie(HTTP_X_FORWARDED_PROTO="https")
    assert not secure_cookie()
    settings.SECURE_PROXY_SSL_HEADER = None
    assert not secure_cookie(HTTP_X_FORWARDED_PROTO="https")
    schemes = [page["properties"]["url"].split(":")[0] for page in sent()]
    assert schemes == ["http", "https", "http", "http"]


@pytest.mark.parametrize(
    "value", ["%228d2b4f34-1c4e-4b6e-9a3f-0c6d9f1e2a7b%22", "8d2b4f34-1c4e-4b6e-9a3f-0c6d9f1e2a7b"]
)
def test_classic_and_raw_cookies(client: Client, sent: Sent, value: str) -> None:
    client.cookies["ajs_anonymous_id"] = value
    client.cookies["ajs_user_id"] = "%22user-5%22"
    response = client.get("/")
    assert "ajs_anonymous_id" not in response.cookies
    [page] = sent()
    assert page["anonymousId"] == "8d2b4f34-1c4e-4b6e-9a3f-0c6d9f1e2a7b"
    assert "userId" not in page  # the browser-written ajs_user_id decides nothing


def test_the_user_cookie_counts_only_when_the_app_opts_in(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(USER_ID_FROM_COOKIE=True)
    client.cookies["ajs_anonymous_id"] = "8d2b4f34-1c4e-4b6e-9a3f-0c6d9f1e2a7b"
    client.cookies["ajs_user_id"] = "%22user-5%22"
    client.get("/")
    assert sent()[0]["userId"] == "user-5"


@pytest.mark.parametrize("set_cookie", [True, False])
def test_a_cookie_set_by_the_view_is_left_alone(
    client: Client, sent: Sent, segment: Any, set_cookie: bool
) -> None:
    segment(SET_COOKIE=set_cookie)  # off too: the app that writes the id cookie itself
    response = client.get("/own-cookie/", HTTP_ACCEPT="text/html")
    assert response.cookies["ajs_anonymous_id"].value == "chosen-by-the-view"
    # The id the browser keeps is the page call's.
    assert [m["anonymousId"] for m in sent() if m["type"] == "page"] == ["chosen-by-the-view"]


@pytest.mark.django_db
def test_logged_in_user(client: Client, sent: Sent) -> None:
    user = User.objects.create_user("ann", email="ann@example.com")
    client.force_login(user)
    assert client.get("/whoami/").json()["user_id"] == str(user.pk)
    client.get("/")
    # /whoami/ answers JSON: not a page view.
    assert [(m["name"], m["userId"]) for m in sent()] == [("home", str(user.pk))]


@pytest.mark.django_db
def test_user_id_hook(client: Client, sent: Sent, segment: Any) -> None:
    segment(USER_ID="tests.django.hooks.user_email")
    client.force_login(User.objects.create_user("ann", email="ann@example.com"))
    client.get("/")
    assert sent()[0]["userId"] == "ann@example.com"


def test_excluded_paths_do_not_look_up_the_user(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []

    def get_user(request: HttpRequest) -> AnonymousUser:
        looked_up.append(request.path)
        return AnonymousUser()

    # What Django's lazy request.user calls (a session read, a database query).
    monkeypatch.setattr(auth, "get_user", get_user)
    client.get("/healthz")
    client.get("/assets/app.css")
    assert looked_up == []
    client.get("/")
    assert looked_up == ["/"]


# -- context ------------------------------------------------------------------------


def test_forwarded_for_ignored_unless_proxies_are_trusted(client: Client, sent: Sent) -> None:
    client.get("/", HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert sent()[0]["context"]["ip"] == "127.0.0.1"


@pytest.mark.parametrize("trusted", [1, ["127.0.0.0/8"]])
def test_trusted_proxies(client: Client, sent: Sent, segment: Any, trusted: object) -> None:
    segment(TRUSTED_PROXIES=trusted)
    client.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.4")
    assert sent()[0]["context"]["ip"] == "198.51.100.4"


def test_anonymize_and_no_ip(client: Client, sent: Sent, segment: Any) -> None:
    segment(ANONYMIZE_IP=True)
    client.get("/", REMOTE_ADDR="198.51.100.4")
    segment(COLLECT_IP=False)
    client.get("/", REMOTE_ADDR="198.51.100.4")
    assert [m["context"]["ip"] for m in sent()] == ["198.51.100.0", "0.0.0.0"]


def test_the_middleware_listed_twice_tracks_each_request_once(settings: Any, sent: Sent) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "segment_django.middleware.SegmentMiddleware"]
    response = Client().get("/track/")
    track, page = sent()
    assert (track["type"], page["type"]) == ("track", "page")
    assert track["anonymousId"] == page["anonymousId"]
    assert page["anonymousId"] == response.cookies["ajs_anonymous_id"].value


def test_secrets_are_redacted(client: Client, sent: Sent) -> None:
    client.get("/?token=s3cret&q=1", HTTP_REFERER="https://a.example/reset?password=hunter2")
    [page] = sent()
    assert page["properties"]["url"] == "http://testserver/?token=REDACTED&q=1"
    assert page["properties"]["search"] == "?token=REDACTED&q=1"
    assert page["properties"]["referrer"] == "https://a.example/reset?password=REDACTED"
    assert "s3cret" not in str(page) and "hunter2" not in str(page)


# -- privacy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "headers"),
    [
        ({}, {"HTTP_SEC_GPC": "1"}),
        ({"HONOR_DNT": True}, {"HTTP_DNT": "1"}),
        ({"CONSENT": lambda request: request.COOKIES.get("consent") == "yes"}, {}),
        # A consent cookie's text, not a bool: no consent (and logged).
        ({"CONSENT": lambda request: request.COOKIES.get("consent", "false")}, {}),
    ],
)
def test_privacy_no_page_call_no_cookie(
    client: Client, sent: Sent, segment: Any, options: dict[str, Any], headers: dict[str, str]
) -> None:
    segment(**options)
    response = client.get("/track/", **headers)
    assert "ajs_anonymous_id" not in response.cookies
    # The view's own call is the app's decision: it is sent.
    assert [m["type"] for m in sent()] == ["track"]


def test_consent_given(client: Client, sent: Sent, segment: Any) -> None:
    segment(CONSENT=lambda request: request.COOKIES.get("consent") == "yes")
    client.cookies["consent"] = "yes"
    assert "ajs_anonymous_id" in client.get("/").cookies
    assert len(sent()) == 1


# -- explicit calls -------------------------------------------------------------------


def test_track_in_a_sync_view(client: Client, sent: Sent) -> None:
    client.get("/track/", HTTP_USER_AGENT=CHROME)
    track, page = sent()
    assert track["event"] == "Clicked Buy" and track["properties"] == {"sku": "A1"}
    assert track["anonymousId"] == page["anonymousId"]
    assert track["context"]["userAgent"] == CHROME
    assert track["context"]["page"]["path"] == "/track/"


def test_track_in_an_async_view_served_by_the_sync_stack(client: Client, sent: Sent) -> None:
    client.get("/atrack/")
    assert [m["type"] for m in sent()] == ["track", "page"]


def test_identify_then_track_in_one_request(client: Client, sent: Sent) -> None:
    client.get("/identify/")
    identify, track, page = sent()
    assert identify["type"] == "identify" and identify["traits"] == {"plan": "pro"}
    assert identify["userId"] == track["userId"] == page["userId"] == "u-77"


def test_streaming_response_page_call_after_close(client: Client, sent: Sent) -> None:
    response = client.get("/stream/")
    assert sent() == []  # not yet: the body has not been sent
    assert b"".join(response.streaming_content) == b"one two"  # type: ignore[attr-defined]
    [page] = sent()
    assert page["name"] == "stream"


def test_analytics_is_bound_while_a_streaming_body_is_made(client: Client, sent: Sent) -> None:
    response = client.get("/stream-tracked/")
    assert b"".join(response.streaming_content) == b"<p>one two</p>"  # type: ignore[attr-defined]
    track, page = sent()
    assert track["event"] == "Chunk Sent" and page["name"] == "stream-tracked"
    assert track["anonymousId"] == page["anonymousId"] == response.cookies["ajs_anonymous_id"].value
    assert analytics().anonymous_id is None  # unbound between chunks and after


@pytest.mark.django_db  # close() sends request_finished, which checks connections
def test_a_streamed_page_whose_body_fails_gets_its_page_call(client: Client, sent: Sent) -> None:
    """The visitor has the page's start, with its status."""
    response = client.get("/stream-failing/")
    with pytest.raises(ViewBug):
        b"".join(response.streaming_content)  # type: ignore[attr-defined]
    response.close()
    [page] = sent()
    assert page["type"] == "page" and page["name"] == "stream-failing"
    assert analytics().anonymous_id is None


@pytest.mark.django_db  # close() sends request_finished, which checks connections
def test_a_streaming_body_s_cleanup_is_bound_when_the_visitor_leaves(
    client: Client, sent: Sent
) -> None:
    response = client.get("/stream-left/")
    chunks = iter(response.streaming_content)  # type: ignore[attr-defined]
    assert next(chunks) == b"data: 0\n\n"
    response.close()  # what gunicorn does when the visitor leaves mid-stream
    [closed] = sent()  # an event stream is no page view
    assert closed["event"] == "Stream Closed"
    assert closed["anonymousId"] == response.cookies["ajs_anonymous_id"].value
    assert analytics().anonymous_id is None


# -- hooks that fail ------------------------------------------------------------------


@pytest.mark.parametrize("option", ["PAGE_FILTER", "PAGE_PROPERTIES", "PAGE_NAME", "USER_ID"])
def test_a_bug_in_a_user_hook(
    client: Client, sent: Sent, segment: Any, option: str, caplog: pytest.LogCaptureFixture
) -> None:
    segment(**{option: "tests.django.hooks.broken"})
    with caplog.at_level(logging.ERROR, logger="segment.core.web"):
        response = client.get("/")
    assert response.status_code == 200
    assert f"the {option.lower()} hook raised" in caplog.text
    pages = sent()
    assert len(pages) == (0 if option == "PAGE_FILTER" else 1)


def test_page_filter(client: Client, sent: Sent, segment: Any) -> None:
    segment(PAGE_FILTER="tests.django.hooks.only_home")
    client.get("/products/1/")
    client.get("/")
    assert [m["name"] for m in sent()] == ["home"]


def test_page_calls_off_keeps_explicit_calls(client: Client, sent: Sent, segment: Any) -> None:
    segment(PAGE_CALLS=False)
    client.get("/track/")
    assert [m["type"] for m in sent()] == ["track"]
