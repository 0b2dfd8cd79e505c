"""The hello-world Starlette app of ``benchmarks/adapters.py``.

uvicorn serves ``benchmarks.starlette_bench_app:make_app`` (``--factory``);
``$BENCH_VARIANT`` says which integration it carries (see ``benchmarks/_peers.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from benchmarks import _peers

__all__ = ["HookPoints", "PageMiddleware", "make_app"]

ASGIApp = Any


async def hello(request: Request) -> HTMLResponse:
    if TRACK:
        request.state.analytics.track(_peers.TRACK_EVENT)
    return HTMLResponse("Hello, World!")


TRACK = _peers.tracks()


def make_app() -> ASGIApp:
    """The app for ``$BENCH_VARIANT``, sending to ``$BENCH_COLLECTOR``."""
    from starlette.applications import Starlette

    variant = _peers.variant()
    _peers.setup()
    app = Starlette(routes=[Route(_peers.PAGE, hello, name="hello")], lifespan=_lifespan)
    if variant == "segment":
        from segment_asgi import SegmentMiddleware

        options = _peers.segment_options()
        return SegmentMiddleware(
            app, write_key=_peers.WRITE_KEY, host=_peers.collector(), **options
        )
    if variant in _peers.HAND_WRITTEN:
        return PageMiddleware(app, _peers.page_sender())
    if variant == "floor":
        from benchmarks._floor import FloorASGI

        return FloorASGI(app)
    if variant == "hooks":
        return HookPoints(app)
    if variant == "opentelemetry":
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        # The server span only, as in the other frameworks (no span per send/receive).
        return OpenTelemetryMiddleware(app, exclude_spans=["receive", "send"])
    return app


@asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    yield
    # uvicorn ends by re-raising SIGTERM, so atexit never runs: flush here.
    _peers.flush_all()


class HookPoints:
    """The ``hooks`` variant: a pure ASGI middleware that wraps ``send``, doing nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_through(message: dict[str, Any]) -> None:
            await send(message)

        await self.app(scope, receive, send_through)


class PageMiddleware:
    """The hand-written middleware, as a pure ASGI one (no BaseHTTPMiddleware cost)."""

    def __init__(self, app: ASGIApp, send_page: _peers.PageSender) -> None:
        self.app = app
        self.send_page = send_page

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookie = request.cookies.get(_peers.COOKIE)
        anonymous_id, new = _peers.visitor(cookie)
        status = 0

        async def send_with_cookie(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if new:
                    morsel = SimpleCookie()
                    morsel[_peers.COOKIE] = anonymous_id
                    morsel[_peers.COOKIE]["max-age"] = _peers.COOKIE_MAX_AGE
                    morsel[_peers.COOKIE]["path"] = "/"
                    morsel[_peers.COOKIE]["samesite"] = "Lax"
                    header = morsel.output(header="").strip().encode("latin-1")
                    headers = [*message.get("headers", ()), (b"set-cookie", header)]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
        if scope["method"] == "GET" and status == 200:
            headers = request.headers
            page = _peers.PageRequest(
                scheme=request.url.scheme,
                host=headers.get("host", ""),
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                referrer=headers.get("referer", ""),
                ip=request.client.host if request.client else None,
                user_agent=headers.get("user-agent", ""),
            )
            route = scope.get("route")
            self.send_page(anonymous_id, None, getattr(route, "name", None), page)
