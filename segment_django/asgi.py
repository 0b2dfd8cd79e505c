"""Django on an ASGI server: deliver Segment events when a worker shuts down.

Django's ASGI handler does not speak the lifespan protocol, and ASGI servers
(uvicorn, gunicorn's uvicorn worker) end a worker without running ``atexit``, so
events still buffered at a deploy would be lost. In ``asgi.py``, use this instead
of Django's function of the same name::

    from segment_django.asgi import get_asgi_application

    application = get_asgi_application()

It is Django's ASGI application, plus the lifespan protocol answered for it: at
shutdown the client is flushed (within ``SHUTDOWN_TIMEOUT``). Page calls and
``request.analytics`` still come from ``segment_django``'s middleware.
"""

from __future__ import annotations

from django.core.asgi import get_asgi_application as django_asgi_application

from segment_core.lifespan import ASGIApp, ShutdownFlush
from segment_django.conf import get_client

__all__ = ["get_asgi_application"]


def get_asgi_application() -> ASGIApp:
    """Django's ASGI application, flushing Segment's client at lifespan shutdown."""
    return ShutdownFlush(django_asgi_application(), client=get_client)
