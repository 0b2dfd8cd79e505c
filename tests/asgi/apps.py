"""The Starlette app the adapter's tests drive (routes mirror tests/django's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route

from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.scope import analytics


class ViewBug(Exception):
    pass


async def page(request: Request) -> Response:
    return HTMLResponse("ok")


def sync_page(request: Request) -> Response:
    return HTMLResponse("ok")


async def redirect(request: Request) -> Response:
    return RedirectResponse("/", status_code=302)


async def boom(request: Request) -> Response:
    raise ViewBug("the view failed")


async def track(request: Request) -> Response:
    request.state.analytics.track("Clicked Buy", {"sku": "A1"})
    assert analytics() is request.state.analytics
    return HTMLResponse("ok")


def sync_track(request: Request) -> Response:
    # Sync endpoints run in a worker thread: the context variable follows them there.
    assert analytics() is request.state.analytics
    analytics().track("Clicked Buy", {"sku": "A1"})
    return HTMLResponse("ok")


async def identify(request: Request) -> Response:
    request.state.analytics.identify("u-77", {"plan": "pro"})
    request.state.analytics.track("Upgraded")
    return HTMLResponse("ok")


async def whoami(request: Request) -> Response:
    bound = request.state.analytics
    return JSONResponse({"user_id": bound.user_id, "anonymous_id": bound.anonymous_id})


async def own_cookie(request: Request) -> Response:
    response = HTMLResponse("ok")
    response.set_cookie("ajs_anonymous_id", "chosen-by-the-view")
    return response


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one "
        yield b"two"

    return StreamingResponse(chunks(), media_type="text/html")


async def background(request: Request) -> Response:
    bound = request.state.analytics

    def later() -> None:
        bound.track("Sent Receipt")

    return HTMLResponse("ok", background=BackgroundTask(later))


ROUTES = [
    Route("/", page, name="home"),
    Route("/products/{pk:int}/", page, name="product-detail"),
    Route("/sync/", sync_page),  # no name given: Starlette names it after the function
    Mount("/shop", routes=[Route("/cart/", page, name="cart")]),
    Route("/redirect/", redirect, name="redirect"),
    Route("/boom/", boom, name="boom"),
    Route("/track/", track, name="track"),
    Route("/sync-track/", sync_track, name="sync-track"),
    Route("/identify/", identify, name="identify"),
    Route("/whoami/", whoami, name="whoami"),
    Route("/own-cookie/", own_cookie, name="own-cookie"),
    Route("/stream/", stream, name="stream"),
    Route("/background/", background, name="background"),
    Route("/healthz", page, name="healthz"),
    Route("/static/app.css", page, name="asset"),
]


class HeaderAuth(AuthenticationBackend):
    """``X-User: ann`` logs ``ann`` in."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("x-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


def starlette_app(client: Client, *, auth: bool = False, **options: Any) -> Starlette:
    """The test app with the middleware (inside the authentication middleware if ``auth``)."""
    middleware = [Middleware(AuthenticationMiddleware, backend=HeaderAuth())] if auth else []
    middleware.append(Middleware(SegmentMiddleware, client=client, **options))
    return Starlette(routes=ROUTES, middleware=middleware)
