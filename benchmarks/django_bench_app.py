"""The hello-world Django site of ``benchmarks/adapters.py``.

gunicorn serves ``benchmarks.django_bench_app:make_app()``; ``$BENCH_VARIANT``
says which integration it carries (see ``benchmarks/_peers.py``). Every variant
has the same settings and the same session and authentication middleware (as a
real site has). This module is also the ``ROOT_URLCONF``.

The page never touches the database: with no session cookie the session is empty
without a query and the user is anonymous. The in-memory SQLite database has no
tables and a new database connection is an error, so a query would show as
failed requests in the benchmark's count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from benchmarks import _peers


def hello(request: HttpRequest) -> HttpResponse:
    if TRACK:
        request.analytics.track(_peers.TRACK_EVENT)  # type: ignore[attr-defined]
    return HttpResponse("Hello, World!", content_type="text/html")


TRACK = _peers.tracks()


urlpatterns = [path(_peers.PAGE.removeprefix("/"), hello, name="hello")]


class PageMiddleware:
    """The hand-written middleware around analytics-python, PostHog or the minimal client."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.send_page = _peers.page_sender()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        anonymous_id, new = _peers.visitor(request.COOKIES.get(_peers.COOKIE))
        response = self.get_response(request)
        if request.method == "GET" and response.status_code == 200:
            user = request.user
            match = request.resolver_match
            meta = request.META
            page = _peers.PageRequest(
                scheme=request.scheme or "http",
                host=request.get_host(),
                path=request.path,
                query=meta.get("QUERY_STRING", ""),
                referrer=meta.get("HTTP_REFERER", ""),
                ip=meta.get("REMOTE_ADDR"),
                user_agent=meta.get("HTTP_USER_AGENT", ""),
            )
            user_id = str(user.pk) if user.is_authenticated else None
            self.send_page(anonymous_id, user_id, match.url_name if match else None, page)
        if new:
            response.set_cookie(
                _peers.COOKIE, anonymous_id, max_age=_peers.COOKIE_MAX_AGE, samesite="Lax"
            )
        return response


class HookPoints:
    """The ``hooks`` variant: one more middleware, doing nothing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)


def _no_database(**kwargs: Any) -> None:
    raise RuntimeError("the benchmark's pages must not touch the database")


def make_app() -> Any:
    """Configure Django for ``$BENCH_VARIANT`` and return the WSGI application."""
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.db.backends.signals import connection_created

    variant = _peers.variant()
    _peers.setup()
    segment = variant == "segment"
    extra_middleware = {
        "segment": ["segment_django.middleware.SegmentMiddleware"],
        "analytics-python": [f"{__name__}.PageMiddleware"],
        "posthog": [f"{__name__}.PageMiddleware"],
        "minimal": [f"{__name__}.PageMiddleware"],
        "hooks": [f"{__name__}.HookPoints"],
    }
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
            *extra_middleware.get(variant, []),
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SEGMENT=(
            {
                "WRITE_KEY": _peers.WRITE_KEY,
                "HOST": _peers.collector(),
                **{k.upper(): v for k, v in _peers.segment_options().items()},
            }
            if segment
            else {}
        ),
    )
    if variant == "opentelemetry":
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument()  # adds its middleware to the settings
    application = get_wsgi_application()  # django.setup(): the apps are ready
    connection_created.connect(_no_database)
    if variant == "floor":
        from benchmarks._floor import FloorWSGI

        return FloorWSGI(application)
    return application


__all__ = ["HookPoints", "PageMiddleware", "make_app", "urlpatterns"]
