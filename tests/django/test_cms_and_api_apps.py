"""What the middleware makes of a CMS's previews and sub-routes, an API framework's
authentication and docs, htmx redirects (see ``cms_and_api_apps``)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient, Client

from tests.django.conftest import Sent

NAVIGATE = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}
BOOSTED = {**NAVIGATE, "HTTP_HX_REQUEST": "true", "HTTP_HX_BOOSTED": "true"}


@pytest.fixture(autouse=True)
def _cms_and_api_urls(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.django.cms_and_api_apps"


def pages(sent: Sent) -> list[str]:
    return [m["properties"]["path"] for m in sent() if m["type"] == "page"]


# -- a CMS -------------------------------------------------------------------------


def test_an_editors_preview_is_no_page_view_and_sets_no_cookie(
    client: Client, sent: Sent, segment: Any
) -> None:
    segment(EXCLUDE_PATHS=[r"^/cms/"])
    response = client.get("/cms/preview/", **NAVIGATE)
    assert response.status_code == 200
    assert "ajs_anonymous_id" not in response.cookies
    # The previewed page's own code still finds request.analytics.
    assert [(m["type"], m.get("event")) for m in sent()] == [("track", "Draft Rendered")]


def test_a_secret_of_a_pages_own_route_is_redacted(client: Client, sent: Sent) -> None:
    client.get("/events/invite/SECRET42/", **NAVIGATE)
    track, page = sent()
    assert track["event"] == "Invite Opened"
    for message in (track, page):
        assert message["context"]["page"]["path"] == "/events/invite/REDACTED/"
        assert message["context"]["page"]["url"] == "http://testserver/events/invite/REDACTED/"
    assert page["properties"]["path"] == "/events/invite/REDACTED/"


def test_a_secret_a_converter_read_below_the_page_is_redacted_as_written(
    client: Client, sent: Sent
) -> None:
    token = uuid.uuid4()
    client.get(f"/events/confirm/{token}/", **NAVIGATE)
    client.get("/events/", **NAVIGATE)  # the page itself: nothing below it
    assert pages(sent) == ["/events/confirm/REDACTED/", "/events/"]


# -- an API framework ----------------------------------------------------------------


@pytest.fixture
def ada(db: Any) -> User:
    return User.objects.create_user("ada")


def test_the_user_an_api_auth_class_authenticated_is_the_calls_user(
    client: Client, sent: Sent, ada: User
) -> None:
    for _ in range(2):
        response = client.get("/api/me", HTTP_AUTHORIZATION="Bearer good")
        assert response.status_code == 200
        assert "ajs_anonymous_id" not in response.cookies  # an API client, as DRF's
    calls = sent()
    assert [(m["event"], m.get("userId"), m.get("anonymousId")) for m in calls] == [
        ("Read Profile", str(ada.pk), None),
        ("Read Profile", str(ada.pk), None),
    ]


def test_what_an_api_auth_class_answers_besides_a_user_is_no_user(
    client: Client, sent: Sent, ada: User
) -> None:
    response = client.get("/api/keyed")
    [call] = sent()
    assert "userId" not in call
    assert call["anonymousId"] == response.cookies["ajs_anonymous_id"].value


@pytest.mark.django_db(transaction=True)
async def test_the_user_an_api_auth_class_authenticated_in_async_mode(
    async_client: AsyncClient, sent: Sent
) -> None:
    ada = await User.objects.acreate(username="ada")
    response = await async_client.get("/api/ame", headers={"Authorization": "Bearer good"})
    assert response.status_code == 200
    assert "ajs_anonymous_id" not in response.cookies
    [call] = sent()
    assert (call.get("userId"), call.get("anonymousId")) == (str(ada.pk), None)


def test_an_api_frameworks_docs_are_no_page_views(client: Client, sent: Sent) -> None:
    for url in ("/api/docs", "/api/v2/docs", "/api/openapi.json", "/events/"):
        assert client.get(url, **NAVIGATE).status_code == 200, url
    assert pages(sent) == ["/events/"]


# -- htmx ------------------------------------------------------------------------------


def test_htmx_redirects_answering_a_boosted_navigation_are_no_page_views(
    client: Client, sent: Sent
) -> None:
    for url in ("/htmx/redirect/", "/htmx/refresh/", "/htmx/location/"):
        response = client.get(url, **BOOSTED)
        assert (response.status_code, response.content) == (200, b""), url
    client.get("/htmx/page/", **BOOSTED)
    assert pages(sent) == ["/htmx/page/"]


def test_htmx_headers_htmx_does_not_act_on_leave_a_page_view(client: Client, sent: Sent) -> None:
    client.get("/htmx/refresh/?refresh=false", **BOOSTED)
    client.get("/htmx/redirect/", **NAVIGATE)  # no htmx: the browser shows the response
    assert pages(sent) == ["/htmx/refresh/", "/htmx/redirect/"]


def test_an_api_key_in_a_project_without_django_s_auth_is_no_user(
    client: Client, sent: Sent, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # An API-only project: its authentication names keys; there is no user model.
    settings.INSTALLED_APPS = ["django.contrib.contenttypes", "segment_django"]
    settings.MIDDLEWARE = ["segment_django.middleware.SegmentMiddleware"]
    response = client.get("/api/keyed")
    assert response.status_code == 200
    [call] = sent()
    assert "userId" not in call
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
