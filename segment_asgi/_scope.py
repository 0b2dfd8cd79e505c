"""Read what the web rules need from an ASGI connection scope: plain functions.

Nothing here decides anything about ids, context or page calls; it only turns
the scope's bytes and tuples into a :class:`segment_core.web.RequestInfo`.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from http.cookies import _unquote  # as starlette.requests.cookie_parser unquotes
from typing import Any
from urllib.parse import unquote

from starlette.requests import cookie_parser
from starlette.routing import BaseRoute, Host, Match, Mount

from segment_asgi._types import Scope
from segment_core.hosts import DEFAULT_PORTS
from segment_core.web import (
    Redactor,
    RequestInfo,
    cached_for_short_text,
    query_of_request_line,
    request_wire_path,
)

__all__ = [
    "header_dict",
    "included_in_scope",
    "match_route",
    "path_texts",
    "request_info",
    "request_path",
    "route_lookup",
    "route_of",
    "route_params",
    "starlette_routes",
    "user_id_of",
    "wrapped_router",
]

logger = logging.getLogger("segment.asgi")

# The characters a path keeps unescaped (as Django's escape_uri_path): ASGI
# gives the path decoded, the web rules want it as it would be on the wire.
# WebSocket schemes, as the web rules (cookies, URLs) see them.
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}


def request_info(scope: Scope, native: Any = None) -> RequestInfo:
    """The neutral request for an ``http`` (or ``websocket``) scope."""
    headers = header_dict(scope.get("headers") or ())
    cookie = headers.get("cookie")
    scheme = str(scope.get("scheme") or "http")
    scheme = _HTTP_SCHEMES.get(scheme, scheme)
    client = scope.get("client")
    query = scope.get("query_string")
    # A query after a "#" in the path is the fragment's (see query_of_request_line).
    query = query_of_request_line(query.decode("latin-1"), scope.get("raw_path")) if query else ""
    # RequestInfo(...) as two calls: CPython 3.11 makes a dict of the keywords of
    # a call to a class (half of its cost here), not of a call to a function.
    info: RequestInfo = object.__new__(RequestInfo)
    RequestInfo.__init__(
        info,
        method=str(scope.get("method") or "GET"),
        scheme=scheme,
        host=headers.get("host") or _server_host(scope.get("server"), scheme),
        path=request_path(scope),
        query_string=query,
        headers=headers,
        cookies=HeaderCookies(cookie) if cookie else {},
        client_addr=str(client[0]) if client else None,
        mount=str(scope.get("root_path") or "").rstrip("/"),
        native=native,
    )
    return info


class HeaderCookies(Mapping[str, str]):
    """The cookies of a ``Cookie`` header as Starlette's ``cookie_parser`` reads them.

    A browser sends every cookie of the site, and the web rules ask for one or
    two: :meth:`get` parses only the parts that can hold the name asked for
    (the last one wins, as in the parser); anything else parses the whole header
    once.
    """

    __slots__ = ("_header", "_parsed")

    def __init__(self, header: str) -> None:
        self._header = header
        self._parsed: dict[str, str] | None = None

    def get(self, name: str, default: Any = None) -> Any:
        if not name or self._parsed is not None:
            return self._all().get(name, default)
        value = default
        if name in self._header:
            for part in self._header.split(";"):
                if name in part:
                    # What cookie_parser() makes of this part: a part without "="
                    # has the empty name.
                    key, equals, text = part.partition("=")
                    if equals and key.strip() == name:
                        value = _unquote(text.strip())
        return value

    def __getitem__(self, name: str) -> str:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def _all(self) -> dict[str, str]:
        parsed = self._parsed
        if parsed is None:
            parsed = self._parsed = cookie_parser(self._header)
        return parsed


def header_dict(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI header pairs as ``{lower-case name: value}``; repeated lines joined.

    Repeated ``Cookie`` lines are joined with ``"; "`` (one cookie string), any
    other repeated header with ``", "`` (so ``X-Forwarded-For`` keeps every hop).
    """
    if not isinstance(raw, (list, tuple)):
        raw = list(raw)
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}
    if len(headers) == len(raw):  # the common case: no header repeated
        return headers
    headers = {}
    for name_bytes, value_bytes in raw:
        name, value = name_bytes.decode("latin-1").lower(), value_bytes.decode("latin-1")
        previous = headers.get(name)
        if previous is None:
            headers[name] = value
        else:
            headers[name] = f"{previous}{'; ' if name == 'cookie' else ', '}{value}"
    return headers


def request_path(scope: Scope) -> str:
    """``root_path`` + the path as sent (``raw_path`` when there is one), percent-encoded.

    Servers disagree on whether ``path`` already starts with ``root_path`` (the
    ASGI spec says it does; some servers and test transports leave it out).
    """
    raw_path = scope.get("raw_path")
    return request_wire_path(
        str(scope.get("path") or "/"),
        raw_path if isinstance(raw_path, bytes) else None,
        str(scope.get("root_path") or ""),
    )


def _server_host(server: Any, scheme: str) -> str:
    """``host[:port]`` from the scope's ``server``, when the request had no Host header."""
    if not server:
        return ""
    host, port = server[0], server[1] if len(server) > 1 else None
    if ":" in str(host):  # an IPv6 address
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return str(host)
    return f"{host}:{port}"


def route_of(
    scope: Scope, root_path: str, path: str, *, router: Any = None, match_in: Any = None
) -> tuple[str | None, str | None, BaseRoute | None]:
    """The matched route's name, its path template and the route, once the app has routed.

    Starlette (and FastAPI) put the matched route in ``scope["route"]``; behind a
    ``Mount`` the mount's pattern (``/t/{tenant}``, matched again from ``router``,
    the router that routed from ``root_path``, when the mount captured values) goes
    in front of the route's own path. Older
    Starlette versions (0.37) do not: there the request is matched again against
    the routes of ``match_in``: the router the app put in ``scope["router"]``, or
    the app's own below an outer app's (whose routes are not this app's); FastAPI
    does not record a plain Starlette route, a ``Mount`` or its docs' routes either.
    FastAPI keeps an included router as one entry: the route's pattern with the
    ``include_router`` prefixes is in FastAPI's part of the scope (see
    :func:`included_in_scope`). Failing that, ``scope["endpoint"]`` gives a name, no
    template. An app that routes itself and leaves its route's template in
    ``scope["path_template"]`` (Litestar) has that as its template. An app that
    does not route (a plain ASGI app, Django's handler, an app mounted as a
    whole) has the request's ``path`` as its template (and an app mounted as a
    whole, its ``Mount`` as the route).
    """
    route = scope.get("route")
    included = included_in_scope(scope, route) if "fastapi" in scope else None
    if included is not None:
        route = included[0]
    elif route is None and match_in is not None:
        found = _match_again(scope, root_path, match_in)
        if found is not None:
            route, scope = found
    if route is None:
        endpoint = scope.get("endpoint")
        name = getattr(endpoint, "__name__", None) if endpoint is not None else None
        if isinstance(name, str) and name:
            return name, None, None
        return None, _template_in_scope(scope, root_path) or path, None
    if isinstance(route, (Mount, Host)):
        return None, _template_in_scope(scope, root_path) or path, route
    name = getattr(route, "name", None)
    route_path = getattr(route, "path", None) if included is None else included[1]
    if not isinstance(route_path, str):
        return (name if isinstance(name, str) and name else None), path, route
    mounted = str(scope.get("root_path") or "")
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    if prefix:
        patterns = _mounts_template(scope, root_path, route, router, prefix)
        if patterns is None:  # unknown: the mounts' text may hold a secret
            return (name if isinstance(name, str) and name else None), path, route
        prefix = patterns
    template = prefix + route_path if route_path else prefix or "/"
    return (name if isinstance(name, str) and name else None), template, route


def _mounts_template(
    scope: Scope, root_path: str, route: BaseRoute, router: Any, prefix: str
) -> str | None:
    """The patterns of the ``Mount``s the request passed below ``root_path``, whose
    text there is ``prefix``; None when they cannot be matched again.

    A mount that captures nothing has its pattern as its text. One that captures
    (``Mount("/t/{tenant}")``) adds its values to the route's ``path_params``: only
    then is the path matched again, from ``router``.
    """
    params = scope.get("path_params")
    own = getattr(route, "param_convertors", None)
    if not params or (isinstance(own, dict) and params.keys() <= own.keys()):
        return prefix
    routes = starlette_routes(router)
    if routes is None:
        return None
    probe = dict(scope)
    probe["root_path"] = root_path
    probe.pop("path_params", None)
    passed: list[BaseRoute] = []
    if match_route(routes, probe, passed) is None:
        return None
    return "".join(mount.path for mount in passed if isinstance(mount, Mount))


def _template_in_scope(scope: Scope, root_path: str) -> str | None:
    """The template of the route an app that routes itself wrote in the scope
    (Litestar's ``path_template``, below its own mount point), below ``root_path``."""
    template = scope.get("path_template")
    if not isinstance(template, str) or not template:
        return None
    mounted = str(scope.get("root_path") or "")
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    return prefix + template


def starlette_routes(owner: Any) -> list[BaseRoute] | None:
    """The routes of ``owner`` (an app, a router) when Starlette's router matches them.

    Other frameworks' apps have a list of ``routes`` too (Litestar's), of routes
    that only their own router can match: None for those. A router's routes are
    all of one kind: the first one tells (read per request on older Starlette).
    """
    routes = getattr(owner, "routes", None)
    if isinstance(routes, list) and (not routes or isinstance(routes[0], BaseRoute)):
        return routes
    return None


def wrapped_router(app: Any) -> Any:
    """``app``, or the first app it wraps (through middleware, each one's ``.app``),
    that Starlette's router routes; None if there is none."""
    node = app
    for _ in range(_MAX_WRAPPERS):
        if node is None or starlette_routes(node) is not None:
            return node
        node = getattr(node, "app", None)
    return None


def own_root_path(router: Any) -> Any:
    """``router`` if it is a FastAPI app, which writes its own ``root_path``
    (``FastAPI(root_path="/api")``) into each request's scope as it is called, else
    None: a middleware wrapping it reads that ``root_path`` before the app runs."""
    fastapi = sys.modules.get("fastapi")
    app_class = getattr(fastapi, "FastAPI", None) if fastapi is not None else None
    return router if app_class is not None and isinstance(router, app_class) else None


def with_own_root_path(scope: Scope, app: Any) -> None:
    """Write the ``root_path`` the FastAPI ``app`` writes into ``scope`` as it is
    called, now, as it will: the request is read as that app will see it."""
    root_path = getattr(app, "root_path", None)
    if root_path and isinstance(root_path, str):
        scope["root_path"] = root_path


def included_in_scope(scope: Scope, route: Any) -> tuple[BaseRoute, str] | None:
    """The route a FastAPI ``include_router`` entry handed the request to, and its
    pattern with the inclusions' prefixes (below the app's root), from the context
    FastAPI records in the scope for it; None for any other route.

    ``scope["route"]`` is the route as declared in its router (its path without
    the prefixes), or nothing for a plain Starlette route or a ``Mount``.
    """
    state = scope.get("fastapi")
    context = state.get("effective_route_context") if isinstance(state, dict) else None
    if context is None:
        return None
    original = getattr(context, "original_route", None)
    if not isinstance(original, BaseRoute) or (route is not None and route is not original):
        return None
    # A plain route or a Mount has a prefixed Starlette copy; a FastAPI route, the
    # context's own path.
    prefixed = getattr(context, "starlette_route", None) or context
    path = getattr(prefixed, "path", None)
    return (original, path) if isinstance(path, str) else None


def _match_again(scope: Scope, root_path: str, router: Any) -> tuple[BaseRoute, Scope] | None:
    """The route ``router`` handed the request to, and the scope it had there.

    For Starlette versions that do not record it in ``scope["route"]``: the
    router's matching done again on a copy of the scope as it was before the app
    ran (first full match, else first partial one, into mounted routers), as
    ``Router`` does. None when there is no router or nothing matches.
    """
    if "endpoint" not in scope:
        return None
    routes = starlette_routes(router)
    if routes is None:
        return None
    probe = dict(scope)
    probe["root_path"] = root_path
    probe.pop("path_params", None)
    return match_route(routes, probe)


def route_lookup(
    owner: Any, root_path: str, host: str, redactor: Redactor | None = None
) -> Callable[[str], Mapping[str, Any] | None]:
    """:func:`route_params` for one app, mount point and ``Host``, as a request's
    ``route_of_path``: the same object for the same values, so the redaction caches
    that use it in their keys find it again and keep nothing of one request's (a
    ``Host`` longer than any host name is taken as none)."""
    if len(host) > _MAX_HOST_NAME:
        host = ""
    try:
        return _route_lookup(owner, root_path, host, redactor)
    except TypeError:  # an app that cannot be a cache key
        return functools.partial(route_params, owner, root_path, host, redactor=redactor)


#: A host name's longest (RFC 1035), with a port.
_MAX_HOST_NAME = 253 + 6


@cached_for_short_text(maxsize=256)
def _route_lookup(
    owner: Any, root_path: str, host: str, redactor: Redactor | None
) -> Callable[[str], Mapping[str, Any] | None]:
    return functools.partial(route_params, owner, root_path, host, redactor=redactor)


def route_params(
    owner: Any,
    root_path: str,
    host: str,
    path: str,
    redactor: Redactor | None = None,
) -> Mapping[str, Any] | None:
    """What the router of ``owner`` (an app or a router) captures from ``path``.

    ``path`` is a path of the site, percent-encoded (a same-app ``Referer``'s);
    ``root_path`` where the app is mounted; ``host`` the request's ``Host``, which a
    ``Host`` route matches. With the app's ``redactor``, a secret value a convertor
    made another object of is the text the path holds. None when nothing matches,
    and for an app that Starlette's router does not route.
    """
    mount = root_path.rstrip("/")
    if mount:
        if path != mount and not path.startswith(mount + "/"):
            return None
        path = path[len(mount) :] or "/"
    try:
        return _cached_route_params(owner, host, path, redactor)
    except TypeError:  # an app that cannot be a cache key
        return _route_params(owner, host, path, redactor)


@cached_for_short_text(maxsize=1024)
def _cached_route_params(
    owner: Any, host: str, path: str, redactor: Redactor | None
) -> Mapping[str, Any] | None:
    return _route_params(owner, host, path, redactor)


def _route_params(
    owner: Any, host: str, path: str, redactor: Redactor | None
) -> Mapping[str, Any] | None:
    routes = starlette_routes(owner)
    if routes is None:
        return None
    decoded = unquote(path)
    probe: Scope = {
        "type": "http",
        "method": "GET",
        "path": decoded,
        "root_path": "",
        "headers": [(b"host", host.encode("latin-1"))] if host else [],
        "query_string": b"",
    }
    passed: list[BaseRoute] = []
    found = match_route(routes, probe, passed)
    if found is None:
        return None
    route, matched = found
    params = matched.get("path_params")
    if not isinstance(params, Mapping):
        return None
    if params and redactor is not None and redactor.needs_path_texts(params, decoded):
        params = redactor.with_path_texts(params, decoded, _texts_along(route, passed, decoded))
    return params


def path_texts(owner: Any, scope: Scope, root_path: str) -> dict[str, str] | None:
    """The text of the request's path each path parameter was made of, by name.

    The router of ``owner`` (an app or a router, mounted at ``root_path``)
    matches ``scope`` again; each part of the path is read again with the
    pattern of the ``Mount`` or route that took it (what Starlette matched before
    its convertors' ``convert``). A ``Host`` route's parameters come from the host
    name: their text is ``""``, none of the path. None when nothing matches, or a
    route has no pattern.
    """
    routes = starlette_routes(owner)
    if routes is None:
        return None
    path = str(scope.get("path") or "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    probe = dict(scope)
    probe["root_path"] = root_path
    probe.pop("path_params", None)
    passed: list[BaseRoute] = []
    found = match_route(routes, probe, passed)
    return None if found is None else _texts_along(found[0], passed, path)


def _texts_along(route: Any, passed: list[BaseRoute], path: str) -> dict[str, str] | None:
    """The texts of :func:`path_texts`: ``path`` (below the router's own root) as the
    ``Mount``s and ``Host``s ``passed`` on the way to ``route`` matched it."""
    texts: dict[str, str] = {}
    try:
        for node in passed:
            if isinstance(node, Host):
                texts.update(dict.fromkeys(node.host_regex.groupindex, ""))
                continue
            found = node.path_regex.match(path) if isinstance(node, Mount) else None
            if found is None:
                return None
            groups = found.groupdict()
            path = "/" + groups.pop("path")  # what the mount hands its routes
            texts.update((name, text) for name, text in groups.items() if text is not None)
        if passed and route is passed[-1]:  # an app mounted whole: no route of its own
            return texts
        regex = getattr(route, "path_regex", None)
        found = regex.match(path) if isinstance(regex, re.Pattern) else None
    except (AttributeError, KeyError, TypeError):
        return None
    if found is None:
        return None
    texts.update((name, text) for name, text in found.groupdict().items() if text is not None)
    return texts


def match_route(
    routes: list[BaseRoute], probe: Scope, passed: list[BaseRoute] | None = None
) -> tuple[BaseRoute, Scope] | None:
    """Match ``probe`` as a router does (first full match, else first partial one,
    into mounted routers), updating it with each match's scope.

    ``passed`` gets each ``Mount`` and ``Host`` matched on the way to the route.
    """
    found: BaseRoute | None = None
    while routes:
        matched: tuple[BaseRoute, Scope] | None = None
        for candidate in routes:
            match, child_scope = candidate.matches(probe)
            if match is Match.FULL:
                matched = candidate, child_scope
                break
            if match is Match.PARTIAL and matched is None:
                matched = candidate, child_scope
        if matched is None:
            break
        found, child_scope = matched
        probe.update(child_scope)
        found = _included_route(found, probe)
        if not isinstance(found, (Mount, Host)):
            break
        if passed is not None:
            passed.append(found)
        # A mounted router: its routes are matched next (none: the mount itself,
        # and an app mounted whole that routes without Starlette: Litestar).
        routes = starlette_routes(found) or []
    return None if found is None else (found, probe)


def _included_route(route: BaseRoute, probe: Scope) -> BaseRoute:
    """The route inside a FastAPI ``include_router`` entry that ``probe`` matches.

    Newer FastAPI keeps an included router as one entry whose ``matches()`` says
    only whether something inside matches; which route does (and the path
    parameters it captures) comes from its own ``_match()``. A FastAPI route
    comes back as what FastAPI matched it with, its copy for that inclusion (as
    FastAPI's ``RouteContext`` does): only the copy's ``path_regex`` holds the
    include's prefix. Other routes are returned as they are.
    """
    depth = 0
    while type(route).__name__ == "_IncludedRouter" and depth < _MAX_INCLUDES:
        depth += 1
        try:
            match, child_scope, inner, routed_as = route._match(probe)  # type: ignore[attr-defined]
        except Exception:  # another FastAPI's: the entry as it is
            return route
        if match is Match.NONE or inner is None:
            return route
        probe.update(child_scope)
        # Other routes come back as FastAPI's prefixed copies already (no pattern
        # of their own on the context).
        prefixed = isinstance(getattr(routed_as, "path_regex", None), re.Pattern)
        route = routed_as if prefixed else inner
    return route


_MAX_INCLUDES = 32
# Middleware around an app, each wrapping the next: a chain never this long.
_MAX_WRAPPERS = 32


def user_id_of(scope: Scope) -> str | None:
    """The id of the user an authentication middleware put in ``scope["user"]``.

    Starlette's ``BaseUser`` has ``is_authenticated`` and ``identity`` (an
    ``identity`` that is not implemented falls back to ``display_name``). A user
    without ``identity`` is Django's (Channels' ``AuthMiddlewareStack``): its
    primary key, as segment_django sends it.
    """
    user = scope.get("user")
    if user is None:
        return None
    try:
        if not getattr(user, "is_authenticated", False):
            return None
        try:
            identity = user.identity
        except NotImplementedError:
            identity = user.display_name
        except AttributeError:
            identity = getattr(user, "pk", None)
        if identity is None or isinstance(identity, bool) or identity == "":
            return None
        return str(identity)
    except Exception:
        logger.exception("segment: could not read scope['user']; no user id for this request")
        return None
