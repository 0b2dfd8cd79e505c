"""Django's ASGI handler from segment_django.asgi: the middleware's events, flushed at shutdown."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.e2e.apps.django_site.settings")

from segment_django.asgi import get_asgi_application

application = get_asgi_application()
