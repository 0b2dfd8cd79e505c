"""What a request line's target and a host give the page: its path, its URL, or none.

The environs and scopes below are what each server makes of the request line
``GET <target> HTTP/1.1`` with ``Host: shop.example``: gunicorn 23, uWSGI 2.0,
Werkzeug's development server, uvicorn with h11 and with httptools (which parses
an absolute-form target itself and answers 400 to ``x/y``).
"""

from __future__ import annotations

from typing import Any

import pytest

from segment_core.client import Client
from segment_core.web import (
    RequestTracker,
    WebOptions,
    checked_host,
    environ_wire_path,
    forwarded_origin,
    request_wire_path,
)
from tests.web.conftest import make_request

Messages = list[dict[str, Any]]
HTML = "text/html; charset=utf-8"
SECRET_TARGET = "http://ada:s3cret@shop.example/account"

# The environ of `GET http://ada:s3cret@shop.example/account?tab=2` under each WSGI server.
ABSOLUTE_FORM_ENVIRONS = {
    "gunicorn": {"RAW_URI": SECRET_TARGET + "?tab=2", "PATH_INFO": "/account"},
    "uWSGI": {"REQUEST_URI": SECRET_TARGET + "?tab=2", "PATH_INFO": SECRET_TARGET},
    "Werkzeug": {
        "RAW_URI": SECRET_TARGET + "?tab=2",
        "REQUEST_URI": SECRET_TARGET + "?tab=2",
        "PATH_INFO": "/account",
    },
    "a server that keeps no request line": {"PATH_INFO": SECRET_TARGET},
}


@pytest.mark.parametrize("server", list(ABSOLUTE_FORM_ENVIRONS))
def test_an_absolute_form_target_under_wsgi_gives_its_path(server: str) -> None:
    environ = {"SCRIPT_NAME": "", **ABSOLUTE_FORM_ENVIRONS[server]}
    assert environ_wire_path(environ) == "/account"


def test_an_absolute_form_target_under_asgi_gives_its_path() -> None:
    # uvicorn's h11 server passes the target on as it came; httptools parses it.
    h11 = request_wire_path(SECRET_TARGET, SECRET_TARGET.encode())
    httptools = request_wire_path("/account", b"/account")
    assert h11 == httptools == "/account"


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("http://shop.example", "/"),  # no path: the root, as browsers write the URL
        ("http://shop.example?q=1", "/"),
        ("HTTP://Shop.Example:8080/a%2Fb/caf%E9", "/a%2Fb/caf%E9"),  # escapes kept
        ("https://[::1]:8443/p;v=1", "/p;v=1"),
        ("http://ada:pa%2Fss@shop.example/p#top", "/p"),
        ("ftp://files.example/f", "/f"),  # gunicorn and httptools take any scheme's path
    ],
)
def test_an_absolute_form_target_gives_the_path_after_its_authority(target: str, path: str) -> None:
    assert environ_wire_path({"REQUEST_URI": target, "PATH_INFO": target}) == path
    assert request_wire_path(target, target.partition("?")[0].encode()) == path


def test_an_absolute_form_target_of_a_mounted_app_gets_the_mount_point() -> None:
    environ = {"SCRIPT_NAME": "/shop", "REQUEST_URI": "http://shop.example/cart?x=1"}
    assert environ_wire_path(environ) == "/shop/cart"
    assert request_wire_path("", b"http://shop.example/shop/cart", "/shop") == "/shop/cart"


@pytest.mark.parametrize("target", ["*", "x/y", "shop.example:443", "ada:s3cret@shop.example/a"])
def test_a_target_that_names_no_path_gives_none(target: str) -> None:
    # uWSGI and Werkzeug's server pass these on in the request line and PATH_INFO, and
    # uvicorn in raw_path (h11) or for "*" (httptools); gunicorn answers 400 itself.
    for environ in (
        {"SCRIPT_NAME": "", "REQUEST_URI": target, "PATH_INFO": target},
        {"SCRIPT_NAME": "/shop", "RAW_URI": target, "REQUEST_URI": target, "PATH_INFO": target},
        {"SCRIPT_NAME": "", "PATH_INFO": target},
    ):
        assert environ_wire_path(environ) == ""
    assert request_wire_path(target, target.encode()) == ""
    assert request_wire_path(target, target.encode(), "/shop") == ""
    assert request_wire_path(target, None) == ""


def test_an_origin_form_target_is_its_own_path() -> None:
    assert environ_wire_path({"REQUEST_URI": "//a/b?c", "PATH_INFO": "//a/b"}) == "//a/b"
    assert environ_wire_path({"SCRIPT_NAME": "", "PATH_INFO": ""}) == "/"
    assert request_wire_path("/a", b"/a%2Fb") == "/a%2Fb"


def page_of(client: Client, sent: Messages, **request: Any) -> dict[str, Any] | None:
    """The automatic page call of a browser's GET (as ``make_request``), or None."""
    options = request.pop("options", WebOptions())
    RequestTracker(client, options, make_request(**request)).finish(200, content_type=HTML)
    pages = [message for message in sent if message["type"] == "page"]
    return pages[0] if pages else None


@pytest.mark.parametrize("server", list(ABSOLUTE_FORM_ENVIRONS))
def test_an_absolute_form_target_is_a_page_of_the_host_header_without_its_credentials(
    server: str, client: Client, sent: Messages
) -> None:
    environ = {"SCRIPT_NAME": "", **ABSOLUTE_FORM_ENVIRONS[server]}
    page = page_of(client, sent, path=environ_wire_path(environ), query_string="tab=2")
    assert page is not None
    assert page["properties"]["url"] == "https://shop.example/account?tab=2"
    assert page["properties"]["path"] == "/account"
    assert page["context"]["page"]["path"] == "/account"
    assert "s3cret" not in repr(page)


@pytest.mark.parametrize("target", ["*", "x/y", "shop.example:443"])
def test_a_target_that_names_no_path_has_no_url_and_no_page_call(
    target: str, client: Client, sent: Messages
) -> None:
    path = environ_wire_path({"SCRIPT_NAME": "", "REQUEST_URI": target, "PATH_INFO": target})
    tracker = RequestTracker(client, WebOptions(), make_request(path=path))
    tracker.analytics.track("Viewed")
    assert tracker.finish(200, content_type=HTML) is False
    [track] = sent
    assert "url" not in track["context"]["page"]


@pytest.mark.parametrize(
    ("host", "scheme", "url"),
    [
        ("SHOP.Example", "https", "https://shop.example/products/42"),
        ("Shop.Example:443", "https", "https://shop.example/products/42"),
        ("SHOP.EXAMPLE:8443", "https", "https://shop.example:8443/products/42"),
        ("[::ABCD]:80", "http", "http://[::abcd]/products/42"),
    ],
)
def test_the_url_has_the_host_in_lower_case_as_browsers_write_it(
    host: str, scheme: str, url: str, client: Client, sent: Messages
) -> None:
    page = page_of(client, sent, host=host, scheme=scheme)
    assert page is not None
    assert page["properties"]["url"] == url
    assert page["context"]["page"]["url"] == url


def test_a_forwarded_host_is_in_lower_case_as_browsers_write_it(
    client: Client, sent: Messages
) -> None:
    headers = {"x-forwarded-proto": "https", "x-forwarded-host": "WWW.Shop.Example"}
    page = page_of(
        client,
        sent,
        scheme="http",
        client_addr="10.0.0.1",
        headers=headers,
        options=WebOptions(trusted_proxies=1),
    )
    assert page is not None
    assert page["properties"]["url"] == "https://www.shop.example/products/42"


@pytest.mark.parametrize("port", ["0", "00", "080", "65536", "99999"])
def test_a_host_whose_port_is_out_of_range_is_unknown(
    port: str, client: Client, sent: Messages
) -> None:
    assert checked_host(f"shop.example:{port}") == ""
    assert checked_host(f"[::1]:{port}") == ""
    assert page_of(client, sent, host=f"shop.example:{port}") is None


@pytest.mark.parametrize("port", ["1", "8080", "65535"])
def test_a_host_with_a_port_in_range_is_a_page_of_that_port(
    port: str, client: Client, sent: Messages
) -> None:
    assert checked_host(f"shop.example:{port}") == f"shop.example:{port}"
    page = page_of(client, sent, host=f"shop.example:{port}")
    assert page is not None
    assert page["properties"]["url"] == f"https://shop.example:{port}/products/42"


@pytest.mark.parametrize("port", ["0", "080", "65536", "99999"])
def test_a_forwarded_host_whose_port_is_out_of_range_is_ignored(port: str) -> None:
    headers = {"x-forwarded-host": f"evil.example:{port}"}
    request = make_request(
        scheme="http", host="shop.example", client_addr="10.0.0.1", headers=headers
    )
    forwarded = {"forwarded": f'for=1.2.3.4;host="evil.example:{port}"'}
    by_forwarded = make_request(
        scheme="http", host="shop.example", client_addr="10.0.0.1", headers=forwarded
    )
    assert forwarded_origin(request, 1) == ("http", "shop.example")
    assert forwarded_origin(by_forwarded, 1) == ("http", "shop.example")
    ok = make_request(
        scheme="http", client_addr="10.0.0.1", headers={"x-forwarded-host": "a.example:65535"}
    )
    assert forwarded_origin(ok, 1) == ("http", "a.example:65535")
