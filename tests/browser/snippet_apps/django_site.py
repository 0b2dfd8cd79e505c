"""The Django site, in one module: django.contrib.auth for the user, django-csp's nonce."""

from __future__ import annotations

import os

import django
from csp.constants import NONCE, NONE
from csp.decorators import csp_exempt
from django.conf import settings

from tests.browser.snippet_apps.common import PAGE, USER_ID, connect_sources, segment_options

settings.configure(
    DEBUG=False,
    SECRET_KEY="snippet-tests",
    ALLOWED_HOSTS=["127.0.0.1", ".localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "segment_django",
    ],
    MIDDLEWARE=[
        "csp.middleware.CSPMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "segment_django.middleware.SegmentMiddleware",
    ],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(os.environ["SNIPPET_DATA_DIR"], "django.sqlite3"),
        }
    },
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "context_processors": ["django.template.context_processors.request"],
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {
                            "page.html": "{% load segment %}"
                            + PAGE.format(
                                title="{{ title }}", snippet="{% segment_snippet %}"
                            ).replace("</body>", '<a id="cached" href="/cached">Cached</a></body>'),
                            # The head kept for every visitor: the first one's snippet.
                            "fragment.html": "{% load cache segment %}"
                            + PAGE.format(
                                title="{{ title }}",
                                snippet="{% cache 300 head %}{% segment_snippet %}{% endcache %}",
                            ),
                        },
                    )
                ],
            },
        }
    ],
    CONTENT_SECURITY_POLICY={
        "DIRECTIVES": {
            "default-src": [NONE],
            "script-src": [NONCE],
            "connect-src": connect_sources(),
            "base-uri": [NONE],
            "object-src": [NONE],
        }
    },
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
    SEGMENT={name.upper(): value for name, value in segment_options().items()},
)
django.setup()

from django.contrib.auth import login as auth_login  # noqa: E402  (after settings)
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect  # noqa: E402
from django.shortcuts import render  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.cache import cache_page  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html", {"title": "Home"})


def about(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html", {"title": "About"})


@csp_exempt()  # the kept head holds the first response's nonce
def fragment(request: HttpRequest) -> HttpResponse:
    return render(request, "fragment.html", {"title": "Fragment"})


@csp_exempt()  # the kept page holds the first response's nonce
@cache_page(300)  # kept by Django's cache, and sent with a max-age the browser keeps too
def cached(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html", {"title": "Cached"})


def login(request: HttpRequest) -> HttpResponse:
    user, _ = User.objects.get_or_create(username=request.GET.get("as", USER_ID))
    auth_login(request, user)
    return HttpResponseRedirect("/about")


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("", home),
    path("about", about),
    path("fragment", fragment),
    path("cached", cached),
    path("login", login),
    path("healthz", healthz),
]

application = get_wsgi_application()
