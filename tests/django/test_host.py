"""The request's host: what ``request.get_host()`` answers, kept for the next request.

The middleware keeps ``get_host()``'s answer by the host header and the settings it
depends on; it must answer as ``get_host()`` does after any change of them.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.test import Client, RequestFactory, override_settings

from segment_django.middleware import _host
from tests.django.conftest import Sent

HOSTS = [
    "testserver",
    "TestServer:8000",
    "shop.example",
    "shop.example.",
    "www.shop.example",
    "evil.example",
    "localhost",
    "api.localhost:3000",
    "127.0.0.1",
    "[::1]:8443",
    "bad host",
    "",
]
ALLOWED = [[], ["testserver"], [".shop.example"], ["*"], ["shop.example", "127.0.0.1"]]


def django_host(request: HttpRequest) -> str:
    try:
        return request.get_host()
    except DisallowedHost:
        return ""


def test_answers_as_get_host_for_every_setting() -> None:
    factory = RequestFactory()
    settings = itertools.product(ALLOWED, [False, True], [False, True])
    for (allowed, debug, forwarded), _ in itertools.product(settings, range(2)):
        with override_settings(ALLOWED_HOSTS=allowed, DEBUG=debug, USE_X_FORWARDED_HOST=forwarded):
            for host, forwarded_host in itertools.product(HOSTS, [None, "shop.example", "evil"]):
                extra = {} if forwarded_host is None else {"HTTP_X_FORWARDED_HOST": forwarded_host}
                request = factory.get("/", HTTP_HOST=host, **extra)
                expected = django_host(request)
                assert _host(request) == expected, (allowed, debug, forwarded, host, extra)


def test_without_a_host_header() -> None:
    request = RequestFactory().get("/")
    request.META.pop("HTTP_HOST", None)
    request.META.update(SERVER_NAME="testserver", SERVER_PORT="8080")
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        assert _host(request) == "testserver:8080"
    with override_settings(ALLOWED_HOSTS=["elsewhere"]):
        assert _host(request) == ""


def test_a_list_changed_in_place(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    request = RequestFactory().get("/", HTTP_HOST="late.example")
    assert _host(request) == ""
    settings.ALLOWED_HOSTS.append("late.example")
    assert _host(request) == "late.example"
    settings.ALLOWED_HOSTS.remove("late.example")
    assert _host(request) == ""


def test_a_request_class_with_its_own_get_host() -> None:
    class Pinned(HttpRequest):
        def get_host(self) -> str:
            return "pinned.example"

    request = Pinned()
    request.META["HTTP_HOST"] = "testserver"
    assert _host(request) == "pinned.example"


def test_settings_changed_between_requests(client: Client, sent: Sent, settings: Any) -> None:
    client.get("/", HTTP_HOST="shop.example")
    settings.ALLOWED_HOSTS = ["testserver"]
    client.get("/", HTTP_HOST="shop.example")  # no page call for a host Django refuses
    settings.ALLOWED_HOSTS = ["shop.example"]
    client.get("/", HTTP_HOST="shop.example")
    assert [m["properties"]["url"] for m in sent()] == ["http://shop.example/"] * 2


@pytest.mark.parametrize("host", ["shop.example", "evil.example"])
def test_forwarded_host_when_django_uses_it(
    client: Client, sent: Sent, settings: Any, host: str
) -> None:
    settings.USE_X_FORWARDED_HOST = True
    client.get("/", HTTP_X_FORWARDED_HOST=host)
    urls = [m["properties"]["url"] for m in sent()]
    assert urls == ([] if host == "evil.example" else ["http://shop.example/"])


def test_a_host_too_long_to_be_one() -> None:
    request = RequestFactory().get("/", HTTP_HOST="a" * 400 + ".shop.example")
    with override_settings(ALLOWED_HOSTS=[".shop.example"]):
        assert _host(request) == django_host(request) == request.META["HTTP_HOST"]
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        assert _host(request) == ""
