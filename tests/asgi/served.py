"""The app ``test_uvicorn.py`` runs under a real uvicorn, in a subprocess.

Environment: ``SEGMENT_HOST`` (the test's collector), ``SERVED_APP``:
``starlette`` (an app with lifespan support) or ``plain`` (an app that fails
the lifespan protocol, as Django's ASGI handler does), and ``SERVED_HOOKS``:
``plain`` or ``async`` for a ``page_properties`` hook of that kind (whose page
call the middleware makes in a worker thread). The client holds every
event until it is flushed, and reports each batch it sends on stderr, where
uvicorn logs its shutdown steps.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from segment_asgi import SegmentMiddleware
from segment_core import Client, signals
from segment_core.scope import analytics

client = Client("test-key", flush_at=2500, flush_interval=300)  # host: $SEGMENT_HOST
#: A client of the app's own, which the middleware is not given.
own_client = Client("test-key", flush_at=2500, flush_interval=300)


def report(sender: Any, count: int, **kwargs: Any) -> None:
    print(f"segment batch sent: {count} message(s)", file=sys.stderr, flush=True)


signals.batch_sent.connect(report)


async def track(request: Request) -> Response:
    request.state.analytics.track("Clicked Buy", {"n": request.query_params.get("n")})
    return HTMLResponse("ok")


async def plain(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise ValueError(f"can only handle HTTP, not {scope['type']}")
    if scope["path"] == "/track/":
        analytics().track("Clicked Buy")
    await HTMLResponse("ok")(scope, receive, send)


async def track_own(request: Request) -> Response:
    own_client.track("worker", "Report Exported", {"n": request.query_params.get("n")})
    return HTMLResponse("ok")


async def long_stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        try:
            for n in range(600):  # a minute: longer than a test waits for it
                yield f"<p>{n}</p>".encode()
                await asyncio.sleep(0.1)
        finally:
            # Letting go of what it streams from (an upstream connection) takes a
            # moment, also when the server cancels the request: the request ends
            # after its lifespan shutdown began.
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.25)

    return StreamingResponse(chunks(), media_type="text/html")


def page_properties(request: Request, response: Any) -> dict[str, Any]:
    return {"hooked": "plain"}


async def async_page_properties(request: Request, response: Any) -> dict[str, Any]:
    return {"hooked": "async"}


HOOKS: dict[str, Any] = {"plain": page_properties, "async": async_page_properties}

inner: Any = (
    plain
    if os.environ.get("SERVED_APP") == "plain"
    else Starlette(
        routes=[
            Route("/track/", track, name="track"),
            Route("/own/", track_own, name="own"),
            Route("/long-stream/", long_stream, name="long-stream"),
        ]
    )
)
app = SegmentMiddleware(
    inner, client=client, page_properties=HOOKS.get(os.environ.get("SERVED_HOOKS", ""))
)
