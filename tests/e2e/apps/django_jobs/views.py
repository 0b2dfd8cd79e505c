from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from django.http import HttpRequest, HttpResponse

from segment_core.scope import analytics, start_thread, with_binding
from tests.e2e.apps.django_jobs.celery_app import app as celery_app
from tests.e2e.apps.django_jobs.tasks import send_order_email

_pool = ThreadPoolExecutor(2, thread_name_prefix="view-pool")

__all__ = ["celery_app", "health", "order", "threads", "user_from_header"]


def user_from_header(request: HttpRequest) -> str | None:
    """The ``USER_ID`` hook: the test's stand-in for a logged-in user."""
    return request.headers.get("X-Test-User")


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(os.getpid()))


def order(request: HttpRequest, order_id: str) -> HttpResponse:
    send_order_email.delay(order_id)
    return HttpResponse(order_id)


def _background(where: str) -> None:
    analytics().track("Background Work", {"where": where})


def threads(request: HttpRequest) -> HttpResponse:
    thread = start_thread(_background, "thread")
    future = _pool.submit(with_binding(_background), "executor")
    thread.join(10)
    future.result(10)
    return HttpResponse("ok")
