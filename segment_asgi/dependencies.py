"""``analytics``: the request's ``Analytics`` object, as a FastAPI dependency.

::

    from fastapi import Depends
    from segment_core.scope import Analytics
    import segment_asgi

    @app.post("/checkout")
    def checkout(analytics: Analytics = Depends(segment_asgi.analytics)):
        analytics.track("Order Completed", {"revenue": 42})

It is a plain function of a Starlette connection, so it needs no FastAPI import
and also works as ``segment_asgi.analytics(request)`` in a Starlette endpoint.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from segment_asgi.middleware import UNTRACKED_WEBSOCKET
from segment_core.scope import Analytics

__all__ = ["analytics"]


def analytics(request: HTTPConnection) -> Analytics:
    """The ``Analytics`` object :class:`~segment_asgi.SegmentMiddleware` bound to ``request``.

    Raises :class:`RuntimeError` when the middleware did not run for it (or, for a
    WebSocket, ran without ``websockets=True``).
    """
    state = request.scope.get("state")
    bound = state.get("analytics") if isinstance(state, dict) else None
    if not isinstance(bound, Analytics):
        if request.scope.get(UNTRACKED_WEBSOCKET):
            raise RuntimeError(
                "no Segment analytics for this WebSocket: SegmentMiddleware binds one to "
                "WebSocket connections only with websockets=True "
                "(app.add_middleware(SegmentMiddleware, websockets=True, ...))"
            )
        raise RuntimeError(
            "no Segment analytics for this request: add SegmentMiddleware to the app "
            "(app.add_middleware(SegmentMiddleware, ...))"
        )
    return bound
