from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse

from segment_core.scope import analytics
from tests.e2e.apps.options import item_properties


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(os.getpid()))


def item(request: HttpRequest, n: int) -> HttpResponse:
    # segment_django sets request.analytics; under segment_asgi's middleware the
    # request's Analytics object is reached through segment_core.scope instead.
    tracker = getattr(request, "analytics", None) or analytics()
    tracker.track("Item Viewed", item_properties(n))
    return HttpResponse(str(os.getpid()))
