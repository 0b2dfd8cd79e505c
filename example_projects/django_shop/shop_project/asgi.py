"""ASGI entry point: ``uvicorn shop_project.asgi:application``.

Django's own ``SegmentMiddleware`` (in ``settings.MIDDLEWARE``) does the work in
ASGI mode too: it knows URL names and ``request.user``, so it sends the page
calls and sets the ``ajs_anonymous_id`` cookie, exactly as under WSGI.

What Django's ASGI handler lacks is the lifespan protocol, so it never hears that
the server is shutting down. ``segment_django.asgi.get_asgi_application`` is
Django's application with lifespan answered for it: the client is flushed before
the worker exits.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_project.settings")

from segment_django.asgi import get_asgi_application

application = get_asgi_application()
