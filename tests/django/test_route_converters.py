"""A secret route value that a path converter turns into another object (a signed
token decoded to its payload) is redacted as the path writes it: in the page, a
same-app ``Referer`` and an app URL in a query value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf.urls.i18n import i18n_patterns
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path, register_converter

from tests.django.conftest import Sent

NAVIGATE = {"HTTP_ACCEPT": "text/html", "HTTP_SEC_FETCH_MODE": "navigate"}


class SignedConverter:
    """A token signed by ``django.core.signing``, read as its payload."""

    regex = r"[A-Za-z0-9_:\-]+"

    def to_python(self, value: str) -> Any:
        try:
            return signing.loads(value)
        except signing.BadSignature as error:
            raise ValueError("not a token of this site") from error

    def to_url(self, value: Any) -> str:
        return signing.dumps(value)  # signed anew, with another time: not the link's text


register_converter(SignedConverter, "signed")


def confirm(request: HttpRequest, token: dict[str, Any], **kwargs: Any) -> HttpResponse:
    request.analytics.track("Email Confirmed", {"uid": token["uid"]})
    return HttpResponse("<p>confirmed</p>")


def page(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return HttpResponse("<p>page</p>")


class AccountForm:
    """A class a view gets as its own keyword argument, which no path holds."""


urlpatterns = [
    path("confirm/<signed:token>/", confirm, name="confirm"),
    path("login/", page, name="login"),
    path("team/<slug:team>/", include([path("join/<signed:invite_token>/", page, name="join")])),
    path("account/", page, {"auth_form": AccountForm}, name="account"),
    *i18n_patterns(path("verify/<signed:token>/", page, name="verify")),
]


@pytest.fixture(autouse=True)
def _urls(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.USE_I18N = True
    settings.LANGUAGES = [("en", "English"), ("fr", "French")]
    settings.LANGUAGE_CODE = "en"
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.locale.LocaleMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "segment_django.middleware.SegmentMiddleware",
    ]


def token() -> str:
    return signing.dumps({"uid": 7, "email": "ada@example.com"})


def test_a_token_a_converter_decodes_is_redacted_as_the_path_writes_it(
    segment: Any, sent: Sent
) -> None:
    signed = token()
    client = Client()
    client.get(f"/confirm/{signed}/", **NAVIGATE)
    client.get("/login/", HTTP_REFERER=f"http://testserver/confirm/{signed}/", **NAVIGATE)
    client.get(f"/login/?next=/confirm/{signed}/", **NAVIGATE)
    client.get(f"/login/?next=http://testserver/confirm/{signed}/", **NAVIGATE)
    messages = sent()
    assert [m.get("event") or m["name"] for m in messages] == [
        "Email Confirmed",
        "confirm",
        "login",
        "login",
        "login",
    ]
    track, confirmed, after, relative, absolute = (m["context"]["page"] for m in messages)
    assert track == confirmed
    assert confirmed["path"] == "/confirm/REDACTED/"
    assert confirmed["url"] == "http://testserver/confirm/REDACTED/"
    assert after["referrer"] == "http://testserver/confirm/REDACTED/"
    assert relative["search"] == "?next=/confirm/REDACTED/"
    assert absolute["search"] == "?next=http://testserver/confirm/REDACTED/"
    assert signed not in json.dumps(messages)


def test_a_token_among_other_route_values_and_language_prefixes(segment: Any, sent: Sent) -> None:
    signed = token()
    client = Client()
    client.get(f"/team/red-1/join/{signed}/", **NAVIGATE)
    client.get(f"/fr/verify/{signed}/", **NAVIGATE)
    # An English page linked from a French one, and the other way round.
    client.get("/login/", HTTP_REFERER=f"http://testserver/fr/verify/{signed}/", **NAVIGATE)
    client.get(
        f"/fr/verify/{signed}/", HTTP_REFERER=f"http://testserver/en/verify/{signed}/", **NAVIGATE
    )
    join, verify, login, verify_again = (m["properties"] for m in sent(type="page"))
    assert join["path"] == "/team/red-1/join/REDACTED/"
    assert verify["path"] == verify_again["path"] == "/fr/verify/REDACTED/"
    assert login["referrer"] == "http://testserver/fr/verify/REDACTED/"
    assert verify_again["referrer"] == "http://testserver/en/verify/REDACTED/"
    assert signed not in json.dumps([join, verify, login, verify_again])


def test_a_view_s_own_keyword_arguments_leave_the_path_as_it_is(segment: Any, sent: Sent) -> None:
    # The path holds no auth_form: nothing of it to hide, the path stays whole.
    Client().get("/account/", HTTP_REFERER="http://testserver/account/", **NAVIGATE)
    [page_call] = sent(type="page")
    assert page_call["properties"]["path"] == "/account/"
    assert page_call["properties"]["referrer"] == "http://testserver/account/"
