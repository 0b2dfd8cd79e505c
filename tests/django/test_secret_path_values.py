"""A secret ``<path:...>`` route value is redacted however the browser wrote its
slashes: some as ``/``, some escaped as ``%2F``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from tests.django.conftest import Sent

NAVIGATE = {"HTTP_ACCEPT": "text/html", "HTTP_SEC_FETCH_MODE": "navigate"}
SECRET = "s3cr3tK3y"
WRITTEN = [
    f"v1/q8Zr%2B{SECRET}%2Fk3Jx9w%3D%3D",  # a version, then a quoted base64 token
    f"q8Zr%2B{SECRET}%2Fk3Jx9w%3D%3D/file.pdf",  # a quoted token, then a file name
]


def download(request: HttpRequest, signed_token: str) -> HttpResponse:
    request.analytics.track("Download Started")  # type: ignore[attr-defined]
    return HttpResponse("<p>download</p>")


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>home</p>")


urlpatterns = [
    path("dl/<path:signed_token>", download, name="download"),
    path("", home, name="home"),
]


@pytest.fixture(autouse=True)
def _urls(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__


@pytest.mark.parametrize("written", WRITTEN)
def test_a_secret_path_value_as_a_server_passes_the_request_line_is_redacted(
    segment: Any, sent: Sent, written: str
) -> None:
    # gunicorn's RAW_URI: the path as the browser wrote it, its %2F kept.
    segment(PAGE_NAME="path")
    Client().get(f"/dl/{written}", RAW_URI=f"/dl/{written}", **NAVIGATE)
    track, page = sent()
    for message in (track, page):
        assert message["context"]["page"]["path"] == "/dl/REDACTED"
        assert message["context"]["page"]["url"] == "http://testserver/dl/REDACTED"
    assert page["name"] == "/dl/REDACTED"
    assert SECRET not in json.dumps([track, page])


@pytest.mark.parametrize("written", WRITTEN)
def test_a_same_app_referrer_with_a_secret_path_value_is_redacted(
    segment: Any, sent: Sent, written: str
) -> None:
    Client().get("/", HTTP_REFERER=f"http://testserver/dl/{written}?a=1", **NAVIGATE)
    (page,) = sent()
    assert page["properties"]["referrer"] == "http://testserver/dl/REDACTED?a=1"
    assert SECRET not in json.dumps(page)


def own_page(request: HttpRequest, invite_token: str) -> HttpResponse:
    """A view whose first call is its own page call, then a snapshot for a job."""
    request.analytics.page("Invitation")  # type: ignore[attr-defined]
    snapshots.append(request.analytics.snapshot())  # type: ignore[attr-defined]
    return HttpResponse("<p>invitation</p>")


def own_snapshot(request: HttpRequest, invite_token: str) -> HttpResponse:
    """A view whose first use of the visitor is a snapshot (a job enqueued)."""
    snapshots.append(request.analytics.snapshot())  # type: ignore[attr-defined]
    return HttpResponse("<p>invitation</p>")


snapshots: list[dict[str, Any]] = []
urlpatterns += [
    path("invite/<str:invite_token>/", own_page, name="invite"),
    path("accept/<str:invite_token>/", own_snapshot, name="accept"),
]


def test_a_views_own_first_page_call_hides_the_routes_secret_values(
    segment: Any, sent: Sent
) -> None:
    snapshots.clear()
    Client().get(f"/invite/{SECRET}/?from=mail", **NAVIGATE)
    (page,) = sent()
    assert page["name"] == "Invitation"
    assert page["properties"]["path"] == "/invite/REDACTED/"
    assert page["properties"]["url"] == "http://testserver/invite/REDACTED/?from=mail"
    assert snapshots[0]["context"]["page"]["path"] == "/invite/REDACTED/"
    assert SECRET not in json.dumps([page, snapshots])


def test_a_snapshot_taken_before_any_call_hides_the_routes_secret_values(
    segment: Any, sent: Sent
) -> None:
    snapshots.clear()
    Client().get(f"/accept/{SECRET}/", **NAVIGATE)
    (snapshot,) = snapshots
    assert snapshot["context"]["page"]["url"] == "http://testserver/accept/REDACTED/"
    assert SECRET not in json.dumps([snapshot, sent()])
