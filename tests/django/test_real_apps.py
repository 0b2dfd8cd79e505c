"""What a real Django project sends: admin, Django REST framework, auth views, proxies."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.authtoken.models import Token

from tests.django.conftest import Sent

NAVIGATE = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}


def pages(sent: Sent) -> list[dict[str, Any]]:
    return [m for m in sent() if m["type"] == "page"]


# -- what counts as a page view ---------------------------------------------------


def test_html_and_xhtml_are_page_views_json_is_not(client: Client, sent: Sent) -> None:
    client.get("/app/html/")
    client.get("/app/xhtml/")
    client.get("/app/json/")
    assert [p["name"] for p in pages(sent)] == ["html", "xhtml"]


def test_a_304_counts_only_when_the_request_asked_for_html(client: Client, sent: Sent) -> None:
    client.get("/app/not-modified/", **NAVIGATE)
    client.get("/app/not-modified/", HTTP_ACCEPT="application/json")
    client.get("/app/not-modified/")
    assert [p["name"] for p in pages(sent)] == ["not-modified"]


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"},
        {"HTTP_HX_REQUEST": "true"},
        {"HTTP_TURBO_FRAME": "cart"},
        {"HTTP_SEC_FETCH_MODE": "cors", "HTTP_SEC_FETCH_DEST": "empty"},
        {"HTTP_SEC_FETCH_MODE": "same-origin"},
        {"HTTP_SEC_PURPOSE": "prefetch"},
        {"HTTP_SEC_PURPOSE": "prefetch;prerender"},
        {"HTTP_PURPOSE": "prefetch"},
        {"HTTP_X_MOZ": "prefetch"},
    ],
)
def test_requests_made_by_scripts_are_not_page_views(
    client: Client, sent: Sent, headers: dict[str, str]
) -> None:
    assert client.get("/app/html/", **headers).status_code == 200
    assert pages(sent) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_HX_REQUEST": "true", "HTTP_HX_BOOSTED": "true"},
        {"HTTP_SEC_FETCH_MODE": "navigate", "HTTP_SEC_FETCH_DEST": "document"},
    ],
)
def test_navigations_are_page_views(client: Client, sent: Sent, headers: dict[str, str]) -> None:
    client.get("/app/html/", **headers)
    assert [p["name"] for p in pages(sent)] == ["html"]


@pytest.mark.django_db
def test_the_admin_is_never_a_page_view_wherever_it_is_mounted(client: Client, sent: Sent) -> None:
    staff = User.objects.create_superuser("root", "root@example.com", "pw")
    login_page = client.get("/app/admin/login/", **NAVIGATE)
    assert "ajs_anonymous_id" not in login_page.cookies  # no cookie there either
    client.force_login(staff)
    for url in ("/app/admin/", "/app/admin/auth/user/", "/app/admin/jsi18n/", "/app/backoffice/"):
        response = client.get(url, **NAVIGATE)
        assert response.status_code == 200, url
        assert "ajs_anonymous_id" not in response.cookies, url
    client.get("/app/html/", **NAVIGATE)
    assert [p["name"] for p in pages(sent)] == ["html"]


@pytest.mark.django_db
def test_a_login_on_the_admins_login_page_keeps_the_id_its_identify_joined(
    client: Client, sent: Sent
) -> None:
    # Staff's first request is the admin's login: its identify joins the user to the
    # visitor's id, which the cookie then keeps (no page view there all the same).
    User.objects.create_superuser("root", "root@example.com", "pw")
    login = client.post(
        "/app/admin/login/?next=/app/admin/", {"username": "root", "password": "pw"}, **NAVIGATE
    )
    assert login.status_code == 302
    [identify] = [m for m in sent() if m["type"] == "identify"]
    assert login.cookies["ajs_anonymous_id"].value == identify["anonymousId"]
    client.get("/app/html/", **NAVIGATE)
    [page] = pages(sent)
    assert (page["anonymousId"], page["userId"]) == (identify["anonymousId"], identify["userId"])


def test_exclude_routes_takes_names_and_namespaces(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(EXCLUDE_ROUTES=["shop", "html"])
    client.get("/shop/cart/")
    client.get("/app/html/")
    client.get("/app/xhtml/")
    client.get("/app/admin/login/")
    assert [p["name"] for p in pages(sent)] == ["xhtml"]


def test_list_options_extend_the_defaults(client: Client, sent: Sent, segment: Any) -> None:
    segment(EXCLUDE_PATHS=[r"^/app/xhtml/"], REDACT_QUERY_PARAMS=["reset_code"])
    client.get("/healthz")
    client.get("/app/xhtml/")
    client.get("/app/html/?password=p&email=e&reset_code=c&q=shoes")
    [page] = pages(sent)
    assert page["properties"]["search"] == (
        "?password=REDACTED&email=REDACTED&reset_code=REDACTED&q=shoes"
    )


def test_defaults_are_dropped_only_by_the_explicit_option(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(EXCLUDE_PATHS=[r"^/app/xhtml/"], REPLACE_DEFAULT_EXCLUDE_PATHS=True)
    client.get("/healthz")
    client.get("/app/xhtml/")
    assert [p["name"] for p in pages(sent)] == ["healthz"]


# -- whose events they are ------------------------------------------------------------


@pytest.mark.django_db
def test_drf_token_user_is_on_the_view_events_without_an_anonymous_id(
    client: Client, sent: Sent
) -> None:
    user = User.objects.create_user("api", "api@example.com")
    token = Token.objects.create(user=user)
    response = client.get("/app/api/orders/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert "ajs_anonymous_id" not in response.cookies
    [event] = sent()
    assert event["event"] == "Listed Orders"
    assert event["userId"] == str(user.pk)
    assert "anonymousId" not in event


@pytest.mark.django_db
def test_alias_of_a_drf_token_user_merges_the_user_id(client: Client, sent: Sent) -> None:
    # No cookie, no browser: the user's id is the only one its events carry.
    user = User.objects.create_user("api", "api@example.com")
    token = Token.objects.create(user=user)
    response = client.post("/app/api/rename/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    [alias] = sent()
    assert (alias["type"], alias["previousId"], alias["userId"]) == (
        "alias",
        str(user.pk),
        f"crm-{user.pk}",
    )


@pytest.mark.django_db
def test_drf_user_is_on_the_page_call_of_an_html_view(client: Client, sent: Sent) -> None:
    user = User.objects.create_user("api", "api@example.com")
    token = Token.objects.create(user=user)
    client.get("/app/api/dashboard/", HTTP_AUTHORIZATION=f"Token {token.key}", **NAVIGATE)
    track, page = sent()
    assert (track["event"], page["type"]) == ("Opened Dashboard", "page")
    assert track["userId"] == page["userId"] == str(user.pk)


@pytest.mark.django_db
def test_drf_session_authentication(client: Client, sent: Sent) -> None:
    user = User.objects.create_user("ann", "ann@example.com")
    client.force_login(user)
    client.cookies["ajs_anonymous_id"] = "visitor-1"
    assert client.get("/app/api/orders/").status_code == 200
    [event] = sent()
    assert (event["userId"], event["anonymousId"]) == (str(user.pk), "visitor-1")


@pytest.mark.django_db
def test_the_browsable_api_is_tooling(client: Client, sent: Sent) -> None:
    user = User.objects.create_user("ann", "ann@example.com")
    client.force_login(user)
    response = client.get("/app/api/orders/", **NAVIGATE)
    assert response["Content-Type"].startswith("text/html")
    client.get("/app/api-auth/login/", **NAVIGATE)
    quiet = client.get("/app/api/quiet/", **NAVIGATE)
    assert quiet["Content-Type"].startswith("text/html")
    assert pages(sent) == []


def test_the_browsable_api_gives_a_new_visitor_no_cookie(client: Client, sent: Sent) -> None:
    response = client.get("/app/api/quiet/", **NAVIGATE)
    assert response["Content-Type"].startswith("text/html")
    assert "ajs_anonymous_id" not in response.cookies
    assert "ajs_anonymous_id" in client.get("/app/html/", **NAVIGATE).cookies


def test_head_and_options_get_no_cookie(client: Client) -> None:
    assert "ajs_anonymous_id" not in client.head("/app/html/").cookies
    assert "ajs_anonymous_id" not in client.options("/app/html/").cookies
    assert "ajs_anonymous_id" in client.get("/app/html/").cookies


@pytest.mark.django_db
def test_login_sends_one_identify_joining_the_visitor(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(IDENTIFY_TRAITS=lambda user: {"username": user.username})
    user = User.objects.create_user("ann", "ann@example.com")
    response = client.get("/app/sign-in/?username=ann")
    identify, track, page = sent()
    anonymous_id = response.cookies["ajs_anonymous_id"].value
    assert identify["type"] == "identify"
    assert identify["userId"] == track["userId"] == page["userId"] == str(user.pk)
    assert identify["anonymousId"] == anonymous_id
    assert identify["traits"] == {"username": "ann"}


@pytest.mark.django_db
def test_login_identify_can_be_turned_off(client: Client, sent: Sent, segment: Any) -> None:
    segment(IDENTIFY_ON_LOGIN=False)
    User.objects.create_user("ann", "ann@example.com")
    client.get("/app/sign-in/?username=ann")
    assert [m["type"] for m in sent()] == ["track", "page"]


@pytest.mark.django_db
def test_a_failing_traits_hook_is_logged_and_the_login_goes_on(
    client: Client, sent: Sent, segment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(user: Any) -> dict[str, Any]:
        raise RuntimeError("bug in traits")

    segment(IDENTIFY_TRAITS=broken)
    User.objects.create_user("ann", "ann@example.com")
    assert client.get("/app/sign-in/?username=ann").status_code == 200
    identify = sent()[0]
    assert identify["type"] == "identify" and "traits" not in identify
    assert "identify_traits hook raised" in caplog.text


@pytest.mark.parametrize("value", ['{"id":1}', "true", "null", "%E9%80", "a%00b", "x" * 300])
def test_an_implausible_anonymous_id_counts_as_none(client: Client, sent: Sent, value: str) -> None:
    client.cookies["ajs_anonymous_id"] = value
    response = client.get("/app/html/")
    [page] = sent()
    assert page["anonymousId"] == response.cookies["ajs_anonymous_id"].value != value


# -- what leaks -------------------------------------------------------------------------


@pytest.mark.django_db
def test_password_reset_token_never_reaches_the_collector(client: Client, sent: Sent) -> None:
    user = User.objects.create_user("ann", "ann@example.com", "old-password")
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = f"/app/reset/{uid}/{token}/"
    response = client.get(link, **NAVIGATE)
    assert response.status_code == 302  # Django moves the token into the session
    form = client.get(response["Location"], HTTP_REFERER=f"http://testserver{link}", **NAVIGATE)
    assert form.status_code == 200
    [page] = sent()
    assert page["properties"]["path"] == f"/app/reset/{uid}/REDACTED/"
    assert page["properties"]["referrer"] == f"http://testserver/app/reset/{uid}/REDACTED/"
    assert token not in str(page)


def test_secret_route_parameters_are_redacted_everywhere(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(PAGE_NAME="path")
    client.get("/app/invite/k3y-s3cr3t/?x=1", HTTP_REFERER="http://testserver/app/files/a/b/t0k3n")
    track, page = sent()
    for message in (track, page):
        assert message["context"]["page"]["path"] == "/app/invite/REDACTED/"
        assert message["context"]["page"]["url"] == "http://testserver/app/invite/REDACTED/?x=1"
        assert message["context"]["page"]["referrer"] == "http://testserver/app/files/REDACTED"
    assert page["name"] == "/app/invite/REDACTED/"
    assert "k3y-s3cr3t" not in str([track, page]) and "t0k3n" not in str([track, page])


@pytest.fixture
def site_cache(settings: Any) -> Iterator[None]:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.MIDDLEWARE = [
        "django.middleware.cache.UpdateCacheMiddleware",
        *settings.MIDDLEWARE,
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    cache.clear()
    yield
    cache.clear()


@pytest.mark.parametrize("page_name", ["route", "path"])
def test_a_page_the_site_cache_answers_has_its_route(
    site_cache: None, sent: Sent, segment: Any, page_name: str
) -> None:
    # The cache answers before Django routes: the route comes from the path.
    segment(PAGE_NAME=page_name)
    visitor = Client()
    visitor.cookies["ajs_anonymous_id"] = "visitor-1"
    for _ in range(2):
        assert visitor.get("/app/invite/k3y-s3cr3t/").status_code == 200
    track, miss, hit = sent()
    assert (track["type"], miss["type"], hit["type"]) == ("track", "page", "page")  # hit: no view
    name = "invite" if page_name == "route" else "/app/invite/REDACTED/"
    assert hit["name"] == miss["name"] == name
    assert hit["properties"] == miss["properties"]
    assert hit["context"]["page"]["path"] == "/app/invite/REDACTED/"
    assert "k3y-s3cr3t" not in str(hit)


def test_exclude_routes_holds_for_a_page_the_site_cache_answers(
    site_cache: None, sent: Sent, segment: Any
) -> None:
    segment(EXCLUDE_ROUTES=["invite"])
    visitor = Client()
    visitor.cookies["ajs_anonymous_id"] = "visitor-1"
    for _ in range(2):
        assert visitor.get("/app/invite/k3y/").status_code == 200
    # The view's own call, once: the second answer came from the cache.
    assert [m["type"] for m in sent()] == ["track"]


def test_the_browsable_api_the_site_cache_answers_is_tooling(site_cache: None, sent: Sent) -> None:
    visitor = Client()
    visitor.cookies["ajs_anonymous_id"] = "visitor-1"
    for _ in range(3):
        response = visitor.get("/app/api/quiet/", **NAVIGATE)
        assert response["Content-Type"].startswith("text/html")
    # The cache's copy: Django REST framework's renderer is not kept in it.
    assert not hasattr(response, "accepted_renderer")
    assert pages(sent) == []


@pytest.mark.parametrize(
    "hooks",
    [
        {
            "PAGE_NAME": "tests.django.hooks.name_of_the_route",
            "PAGE_PROPERTIES": "tests.django.hooks.view_of_the_route",
        },
        {"PAGE_FILTER": "tests.django.hooks.outside_the_backoffice"},
    ],
)
def test_hooks_read_the_route_of_a_page_the_site_cache_answers(
    site_cache: None,
    sent: Sent,
    segment: Any,
    caplog: pytest.LogCaptureFixture,
    hooks: dict[str, str],
) -> None:
    segment(**hooks)
    visitor = Client()
    visitor.cookies["ajs_anonymous_id"] = "visitor-1"
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            assert visitor.get("/app/html/", **NAVIGATE).status_code == 200
    assert caplog.records == []
    miss, *hits = pages(sent)
    assert len(hits) == 2
    for hit in hits:
        assert (hit["name"], hit["properties"]) == (miss["name"], miss["properties"])
    if "PAGE_NAME" in hooks:
        assert miss["name"] == "Shop: html"
        assert miss["properties"]["view"] == "html"


def test_a_304_of_a_file_is_no_page_view(client: Client, sent: Sent, settings: Any) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.http.ConditionalGetMiddleware"]
    client.cookies["ajs_anonymous_id"] = "visitor-1"
    etag = client.get("/app/reports/q3.pdf", **NAVIGATE)["ETag"]
    reload = client.get("/app/reports/q3.pdf", HTTP_IF_NONE_MATCH=etag, **NAVIGATE)
    assert reload.status_code == 304 and "Content-Type" not in reload
    assert pages(sent) == []


def test_a_304_of_data_is_no_page_view_with_conditional_get_listed_first(
    client: Client, sent: Sent, settings: Any
) -> None:
    # ConditionalGetMiddleware before SegmentMiddleware: this one sees the response
    # the 304 replaces, JSON or a page.
    settings.MIDDLEWARE = ["django.middleware.http.ConditionalGetMiddleware", *settings.MIDDLEWARE]
    client.cookies["ajs_anonymous_id"] = "visitor-1"
    for path in ("/app/json/", "/app/html/"):
        etag = client.get(path, **NAVIGATE)["ETag"]
        assert client.get(path, HTTP_IF_NONE_MATCH=etag, **NAVIGATE).status_code == 304
    assert [p["name"] for p in pages(sent)] == ["html", "html"]


def test_a_nested_url_loses_its_secrets(client: Client, sent: Sent) -> None:
    client.get("/app/html/?next=/account%3FaccessToken%3Dabc%26tab%3D2&keyword=monkey")
    [page] = sent()
    assert page["properties"]["search"] == (
        "?next=/account%3FaccessToken%3DREDACTED%26tab%3D2&keyword=monkey"
    )


def test_trusted_proxy_gives_scheme_and_host(client: Client, sent: Sent, segment: Any) -> None:
    segment(TRUSTED_PROXIES=1)
    response = client.get(
        "/app/html/",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="shop.example",
    )
    assert response.cookies["ajs_anonymous_id"]["secure"]
    [page] = sent()
    assert page["properties"]["url"] == "https://shop.example/app/html/"
    assert page["context"]["ip"] == "203.0.113.9"


def test_a_forwarded_host_outside_allowed_hosts_is_ignored(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(TRUSTED_PROXIES=1)
    client.get("/app/html/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_HOST="evil.example")
    [page] = sent()
    assert page["properties"]["url"] == "http://testserver/app/html/"


def test_forwarded_outranks_a_client_written_x_forwarded_for(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(TRUSTED_PROXIES=1)
    client.get(
        "/app/html/",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="6.6.6.6",
        HTTP_FORWARDED='for=203.0.113.9;proto=https;host="shop.example"',
    )
    [page] = sent()
    assert page["context"]["ip"] == "203.0.113.9"
    assert page["properties"]["url"] == "https://shop.example/app/html/"


def test_a_spoofed_host_never_reaches_the_collector(client: Client, sent: Sent) -> None:
    client.get("/app/invite/x/", HTTP_HOST="evil.example")
    assert pages(sent) == []
    assert "evil.example" not in str(sent())


def test_a_huge_campaign_does_not_break_a_view_call(client: Client, sent: Sent) -> None:
    response = client.get("/app/invite/x/?utm_campaign=" + "c" * 12_000)
    assert response.status_code == 200
    track, page = sent()
    assert len(track["context"]["campaign"]["name"]) == 256
    assert len(page["properties"]["search"]) <= 2049


def test_a_64_kb_url_logs_no_traceback(
    client: Client, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        response = client.get(
            "/app/raw/" + "p" * 65_536 + "?q=" + "x" * 65_536,
            HTTP_USER_AGENT="U" * 65_536,
            HTTP_REFERER="http://r.example/" + "r" * 65_536,
        )
    assert response.status_code == 200
    assert [r for r in caplog.records if r.name.startswith("segment")] == []
    [page] = sent()
    assert len(page["properties"]["path"]) == 2048
    assert len(page["context"]["userAgent"]) == 512


def test_the_request_line_of_the_wsgi_server_is_the_path_sent(client: Client, sent: Sent) -> None:
    # gunicorn's RAW_URI (uWSGI's REQUEST_URI): the escapes Django's PATH_INFO lost.
    for raw in ("/app/raw/100%25", "/app/raw/a%2Fb/%41"):
        client.get(raw, RAW_URI=f"{raw}?q=1")
    client.get("/app/raw/x", SCRIPT_NAME="/shop", REQUEST_URI="/app/raw/%78")
    assert [m["properties"]["path"] for m in sent()] == [
        "/app/raw/100%25",
        "/app/raw/a%2Fb/%41",
        "/shop/app/raw/%78",  # a proxy took the mount point out of the request line
    ]


def test_invalid_utf8_in_the_path_is_kept_as_sent(client: Client, sent: Sent) -> None:
    client.get("/app/raw/caf%E9/%C3%A9t%C3%A9")
    [page] = sent()
    assert page["properties"]["path"] == "/app/raw/caf%E9/%C3%A9t%C3%A9"
