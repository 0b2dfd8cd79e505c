"""What a view passes from the request as a call's properties or traits."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from tests.django.conftest import Sent


def export(request: HttpRequest) -> HttpResponse:
    request.analytics.track("Report Exported")  # type: ignore[attr-defined]
    return HttpResponse("<p>done</p>")


def search(request: HttpRequest) -> HttpResponse:
    request.analytics.track("Products Searched", request.GET)  # type: ignore[attr-defined]
    request.analytics.identify(traits=request.POST)  # type: ignore[attr-defined]
    return HttpResponse("<p>results</p>")


urlpatterns = [path("search/", search), path("internal/export/", export)]


@pytest.fixture(autouse=True)
def _urls(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__


def test_a_query_dict_is_sent_as_the_values_it_gives(segment: Any, sent: Sent) -> None:
    # request.GET keeps a list per key; read as a mapping, each key gives its last
    # value, as analytics-python sends it.
    response = Client().post("/search/?q=shoes&q=boots&page=2", {"plan": "pro"})
    assert response.status_code == 200
    by_type = {m["type"]: m for m in sent()}
    assert by_type["track"]["properties"] == {"q": "boots", "page": "2"}
    assert by_type["identify"]["traits"] == {"plan": "pro"}


def test_a_call_on_an_excluded_path_carries_the_user(segment: Any, sent: Sent, db: Any) -> None:
    # Excluded from page views and the cookie, not from the user: an API's calls.
    segment(EXCLUDE_PATHS=[r"^/internal/"])
    user = User.objects.create_user("ada", password="pw")
    client = Client()
    client.force_login(user)
    assert client.get("/internal/export/").status_code == 200
    assert [(m["type"], m.get("event"), m.get("userId")) for m in sent()] == [
        ("track", "Report Exported", str(user.pk))
    ]
