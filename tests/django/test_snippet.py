"""``{% load segment %}{% segment_snippet %}`` through Django's test client."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.checks import run_checks
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template import Context, Template
from django.template.loader import render_to_string
from django.test import Client
from django.urls import path
from django.views.decorators.cache import cache_page

from segment_django.templatetags.segment import _warn_no_request
from tests.django.conftest import Sent
from tests.web.snippets import has_snippet, script_tags, snippet_settings

KEY = "website-key"
PAGE = "{% load segment %}<html><head>{% segment_snippet %}</head><body>hi</body></html>"


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html")


def with_nonce(request: HttpRequest) -> HttpResponse:
    request.csp_nonce = "django-csp-nonce"  # type: ignore[attr-defined]  # as django-csp does
    return render(request, "page.html")


def without_request(request: HttpRequest) -> HttpResponse:
    return HttpResponse(Template(PAGE).render(Context({})))


@cache_page(60)
def cached(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html")


def streamed(request: HttpRequest) -> StreamingHttpResponse:
    # The template renders as the server pulls the body, after the headers are out.
    def body() -> Any:
        yield "<!doctype html>"
        yield render_to_string("page.html", request=request)

    return StreamingHttpResponse(body(), content_type="text/html; charset=utf-8")


def streamed_csv(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter(["a,b\n"]), content_type="text/csv")


urlpatterns = [
    path("", page, name="home"),
    path("streamed/", streamed, name="streamed"),
    path("export.csv", streamed_csv, name="export"),
    path("cached/", cached, name="cached"),
    path("nonce/", with_nonce, name="nonce"),
    path("no-request/", without_request, name="no-request"),
    path("healthz", page, name="healthz"),
]


@pytest.fixture(autouse=True)
def _templates(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "context_processors": ["django.template.context_processors.request"],
                "loaders": [("django.template.loaders.locmem.Loader", {"page.html": PAGE})],
            },
        }
    ]


def test_the_snippet_carries_the_servers_visitor(segment: Any, sent: Sent) -> None:
    segment(BROWSER_WRITE_KEY=KEY)
    response = Client().get("/")
    html = response.content.decode()
    settings = snippet_settings(html)
    cookie = response.cookies["ajs_anonymous_id"].value
    assert settings["anonymousId"] == cookie  # on the very first response
    assert settings["writeKey"] == KEY
    assert settings["page"] is False
    [server_page] = sent(type="page")
    assert server_page["anonymousId"] == cookie
    assert script_tags(html) == ["<script>\n"]


def test_a_logged_in_user_is_in_the_snippet(segment: Any, db: Any) -> None:
    segment(BROWSER_WRITE_KEY=KEY, SEND=False)
    user = User.objects.create_user("ada", password="pw")
    client = Client()
    client.force_login(user)
    client.cookies["ajs_anonymous_id"] = "anon-7"
    settings = snippet_settings(client.get("/").content.decode())
    assert (settings["anonymousId"], settings["userId"]) == ("anon-7", str(user.pk))


def test_page_source_browser(segment: Any, sent: Sent) -> None:
    segment(BROWSER_WRITE_KEY=KEY, PAGE_SOURCE="browser")
    assert snippet_settings(Client().get("/").content.decode())["page"] is True
    assert sent(type="page") == []


def test_django_csp_nonce(segment: Any) -> None:
    segment(BROWSER_WRITE_KEY=KEY, SEND=False)
    assert script_tags(Client().get("/nonce/").content.decode()) == [
        '<script nonce="django-csp-nonce">\n'
    ]


@pytest.mark.parametrize(
    ("headers", "path", "options"),
    [
        ({"HTTP_SEC_GPC": "1"}, "/", {}),
        ({"HTTP_DNT": "1"}, "/", {"HONOR_DNT": True}),
        ({"HTTP_USER_AGENT": "Mozilla/5.0 (compatible; bingbot/2.0)"}, "/", {}),
        ({}, "/healthz", {}),
        ({}, "/", {"CONSENT": f"{__name__}.no_consent"}),
        ({"HTTP_SEC_GPC": "1"}, "/streamed/", {}),  # its headers go before its body
    ],
)
def test_nothing_for_visitors_the_server_does_not_track(
    segment: Any, headers: dict[str, str], path: str, options: dict[str, Any]
) -> None:
    segment(BROWSER_WRITE_KEY=KEY, SEND=False, **options)
    response = Client().get(path, **headers)  # type: ignore[arg-type]
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert not has_snippet(body.decode())
    # A page without analytics.js for this visitor alone: no shared cache hands it
    # to the next (a health check's is the same for all).
    private = "private" in response.headers.get("Cache-Control", "")
    assert private is (path != "/healthz")


def test_without_the_request_in_the_context(segment: Any, caplog: pytest.LogCaptureFixture) -> None:
    segment(BROWSER_WRITE_KEY=KEY, SEND=False)
    _warn_no_request.cache_clear()  # said once per process: this test's own once
    with caplog.at_level(logging.WARNING, logger="segment.django"):
        html = Client().get("/no-request/").content.decode()
        Client().get("/no-request/")
    assert not has_snippet(html)
    [warning] = [r for r in caplog.records if r.name.startswith("segment")]
    assert "{% segment_snippet %}" in warning.getMessage()
    assert "context_processors.request" in warning.getMessage()


def test_without_the_middleware(
    segment: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    segment(BROWSER_WRITE_KEY=KEY, SEND=False)
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "segment" not in m]
    with caplog.at_level(logging.WARNING, logger="segment.core.web"):
        assert not has_snippet(Client().get("/").content.decode())
    assert "middleware" in caplog.text


def ids(settings: Any, **segment: Any) -> list[str]:
    settings.SEGMENT = {"WRITE_KEY": "k", **segment}
    return [m.id for m in run_checks() if m.id and m.id.startswith("segment_django.")]


def test_w004_the_snippet_without_a_browser_key(settings: Any) -> None:
    assert ids(settings) == []
    assert ids(settings, BROWSER_WRITE_KEY=KEY, PAGE_SOURCE="browser") == []
    assert ids(settings, PAGE_SOURCE="browser") == ["segment_django.W005"]
    assert ids(settings, SNIPPET_SRC="/static/analytics.js") == ["segment_django.W005"]


def test_e003_for_snippet_options(settings: Any) -> None:
    assert ids(settings, PAGE_SOURCE="both") == ["segment_django.E003"]
    assert ids(settings, BROWSER_WRITE_KEY="a b") == ["segment_django.E003"]
    # A rule between two options that are each fine.
    assert ids(settings, PAGE_SOURCE="server", PAGE_CALLS=False) == ["segment_django.E003"]


def no_consent(request: HttpRequest) -> bool:
    return False


def test_w005_the_tag_without_the_request_context_processor(settings: Any) -> None:
    assert ids(settings, BROWSER_WRITE_KEY=KEY) == []
    settings.TEMPLATES = [
        {"BACKEND": "django.template.backends.django.DjangoTemplates", "OPTIONS": {}}
    ]
    assert ids(settings, BROWSER_WRITE_KEY=KEY) == ["segment_django.W006"]
    assert ids(settings) == []


def test_a_global_for_jinja2(segment: Any) -> None:
    import segment_django

    segment(BROWSER_WRITE_KEY=KEY, SEND=False)
    response = Client().get("/")
    assert has_snippet(str(segment_django.segment_snippet(response.wsgi_request)))


UPDATE_CACHE = "django.middleware.cache.UpdateCacheMiddleware"
FETCH_FROM_CACHE = "django.middleware.cache.FetchFromCacheMiddleware"


@pytest.mark.parametrize("cached_by", ["cache_page", "site cache around", "site cache inside"])
@pytest.mark.django_db
def test_a_page_a_cache_may_store_hands_no_visitor_s_ids_to_another(
    segment: Any, settings: Any, cached_by: str
) -> None:
    # Django's cache stores a page before the middleware makes it vary on Cookie
    # (cache_page, or the per-site cache inside the middleware): the page names no
    # visitor, and each one's cookie hands analytics.js its own id.
    segment(BROWSER_WRITE_KEY=KEY, SEND=False)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    url = "/cached/" if cached_by == "cache_page" else "/"
    if cached_by == "site cache around":
        settings.MIDDLEWARE = [UPDATE_CACHE, *settings.MIDDLEWARE, FETCH_FROM_CACHE]
    elif cached_by == "site cache inside":
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, UPDATE_CACHE, FETCH_FROM_CACHE]
    cache.clear()
    user = User.objects.create_user("ada", password="pw")
    signed_in, returning, new = Client(), Client(), Client()
    signed_in.force_login(user)
    returning.cookies["ajs_anonymous_id"] = "visitor-B-2222"
    handed: list[tuple[str | None, str | None]] = []
    for client in (signed_in, returning, new, Client()):
        html = client.get(url).content.decode()
        settings_ = snippet_settings(html)
        handed.append((settings_["anonymousId"], settings_["userId"]))
        assert settings_["cookieName"] == "ajs_anonymous_id"
        assert "visitor-B-2222" not in html
        anonymous_id = client.cookies.get("ajs_anonymous_id")
        assert anonymous_id is not None and anonymous_id.value  # where the loader finds it
    assert handed == [(None, None)] * 4
    assert len({c.cookies["ajs_anonymous_id"].value for c in (signed_in, returning, new)}) == 3
    cache.clear()


def test_a_page_no_cache_stores_names_its_visitor_and_varies_on_cookie(segment: Any) -> None:
    segment(BROWSER_WRITE_KEY=KEY, SEND=False)
    client = Client()
    client.cookies["ajs_anonymous_id"] = "visitor-A-1111"
    response = client.get("/")
    assert snippet_settings(response.content.decode())["anonymousId"] == "visitor-A-1111"
    assert response.headers["Vary"] == "Cookie"
    assert response.headers["Cache-Control"] == "private"


def test_a_page_naming_a_visitor_without_the_cookie_is_kept_out_of_shared_caches(
    segment: Any,
) -> None:
    # With SET_COOKIE off, each new visitor gets an id of its own in the page and no
    # cookie: Vary alone would let a shared cache hand it to every other new visitor.
    segment(BROWSER_WRITE_KEY=KEY, SEND=False, SET_COOKIE=False)
    response = Client().get("/")
    assert snippet_settings(response.content.decode())["anonymousId"]
    assert "ajs_anonymous_id" not in response.cookies
    assert response.headers["Cache-Control"] == "private"
    assert response.headers["Vary"] == "Cookie"


def test_a_streamed_page_that_renders_the_snippet_varies_on_cookie(segment: Any) -> None:
    segment(BROWSER_WRITE_KEY=KEY, SEND=False)
    client = Client()
    client.cookies["ajs_anonymous_id"] = "visitor-A-1111"  # no cookie to set: no Vary for it
    response = client.get("/streamed/")
    assert response.headers["Vary"] == "Cookie"
    html = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert snippet_settings(html)["anonymousId"] == "visitor-A-1111"


@pytest.mark.parametrize("browser_key", [KEY, None])
def test_a_streamed_body_without_a_snippet_to_come_does_not_vary(
    segment: Any, browser_key: str | None
) -> None:
    segment(BROWSER_WRITE_KEY=browser_key, SEND=False)
    client = Client()
    client.cookies["ajs_anonymous_id"] = "visitor-A-1111"
    assert "Vary" not in client.get("/export.csv").headers  # no page: no snippet
    response = client.get("/streamed/")
    html = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert has_snippet(html) == (browser_key is not None)
    assert ("Vary" in response.headers) == (browser_key is not None)


def test_an_excluded_route_gets_no_snippet(segment: Any, sent: Sent) -> None:
    # Tooling excluded by route, as the admin is by default: nothing on either side.
    segment(BROWSER_WRITE_KEY=KEY, PAGE_SOURCE="browser", EXCLUDE_ROUTES=["nonce"])
    assert not has_snippet(Client().get("/nonce/").content.decode())
    assert has_snippet(Client().get("/").content.decode())
    assert sent(type="page") == []


def test_a_logged_in_users_id_stays_with_a_cookie_of_another_name(segment: Any, db: Any) -> None:
    # analytics.js keeps the id in ajs_anonymous_id; the server reads COOKIE_NAME:
    # it keeps the id it handed over there, so the next page hands over the same.
    segment(BROWSER_WRITE_KEY=KEY, SEND=False, COOKIE_NAME="my_anon")
    client = Client()
    client.force_login(User.objects.create_user("ada", password="pw"))
    handed = [snippet_settings(client.get("/").content.decode())["anonymousId"] for _ in "abc"]
    assert len(set(handed)) == 1 and client.cookies["my_anon"].value == handed[0]


def lone_surrogate_user(request: HttpRequest) -> str:
    return "user-\ud83d"  # a JSON claim cut inside an emoji


def test_a_user_id_with_a_lone_surrogate_is_no_user_and_the_page_renders(segment: Any) -> None:
    segment(BROWSER_WRITE_KEY=KEY, SEND=False, USER_ID=f"{__name__}.lone_surrogate_user")
    response = Client().get("/")
    assert response.status_code == 200
    assert snippet_settings(response.content.decode())["userId"] is None  # as in its calls


def test_a_form_another_site_posts_back_keeps_the_browser_s_visitor(
    segment: Any, sent: Sent
) -> None:
    # A payment's 3-D Secure return: the browser holds the Lax cookie back.
    segment(BROWSER_WRITE_KEY=KEY)
    response = Client(enforce_csrf_checks=False).post(
        "/", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
    )
    assert "ajs_anonymous_id" not in response.cookies  # it would replace the browser's
    assert snippet_settings(response.content.decode())["anonymousId"] is None
    assert [page["anonymousId"] for page in sent(type="page")] != [None]
