"""Flask's request and user, translated into segment_core's neutral :class:`RequestInfo`."""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from flask import Flask, Request
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.routing import Map, RequestRedirect
from werkzeug.sansio.http import parse_cookie
from werkzeug.sansio.utils import host_is_trusted

from segment_core.web import RequestInfo, WSGIHeaders, environ_wire_path

flask_login: Any
try:  # Flask-Login is optional (and untyped: imported as a plain module)
    flask_login = importlib.import_module("flask_login")
except ImportError:
    flask_login = None

__all__ = ["RouteOfPath", "login_user_id", "request_info", "router_of", "uses_flask_login"]

logger = logging.getLogger("segment.flask")


#: ``route_of_path(path) -> path_params | None``: an app's router, for the web rules.
RouteOfPath = Callable[[str], "Mapping[str, Any] | None"]


def request_info(
    request: Request, app: Flask, route_of_path: RouteOfPath | None = None
) -> RequestInfo:
    """The neutral view of ``request``; hooks get ``request`` itself as ``native``.

    ``route_of_path``: what :func:`router_of` gives for ``app`` (made once by the caller).
    """
    try:
        host = request.host
    except SecurityError:
        host = ""  # not in TRUSTED_HOSTS: Flask answers 400 itself; never a page view
    rule = request.url_rule
    environ = request.environ
    trusted = request.trusted_hosts or app.config.get("TRUSTED_HOSTS")
    if trusted and host and not host_is_trusted(host, list(trusted)):
        host = ""  # Flask before 3.1 does not check TRUSTED_HOSTS itself
    # request.endpoint and request.blueprints, read from the rule once: a route
    # outside any blueprint (no "." in its endpoint) has none.
    endpoint = rule.endpoint if rule is not None else None
    blueprints = tuple(request.blueprints) if endpoint and "." in endpoint else ()
    # RequestInfo(...) as two calls: CPython 3.11 makes a dict of the keywords of
    # a call to a class (half of its cost here), not of a call to a function.
    info: RequestInfo = object.__new__(RequestInfo)
    RequestInfo.__init__(
        info,
        method=request.method,
        scheme=request.scheme,
        host=host,
        path=environ_wire_path(environ),
        query_string=environ.get("QUERY_STRING", ""),
        headers=WSGIHeaders(environ),
        # Parsing cookies costs more than all the rest: a new visitor has none.
        cookies=_cookies(request, environ) if "HTTP_COOKIE" in environ else {},
        client_addr=request.remote_addr,
        route_name=endpoint,
        route_template=rule.rule if rule is not None else None,
        route_namespaces=blueprints,
        path_params=request.view_args,
        host_trusted=functools.partial(_is_trusted, tuple(trusted)) if trusted else None,
        route_of_path=route_of_path or router_of(app),
        native=request,
    )
    url_map = app.url_map
    server_name = app.config.get("SERVER_NAME")
    if host and (url_map.host_matching or server_name):
        # Routes by host or subdomain: a same-app path is matched on this host.
        info.route_of_path = route_of_path = functools.partial(
            _params_of_host_path, url_map, str(server_name or ""), host
        )
    mount = environ.get("SCRIPT_NAME")
    if mount:  # the app's router knows its paths without the mount point
        info.mount = mount = mount.rstrip("/")
        info.route_of_path = functools.partial(_under_mount, mount, route_of_path or router_of(app))
    return info


def _under_mount(mount: str, route_of_path: RouteOfPath, path: str) -> Mapping[str, Any] | None:
    """``route_of_path`` for a path of the site: None outside the app's mount point."""
    if path == mount or path.startswith(mount + "/"):
        return route_of_path(path[len(mount) :] or "/")
    return None


def _cookies(request: Request, environ: Mapping[str, Any]) -> Mapping[str, str]:
    """``request.cookies``, without reading every header to find the ``Cookie`` line.

    Werkzeug's property joins ``request.headers.getlist("Cookie")``, which walks the
    whole environ, to find the one ``HTTP_COOKIE`` a WSGI environ has, and hands
    that line to its parser as it is. Here the same parser gets it straight from
    the environ, and the result is kept where the property keeps it, so that the app
    reading ``request.cookies`` later parses nothing again. A request class with
    its own ``cookies``, or Werkzeug 2.3's deprecated non-UTF-8 charset, takes the
    property.
    """
    state = request.__dict__
    parsed: Mapping[str, str] | None = state.get("cookies")  # the session's read
    if parsed is not None:
        return parsed
    if (
        type(request).cookies is not _werkzeug_cookies
        or getattr(request, "_charset", "utf-8") != "utf-8"
        or getattr(request, "_encoding_errors", "replace") != "replace"
    ):
        return request.cookies
    cookies = parse_cookie(environ["HTTP_COOKIE"], cls=request.dict_storage_class)
    state["cookies"] = cookies
    return cookies


_werkzeug_cookies = Request.cookies


def router_of(app: Flask) -> RouteOfPath:
    """``app``'s router as the web rules use it: the params a path captures, or None."""
    return functools.partial(_params_of_path, app.url_map)


def _is_trusted(trusted: tuple[str, ...], host: str) -> bool:
    """Whether Flask's ``TRUSTED_HOSTS`` accepts ``host`` (for a forwarded host)."""
    return host_is_trusted(host, list(trusted))


@functools.lru_cache(maxsize=1024)
def _params_of_path(url_map: Map, path: str) -> Mapping[str, Any] | None:
    """What the app's router captures from ``path`` (to redact a same-app referrer)."""
    try:
        _, params = url_map.bind("localhost").match(unquote(path), method="GET")
    except (HTTPException, RequestRedirect, ValueError):
        return None
    return params


@functools.lru_cache(maxsize=1024)
def _params_of_host_path(
    url_map: Map, server_name: str, host: str, path: str
) -> Mapping[str, Any] | None:
    """:func:`_params_of_path` for an app that routes by host or subdomain."""
    name, server = host.lower(), server_name.lower()
    try:
        if url_map.host_matching:
            adapter = url_map.bind(name)
        elif name == server:
            adapter = url_map.bind(server, subdomain="")
        elif server and name.endswith("." + server):
            adapter = url_map.bind(server, subdomain=name[: -len(server) - 1])
        else:
            return None
        _, params = adapter.match(unquote(path), method="GET")
    except (HTTPException, RequestRedirect, ValueError):
        return None
    return params


def uses_flask_login(app: Flask) -> bool:
    """Whether Flask-Login is installed and set up on ``app`` (``app.login_manager``)."""
    # vars(): a missing attribute would cost an AttributeError on every request.
    return flask_login is not None and vars(app).get("login_manager") is not None


def login_user_id() -> str | None:
    """The ``get_id()`` of Flask-Login's ``current_user``, if authenticated."""
    try:
        user: Any = flask_login.current_user
        if user is None or not user.is_authenticated:
            return None
        user_id = user.get_id()
    except Exception:
        logger.exception("segment: could not load Flask-Login's user; no user id for it")
        return None
    return None if user_id is None else str(user_id)
