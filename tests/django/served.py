"""A Django project that ``test_uvicorn.py`` serves with a real uvicorn, in a subprocess.

Django's settings are the process's (the other Django tests configure their own).
Environment: ``SEGMENT_HOST`` (the test's collector), ``SERVED_ASGI``: ``django``
(``asgi.py`` as Django writes it, with Django's own ``get_asgi_application()``) or
``segment_django`` (``segment_django.asgi``'s), and ``SERVED_HOOKS``: ``1`` for a
``PAGE_PROPERTIES`` hook (which the middleware calls outside the event loop). The
client holds every event until it is flushed, and reports each batch it sends on
stderr, where uvicorn logs.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import django
from django.conf import settings


def page_properties(request: Any, response: Any) -> dict[str, Any]:
    return {"hooked": True}


settings.configure(
    SECRET_KEY="segment-django-served",
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["segment_django"],
    MIDDLEWARE=["segment_django.middleware.SegmentMiddleware"],
    SEGMENT={
        "WRITE_KEY": "test-key",
        "HOST": os.environ["SEGMENT_HOST"],
        "FLUSH_AT": 2500,
        "FLUSH_INTERVAL": 300,
        "SEND_IN_TESTS": True,
        **({"PAGE_PROPERTIES": page_properties} if os.environ.get("SERVED_HOOKS") else {}),
    },
)
django.setup()

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from segment_core import signals  # noqa: E402


def report(sender: Any, count: int, **kwargs: Any) -> None:
    print(f"segment batch sent: {count} message(s)", file=sys.stderr, flush=True)


signals.batch_sent.connect(report)


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>page</p>")


async def long_stream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[str]:
        for n in range(600):  # a minute: longer than a test waits for it
            yield f"<p>{n}</p>"
            await asyncio.sleep(0.1)

    return StreamingHttpResponse(chunks(), content_type="text/html")


async def failing_stream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[str]:
        yield "<p>first</p>"
        await asyncio.sleep(0)
        raise RuntimeError("the body failed once the page had started")

    return StreamingHttpResponse(chunks(), content_type="text/html")


def failing_sync_stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[str]:
        yield "<p>first</p>"
        raise RuntimeError("the body failed once the page had started")

    return StreamingHttpResponse(chunks(), content_type="text/html")


def collect(request: HttpRequest) -> HttpResponse:
    """The cycle collector's run, as Python makes it now and then."""
    return HttpResponse(str(gc.collect()), content_type="text/plain")


urlpatterns = [
    path("", page, name="home"),
    path("failing-stream/", failing_stream, name="failing-stream"),
    path("failing-sync-stream/", failing_sync_stream, name="failing-sync-stream"),
    path("collect/", collect, name="collect"),
    path("healthz", page, name="healthz"),
    path("long-stream/", long_stream, name="long-stream"),
]


def served() -> Any:
    if os.environ["SERVED_ASGI"] == "segment_django":
        from segment_django.asgi import get_asgi_application

        return get_asgi_application()
    from django.core.asgi import get_asgi_application as djangos_own

    return djangos_own()


application = served()
