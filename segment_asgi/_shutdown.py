"""The flush at shutdown for a ``SegmentMiddleware`` that gets no lifespan: a mounted app's.

Starlette passes the lifespan protocol to no mounted app, so a middleware on
FastAPI's sub-application (``app.mount("/api", api)``, the middleware on ``api``)
never hears the server stop; ASGI servers end their workers without ``atexit``,
and what its client still holds is lost. :func:`flushing_at_shutdown` wraps the
app the server runs, which does get lifespan, and marks each request's scope: a
middleware below it that got no lifespan joins it at its first request (a mounted
app builds its middleware then, long after the wrapper was made), and its client
is flushed at the wrapper's shutdown. The mark and the joining are
:class:`segment_core.lifespan.ShutdownFlush`'s, which ``segment_django.asgi``
uses too: a middleware inside either is flushed.
"""

from __future__ import annotations

from segment_asgi._types import ASGIApp
from segment_core.lifespan import FLUSHED_AT_SHUTDOWN, Flushable, ShutdownFlush

__all__ = ["FLUSHED_AT_SHUTDOWN", "Flushable", "flushing_at_shutdown"]


def flushing_at_shutdown(app: ASGIApp) -> ASGIApp:
    """``app`` flushing, at lifespan shutdown, the clients of the ``SegmentMiddleware`` in it.

    For a middleware that gets no lifespan itself, on a mounted app::

        api = FastAPI()
        api.add_middleware(segment_asgi.SegmentMiddleware, write_key="...")
        app = FastAPI()
        app.mount("/api", api)
        app = segment_asgi.flushing_at_shutdown(app)  # what the server runs

    The flush comes after ``app``'s own shutdown, each client within its
    ``shutdown_timeout``. A middleware joins at its first request, so the ones a
    mounted app builds then are flushed too. When ``app`` does not speak
    lifespan, this answers it for the server.
    """
    return ShutdownFlush(app)
