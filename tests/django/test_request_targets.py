"""Request lines no browser sends, with the environ uWSGI and gunicorn make of them.

uWSGI passes the target on as it came, in ``PATH_INFO`` and ``REQUEST_URI``;
gunicorn reads an absolute-form target's path into ``PATH_INFO`` and keeps the
target in ``RAW_URI``; uvicorn's h11 server passes it on in the scope's ``path``
and ``raw_path``. Django makes ``/http:/ada:s3cret@shop.example/account`` of the
first and ``/xy`` of ``x/y``, which a catch-all route (a CMS's) answers with a page.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import re_path

from tests.asgi.asgi import call, http_scope
from tests.django.conftest import Sent
from tests.web.raw_bytes import (
    RAW_QUERY,
    RAW_REFERRER,
    RAW_USER_AGENT,
    assert_read_as_the_framework_reads_them,
)

SECRET_TARGET = "http://ada:s3cret@shop.example/account"
BROWSER = {"HTTP_ACCEPT": "text/html", "HTTP_USER_AGENT": "Mozilla/5.0 Firefox/128.0"}


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>a page</p>")


urlpatterns = [re_path(r"", page, name="page")]


@pytest.fixture(autouse=True)
def _urls(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__


def get(target: str, host: str = "shop.example", **environ: str) -> int:
    """``GET <target>`` as uWSGI gives it to Django; the response's status."""
    path, _, query = target.partition("?")
    server: dict[str, Any] = {"PATH_INFO": path, "REQUEST_URI": target, "QUERY_STRING": query}
    response = Client().get("/", HTTP_HOST=host, **{**BROWSER, **server, **environ})
    return int(response.status_code)


def page_urls(sent: Sent) -> list[str]:
    return sorted(message["properties"]["url"] for message in sent(type="page"))


@pytest.mark.parametrize("target", [SECRET_TARGET + "?n=1", "x/y?n=2", "*"])
def test_under_uwsgi_a_target_django_cannot_route_has_no_page_call(
    target: str, segment: Any, sent: Sent
) -> None:
    # Django resolves PATH_INFO, which starts with no "/": 404, as in the other adapters
    # for a target that names no path.
    assert get(target) == 404
    assert sent(type="page") == []


def test_under_gunicorn_an_absolute_form_target_is_a_page_of_the_host_header(
    segment: Any, sent: Sent
) -> None:
    environ = {"PATH_INFO": "/account", "REQUEST_URI": "", "RAW_URI": SECRET_TARGET}
    assert get(SECRET_TARGET + "?n=1", **environ) == 200
    [message] = sent(type="page")
    assert message["properties"]["url"] == "http://shop.example/account?n=1"
    assert message["properties"]["path"] == message["context"]["page"]["path"] == "/account"
    assert "s3cret" not in repr(message)


def test_what_follows_a_fragment_in_the_target_is_no_query(segment: Any, sent: Sent) -> None:
    # uWSGI splits "/f#top?utm_source=evil" at its "?": the query it gives is the fragment's.
    assert get("/f#top?utm_source=evil&n=1") == 200
    [message] = sent(type="page")
    assert message["properties"]["url"] == "http://shop.example/f"
    assert message["properties"]["search"] == ""
    assert "campaign" not in message["context"]


async def test_under_uvicorn_what_follows_a_fragment_in_the_target_is_no_query(
    segment: Any, sent: Sent
) -> None:
    headers = [(b"host", b"shop.example"), (b"accept", b"text/html")]
    scope = http_scope("/f#top", query_string=b"utm_source=evil", headers=headers)
    [start, *_] = await call(ASGIHandler(), scope)
    assert start["status"] == 200
    [message] = sent(type="page")
    assert message["properties"]["url"] == "http://shop.example/f"
    assert "campaign" not in message["context"]


async def test_under_uvicorn_a_target_django_cannot_route_has_no_page_call(
    segment: Any, sent: Sent
) -> None:
    headers = [(b"host", b"shop.example"), (b"accept", b"text/html")]
    scope = http_scope(SECRET_TARGET, query_string=b"n=1", headers=headers)
    [start, *_] = await call(ASGIHandler(), scope)
    assert start["status"] == 404
    assert sent(type="page") == []


def test_raw_bytes_in_the_query_and_referrer_are_escaped_under_wsgi(
    segment: Any, sent: Sent
) -> None:
    # WSGI servers give the bytes as latin-1 text (PEP 3333).
    query, referrer = RAW_QUERY.decode("latin-1"), RAW_REFERRER.decode("latin-1")
    user_agent = RAW_USER_AGENT.decode("latin-1")
    assert get("/p?" + query, HTTP_REFERER=referrer, HTTP_USER_AGENT=user_agent) == 200
    [message] = sent(type="page")
    assert_read_as_the_framework_reads_them(message, "http://shop.example/p")


async def test_raw_bytes_in_the_query_and_referrer_are_escaped_under_asgi(
    segment: Any, sent: Sent
) -> None:
    # Django's ASGIRequest decodes the query as UTF-8 (invalid bytes made U+FFFD).
    headers = [
        (b"host", b"shop.example"),
        (b"accept", b"text/html"),
        (b"referer", RAW_REFERRER),
        (b"user-agent", RAW_USER_AGENT),
    ]
    scope = http_scope("/p", query_string=RAW_QUERY.replace(b"\xe9", b"%E9"), headers=headers)
    [start, *_] = await call(ASGIHandler(), scope)
    assert start["status"] == 200
    [message] = sent(type="page")
    assert_read_as_the_framework_reads_them(message, "http://shop.example/p")


@pytest.mark.parametrize("port", ["0", "080", "99999"])
def test_a_host_whose_port_is_out_of_range_has_no_page_call(
    port: str, segment: Any, sent: Sent
) -> None:
    assert get("/p?n=1", host=f"shop.example:{port}") == 200  # Django lets it through
    assert get("/p?n=2", host="shop.example:65535") == 200
    assert page_urls(sent) == ["http://shop.example:65535/p?n=2"]


def test_a_forwarded_host_is_in_lower_case_and_its_port_in_range(segment: Any, sent: Sent) -> None:
    segment(TRUSTED_PROXIES=1)
    assert get("/p?n=1", HTTP_X_FORWARDED_HOST="SHOP.Example:8443") == 200
    assert get("/p?n=2", host="testserver", HTTP_X_FORWARDED_HOST="shop.example:99999") == 200
    assert page_urls(sent) == ["http://shop.example:8443/p?n=1", "http://testserver/p?n=2"]


def test_the_url_has_the_host_in_lower_case_as_browsers_write_it(segment: Any, sent: Sent) -> None:
    assert get("/p?n=1", host="SHOP.Example") == 200
    assert get("/p?n=2", host="Shop.Example:80") == 200
    assert page_urls(sent) == ["http://shop.example/p?n=1", "http://shop.example/p?n=2"]
