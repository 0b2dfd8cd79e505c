"""A Starlette app wrapped by ``segment_asgi.SegmentMiddleware``."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from segment_asgi import SegmentMiddleware
from tests.e2e.apps.options import client_options, item_properties
from tests.e2e.apps.shutdown_report import ShutdownReport


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


async def item(request: Request) -> HTMLResponse:
    n = request.path_params["n"]
    request.state.analytics.track("Item Viewed", item_properties(n))
    return HTMLResponse(str(os.getpid()))  # a page: an automatic page call


starlette_app = Starlette(
    routes=[Route("/health", health), Route("/item/{n:int}", item, name="item")]
)
app = ShutdownReport(
    SegmentMiddleware(starlette_app, write_key=os.environ["SEGMENT_WRITE_KEY"], **client_options())
)
