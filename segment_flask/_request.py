"""Flask's request and user, translated into segment_core's neutral :class:`RequestInfo`."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from types import CodeType
from typing import Any
from urllib.parse import unquote

from flask import Flask, Request, g
from flask.globals import request_ctx
from werkzeug.exceptions import HTTPException, MethodNotAllowed, SecurityError
from werkzeug.routing import Map, MapAdapter, RequestRedirect, Rule
from werkzeug.sansio.http import parse_cookie
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.security import safe_join

from segment_core._frames import runs_in
from segment_core.web import (
    USER_NOT_KNOWN,
    HostRoutes,
    RequestInfo,
    WSGIHeaders,
    cached_for_short_text,
    environ_wire_path,
    query_of_request_line,
    serves_graphql,
)
from segment_core.web._redaction import name_and_port

flask_login: Any
try:  # Flask-Login is optional (and untyped: imported as a plain module)
    flask_login = importlib.import_module("flask_login")
except ImportError:
    flask_login = None

#: The code of Flask-Login's user loading (its user_loader, request_loader), which
#: keeps the user it loads in g._login_user once it returns.
_LOAD_USER_CODE: CodeType | None = getattr(
    getattr(getattr(flask_login, "LoginManager", None), "_load_user", None), "__code__", None
)

__all__ = [
    "NamespacesOf",
    "RouteOfPath",
    "login_user_id",
    "namespaces_of",
    "path_texts",
    "request_info",
    "router_of",
    "serves_a_file",
    "static_endpoints",
    "user_id_of",
    "uses_flask_login",
]

logger = logging.getLogger("segment.flask")


#: ``route_of_path(path) -> path_params | None``: an app's router, for the web rules.
RouteOfPath = Callable[[str], "Mapping[str, Any] | None"]

#: ``namespaces_of(endpoint) -> namespaces``: an app's namespaces of a route.
NamespacesOf = Callable[[str], "tuple[str, ...]"]


def _flask_before_3_1() -> bool:
    try:
        release = importlib.metadata.version("flask").split(".")[:2]
        return (int(release[0]), int(release[1])) < (3, 1)
    except Exception:  # no metadata, or none that names a version: taken for a recent one
        return False


#: Before Flask 3.1, a request's subdomain was read from its host wherever
#: ``SERVER_NAME`` was set, ``subdomain_matching`` on or off; since, only when on.
_SERVER_NAME_ROUTES_SUBDOMAINS = _flask_before_3_1()

#: Where a rule keeps the pattern :func:`path_texts` reads its parameters with.
_PATH_PATTERN = "_segment_path_pattern"
_UNSET: Any = object()


def request_info(
    request: Request,
    app: Flask,
    route_of_path: RouteOfPath | None = None,
    blueprint_namespaces: NamespacesOf | None = None,
    *,
    routed: bool = True,
) -> RequestInfo:
    """The neutral view of ``request``; hooks get ``request`` itself as ``native``.

    ``route_of_path`` and ``blueprint_namespaces``: what :func:`router_of` and
    :func:`namespaces_of` give for ``app`` (made once by the caller). ``routed``
    false: the route that matched serves none of the request's pages (a static
    view that finds no file), so the request has no route, as a path no rule
    matches, but keeps the namespaces of the route's blueprint.
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
    # request.endpoint and request.blueprint, read from the rule once; the
    # namespaces are worked out once per endpoint (tooling outside any blueprint
    # has one too: Flask-RESTX's docs, a GraphQL view).
    endpoint = rule.endpoint if rule is not None else None
    blueprints: tuple[str, ...] = ()
    if endpoint:
        blueprints = (blueprint_namespaces or namespaces_of(app))(endpoint)
        if not routed:  # still the blueprint's request: its exclusion holds
            rule = endpoint = None
    path_params: Mapping[str, Any] | None = request.view_args if rule is not None else None
    if path_params and rule is not None:
        # The path's own text: what the visitor sees, whatever the converter made of it.
        path_params = path_texts(rule, request.path) or path_params
    elif rule is None and isinstance(request.routing_exception, MethodNotAllowed):
        # Refused for its method (405): the path is a route's all the same, with its
        # secrets, as a referrer naming it would be.
        path_params = _params_refused_for_method()
    query = environ.get("QUERY_STRING", "")
    if query:  # a query after a "#" in the path is the fragment's (query_of_request_line)
        query = query_of_request_line(query, environ.get("RAW_URI") or environ.get("REQUEST_URI"))
    # RequestInfo(...) as two calls: CPython 3.11 makes a dict of the keywords of
    # a call to a class (half of its cost here), not of a call to a function.
    info: RequestInfo = object.__new__(RequestInfo)
    RequestInfo.__init__(
        info,
        method=request.method,
        scheme=request.scheme,
        host=host,
        path=environ_wire_path(environ),
        query_string=query,
        headers=WSGIHeaders(environ),
        # Parsing cookies costs more than all the rest: a new visitor has none.
        cookies=_cookies(request, environ) if "HTTP_COOKIE" in environ else {},
        client_addr=request.remote_addr,
        route_name=endpoint,
        route_template=rule.rule if rule is not None else None,
        route_namespaces=blueprints,
        path_params=path_params,
        host_trusted=functools.partial(_is_trusted, tuple(trusted)) if trusted else None,
        route_of_path=route_of_path or router_of(app),
        native=request,
    )
    url_map = app.url_map
    mount = environ.get("SCRIPT_NAME")
    if mount:
        info.mount = mount = mount.rstrip("/")
    if host and (
        url_map.host_matching
        or (
            (app.subdomain_matching or _SERVER_NAME_ROUTES_SUBDOMAINS) and app.config["SERVER_NAME"]
        )
    ):
        # Routes by host or subdomain: a path is matched on its URL's host, this
        # one's or another of the app's (?next=https://acme.shop.example/invite/KEY).
        server_name = str(app.config["SERVER_NAME"] or "")
        info.route_of_path = _host_routes(url_map, server_name, mount or "", _authority(host))
    elif mount:  # the app's router knows its paths without the mount point
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


def static_endpoints(app: Flask) -> dict[str, str | None]:
    """The endpoints of the views Flask serves the app's and its blueprints' static
    files with (``static``, ``shop.static``), not of an app's own view so named, and
    the folder each serves from."""
    found: dict[str, str | None] = {}
    for endpoint, view in app.view_functions.items():
        if endpoint.rpartition(".")[2] != "static":
            continue
        # A blueprint's (and Flask 2's app's) send_static_file; Flask 3's app's own
        # static view is a lambda made in Flask.__init__.
        name = getattr(view, "__name__", None)
        qualname = getattr(view, "__qualname__", None)
        if name == "send_static_file":
            found[endpoint] = getattr(getattr(view, "__self__", None), "static_folder", None)
        elif isinstance(qualname, str) and qualname.startswith("Flask.__init__."):
            found[endpoint] = app.static_folder
    return found


def serves_a_file(folder: str | None, values: Mapping[str, Any] | None) -> bool:
    """Whether a static view serving ``folder`` sends a file for the route's
    ``values``, as Werkzeug's ``send_from_directory`` finds it. It answers 404
    otherwise: with static files at the site's root, every path no other route
    matches comes to it, and the app's 404 handler may answer with a page (a
    single-page app's ``index.html``). An unknown folder counts as a file."""
    filename = values.get("filename") if values else None
    if folder is None or not isinstance(filename, str):
        return True
    try:
        path = safe_join(folder, filename)
        return path is not None and os.path.isfile(path)
    except (OSError, ValueError):  # a name no file system holds
        return False


def namespaces_of(app: Flask) -> NamespacesOf:
    """``app``'s namespaces of a route, worked out once per endpoint."""
    return functools.lru_cache(maxsize=None)(functools.partial(_route_namespaces, app))


def _route_namespaces(app: Flask, endpoint: str) -> tuple[str, ...]:
    """The namespaces of the route ``endpoint`` (``blueprint.view``, dotted when nested).

    Each enclosing blueprint's full name (``site.admin``, ``site``) and each one's
    own name (``admin``), as a nested Django namespace is matched, and the name the
    blueprint was made with when it was registered under another
    (``register_blueprint(reports, name="reports_v2")``: ``reports`` too, as Django
    matches an app name beside its instance namespace); ``admin`` for
    Flask-Admin, which gives every view a blueprint named after the view; and
    ``openapi`` for the API docs and specs of Flask-RESTX and Flask-Smorest, and
    for the views of GraphQL servers (Strawberry's), whose answer to a browser is
    an IDE.
    """
    blueprint = endpoint.rpartition(".")[0]
    parts = blueprint.split(".") if blueprint else []
    full_names = [".".join(parts[:end]) for end in range(len(parts), 0, -1)]
    namespaces = dict.fromkeys([*full_names, *parts])
    blueprints = [app.blueprints.get(name) for name in full_names]
    for found in blueprints:
        own_name = getattr(found, "name", None)
        if isinstance(own_name, str) and own_name:
            namespaces[own_name] = None
    made_by = [_import_name(found) for found in blueprints]
    if any(_is_module_of("flask_admin", name) for name in made_by):
        namespaces["admin"] = None
    if _is_api_docs(app, endpoint, made_by) or serves_graphql(app.view_functions.get(endpoint)):
        namespaces["openapi"] = None
    return tuple(namespaces)


def _is_api_docs(app: Flask, endpoint: str, made_by: list[str]) -> bool:
    """Whether ``endpoint`` serves API docs or their spec: a route of the blueprint
    Flask-Smorest makes for them (``api-docs``) or of Flask-RESTX's (``restx_doc``,
    the Swagger UI's files), or a view of Flask-RESTX's own (an ``Api``'s ``doc``
    and ``specs``, on the app or in the app's blueprint). Told apart by the module
    that made them, without importing either package.
    """
    if any(_is_module_of("flask_smorest", name) for name in made_by):
        return True
    if any(_is_module_of("flask_restx", name) for name in made_by):
        return True
    view = app.view_functions.get(endpoint)
    # A bound method (Api.render_doc), or a class-based view (SwaggerView).
    maker = getattr(view, "view_class", view)
    return _is_module_of("flask_restx", getattr(maker, "__module__", None) or "")


def _import_name(blueprint: Any) -> str:
    """The module that made ``blueprint`` (its ``import_name``), or ``""``."""
    name = getattr(blueprint, "import_name", "")
    return name if isinstance(name, str) else ""


def _is_module_of(package: str, module: str) -> bool:
    """Whether ``module`` is ``package`` or one of its modules."""
    return module == package or module.startswith(package + ".")


def path_texts(rule: Rule, path: str) -> dict[str, str] | None:
    """The text of ``path`` each of ``rule``'s path parameters matched, by name.

    Converters can make another object of it (a signed token decoded to its
    payload, ``3.50`` read as ``3.5``): the secrets hidden from the path are found
    by their text. None when ``path`` is not one of ``rule``'s, or the rule's
    parts cannot be read.
    """
    pattern = vars(rule).get(_PATH_PATTERN, _UNSET)
    if pattern is _UNSET:  # made once per rule, kept on it
        pattern = vars(rule)[_PATH_PATTERN] = _path_pattern(rule)
    match = pattern.fullmatch(path) if pattern is not None else None
    return match.groupdict() if match is not None else None


def _path_pattern(rule: Rule) -> re.Pattern[str] | None:
    """A pattern of the paths ``rule`` matches, with a named group per path parameter.

    Built from the parts Werkzeug compiled the rule into (slashes merged as it
    merges them); the host or subdomain part comes first, up to a ``|``. A rule
    with ``strict_slashes=False`` matches its path without the last slash too.
    """
    try:
        converters = rule._converters
        pieces: list[str] = []
        in_path = False
        for is_parameter, text in rule._trace:
            if in_path:
                regex = f"(?P<{text}>{converters[text].regex})" if is_parameter else re.escape(text)
                pieces.append(regex)
            elif not is_parameter and text == "|":
                in_path = True
        if not in_path:
            return None
        pattern = "".join(pieces)
        if pattern.endswith("/") and not rule.strict_slashes:
            pattern += "?"  # Werkzeug matches such a rule without its last slash too
        return re.compile(pattern)
    except (AttributeError, KeyError, TypeError, re.error):
        return None


@cached_for_short_text(maxsize=1024)
def _params_of_path(url_map: Map, path: str) -> Mapping[str, Any] | None:
    """What the app's router captures from ``path`` (to redact a same-app referrer)."""
    decoded = unquote(path)
    try:
        return _captured(url_map.bind("localhost"), decoded)
    except (HTTPException, RequestRedirect, ValueError):
        return None


def _captured(adapter: MapAdapter, path: str) -> Mapping[str, Any]:
    """The path's text of each parameter the rule serving ``path`` captures, whichever
    methods it allows: a page a form posted to is a page the browser shows, and its
    address comes back as a referrer. Raises as ``adapter.match`` does."""
    try:
        rule, params = adapter.match(path, method="GET", return_rule=True)
        return _texts_of(rule, path, params)
    except MethodNotAllowed as refused:
        methods = sorted(refused.valid_methods or ())
        if not methods:
            raise
    # Each method's rule, their captures together: which one the browser used is not
    # known (a form's POST, beside a DELETE naming the same path otherwise).
    captured: dict[str, Any] = {}
    for method in methods:
        try:
            rule, params = adapter.match(path, method=method, return_rule=True)
        except (HTTPException, RequestRedirect):
            continue
        for name, text in _texts_of(rule, path, params).items():
            captured.setdefault(name, text)
    return captured


def _params_refused_for_method() -> Mapping[str, Any] | None:
    """What the rules of the request's path capture, the request refused for its
    method: matched as Flask routed it (its host, subdomain and mount point)."""
    adapter = getattr(request_ctx, "url_adapter", None)
    if adapter is None:
        return None
    try:
        return _captured(adapter, adapter.path_info)
    except (HTTPException, RequestRedirect, ValueError):
        return None


def _texts_of(rule: Rule, path: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
    """The path's text of each parameter of ``params`` (as matched on ``path``)."""
    if not params:
        return params
    return path_texts(rule, "/" + path.lstrip("/")) or params


@cached_for_short_text(maxsize=256)
def _host_routes(url_map: Map, server_name: str, mount: str, host: str) -> HostRoutes:
    """The routes of ``host`` (``host[:port]``, see :func:`_authority`) in an app that
    routes by host or subdomain, which know the app's other hosts too."""
    routes: RouteOfPath = functools.partial(_params_of_host_path, url_map, server_name, host)
    if mount:
        routes = functools.partial(_under_mount, mount, routes)
    return HostRoutes(routes, functools.partial(_other_host_routes, url_map, server_name, mount))


@cached_for_short_text(maxsize=256)
def _other_host_routes(url_map: Map, server_name: str, mount: str, host: str) -> HostRoutes | None:
    """The routes of ``host`` if it is one of the app's: a host one of its rules
    names when it routes by host, ``SERVER_NAME`` and its subdomains when by subdomain."""
    if url_map.host_matching:
        known = _is_rule_host(url_map, host)
    else:
        known = _subdomain_of(host, server_name) is not None
    return _host_routes(url_map, server_name, mount, host) if known else None


def _is_rule_host(url_map: Map, host: str) -> bool:
    """Whether one of the rules of ``url_map`` (which routes by host) matches ``host``;
    a rule whose host cannot be read is taken to match it."""
    for rule in url_map.iter_rules():
        pattern = _host_pattern(rule)
        if pattern is None or pattern.fullmatch(host):
            return True
    return False


def _host_pattern(rule: Rule) -> re.Pattern[str] | None:
    """A pattern of the hosts ``rule`` matches, from the parts Werkzeug compiled it
    into (the host's come first, up to a ``|``), or None if they cannot be read."""
    try:
        pieces: list[str] = []
        for is_parameter, text in rule._trace:
            if not is_parameter and text == "|":
                return re.compile("".join(pieces))
            converter = rule._converters[text] if is_parameter else None
            pieces.append(f"(?:{converter.regex})" if converter else re.escape(text))
    except (AttributeError, KeyError, TypeError, re.error):
        pass
    return None


def _authority(host: str) -> str:
    """``host[:port]`` in lower case, without a default port, as URLs of the app are
    matched with it (``Shop.Example:443`` is ``shop.example``)."""
    name, port = name_and_port(host)
    return f"{name}:{port}" if port else name


def _subdomain_of(host: str, server_name: str) -> str | None:
    """The subdomain of ``server_name`` that ``host`` names (``""`` for
    ``server_name`` itself), or None for a host outside it. Ports differ only when
    both name one, as :func:`segment_core.web._redaction.same_host` has it."""
    name, port = name_and_port(host)
    server, server_port = name_and_port(server_name)
    if port and server_port and port != server_port:
        return None
    if name == server:
        return ""
    if server and name.endswith("." + server):
        return name[: -len(server) - 1]
    return None


@cached_for_short_text(maxsize=1024)
def _params_of_host_path(
    url_map: Map, server_name: str, host: str, path: str
) -> Mapping[str, Any] | None:
    """:func:`_params_of_path` on ``host`` of an app that routes by host or subdomain."""
    try:
        if url_map.host_matching:
            adapter = url_map.bind(host)
        else:
            subdomain = _subdomain_of(host, server_name)
            if subdomain is None:
                return None
            adapter = url_map.bind(server_name.lower(), subdomain=subdomain)
        return _captured(adapter, unquote(path))
    except (HTTPException, RequestRedirect, ValueError):
        return None


def uses_flask_login(app: Flask) -> bool:
    """Whether Flask-Login is installed and set up on ``app`` (``app.login_manager``)."""
    # vars(): a missing attribute would cost an AttributeError on every request.
    return flask_login is not None and vars(app).get("login_manager") is not None


def login_user_id() -> object:
    """The user id (:func:`user_id_of`) of Flask-Login's ``current_user``, if authenticated.

    A call made while Flask-Login loads the user (by the app's ``user_loader`` or
    ``request_loader``: a "last seen" event) does not load it once more, which would
    run the loader again inside itself: ``USER_NOT_KNOWN``, the user known before.
    """
    try:
        if "_login_user" not in g and _loading_user():
            return USER_NOT_KNOWN
        user: Any = flask_login.current_user
        if user is None or not user.is_authenticated:
            return None
        return user_id_of(user)
    except Exception:
        logger.exception("segment: could not load Flask-Login's user; no user id for it")
        return None


def _loading_user() -> bool:
    """Whether Flask-Login's user loading runs on this thread, below this call."""
    return runs_in(_LOAD_USER_CODE, sys._getframe(2))


_NO_ID = object()


def user_id_of(user: Any) -> str | None:
    """A Flask-Login user's id: its ``id`` as text when it has one, else ``get_id()``.

    ``get_id()`` is what Flask-Login keeps in the session, which its docs suggest
    making a token the app changes to end the user's sessions; ``id`` stays the
    user's (an ``int``, ``UUID`` or ``ObjectId``, as Django's ``pk`` is written).
    """
    try:
        user_id = getattr(user, "id", _NO_ID)
    except Exception:  # an id that cannot be read (a lazy load failing): get_id() says
        user_id = _NO_ID
    if user_id is None:
        # Not saved yet (its row gets an id as the request ends): no user yet, not
        # get_id(), which may be a session token (Flask-Login's alternative tokens).
        return None
    if user_id is _NO_ID or callable(user_id):  # no id attribute (a method is none)
        user_id = user.get_id()
        # UserMixin.get_id() is str(self.id): "None" for a user not saved yet.
        if user_id == "None":
            return None
    return None if user_id is None else str(user_id)
