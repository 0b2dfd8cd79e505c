"""The hello-world Django site of ``benchmarks/django_overhead.py``.

gunicorn serves ``benchmarks.django_bench_app:make_app('plain')`` or ``...('segment')``.
Both variants have the same settings and the same session and authentication
middleware (as a real site has); ``"segment"`` adds ``segment_django`` and its
middleware, sending to ``$BENCH_COLLECTOR`` with the ``SEGMENT`` keys of
``$BENCH_SEGMENT_OPTIONS`` (JSON). This module is also the ``ROOT_URLCONF``.

The pages never touch the database: with no session cookie the session is empty
without a query and the user is anonymous. The in-memory SQLite database has no
tables and a new database connection is an error, so a query would show as
failed requests in the benchmark's count.
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from benchmarks._overhead import PAGE, PROBE, WRITE_KEY


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<p>Hello, World!</p>", content_type="text/html; charset=utf-8")


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path(PAGE.removeprefix("/"), hello, name="hello"),
    path(PROBE.removeprefix("/"), healthz, name="healthz"),
]


def _no_database(**kwargs: Any) -> None:
    raise RuntimeError("the benchmark's pages must not touch the database")


def make_app(variant: str = "plain") -> Any:
    """Configure Django for ``variant`` and return the WSGI application."""
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.db.backends.signals import connection_created

    segment = variant == "segment"
    options = json.loads(os.environ.get("BENCH_SEGMENT_OPTIONS") or "{}")
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-not-a-secret",
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            *(["segment_django"] if segment else []),
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            *(["segment_django.middleware.SegmentMiddleware"] if segment else []),
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SEGMENT=(
            {"WRITE_KEY": WRITE_KEY, "HOST": os.environ["BENCH_COLLECTOR"], **options}
            if segment
            else {}
        ),
    )
    application = get_wsgi_application()  # django.setup(): the apps are ready
    connection_created.connect(_no_database)
    return application
