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
from django.utils import translation
from django.utils.functional import lazy

from tests.django.conftest import Sent, english_and_french

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


class InviteNumberConverter:
    """An invite's link text (base 36, a multiple of a large prime), read as its number."""

    regex = r"[0-9a-z]+"

    def to_python(self, value: str) -> int:
        number, rest = divmod(int(value, 36), 1000003)
        if rest:
            raise ValueError("not an invite's link")
        return number

    def to_url(self, value: int) -> str:
        return base36(value * 1000003)


def base36(number: int) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
    return digits or "0"


register_converter(InviteNumberConverter, "invite_number")
INVITE_ONE = base36(1000003)  # invite number 1: "lflv"


def verify_route() -> str:
    # What gettext_lazy("check/<signed:token>/") gives with a French catalogue.
    if translation.get_language() == "fr":
        return "verifier/<signed:token>/"
    return "check/<signed:token>/"


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
    path("v1/invite/<invite_number:invite_key>/", page, name="invite"),
    *i18n_patterns(
        path("verify/<signed:token>/", page, name="verify"),
        path(lazy(verify_route, str)(), page, name="check"),
    ),
]


@pytest.fixture(autouse=True)
def _urls(settings: Any) -> None:
    english_and_french(settings, __name__)


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


def test_a_number_a_converter_reads_is_redacted_as_written_wherever_its_digits_stand(
    segment: Any, sent: Sent
) -> None:
    # Invite number 1: "/v1/" holds a "1", the path's own text is "lflv".
    client = Client()
    client.get(f"/v1/invite/{INVITE_ONE}/", **NAVIGATE)
    client.get("/login/", HTTP_REFERER=f"http://testserver/v1/invite/{INVITE_ONE}/", **NAVIGATE)
    invite, login = (m["properties"] for m in sent(type="page"))
    assert invite["path"] == "/v1/invite/REDACTED/"
    assert login["referrer"] == "http://testserver/v1/invite/REDACTED/"


def test_a_scheme_relative_url_of_the_app_in_a_value_loses_its_secret(
    segment: Any, sent: Sent
) -> None:
    # url_has_allowed_host_and_scheme lets "//testserver/..." through as the app's own.
    signed = token()
    Client().get(f"/login/?next=//testserver/confirm/{signed}/", **NAVIGATE)
    [login] = sent(type="page")
    assert login["properties"]["search"] == "?next=//testserver/confirm/REDACTED/"
    assert signed not in json.dumps(login)


def test_a_translated_route_in_a_referrer_is_read_in_its_own_language(
    segment: Any, sent: Sent
) -> None:
    signed = token()
    referrer = f"http://testserver/fr/verifier/{signed}/"
    Client().get(f"/en/verify/{signed}/", HTTP_REFERER=referrer, **NAVIGATE)  # in English
    Client().get("/login/", HTTP_REFERER=referrer, **NAVIGATE)
    assert [m["properties"]["referrer"] for m in sent(type="page")] == [
        "http://testserver/fr/verifier/REDACTED/"
    ] * 2
