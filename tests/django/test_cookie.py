"""The ``ajs_anonymous_id`` cookie as Django sends it: the ``Set-Cookie`` line, byte for byte.

The middleware adds a ``Morsel`` to ``response.cookies`` that writes its line
without working it out again; the line must be the one ``SimpleCookie`` writes,
and the ``Morsel`` one the app can read, change, copy and pickle.
"""

from __future__ import annotations

import io
import pickle
import re
import sys
from collections.abc import Callable
from http.cookies import Morsel, SimpleCookie
from typing import Any

import pytest
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.test import Client

from tests.django.conftest import Sent

ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def serve(path: str = "/", **environ: str) -> tuple[str, list[tuple[str, str]]]:
    """One request through Django's WSGI handler: the status and the headers it sends."""
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer.extend((status, headers))

    # As Django's test client does: the test's database connection stays open.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = WSGIHandler()(
            {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": path,
                "QUERY_STRING": "",
                "SERVER_NAME": "testserver",
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "HTTP_HOST": "testserver",
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(),
                "wsgi.errors": sys.stderr,
                **environ,
            },
            start_response,
        )
        body.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer[0], answer[1]


def set_cookie_lines(headers: list[tuple[str, str]]) -> list[str]:
    # Django before 6.1 passes on SimpleCookie's leading space; 6.1 strips it.
    return [value.lstrip() for name, value in headers if name == "Set-Cookie"]


def simple_cookie_line(value: str, **attributes: Any) -> str:
    """The line SimpleCookie writes for the cookie, as Django sends it."""
    jar: SimpleCookie = SimpleCookie()
    jar["ajs_anonymous_id"] = value
    for name, attribute in attributes.items():
        jar["ajs_anonymous_id"][name.replace("_", "-")] = attribute
    return jar["ajs_anonymous_id"].output(header="")


def test_the_line_is_simple_cookies(segment: Any) -> None:
    for _ in range(2):  # the first cookie and the next, made from what the first learnt
        status, headers = serve()
        assert status == "200 OK"
        [line] = set_cookie_lines(headers)
        pattern = rf"ajs_anonymous_id=({ID}); Max-Age=31536000; Path=/; SameSite=Lax"
        value = re.fullmatch(pattern, line)
        assert value is not None, line
        expected = simple_cookie_line(value[1], max_age=31536000, path="/", samesite="Lax")
        assert line == expected.lstrip()


def test_no_cookie_on_a_redirect_from_http_to_https(segment: Any) -> None:
    segment()
    status, headers = serve("/to-https/")
    assert status.startswith("302") and ("Location", "https://testserver/to-https/") in headers
    assert set_cookie_lines(headers) == []  # over http it could not be Secure
    _, headers = serve("/to-https/", **{"wsgi.url_scheme": "https"})
    [line] = set_cookie_lines(headers)
    assert line.endswith("; Secure")
    status, headers = serve("/redirect/")  # another redirect keeps the visitor's cookie
    assert status.startswith("302") and len(set_cookie_lines(headers)) == 1


def test_every_attribute(segment: Any) -> None:
    segment(COOKIE_DOMAIN=".shop.example", COOKIE_FORMAT="quoted", COOKIE_MAX_AGE=600)
    for _ in range(2):
        _, headers = serve(HTTP_HOST="shop.example", **{"wsgi.url_scheme": "https"})
        [line] = set_cookie_lines(headers)
        value = re.fullmatch(
            rf"ajs_anonymous_id=(%22{ID}%22); Domain=\.shop\.example; Max-Age=600; Path=/;"
            " SameSite=Lax; Secure",
            line,
        )
        assert value is not None, line
        expected = simple_cookie_line(
            value[1], domain=".shop.example", max_age=600, path="/", samesite="Lax", secure=True
        )
        assert line == expected.lstrip()


class ChangeTheCookie:
    """Outside SegmentMiddleware: changes the cookie it added to the response."""

    change: Callable[[Morsel[str]], None] = staticmethod(lambda morsel: None)

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        morsel = response.cookies["ajs_anonymous_id"]
        assert isinstance(morsel, Morsel)
        assert repr(morsel).startswith("<Morsel: ajs_anonymous_id=")
        ChangeTheCookie.change(morsel)
        return response


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.__setitem__("domain", "shop.example"), "; Domain=shop.example; Max-Age="),
        (lambda m: m.update({"httponly": True}), "; HttpOnly; Max-Age="),
        (lambda m: dict.__setitem__(m, "path", "/shop"), "; Path=/shop; SameSite"),
        (lambda m: m.set("ajs_anonymous_id", "x", "x"), "ajs_anonymous_id=x; Max-Age="),
    ],
)
def test_a_cookie_changed_afterwards(
    segment: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Morsel[str]], None],
    expected: str,
) -> None:
    settings.MIDDLEWARE = [f"{__name__}.ChangeTheCookie", *settings.MIDDLEWARE]
    monkeypatch.setattr(ChangeTheCookie, "change", staticmethod(change))
    _, headers = serve()
    [line] = set_cookie_lines(headers)
    assert expected in line


def test_the_morsel_reads_copies_and_pickles(client: Any, segment: Any) -> None:
    response = client.get("/")
    morsel = response.cookies["ajs_anonymous_id"]
    assert re.fullmatch(ID, morsel.value) and morsel.coded_value == morsel.value
    assert morsel.key == "ajs_anonymous_id"
    assert morsel["max-age"] == 31536000 and morsel["path"] == "/" and morsel["secure"] == ""
    line = morsel.output(header="")
    assert line == simple_cookie_line(morsel.value, max_age=31536000, path="/", samesite="Lax")
    assert morsel.copy().output(header="") == line
    assert morsel == morsel.copy()
    restored = pickle.loads(pickle.dumps(response.cookies))
    assert restored["ajs_anonymous_id"].output(header="") == line
    only_path = f"Set-Cookie: ajs_anonymous_id={morsel.value}; Path=/"
    assert response.cookies.output(attrs=["path"]) == only_path


def use_the_per_site_cache(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.MIDDLEWARE = [
        "django.middleware.cache.UpdateCacheMiddleware",
        *settings.MIDDLEWARE,
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    cache.clear()


def test_the_per_site_cache_never_hands_one_visitor_s_cookie_to_another(
    settings: Any, sent: Sent
) -> None:
    use_the_per_site_cache(settings)
    cookies = [Client().get("/").cookies["ajs_anonymous_id"].value for _ in range(3)]
    returning = Client()
    returning.cookies["ajs_anonymous_id"] = "returning-visitor"
    returning.get("/")  # no cookie set: the page cached for the visitors after it
    cookies.append(Client().get("/").cookies["ajs_anonymous_id"].value)
    assert len(set(cookies)) == 4
    pages = sent()
    assert [page["anonymousId"] for page in pages] == [
        *cookies[:3],
        "returning-visitor",
        cookies[3],
    ]
    cache.clear()


@pytest.mark.parametrize(
    ("app_value", "expected"),
    [
        (None, "private"),
        ("public, max-age=60, s-maxage=600", "private, max-age=60, s-maxage=600"),
        # Django's per-site cache before 5.2 stores a no-store response.
        ("no-store", "private, no-store"),
    ],
)
def test_visitors_sending_one_cookie_header_never_share_an_id(
    settings: Any, sent: Sent, app_value: str | None, expected: str
) -> None:
    # A consent banner's cookie: every new visitor sends the same Cookie header,
    # with which Django's per-site cache before 5.2 stores a response that sets one.
    use_the_per_site_cache(settings)
    path = "/shared/" if app_value is None else f"/shared/?cache={app_value}"
    responses = []
    for _ in range(2):
        visitor = Client()
        visitor.cookies["cookieconsent_status"] = "dismiss"
        responses.append(visitor.get(path))
    handed = [response.cookies["ajs_anonymous_id"].value for response in responses]
    assert handed[0] != handed[1]
    assert [page["anonymousId"] for page in sent()] == handed
    for response in responses:
        assert (response["Cache-Control"], response["Vary"]) == (expected, "Cookie")
    # A returning visitor's page is left as the app made it, for caches to keep.
    returning = Client()
    returning.cookies["ajs_anonymous_id"] = handed[0]
    response = returning.get(path)
    assert "ajs_anonymous_id" not in response.cookies
    assert "private" not in response["Cache-Control"]
    cache.clear()
