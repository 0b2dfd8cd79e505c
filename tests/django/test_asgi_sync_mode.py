"""Django's ASGI handler behind ``segment_asgi``'s middleware with a ``sync_mode`` client.

Django (5.0 and later) cancels the request's task as soon as the client disconnects,
which Starlette's test client does once the last chunk was sent: at times while the
page call waits for its worker thread.
"""

from __future__ import annotations

from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings

from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.collector.handle import CollectorHandle
from tests.asgi.conftest import TestClient

#: The project's middleware without segment_django's: segment_asgi's tracks.
WITHOUT_SEGMENT_DJANGO = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

PAGE_VIEWS = 20


def test_every_page_call_is_made_though_django_cancels_the_request_after_its_response(
    segment_collector: CollectorHandle,
) -> None:
    client = Client("test-key", host=segment_collector.url, sync_mode=True, timeout=10)
    with override_settings(MIDDLEWARE=WITHOUT_SEGMENT_DJANGO):
        app = SegmentMiddleware(ASGIHandler(), client=client)
    try:
        with TestClient(app) as browser:
            for n in range(PAGE_VIEWS):
                response = browser.get(f"/?n={n}", headers={"Accept": "text/html"})
                assert response.status_code == 200
    finally:
        client.shutdown(timeout=10)
    searches = sorted(e["message"]["properties"]["search"] for e in segment_collector.events())
    assert searches == sorted(f"?n={n}" for n in range(PAGE_VIEWS))
