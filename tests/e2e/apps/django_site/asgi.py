"""Django's ASGI handler (which does not speak lifespan) wrapped by SegmentMiddleware."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from segment_asgi import SegmentMiddleware
from tests.e2e.apps.options import client_options
from tests.e2e.apps.shutdown_report import ShutdownReport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.e2e.apps.django_site.settings_asgi")
application = ShutdownReport(
    SegmentMiddleware(
        get_asgi_application(), write_key=os.environ["SEGMENT_WRITE_KEY"], **client_options()
    )
)
