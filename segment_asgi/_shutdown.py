"""The flush at shutdown for a ``SegmentMiddleware`` that gets no lifespan: a mounted app's.

Starlette passes the lifespan protocol to no mounted app, so a middleware on
FastAPI's sub-application (``app.mount("/api", api)``, the middleware on ``api``)
never hears the server stop; ASGI servers end their workers without ``atexit``,
and what its client still holds is lost. :func:`flushing_at_shutdown` wraps the
app the server runs, which does get lifespan, and marks each request's scope: a
middleware below it that got no lifespan joins it at its first request (a mounted
app builds its middleware then, long after the wrapper was made), and its client
is flushed at the wrapper's shutdown.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Protocol

from segment_asgi._types import ASGIApp, Receive, Scope, Send
from segment_core.lifespan import ShutdownFlush

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = ["FLUSHED_AT_SHUTDOWN", "Flushable", "flushing_at_shutdown"]

#: Set in each request's scope by an app of :func:`flushing_at_shutdown` that got
#: lifespan: the middleware whose clients it flushes at shutdown (a ``WeakSet``).
FLUSHED_AT_SHUTDOWN = "segment_asgi.flushed_at_shutdown"


class Flushable(Protocol):
    """What the wrapper flushes: a ``SegmentMiddleware``."""

    def _client_at_shutdown(self) -> Client | None: ...


class _FlushingAtShutdown(ShutdownFlush):
    def __init__(self, app: ASGIApp) -> None:
        # Weakly: a middleware let go of (an app rebuilt in tests) is gone.
        self._middlewares: weakref.WeakSet[Flushable] = weakref.WeakSet()
        self._got_lifespan = False
        super().__init__(app, client=self._clients)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self._got_lifespan = True
        elif self._got_lifespan:  # without lifespan it flushes nothing: no mark
            scope[FLUSHED_AT_SHUTDOWN] = self._middlewares
        await super().__call__(scope, receive, send)

    def _clients(self) -> list[Client]:
        """The clients of the middleware that joined, each once."""
        clients: dict[int, Client] = {}
        for middleware in list(self._middlewares):
            client = middleware._client_at_shutdown()
            if client is not None:
                clients.setdefault(id(client), client)
        return list(clients.values())


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
    return _FlushingAtShutdown(app)
