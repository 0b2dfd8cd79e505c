"""A Starlette app mounted in another, ``SegmentMiddleware`` on the mounted one:
FastAPI's sub-application pattern, where Starlette passes the middleware no lifespan.

``E2E_FLUSHING_AT_SHUTDOWN=1``: the app the server runs is wrapped in
``segment_asgi.flushing_at_shutdown``, which flushes the mounted app's client.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Mount, Route

from segment_asgi import SegmentMiddleware, flushing_at_shutdown
from segment_core.lifespan import ASGIApp
from tests.e2e.apps.options import client_options, item_properties


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


async def item(request: Request) -> HTMLResponse:
    n = request.path_params["n"]
    request.state.analytics.track("Item Viewed", item_properties(n))
    return HTMLResponse(str(os.getpid()))  # a page: an automatic page call


segment = Middleware(
    SegmentMiddleware, write_key=os.environ["SEGMENT_WRITE_KEY"], **client_options()
)
mounted = Starlette(
    routes=[Route("/health", health), Route("/item/{n:int}", item, name="item")],
    middleware=[segment],
)
# Mounted at the root, so that its URLs are those every e2e app answers.
outer = Starlette(routes=[Mount("", mounted)])
app: ASGIApp = (
    flushing_at_shutdown(outer) if os.environ.get("E2E_FLUSHING_AT_SHUTDOWN") == "1" else outer
)
