"""The ``floor`` yardstick: a page view's unavoidable work, on the server's raw request.

Not a product and not a fair rival: it does only what every page view costs, the
cheapest way Python allows, so that ``adapters.py`` can show in one run how much
of segment-web's added CPU any integration would pay, and how much is its own.

Per request: read the ``ajs_anonymous_id`` cookie or make an id, add the
``Set-Cookie`` header for a new visitor, and for a ``GET`` answered 200 build one
page message (the page fields, ip, user agent), encode it with orjson and append
it to the gzip batcher of ``_peers`` (one POST every half second, flushed at
exit); with ``adapters.py --track``, a track message in the same context too
(``_peers.track_message``), as segment-web's view sends one. It reads the WSGI
environ or the ASGI scope directly, beneath the framework: no framework object,
no route name, no rule of any kind (no bots, privacy, redaction, size limits,
checks or retries).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from benchmarks import _peers

__all__ = ["FloorASGI", "FloorWSGI"]

LIBRARY = {"name": "floor", "version": "0"}
_COOKIE_PREFIX = _peers.COOKIE + "="
_COOKIE_ATTRIBUTES = f"; Max-Age={_peers.COOKIE_MAX_AGE}; Path=/; SameSite=Lax"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _cookie_value(header: str) -> str | None:
    """The ``ajs_anonymous_id`` value of a ``Cookie`` header, if it has one."""
    start = header.find(_COOKIE_PREFIX)
    while start > 0 and header[start - 1] not in " ;":  # the end of another name
        start = header.find(_COOKIE_PREFIX, start + 1)
    if start < 0:
        return None
    start += len(_COOKIE_PREFIX)
    end = header.find(";", start)
    return (header[start:] if end < 0 else header[start:end]) or None


def _new_id() -> str:
    return f"{random.getrandbits(128):032x}"


class FloorWSGI:
    """A WSGI middleware: the page call when the response starts."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.append = _peers.gzip_batcher("floor")
        self.track = _peers.track_requested()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        cookie = environ.get("HTTP_COOKIE")
        anonymous_id = _cookie_value(cookie) if cookie else None
        new = anonymous_id is None
        if anonymous_id is None:
            anonymous_id = _new_id()

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if new:
                headers.append(("Set-Cookie", _COOKIE_PREFIX + anonymous_id + _COOKIE_ATTRIBUTES))
            if status.startswith("200") and environ["REQUEST_METHOD"] == "GET":
                self._page(environ, anonymous_id)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)

    def _page(self, environ: dict[str, Any], anonymous_id: str) -> None:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        search = "?" + query if query else ""
        host = environ.get("HTTP_HOST") or environ["SERVER_NAME"]
        fields = {
            "path": path,
            "referrer": environ.get("HTTP_REFERER", ""),
            "search": search,
            "url": environ["wsgi.url_scheme"] + "://" + host + path + search,
        }
        ip, user_agent = environ.get("REMOTE_ADDR"), environ.get("HTTP_USER_AGENT", "")
        self.append(_peers.page_message(anonymous_id, None, None, fields, ip, user_agent, LIBRARY))
        if self.track:
            self.append(_peers.track_message(anonymous_id, fields, ip, user_agent, LIBRARY))


class FloorASGI:
    """A pure ASGI middleware: the page call when the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.append = _peers.gzip_batcher("floor")
        self.track = _peers.track_requested()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = user_agent = referrer = ""
        anonymous_id = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"referer":
                referrer = value.decode("latin-1")
            elif name == b"cookie":
                anonymous_id = _cookie_value(value.decode("latin-1"))
        new = anonymous_id is None
        if anonymous_id is None:
            anonymous_id = _new_id()
        append, track = self.append, self.track

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                if new:
                    cookie = (_COOKIE_PREFIX + anonymous_id + _COOKIE_ATTRIBUTES).encode()
                    message["headers"] = [*message.get("headers", ()), (b"set-cookie", cookie)]
                if message["status"] == 200 and scope["method"] == "GET":
                    path = scope.get("root_path", "") + scope["path"]
                    query = scope["query_string"].decode("latin-1")
                    search = "?" + query if query else ""
                    fields = {
                        "path": path,
                        "referrer": referrer,
                        "search": search,
                        "url": scope["scheme"] + "://" + host + path + search,
                    }
                    client = scope.get("client")
                    ip = client[0] if client else None
                    append(
                        _peers.page_message(
                            anonymous_id, None, None, fields, ip, user_agent, LIBRARY
                        )
                    )
                    if track:
                        append(_peers.track_message(anonymous_id, fields, ip, user_agent, LIBRARY))
            await send(message)

        await self.app(scope, receive, send_with_cookie)
