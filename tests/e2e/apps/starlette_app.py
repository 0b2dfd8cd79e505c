"""A Starlette app wrapped by ``segment_asgi.SegmentMiddleware``."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, StreamingResponse
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


async def linger(request: Request) -> StreamingResponse:
    """A stream that goes on until the file named by ``E2E_RELEASE_FILE`` exists."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"started\n"
        release = Path(os.environ["E2E_RELEASE_FILE"])
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        yield b"released\n"

    return StreamingResponse(chunks(), media_type="text/plain")


starlette_app = Starlette(
    routes=[
        Route("/health", health),
        Route("/item/{n:int}", item, name="item"),
        Route("/linger", linger),
    ]
)
app = ShutdownReport(
    SegmentMiddleware(starlette_app, write_key=os.environ["SEGMENT_WRITE_KEY"], **client_options())
)
