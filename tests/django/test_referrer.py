"""A referrer from the same app loses its secret route values wherever the app is mounted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path

from tests.django.conftest import Sent
from tests.memory import memory_kept

NAVIGATE = {"HTTP_ACCEPT": "text/html", "HTTP_SEC_FETCH_MODE": "navigate"}

# Another URLconf, which a middleware picks for some requests (request.urlconf).
urlpatterns = [path("portal/", include("tests.django.realapp"))]


class AuditRequests:
    """A middleware inside Segment's: its call is made before Django resolved the URL."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.analytics.track("Request Seen")  # type: ignore[attr-defined]
        return self.get_response(request)


class PortalUrls:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.headers.get("X-Portal"):
            request.urlconf = __name__  # type: ignore[attr-defined]
        return self.get_response(request)


def test_an_app_mounted_under_a_script_name(client: Client, sent: Sent) -> None:
    client.get(
        "/app/html/",
        SCRIPT_NAME="/shop",
        HTTP_REFERER="http://testserver/shop/app/files/a/t0k3n",
        **NAVIGATE,
    )
    client.get("/app/html/", HTTP_REFERER="http://testserver/elsewhere/app/files/t0k3n", **NAVIGATE)
    client.get("/app/html/", SCRIPT_NAME="/", HTTP_REFERER="http://testserver/app/files/t0k3n")
    assert [m["properties"]["referrer"] for m in sent()] == [
        "http://testserver/shop/app/files/REDACTED",
        "http://testserver/elsewhere/app/files/t0k3n",  # not a URL of this app
        "http://testserver/app/files/REDACTED",
    ]


@pytest.mark.parametrize("inside", [False, True])
def test_a_urlconf_chosen_per_request(
    client: Client, sent: Sent, settings: Any, inside: bool
) -> None:
    """Wherever the middleware that picks it is: before Segment's or inside it."""
    chooser = f"{__name__}.PortalUrls"
    settings.MIDDLEWARE = (
        [*settings.MIDDLEWARE, chooser] if inside else [chooser, *settings.MIDDLEWARE]
    )
    client.get(
        "/portal/html/?next=/portal/files/s3cr3t",
        HTTP_X_PORTAL="1",
        HTTP_REFERER="http://testserver/portal/files/t0k3n",
        **NAVIGATE,
    )
    client.get("/app/html/", HTTP_REFERER="http://testserver/app/files/t0k3n", **NAVIGATE)
    messages = sent()
    assert [m["properties"]["referrer"] for m in messages] == [
        "http://testserver/portal/files/REDACTED",
        "http://testserver/app/files/REDACTED",
    ]
    assert messages[0]["properties"]["search"] == "?next=/portal/files/REDACTED"
    assert "t0k3n" not in str(messages) and "s3cr3t" not in str(messages)


def test_a_call_before_the_url_is_resolved_carries_no_path_secret(
    client: Client, sent: Sent, settings: Any
) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.AuditRequests"]
    client.get("/app/files/a/t0k3n", SCRIPT_NAME="/shop", **NAVIGATE)
    messages = sent()
    # The middleware's, the view's, the page call.
    assert [m.get("event", m["type"]) for m in messages] == ["Request Seen", "Viewed", "page"]
    for message in messages:
        assert message["context"]["page"]["path"] == "/shop/app/files/REDACTED"
        assert message["context"]["page"]["url"] == "http://testserver/shop/app/files/REDACTED"
    assert "t0k3n" not in str(messages)


def test_the_assets_of_an_app_below_a_script_name_get_no_cookie(client: Client, sent: Sent) -> None:
    # STATIC_URL is /assets/, served here by a view: below /shop, still an asset.
    response = client.get("/assets/app.css", SCRIPT_NAME="/shop", **NAVIGATE)
    assert response.status_code == 200 and "ajs_anonymous_id" not in response.cookies
    response = client.get("/app/html/", SCRIPT_NAME="/shop", **NAVIGATE)
    assert "ajs_anonymous_id" in response.cookies
    assert [m["properties"]["path"] for m in sent()] == ["/shop/app/html/"]


def test_a_page_of_the_app_behind_a_proxy_that_ends_tls(client: Client, sent: Sent) -> None:
    # No trusted proxy: Django sees http, the browser's Referer says https.
    client.get("/app/html/", HTTP_REFERER="https://testserver/app/files/t0k3n", **NAVIGATE)
    client.get("/app/html/", HTTP_REFERER="https://testserver:443/app/files/t0k3n", **NAVIGATE)
    assert [m["properties"]["referrer"] for m in sent()] == [
        "https://testserver/app/files/REDACTED",
        "https://testserver:443/app/files/REDACTED",
    ]


def test_long_same_app_referrers_leave_no_memory_behind(settings: Any) -> None:
    from segment_django.middleware import _resolve

    urlconf, long_value = settings.ROOT_URLCONF, "v" * 8000
    # Where the paths kept would take 1.6 MB at least.
    assert memory_kept(lambda n: _resolve(f"/invite/{n}-{long_value}/", urlconf)) < 100_000


class PagesForUnroutedPaths:
    """As Django's ``FlatpageFallbackMiddleware``: a page for a path no route has."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 404 and request.path == "/company/":
            return HttpResponse("<p>about us</p>")
        return response


@pytest.mark.parametrize("page_name", ["route", "template"])
def test_a_page_no_route_serves_is_named_by_its_path(
    client: Client, sent: Sent, settings: Any, segment: Any, page_name: str
) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.PagesForUnroutedPaths"]
    segment(PAGE_NAME=page_name)
    assert client.get("/company/", **NAVIGATE).status_code == 200
    assert [m["name"] for m in sent()] == ["/company/"]
