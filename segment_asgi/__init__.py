"""Segment for ASGI apps (Starlette, FastAPI, Django's ASGI handler ...): one middleware.

::

    from fastapi import Depends, FastAPI
    import segment_asgi

    app = FastAPI()
    app.add_middleware(segment_asgi.SegmentMiddleware, write_key="...")

    @app.get("/items/{item_id}")
    def read_item(item_id: int, analytics=Depends(segment_asgi.analytics)):
        analytics.track("Item Viewed", {"item_id": item_id})

A page view (by default a GET answered with a 2xx HTML document; not JSON,
FastAPI's docs, a script's request, an excluded path or route, or a bot) gets an
automatic page call named after its route; ``request.state.analytics`` and
``segment_core.scope.analytics()`` reach the same object; the client is flushed
on lifespan shutdown (in a mounted app, which gets none, wrap the app the server
runs in :func:`flushing_at_shutdown`). Under pytest, the client it builds from
its options puts its events in ``segment_core.testing.outbox`` unless
``send_in_tests=True``.

PYTEST_DONT_REWRITE (pytest's assertion rewriting leaves the package alone).
"""

from __future__ import annotations

from segment_core.adapters import raise_without_framework, require_framework_version

require_framework_version(adapter="segment_asgi", framework="starlette", extra="asgi")
try:
    from segment_asgi._shutdown import flushing_at_shutdown
    from segment_asgi.dependencies import analytics
    from segment_asgi.middleware import ResponseInfo, SegmentMiddleware
    from segment_asgi.snippet import segment_snippet
except ModuleNotFoundError as error:
    raise_without_framework(error, adapter="segment_asgi", framework="starlette", extra="asgi")

__all__ = [
    "ResponseInfo",
    "SegmentMiddleware",
    "analytics",
    "flushing_at_shutdown",
    "segment_snippet",
]
