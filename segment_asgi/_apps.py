"""What the ASGI app itself says: FastAPI's docs URLs, Starlette's trusted hosts.

Read from ``scope["app"]`` (Starlette and FastAPI put themselves there) once per
app and kept: nothing here runs per request beyond a dict lookup.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from starlette.middleware.trustedhost import TrustedHostMiddleware

from segment_asgi._types import Scope

__all__ = ["DOCS_NAMESPACE", "AppFacts", "host_matches"]

#: The namespace FastAPI's documentation routes are given, for ``exclude_routes``.
DOCS_NAMESPACE = "openapi"

# FastAPI's attributes holding the URLs of its tooling routes.
_DOCS_ATTRIBUTES = ("openapi_url", "docs_url", "redoc_url", "swagger_ui_oauth2_redirect_url")
_MAX_DEPTH = 32


class AppFacts:
    """Per-app facts, cached by the app object."""

    __slots__ = ("_docs", "_hosts", "_last_docs")

    def __init__(self) -> None:
        self._docs: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()
        self._hosts: weakref.WeakKeyDictionary[Any, Callable[[str], bool] | None] = (
            weakref.WeakKeyDictionary()
        )
        # The app of the last request and its docs URLs, as one tuple (one read,
        # whatever other threads do): nearly every request goes to the same app,
        # found here without hashing into the weak dict. The middleware wraps
        # that app: keeping it keeps nothing extra alive.
        self._last_docs: tuple[Any, frozenset[str]] = (None, frozenset())

    def is_docs_route(self, scope: Scope, root_path: str, template: str | None) -> bool:
        """Whether the matched route is one of the app's docs, ReDoc or OpenAPI routes."""
        app = scope.get("app")
        if app is None or template is None:
            return False
        last_app, urls = self._last_docs
        if app is not last_app:
            try:
                found = self._docs.get(app)
                if found is None:
                    found = self._docs[app] = frozenset(
                        url
                        for url in (getattr(app, name, None) for name in _DOCS_ATTRIBUTES)
                        if isinstance(url, str) and url
                    )
            except TypeError:  # an app that cannot be weakly referenced
                return False
            urls = found
            self._last_docs = (app, found)
        if not urls:
            return False
        if template in urls or template.removeprefix(root_path) in urls:
            return True
        # An app mounted inside another (app.mount("/v2", FastAPI())): its URLs are
        # its own, below its mount point.
        mounted = str(scope.get("root_path") or "")
        prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
        return bool(prefix) and template.removeprefix(prefix) in urls

    def host_check(self, scope: Scope, wrapped: Any = None) -> Callable[[str], bool] | None:
        """A check of forwarded hosts against the app's ``TrustedHostMiddleware``.

        ``wrapped``: the app the middleware wraps, when Starlette has not yet put
        itself in ``scope["app"]``.
        """
        app = scope.get("app")
        if app is None:
            app = wrapped
        if app is None:
            return None
        try:
            if app not in self._hosts:
                allowed = _allowed_hosts(app)
                self._hosts[app] = (
                    None if allowed is None else functools.partial(host_matches, allowed=allowed)
                )
            return self._hosts[app]
        except TypeError:  # an app that cannot be weakly referenced
            return None


def _allowed_hosts(app: Any) -> tuple[str, ...] | None:
    """The ``allowed_hosts`` of a ``TrustedHostMiddleware`` around or in ``app``."""
    for middleware in getattr(app, "user_middleware", None) or ():
        if getattr(middleware, "cls", None) is TrustedHostMiddleware:
            kwargs = getattr(middleware, "kwargs", None) or getattr(middleware, "options", {})
            hosts = kwargs.get("allowed_hosts")
            return None if hosts is None or "*" in hosts else tuple(hosts)
    node, depth = app, 0
    while node is not None and depth < _MAX_DEPTH:
        if isinstance(node, TrustedHostMiddleware):
            return None if node.allow_any else tuple(node.allowed_hosts)
        node, depth = getattr(node, "app", None), depth + 1
    return None


def host_matches(host: str, allowed: Iterable[str]) -> bool:
    """Starlette's rule: an exact name, or ``*.example.com`` for its subdomains."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    for pattern in allowed:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith("*") and name.endswith(pattern[1:]):
            return True
    return False
