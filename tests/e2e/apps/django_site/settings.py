"""Settings with the segment_django middleware; the client options come from the environment."""

from __future__ import annotations

from tests.e2e.apps.options import client_options

DEBUG = False
SECRET_KEY = "segment-e2e-not-secret"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "segment_django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "segment_django.middleware.SegmentMiddleware",
]
ROOT_URLCONF = "tests.e2e.apps.django_site.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
# WRITE_KEY and HOST: SEGMENT_WRITE_KEY and SEGMENT_HOST from the environment.
SEGMENT = {name.upper(): value for name, value in client_options().items()}
