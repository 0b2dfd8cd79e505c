"""A same-app referrer is matched in the language of the request that links to it:
a route written in translated text matches in its own language only."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf.urls.i18n import i18n_patterns
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from django.utils import translation
from django.utils.functional import lazy

from tests.django.conftest import Sent, english_and_french

NAVIGATE = {"HTTP_ACCEPT": "text/html", "HTTP_SEC_FETCH_MODE": "navigate"}


def page(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return HttpResponse("<p>page</p>")


def invite_route() -> str:
    # What gettext_lazy("invite/<str:invite_token>/") gives with a French catalogue.
    if translation.get_language() == "fr":
        return "invitation/<str:invite_token>/"
    return "invite/<str:invite_token>/"


def about_route() -> str:
    # What gettext_lazy("about/") gives with a French catalogue.
    return "à-propos/" if translation.get_language() == "fr" else "about/"


def topic_route() -> str:
    return "sujets/<slug:topic>/" if translation.get_language() == "fr" else "topics/<slug:topic>/"


urlpatterns = [
    path(lazy(invite_route, str)(), page, name="invite"),
    *i18n_patterns(
        path("home/", page, name="home"),
        path(lazy(about_route, str)(), page),
        path(lazy(topic_route, str)(), page, name="topic"),
    ),
]


@pytest.fixture(autouse=True)
def _urls(settings: Any) -> None:
    english_and_french(settings, __name__, authentication=False)


def test_a_translated_route_in_a_referrer_is_matched_in_the_request_s_language(
    segment: Any, sent: Sent
) -> None:
    client = Client()
    referrer = "http://testserver/invitation/SEKRET5/"
    # Looked up first in English, where the French text is no route of the app.
    client.get("/en/home/", HTTP_REFERER=referrer, **NAVIGATE)
    client.get("/fr/home/", HTTP_REFERER=referrer, **NAVIGATE)
    in_french = sent(type="page")[-1]
    assert in_french["properties"]["path"] == "/fr/home/"
    assert in_french["properties"]["referrer"] == "http://testserver/invitation/REDACTED/"


def test_a_translated_route_has_one_template_in_every_language(segment: Any, sent: Sent) -> None:
    segment(PAGE_NAME="template")
    client = Client()
    visits = ["/fr/%C3%A0-propos/", "/en/about/", "/fr/%C3%A0-propos/", "/fr/sujets/velo/"]
    for url in [*visits, "/en/topics/bike/"]:
        assert client.get(url, **NAVIGATE).status_code == 200
    pages = [(page["name"], page["properties"]["path"]) for page in sent(type="page")]
    assert pages == [
        ("/about/", "/fr/%C3%A0-propos/"),
        ("/about/", "/en/about/"),
        ("/about/", "/fr/%C3%A0-propos/"),  # the template kept for the route
        ("/topics/<slug:topic>/", "/fr/sujets/velo/"),
        ("/topics/<slug:topic>/", "/en/topics/bike/"),
    ]
