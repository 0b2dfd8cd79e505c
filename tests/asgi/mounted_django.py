"""A Django project mounted in a Starlette app that has ``SegmentMiddleware``.

``test_mounted_apps.py`` runs this in a subprocess: Django's settings are the
process's, and the Django tests configure their own. Argument: ``wsgi`` (Django's
WSGI handler behind Starlette's ``WSGIMiddleware``) or ``asgi`` (``segment_django``'s
ASGI application). Environment: ``SEGMENT_HOST``, the test's collector. Both the
Django middleware and the outer one send with Django's client; it is flushed
before the process ends. Prints the ``Set-Cookie`` headers of the mounted page.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

settings.configure(
    SECRET_KEY="segment-asgi-tests",
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["segment_django"],
    MIDDLEWARE=["segment_django.middleware.SegmentMiddleware"],
    SEGMENT={"WRITE_KEY": "test-key", "SEND_IN_TESTS": True},
)
django.setup()

from starlette.applications import Starlette  # noqa: E402 (after Django's settings)
from starlette.requests import Request  # noqa: E402
from starlette.responses import HTMLResponse  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from segment_asgi import SegmentMiddleware  # noqa: E402
from segment_django import get_client  # noqa: E402

SECRET = "s3cr3t-reset-token"


def reset(request: HttpRequest, token: str) -> HttpResponse:
    return HttpResponse("<p>reset</p>")


urlpatterns = [path("reset/<token>/", reset, name="reset")]


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse("<p>home</p>")


def mounted(kind: str) -> Any:
    if kind == "asgi":
        from segment_django.asgi import get_asgi_application

        return get_asgi_application()
    from django.core.wsgi import get_wsgi_application

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="starlette.middleware.wsgi is deprecated")
        from starlette.middleware.wsgi import WSGIMiddleware
    return WSGIMiddleware(get_wsgi_application())


def main(kind: str) -> None:
    client = get_client()
    app = Starlette(routes=[Route("/", home, name="home"), Mount("/django", mounted(kind))])
    with TestClient(SegmentMiddleware(app, client=client)) as browser:
        response = browser.get(f"/django/reset/{SECRET}/")
        browser.get("/")
    for cookie in response.headers.get_list("set-cookie"):
        print(cookie)
    assert client.flush(timeout=10), "the client did not flush in time"


if __name__ == "__main__":
    main(sys.argv[1])
