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

With Django Channels, the router is the application the server runs, and it
refuses the lifespan protocol: wrap the router itself (a ``segment_asgi``
middleware inside, on its ``websocket`` branch, has its client flushed too)::

    from channels.routing import ProtocolTypeRouter
    from django.core.asgi import get_asgi_application
    from segment_django.asgi import flushing_at_shutdown

    application = flushing_at_shutdown(
        ProtocolTypeRouter({"http": get_asgi_application(), "websocket": ...})
    )
"""

from __future__ import annotations

from django.core.asgi import get_asgi_application as django_asgi_application

from segment_core.adapters import keep_loggers_on
from segment_core.lifespan import ASGIApp, ShutdownFlush
from segment_django.conf import get_client

__all__ = ["flushing_at_shutdown", "get_asgi_application"]


def get_asgi_application() -> ASGIApp:
    """Django's ASGI application, flushing Segment's client at lifespan shutdown."""
    application = django_asgi_application()  # django.setup(): the project's LOGGING
    keep_loggers_on()  # imported first, the library's loggers would be off
    return flushing_at_shutdown(application)


def flushing_at_shutdown(app: ASGIApp) -> ASGIApp:
    """``app`` (a Channels router, any ASGI app) answering the lifespan protocol
    itself, flushing Segment's client at shutdown."""
    return ShutdownFlush(app, client=get_client)
