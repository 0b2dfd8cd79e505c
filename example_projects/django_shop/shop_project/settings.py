"""Settings for the demo shop, read from the environment.

- ``SEGMENT_WRITE_KEY``, ``SEGMENT_HOST``: where events go (Segment, or a local
  collector such as ``segment-collector``).
- ``SEGMENT_BROWSER_WRITE_KEY``: load analytics.js in the pages (optional), with
  ``SEGMENT_SNIPPET_SRC``, ``SEGMENT_BROWSER_CDN``, ``SEGMENT_BROWSER_API_HOST`` and
  ``SEGMENT_PAGE_SOURCE`` for where it comes from, where it sends, who counts pages.
- ``SHOP_DATABASE``: the SQLite file (default: ``django_shop.sqlite3`` in the temp dir).
- ``SHOP_CELERY_BROKER``: the Celery broker (``redis://127.0.0.1:6379/0``); unset, the
  order confirmation runs in a thread of the web process instead of a worker.
- ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, ``DJANGO_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-demo-shop-only")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    # First: its registration/logged_out.html, the page a logout leads to, is the one
    # Django renders (the admin's logout too), not the admin's.
    "shop",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "rest_framework.authtoken",
    "segment_django",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After AuthenticationMiddleware, so page calls carry the logged-in user's id.
    "segment_django.middleware.SegmentMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shop_project.urls"
WSGI_APPLICATION = "shop_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.shop",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "SHOP_DATABASE", str(Path(tempfile.gettempdir()) / "django_shop.sqlite3")
        ),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "shop:product_list"
# No LOGOUT_REDIRECT_URL: a logout leads to registration/logged_out.html, whose
# analytics.reset() makes analytics.js forget the user too.

# Password reset e-mails (with their one-time link) are printed by the server.
_CONSOLE_MAIL = "django.core.mail.backends.console.EmailBackend"
if django.VERSION < (6, 1):
    EMAIL_BACKEND = _CONSOLE_MAIL
else:  # EMAIL_BACKEND is deprecated from Django 6.1
    MAILERS = {"default": {"BACKEND": _CONSOLE_MAIL}}
DEFAULT_FROM_EMAIL = "shop@example.com"

# The JSON API (shop/api.py): a token (``Authorization: Token <key>``) or the session.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-gb"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        # Delivery problems (collector down, bad write key) show up in the server log.
        # "segment" is the parent of every logger of the library, as in analytics-python.
        "segment": {"handlers": ["console"], "level": "WARNING"},
        "shop": {"handlers": ["console"], "level": "INFO"},
    },
}

# Segment: every option of segment_core.Client and segment_core.web.WebOptions,
# upper-cased. None falls back to the SEGMENT_WRITE_KEY / SEGMENT_HOST variables
# (and then to https://api.segment.io); with no write key nothing is sent.
SEGMENT = {
    "WRITE_KEY": os.environ.get("SEGMENT_WRITE_KEY"),
    "HOST": os.environ.get("SEGMENT_HOST"),
    # A login sends one identify (the visitor's anonymous id joined to the user),
    # with these traits. The admin, the API's JSON and the browsable API, and the
    # password-reset token in its URL need no setting: they are handled by default.
    "IDENTIFY_TRAITS": "shop.analytics.identify_traits",
    # analytics.js in the pages ({% segment_snippet %} in base.html): the website
    # source's own write key (no key: no snippet), where the library comes from
    # (None: Segment's CDN), where it sends, and which side sends page views.
    "BROWSER_WRITE_KEY": os.environ.get("SEGMENT_BROWSER_WRITE_KEY") or None,
    "SNIPPET_SRC": os.environ.get("SEGMENT_SNIPPET_SRC") or None,
    "BROWSER_CDN": os.environ.get("SEGMENT_BROWSER_CDN") or None,
    "BROWSER_API_HOST": os.environ.get("SEGMENT_BROWSER_API_HOST") or None,
    "PAGE_SOURCE": os.environ.get("SEGMENT_PAGE_SOURCE") or None,
}

# Celery (shop_project/celery.py): the order confirmation is a task.
CELERY_BROKER_URL = os.environ.get("SHOP_CELERY_BROKER", "")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
