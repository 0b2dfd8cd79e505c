"""The Starlette site: Jinja2Templates with the snippet global, a cookie login, a CSP nonce.

The user comes from Starlette's ``AuthenticationMiddleware`` (a ``user`` cookie set
by ``/login``); the nonce from a small middleware that puts it in
``request.state.csp_nonce`` and sends the policy with the response.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

import segment_asgi
from tests.browser.snippet_apps.common import PAGE, USER_ID, segment_options, strict_csp

TEMPLATES = Path(os.environ["SNIPPET_DATA_DIR"])
(TEMPLATES / "page.html").write_text(
    PAGE.format(title="{{ title }}", snippet="{{ segment_snippet(request) }}")
)
templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.globals["segment_snippet"] = segment_asgi.segment_snippet


class CookieUser(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.cookies.get("user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


class StrictCSP:
    """A fresh nonce per request in ``scope["state"]``, and the policy that allows it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = base64.b64encode(os.urandom(16)).decode()
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def send_with_policy(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    *message.get("headers", []),
                    (b"content-security-policy", strict_csp(nonce).encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_policy)


async def home(request: Request) -> Response:
    return templates.TemplateResponse(request, "page.html", {"title": "Home"})


async def about(request: Request) -> Response:
    return templates.TemplateResponse(request, "page.html", {"title": "About"})


async def login(request: Request) -> Response:
    user_id = request.query_params.get("as", USER_ID)
    segment_asgi.analytics(request).identify(user_id)
    response = RedirectResponse("/about", status_code=302)
    response.set_cookie("user", user_id, httponly=True, samesite="lax")
    return response


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/", home),
        Route("/about", about),
        Route("/login", login),
        Route("/healthz", healthz),
    ],
    middleware=[
        Middleware(StrictCSP),
        Middleware(AuthenticationMiddleware, backend=CookieUser()),
        Middleware(
            segment_asgi.SegmentMiddleware, csp_nonce="state.csp_nonce", **segment_options()
        ),
    ],
)
