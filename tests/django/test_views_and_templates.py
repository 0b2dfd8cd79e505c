"""Views and templates the middleware meets in real apps: async views served in sync
mode, i18n URL prefixes, and templates that name ``request.analytics``' methods."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf.urls.i18n import i18n_patterns
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.test import Client
from django.urls import path

from tests.django.conftest import Sent, english_and_french

NAVIGATE = {"HTTP_ACCEPT": "text/html", "HTTP_SEC_FETCH_MODE": "navigate"}


async def async_view(request: HttpRequest) -> HttpResponse:
    request.analytics.track("Before The User Is Loaded")  # type: ignore[attr-defined]
    auser = getattr(request, "auser", None)
    if auser is not None:
        await auser()
    else:  # Django 4.2: no auser(); the user loaded in a thread, as its docs say
        await sync_to_async(lambda: request.user.pk)()
    request.analytics.track("After The User Is Loaded")  # type: ignore[attr-defined]
    return HttpResponse("<p>async</p>")


def invite(request: HttpRequest, invite_token: str) -> HttpResponse:
    return HttpResponse("<p>invite</p>")


def about(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>about</p>")


def named_methods(request: HttpRequest) -> HttpResponse:
    template = engines["django"].from_string(
        "<p>{{ request.analytics.page }}{{ request.analytics.identify }}"
        "{{ request.analytics.track }}</p>"
    )
    return HttpResponse(template.render({}, request))


urlpatterns = [
    path("async/", async_view, name="async"),
    path("methods/", named_methods, name="methods"),
    *i18n_patterns(
        path("invite/<str:invite_token>/", invite, name="invite"),
        path("about/", about, name="about"),
    ),
]


@pytest.fixture(autouse=True)
def _urls(settings: Any) -> None:
    english_and_french(settings, __name__)


def test_an_async_view_served_in_sync_mode(
    segment: Any, sent: Sent, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Django runs it in an event loop, where it refuses to load the lazy user: the
    # calls before the view loads it carry none (and log nothing), those after it and
    # the page call carry the user.
    user = User.objects.create_user("ada", password="pw")
    client = Client()
    client.force_login(user)
    with caplog.at_level(logging.ERROR):
        assert client.get("/async/", **NAVIGATE).status_code == 200  # type: ignore[arg-type]
    by_name = {m.get("event") or m["type"]: m for m in sent()}
    assert "userId" not in by_name["Before The User Is Loaded"]
    assert by_name["After The User Is Loaded"]["userId"] == str(user.pk)
    assert by_name["page"]["userId"] == str(user.pk)
    assert not [r for r in caplog.records if r.name.startswith("segment")]


def test_a_user_id_hook_that_uses_the_orm_in_an_async_view(
    segment: Any, sent: Sent, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    segment(USER_ID=f"{__name__}.user_from_the_database")
    User.objects.create_user("grace", password="pw")
    with caplog.at_level(logging.ERROR):
        assert Client().get("/async/", **NAVIGATE).status_code == 200  # type: ignore[arg-type]
    page = next(m for m in sent() if m["type"] == "page")
    assert page["userId"] == "grace"  # asked again in sync code at the end
    assert not [r for r in caplog.records if r.name.startswith("segment")]


def user_from_the_database(request: HttpRequest) -> str:
    return User.objects.get(username="grace").username


@pytest.mark.parametrize(
    ("referrer", "page"),
    [
        ("http://testserver/en/invite/SEKRET1/", "/fr/about/"),
        ("http://testserver/fr/invite/SEKRET2/", "/en/about/"),
        ("http://testserver/fr/invite/SEKRET3/", "/async/"),
    ],
)
def test_a_referrer_in_another_language_loses_its_route_secret(
    segment: Any, sent: Sent, referrer: str, page: str
) -> None:
    Client().get(page, HTTP_REFERER=referrer, **NAVIGATE)  # type: ignore[arg-type]
    [message] = [m for m in sent() if m["type"] == "page"]
    assert "SEKRET" not in message["properties"]["referrer"]
    assert message["properties"]["referrer"].endswith("/invite/REDACTED/")


def test_a_page_has_one_template_in_every_language(segment: Any, sent: Sent) -> None:
    segment(PAGE_NAME="template")
    client = Client()
    for url in ("/en/about/", "/fr/about/", "/en/invite/SEKRET1/", "/fr/invite/SEKRET2/"):
        client.get(url, **NAVIGATE)  # type: ignore[arg-type]
    assert [(m["properties"]["path"], m["name"]) for m in sent()] == [
        ("/en/about/", "/about/"),
        ("/fr/about/", "/about/"),
        ("/en/invite/REDACTED/", "/invite/<str:invite_token>/"),
        ("/fr/invite/REDACTED/", "/invite/<str:invite_token>/"),
    ]


def test_one_template_when_the_default_language_has_no_prefix(
    segment: Any, sent: Sent, settings: Any
) -> None:
    settings.ROOT_URLCONF = "tests.django.unprefixed_i18n_urls"
    segment(PAGE_NAME="template")
    client = Client()
    for url in ("/shop/", "/fr/shop/", "/invite/SEKRET1/", "/fr/invite/SEKRET2/", "/fr/faq/"):
        client.get(url, **NAVIGATE)  # type: ignore[arg-type]
    assert [(m["properties"]["path"], m["name"]) for m in sent()] == [
        ("/shop/", "/shop/"),
        ("/fr/shop/", "/shop/"),
        ("/invite/REDACTED/", "/invite/<str:invite_token>/"),
        ("/fr/invite/REDACTED/", "/invite/<str:invite_token>/"),
        ("/fr/faq/", "/fr/faq/"),  # not under i18n_patterns: its own route, whole
    ]


def test_a_page_of_the_unprefixed_default_language_linked_from_another_language(
    segment: Any, sent: Sent, settings: Any
) -> None:
    settings.ROOT_URLCONF = "tests.django.unprefixed_i18n_urls"
    client = Client()
    referrer = "http://testserver/invite/SEKRET7/"
    client.get("/fr/shop/", HTTP_REFERER=referrer, **NAVIGATE)  # type: ignore[arg-type]
    client.get("/fr/shop/?next=/invite/SEKRET8/", **NAVIGATE)  # type: ignore[arg-type]
    # The same referrer in the default language, after a French page looked it up.
    client.get("/shop/", HTTP_REFERER=referrer, **NAVIGATE)  # type: ignore[arg-type]
    pages = [m["properties"] for m in sent()]
    assert [(p["path"], p["referrer"], p["search"]) for p in pages] == [
        ("/fr/shop/", "http://testserver/invite/REDACTED/", ""),
        ("/fr/shop/", "", "?next=/invite/REDACTED/"),
        ("/shop/", "http://testserver/invite/REDACTED/", ""),
    ]


def test_a_template_naming_the_calls_makes_none(segment: Any, sent: Sent) -> None:
    response = Client().get("/methods/", **NAVIGATE)  # type: ignore[arg-type]
    assert response.content == b"<p></p>"
    messages = sent()
    assert [m["type"] for m in messages] == ["page"]
    assert messages[0]["name"] == "methods"
