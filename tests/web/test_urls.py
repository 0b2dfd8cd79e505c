"""URLs a visitor hands over: the app's own referrers, credentials wherever browsers see them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from segment_core.client import Client
from segment_core.web import REDACTED, HostRoutes, Redactor, RequestTracker, WebOptions
from tests.web.conftest import make_request

Messages = list[dict[str, Any]]
HTML = "text/html; charset=utf-8"


def invite_router(path: str) -> Mapping[str, Any] | None:
    # The app's router: /invite/<key>/ captures the key.
    parts = path.strip("/").split("/")
    return {"key": parts[1]} if len(parts) == 2 and parts[0] == "invite" else None


def page_of(client: Client, sent: Messages, **request: Any) -> dict[str, Any]:
    """The properties of the automatic page call of a request made of ``request``."""
    RequestTracker(client, WebOptions(), make_request(**request)).finish(200, content_type=HTML)
    [page] = sent
    properties: dict[str, Any] = page["properties"]
    return properties


# -- a referrer of the app ----------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "host", "referrer"),
    [
        # A proxy ends TLS and its hops are not trusted: the app sees http.
        ("http", "shop.example", "https://shop.example/invite/KEY123/"),
        ("http", "shop.example", "https://shop.example:443/invite/KEY123/"),
        ("http", "shop.example", "https://SHOP.example/invite/KEY123/"),
        ("https", "shop.example", "http://shop.example/invite/KEY123/"),
        # The proxy passes the port it listens on, or the app's own.
        ("http", "shop.example:80", "https://shop.example/invite/KEY123/"),
        ("http", "shop.example:8000", "https://shop.example/invite/KEY123/"),
        ("http", "shop.example", "http://shop.example:8000/invite/KEY123/"),
        ("http", "localhost:8000", "http://localhost:8000/invite/KEY123/"),
        ("http", "[::1]:8000", "https://[::1]/invite/KEY123/"),
        # The site's www. name and its bare one.
        ("https", "shop.example", "https://www.shop.example/invite/KEY123/"),
        ("https", "www.shop.example", "https://shop.example/invite/KEY123/"),
        ("https", "WWW.shop.example", "https://Www.Shop.example/invite/KEY123/"),
    ],
)
def test_a_referrer_of_the_app_whatever_its_scheme(
    client: Client, sent: Messages, scheme: str, host: str, referrer: str
) -> None:
    properties = page_of(
        client,
        sent,
        scheme=scheme,
        host=host,
        headers={"referer": referrer},
        route_of_path=invite_router,
    )
    assert properties["referrer"].endswith(f"/invite/{REDACTED}/")
    assert "KEY123" not in json.dumps(properties)


@pytest.mark.parametrize(
    ("host", "referrer"),
    [
        ("shop.example", "https://other.example/invite/KEY123/"),
        ("shop.example", "https://shop.example.evil/invite/KEY123/"),
        ("shop.example", "https://www.shop.example.evil/invite/KEY123/"),
        ("shop.example", "https://wwwshop.example/invite/KEY123/"),
        ("www.shop.example", "https://cdn.shop.example/invite/KEY123/"),
        # Two apps on one machine, on ports of their own.
        ("localhost:8000", "http://localhost:3000/invite/KEY123/"),
    ],
)
def test_a_referrer_of_another_host_keeps_its_path(
    client: Client, sent: Messages, host: str, referrer: str
) -> None:
    properties = page_of(
        client,
        sent,
        scheme="http",
        host=host,
        headers={"referer": referrer},
        route_of_path=invite_router,
    )
    assert properties["referrer"] == referrer


# -- an app of several hosts ------------------------------------------------------------


def reset_router(path: str) -> Mapping[str, Any] | None:
    # The shop's own host: /reset/<token>/ captures the token.
    parts = path.strip("/").split("/")
    return {"token": parts[1]} if len(parts) == 2 and parts[0] == "reset" else None


def shop_routes(host: str) -> HostRoutes | None:
    """An app on shop.example (password resets) and its tenants' subdomains
    (invitations): the routes of each of its hosts, none for another site's."""
    if host == "shop.example":
        return HostRoutes(reset_router, shop_routes)
    if host.endswith(".shop.example"):
        return HostRoutes(invite_router, shop_routes)
    return None


@pytest.mark.parametrize(
    ("host", "query", "referrer", "expected_search", "expected_referrer"),
    [
        (
            "shop.example",
            "next=https%3A%2F%2Facme.shop.example%2Finvite%2FKEY123%2F",
            "https://acme.shop.example/invite/KEY123/",
            "?next=https%3A%2F%2Facme.shop.example%2Finvite%2FREDACTED%2F",
            "https://acme.shop.example/invite/REDACTED/",
        ),
        (
            "acme.shop.example",
            "next=//Shop.Example:443/reset/KEY123/",
            "https://shop.example/login?next=/reset/KEY123/#top",
            "?next=//Shop.Example:443/reset/REDACTED/",
            "https://shop.example/login?next=/reset/REDACTED/#top",
        ),
        (
            "acme.shop.example",
            "next=https://globex.shop.example/login?next=/invite/KEY123/",
            "https://globex.shop.example/invite/KEY123/?a=1",
            "?next=https://globex.shop.example/login?next=/invite/REDACTED/",
            "https://globex.shop.example/invite/REDACTED/?a=1",
        ),
        (  # a www. host the app routes as its own: its routes, not the bare host's
            "shop.example",
            "next=https://www.shop.example/invite/KEY123/",
            "https://www.shop.example/invite/KEY123/",
            "?next=https://www.shop.example/invite/REDACTED/",
            "https://www.shop.example/invite/REDACTED/",
        ),
        (  # another site's URLs are none of the app's
            "shop.example",
            "next=https://shop.example.evil/invite/KEY123/",
            "https://other.example/invite/KEY123/",
            "?next=https://shop.example.evil/invite/KEY123/",
            "https://other.example/invite/KEY123/",
        ),
    ],
)
def test_a_url_on_another_host_of_the_app_is_routed_as_that_host_s(
    client: Client,
    sent: Messages,
    host: str,
    query: str,
    referrer: str,
    expected_search: str,
    expected_referrer: str,
) -> None:
    properties = page_of(
        client,
        sent,
        host=host,
        path="/",
        query_string=query,
        headers={"referer": referrer},
        route_of_path=shop_routes(host),
        path_params=None,
    )
    assert properties["search"] == expected_search
    assert properties["referrer"] == expected_referrer


# -- credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ada:pw@files.example/r", "https://files.example/r"),
        ("//ada:pw@files.example/r", "//files.example/r"),
        ("///ada:pw@files.example/r", "///files.example/r"),
        ("https:\\\\ada:pw@files.example/r", "https:\\\\files.example/r"),
        ("https:///ada:pw@files.example/r", "https:///files.example/r"),
        ("/\\ada:pw@files.example/r", "/\\files.example/r"),
        ("ftp://ada:pw@files.example/r", "ftp://files.example/r"),
        ("git+ssh://ada:pw@files.example/r", "git+ssh://files.example/r"),
        # The userinfo ends at the last "@" of the authority.
        ("https://ada:p@ss@files.example/r", "https://files.example/r"),
        # A password with a "/": no host browsers accept, what is left of it goes too.
        ("https://ada:pa/ss@files.example/r", "https://files.example/r"),
        ("https://ada:pa/ss@files.example/r?q=1#top", "https://files.example/r?q=1#top"),
        # An "@" in the path is no userinfo.
        ("https://medium.example/@ada/post", "https://medium.example/@ada/post"),
        ("https://files.example:8443/@ada", "https://files.example:8443/@ada"),
        ("https://[::1]:8443/@ada", "https://[::1]:8443/@ada"),
        ("/users/@ada", "/users/@ada"),
        ("mailto:ada@files.example", "mailto:ada@files.example"),
    ],
)
def test_credentials_leave_a_url_wherever_browsers_find_them(url: str, expected: str) -> None:
    assert Redactor().url(url) == expected


@pytest.mark.parametrize(
    ("query", "referrer"),
    [
        ("next=//alice:hunter2@files.example/report", "https://alice:hun/ter2@files.example/"),
        ("next=%2F%2Falice%3Ahunter2%40files.example%2Freport", "//alice:hunter2@files.example/"),
        ("next=https:%5C%5Calice:hunter2@files.example/", "https:\\\\alice:hunter2@files.example/"),
    ],
)
def test_no_password_reaches_search_or_referrer(
    client: Client, sent: Messages, query: str, referrer: str
) -> None:
    properties = page_of(client, sent, query_string=query, headers={"referer": referrer})
    assert "files.example" in properties["search"] and "files.example" in properties["referrer"]
    shown = json.dumps(properties)
    assert "hunter2" not in shown and "hun/ter2" not in shown and "alice" not in shown


# -- the page's own URL -------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "host", "url"),
    [
        # The port a scheme implies is no part of the URL a browser shows.
        ("https", "shop.example:443", "https://shop.example/cart"),
        ("http", "shop.example:80", "http://shop.example/cart"),
        ("http", "[::1]:80", "http://[::1]/cart"),
        # Any other port is the page's.
        ("http", "shop.example:443", "http://shop.example:443/cart"),
        ("https", "shop.example:80", "https://shop.example:80/cart"),
        ("http", "shop.example:8080", "http://shop.example:8080/cart"),
        ("https", "shop.example", "https://shop.example/cart"),
    ],
)
def test_a_page_url_leaves_out_its_scheme_s_default_port(
    client: Client, sent: Messages, scheme: str, host: str, url: str
) -> None:
    properties = page_of(client, sent, scheme=scheme, host=host, path="/cart")
    assert properties["url"] == url
