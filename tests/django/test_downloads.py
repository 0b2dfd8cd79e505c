"""A download (``Content-Disposition: attachment``) leaves the browser on its page:
no page view, whichever response sends it."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.http import FileResponse, HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from tests.django.conftest import Sent

NAVIGATE = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}
REPORT = b"<html><body>report</body></html>"


def export(request: HttpRequest) -> FileResponse:
    return FileResponse(
        io.BytesIO(REPORT), content_type="text/html", as_attachment=True, filename="report.html"
    )


def rendered_export(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(REPORT, content_type="text/html")
    response["Content-Disposition"] = 'attachment; filename="report.html"'
    return response


def shown(request: HttpRequest) -> FileResponse:
    return FileResponse(io.BytesIO(REPORT), content_type="text/html", filename="report.html")


urlpatterns = [
    path("export/", export, name="export"),
    path("export.html", rendered_export, name="rendered_export"),
    path("shown/", shown, name="shown"),
]


@pytest.fixture(autouse=True)
def _urls(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__


@pytest.mark.django_db  # close() sends request_finished, which checks connections
def test_a_download_is_no_page_view(client: Client, sent: Sent) -> None:
    for url in ("/export/", "/export.html", "/shown/"):
        response = client.get(url, **NAVIGATE)
        assert response.status_code == 200, url
        response.close()
    assert [page["name"] for page in sent(type="page")] == ["shown"]
