"""What the ASGI app itself says: FastAPI's docs URLs, its GraphQL endpoints,
Starlette's trusted hosts.

Read from ``scope["app"]`` (Starlette and FastAPI put themselves there) once per
app and kept: nothing here runs per request beyond a dict lookup. The app's routes
are walked once, at its first request, for the endpoints of GraphQL servers
(Strawberry's ``GraphQLRouter``, a mounted ``GraphQL`` app of Strawberry's or
ariadne's), whose answer to a browser is an IDE: tooling, as the docs are.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Host, Mount

from segment_asgi._mounts import included_routes, routes_of
from segment_asgi._scope import included_in_scope
from segment_asgi._types import Scope
from segment_core.web import serves_graphql

__all__ = ["DOCS_NAMESPACE", "AppFacts", "host_matches"]

logger = logging.getLogger("segment.asgi")

#: The namespace FastAPI's documentation routes (and GraphQL endpoints) are given,
#: for ``exclude_routes``.
DOCS_NAMESPACE = "openapi"

# FastAPI's attributes holding the URLs of its tooling routes.
_DOCS_ATTRIBUTES = ("openapi_url", "docs_url", "redoc_url", "swagger_ui_oauth2_redirect_url")
# FastAPI's default URLs of its docs pages. With its own turned off (docs_url=None),
# FastAPI's guide serves them again from routes the app writes at these URLs,
# hidden from the schema (include_in_schema=False): those are docs too.
_DEFAULT_DOCS_URLS = {
    "docs_url": "/docs",
    "redoc_url": "/redoc",
    "swagger_ui_oauth2_redirect_url": "/docs/oauth2-redirect",
}
_MAX_DEPTH = 32


class DocsURLs(NamedTuple):
    """An app's docs URLs and the routes that serve them; and its GraphQL endpoints."""

    own: frozenset[str]
    #: The routes at the app's docs URLs (below its root, not below one of its
    #: mounts), and routes hidden from the schema at the default URLs of docs it
    #: turned off, by their ids: each with None, or the docs URLs it has when it is
    #: also at others (a router included with two prefixes, one object in newer
    #: FastAPI).
    routes: Mapping[int, tuple[Any, frozenset[str] | None]]
    #: The endpoints (a route's ``endpoint``, a mount's ``app``) of GraphQL servers
    #: in the app's routes, by their ids.
    graphql: Mapping[int, Any]


_NO_DOCS = DocsURLs(frozenset(), {}, {})


class AppFacts:
    """Per-app facts, cached by the app object."""

    __slots__ = ("_allowed_hosts", "_docs", "_hosts", "_last_docs")

    def __init__(self, allowed_hosts: tuple[str, ...] | None = None) -> None:
        """``allowed_hosts``: the hosts a forwarded host may name, instead of those
        of the app's ``TrustedHostMiddleware``."""
        self._allowed_hosts: Callable[[str], bool] | None = None
        if allowed_hosts is not None:
            self._allowed_hosts = functools.partial(host_matches, allowed=allowed_hosts)
        self._docs: weakref.WeakKeyDictionary[Any, DocsURLs] = weakref.WeakKeyDictionary()
        self._hosts: weakref.WeakKeyDictionary[Any, Callable[[str], bool] | None] = (
            weakref.WeakKeyDictionary()
        )
        # The app of the last request and its docs URLs, as one tuple (one read,
        # whatever other threads do): nearly every request goes to the same app,
        # found here without hashing into the weak dict. The middleware wraps
        # that app: keeping it keeps nothing extra alive.
        self._last_docs: tuple[Any, DocsURLs] = (None, _NO_DOCS)

    def is_docs_route(
        self, scope: Scope, root_path: str, template: str | None, route: Any = None
    ) -> bool:
        """Whether the matched route is one of the app's docs, ReDoc or OpenAPI
        routes, or a GraphQL server's endpoint.

        With FastAPI's docs turned off (``docs_url=None``), a route hidden from the
        schema at the default URL (``/docs``) is the app's own docs page. A page of
        the app's own at ``/docs`` below a prefix or a ``Mount`` is none.
        """
        app = scope.get("app")
        if app is None:
            return False
        last_app, urls = self._last_docs
        if app is not last_app:
            try:
                found = self._docs.get(app)
                if found is None:
                    found = self._docs[app] = _docs_urls(app)
            except TypeError:  # an app that cannot be weakly referenced
                return False
            urls = found
            self._last_docs = (app, found)
        if urls.graphql and _is_endpoint_of(route, urls.graphql):
            return True
        entry = urls.routes.get(id(route)) if urls.routes else None
        if entry is not None and entry[0] is route:
            at = entry[1]
            if at is None:
                return True
            # The route at that URL as FastAPI included it for this request.
            included = included_in_scope(scope, route)
            return included is not None and included[1] in at
        # An app mounted in another, whose router recorded no route of its own
        # (FastAPI's docs routes below a Starlette app's Mount): its URLs are below
        # its mount point.
        return (
            bool(urls.own)
            and (route is None or isinstance(route, (Mount, Host)))
            and template is not None
            and _is_below_mount(template, urls.own, scope, root_path)
        )

    def host_check(self, scope: Scope, wrapped: Any = None) -> Callable[[str], bool] | None:
        """A check of forwarded hosts: ``allowed_hosts`` when given, else the
        ``allowed_hosts`` of the app's ``TrustedHostMiddleware``.

        ``wrapped``: the app the middleware wraps, when Starlette has not yet put
        itself in ``scope["app"]``. A ``TrustedHostMiddleware`` around the app is
        out of sight: it needs the option.
        """
        if self._allowed_hosts is not None:
            return self._allowed_hosts
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


def _docs_urls(app: Any) -> DocsURLs:
    own, turned_off = set(), set()
    for name in _DOCS_ATTRIBUTES:
        url = getattr(app, name, "")
        if isinstance(url, str) and url:
            own.add(url)
        elif url is None and name in _DEFAULT_DOCS_URLS:
            turned_off.add(_DEFAULT_DOCS_URLS[name])
    routes = _docs_routes(app, own, turned_off - own) if own or turned_off else {}
    return DocsURLs(frozenset(own), routes, _graphql_endpoints(app))


def _docs_routes(
    app: Any, own: set[str], turned_off: set[str]
) -> dict[int, tuple[Any, frozenset[str] | None]]:
    """The routes of ``app`` at one of its docs URLs ``own``, and those hidden from
    the schema at one of ``turned_off``: its own routes and those of the routers it
    includes (newer FastAPI keeps one entry for an included router: its routes'
    paths are below the inclusion's prefix), not those below a ``Mount``. See
    :attr:`DocsURLs.routes`."""
    docs_at: dict[int, set[str]] = {}
    found_at: dict[int, tuple[Any, set[str]]] = {}
    try:
        pending: list[tuple[Iterable[Any], str, int]] = [(routes_of(app), "", 0)]
        while pending:
            routes, prefix, depth = pending.pop()
            for route in routes:
                included = included_routes(route)
                if included is not None:
                    if depth < _MAX_DEPTH:
                        context = getattr(route, "include_context", None)
                        inner = getattr(context, "prefix", "")
                        pending.append((included, prefix + str(inner or ""), depth + 1))
                    continue
                path = getattr(route, "path", None)
                if not isinstance(path, str) or isinstance(route, (Mount, Host)):
                    continue
                path = prefix + path
                found_at.setdefault(id(route), (route, set()))[1].add(path)
                hidden = getattr(route, "include_in_schema", True) is False
                if path in own or (hidden and path in turned_off):
                    docs_at.setdefault(id(route), set()).add(path)
    except Exception:  # an app whose routes cannot be read: none found
        logger.exception("segment: could not look for the docs routes in the app's routes")
        return {}
    return {
        key: (found_at[key][0], None if found_at[key][1] == at else frozenset(at))
        for key, at in docs_at.items()
    }


def _graphql_endpoints(app: Any) -> dict[int, Any]:
    """The endpoints of GraphQL servers among the routes of ``app``, below its mounts
    and included routers too: a route's ``endpoint`` (Strawberry's ``GraphQLRouter``
    and its copies share theirs), or a mount's ``app`` (wrapped in middleware or not)."""
    found: dict[int, Any] = {}
    try:
        pending: list[tuple[Iterable[Any], int]] = [(routes_of(app), 0)]
        while pending:
            routes, depth = pending.pop()
            for route in routes:
                if isinstance(route, (Mount, Host)):
                    mounted = route.app
                    if any(serves_graphql(node) for node in _wrapped_apps(mounted)):
                        found[id(mounted)] = mounted
                    elif depth < _MAX_DEPTH:
                        pending.append((routes_of(route), depth + 1))
                elif (included := included_routes(route)) is not None:
                    if depth < _MAX_DEPTH:
                        pending.append((included, depth + 1))
                else:
                    endpoint = getattr(route, "endpoint", None)
                    if endpoint is not None and serves_graphql(endpoint):
                        found[id(endpoint)] = endpoint
    except Exception:  # an app whose routes cannot be read: none found
        logger.exception("segment: could not look for GraphQL endpoints in the app's routes")
    return found


def _wrapped_apps(app: Any) -> Iterable[Any]:
    """``app`` and the apps it wraps, each one's ``.app`` (ASGI middleware)."""
    node, depth = app, 0
    while node is not None and depth < _MAX_DEPTH:
        yield node
        node, depth = getattr(node, "app", None), depth + 1


def _is_endpoint_of(route: Any, endpoints: Mapping[int, Any]) -> bool:
    """Whether ``route`` (a route, or a mount) leads to one of ``endpoints``."""
    endpoint = getattr(route, "endpoint", None)
    if endpoint is None:  # a Mount: the app it mounts
        endpoint = getattr(route, "app", None)
    return endpoint is not None and endpoints.get(id(endpoint)) is endpoint


def _is_below_mount(template: str, urls: frozenset[str], scope: Scope, root_path: str) -> bool:
    """Whether ``template`` is one of the mounted app's ``urls``, below its mount point
    (the text the request passed below ``root_path``)."""
    mounted = str(scope.get("root_path") or "")
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    if not prefix:
        return False
    # The template below root_path, or (an app mounted whole) the request's path.
    for start in (prefix, mounted):
        if template.startswith(start) and template[len(start) :] in urls:
            return True
    return False


def _allowed_hosts(app: Any) -> tuple[str, ...] | None:
    """The ``allowed_hosts`` of a ``TrustedHostMiddleware`` around or in ``app``:
    one of the middleware ``app`` is (or wraps, each one's ``.app``), or among the
    middleware of one of those apps (``app`` wrapped as ``GZipMiddleware(app)``)."""
    node, depth = app, 0
    while node is not None and depth < _MAX_DEPTH:
        if isinstance(node, TrustedHostMiddleware):
            return None if node.allow_any else tuple(node.allowed_hosts)
        for middleware in getattr(node, "user_middleware", None) or ():
            if getattr(middleware, "cls", None) is TrustedHostMiddleware:
                kwargs = getattr(middleware, "kwargs", None) or getattr(middleware, "options", {})
                args = getattr(middleware, "args", None) or ()
                # add_middleware(TrustedHostMiddleware, ["shop.example"]) too.
                hosts = kwargs.get("allowed_hosts", args[0] if args else None)
                return None if hosts is None or "*" in hosts else tuple(hosts)
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
