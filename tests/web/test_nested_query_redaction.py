"""A query string nested in a value (Django admin's ``_changelist_filters``, an OAuth
``state``) loses its secrets, escaped once, twice or not at all, and is written back
escaped as it was; values that merely hold ``=`` stay as they are."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from segment_core.client import Client
from segment_core.collector.handle import CollectorHandle
from segment_core.web import Redactor, RequestTracker, WebOptions
from tests.web.conftest import make_request

HTML = "text/html; charset=utf-8"
# The change link Django's admin writes in its list of users filtered by email.
ADMIN_CHANGE_LINK = (
    "https://shop.example/admin/auth/user/1/change/?_changelist_filters=email%3Dada%2540example.com"
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Django admin: the list's own query, its "@" escaped twice.
        (
            "_changelist_filters=email%3Dada%2540example.com",
            "_changelist_filters=email%3DREDACTED",
        ),
        ("f=email%3Dada%40example.com", "f=email%3DREDACTED"),
        # An OAuth state holding a query, escaped once, twice or not at all.
        ("state=a%3D1%26token%3DABC", "state=a%3D1%26token%3DREDACTED"),
        ("state=a%253D1%2526token%253DABC", "state=a%253D1%2526token%253DREDACTED"),
        ("state=token=ABC&b=2", "state=token=REDACTED&b=2"),
        # In a string of a JSON value, as in a value of the query itself.
        (
            "filter=%7B%22q%22%3A%22token%3DABC%22%7D",
            "filter=%7B%22q%22%3A%22token%3DREDACTED%22%7D",
        ),
        ("state=a=1%26token%3DABC", "state=a=1%26token%3DREDACTED"),
        # Lower-case escapes, ";" between parameters.
        ("state=a%3d1%3baccess_token%3dABC", "state=a%3d1%3baccess_token%3dREDACTED"),
        # The other parameters are kept byte for byte, however they were escaped.
        (
            "state=q%3Dred+shoes%26sort%3D(price)%26user%255Bpassword%255D%3DABC",
            "state=q%3Dred+shoes%26sort%3D(price)%26user%255Bpassword%255D%3DREDACTED",
        ),
        # A URL in the nested query, escaped once more.
        (
            "state=a%3D1%26next%3D%252Faccount%253Ftoken%253DABC",
            "state=a%3D1%26next%3D%252Faccount%253Ftoken%253DREDACTED",
        ),
        # A nested URL written back keeps its ";" escaped: no parameter of its own.
        ("next=/cart%3Bx%3Ftoken%3DABC", "next=/cart%3Bx%3Ftoken%3DREDACTED"),
    ],
)
def test_a_query_string_in_a_value_loses_its_secrets(query: str, expected: str) -> None:
    assert Redactor().query(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        # base64's padding, also after letters that would make a secret name.
        "data=dGVzdA%3D%3D",
        "data=dGVzdA==",
        "data=aPwKey9%3D",
        "data=aPwKey9==",
        # Equations, a search.
        "calc=x%3D1%2B2",
        "calc=key%2Bx%3D2",
        "calc=2*key%3D4",
        "q=price%3D10",
        "q=token+%3D+abc",
        # A nested query without a secret.
        "state=a%3D1%26b%3D2",
        "state=a=1",
    ],
)
def test_a_value_that_merely_holds_an_equals_sign_is_kept(query: str) -> None:
    assert Redactor().query(query) == query


def test_a_nested_query_in_a_url_s_query_and_fragment() -> None:
    redactor = Redactor()
    assert redactor.url(ADMIN_CHANGE_LINK).endswith("?_changelist_filters=email%3DREDACTED")
    assert redactor.url("https://app.example/cb#state=a%3D1%26id_token%3DJWT") == (
        "https://app.example/cb#state=a%3D1%26id_token%3DREDACTED"
    )


# -- a page's url, search and referrer, as sent ----------------------------------------


@pytest.fixture
def client(segment_collector: CollectorHandle) -> Iterator[Client]:
    client = Client("test-key", host=segment_collector.url)
    yield client
    client.shutdown(timeout=5)


def page_sent(client: Client, collector: CollectorHandle, **request: Any) -> dict[str, Any]:
    """The automatic page call of a request made of ``request``, as the collector got it."""
    RequestTracker(client, WebOptions(), make_request(**request)).finish(200, content_type=HTML)
    assert client.flush(timeout=10), "the client did not flush in time"
    [event] = collector.events(type="page")
    message: dict[str, Any] = event["message"]
    return message


def invite_router(path: str) -> Mapping[str, Any] | None:
    parts = path.strip("/").split("/")
    return {"key": parts[1]} if len(parts) == 2 and parts[0] == "invite" else None


def test_a_referrer_from_django_admin_keeps_no_email(
    client: Client, segment_collector: CollectorHandle
) -> None:
    page = page_sent(client, segment_collector, headers={"referer": ADMIN_CHANGE_LINK})
    expected = "https://shop.example/admin/auth/user/1/change/?_changelist_filters=email%3DREDACTED"
    assert page["properties"]["referrer"] == expected
    assert page["context"]["page"]["referrer"] == expected
    assert "example.com" not in json.dumps(page)  # the e-mail, however escaped


def test_a_page_s_url_and_search_lose_a_nested_query_s_secrets(
    client: Client, segment_collector: CollectorHandle
) -> None:
    page = page_sent(
        client,
        segment_collector,
        path="/callback",
        query_string="state=a%3D1%26token%3DABC%26next%3D%252Finvite%252FKEY9&utm_source=mail",
        route_of_path=invite_router,
    )
    # The app's path nested in it loses its route's secret too.
    search = "?state=a%3D1%26token%3DREDACTED%26next%3D%252Finvite%252FREDACTED&utm_source=mail"
    assert page["properties"]["search"] == search
    assert page["properties"]["url"] == f"https://shop.example/callback{search}"
    assert page["context"]["page"]["search"] == search
    assert "ABC" not in json.dumps(page)
    assert "KEY9" not in json.dumps(page)
