"""The same project without segment_django: ``asgi.py`` wraps it in ``SegmentMiddleware``."""

from __future__ import annotations

from tests.e2e.apps.django_site.settings import *  # noqa: F403
from tests.e2e.apps.django_site.settings import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "segment_django"]
MIDDLEWARE = [path for path in MIDDLEWARE if not path.startswith("segment_django.")]
