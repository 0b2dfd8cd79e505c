"""Flask's request and user, translated into segment_core's neutral :class:`RequestInfo`."""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any
from urllib.parse import quote

from flask import Flask, Request
from werkzeug.exceptions import SecurityError

from segment_core.web import RequestInfo, WSGIHeaders

flask_login: Any
try:  # Flask-Login is optional (and untyped: imported as a plain module)
    flask_login = importlib.import_module("flask_login")
except ImportError:
    flask_login = None

__all__ = ["login_user_id", "request_info", "uses_flask_login"]

logger = logging.getLogger("segment.flask")

# What a browser may leave unescaped in a path (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;="
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9\-._~/:@!$&'()*+,;=]")


def request_info(request: Request) -> RequestInfo:
    """The neutral view of ``request``; hooks get ``request`` itself as ``native``."""
    try:
        host = request.host
    except SecurityError:
        host = ""  # not in TRUSTED_HOSTS: Flask answers 400 itself; never a page view
    rule = request.url_rule
    environ = request.environ
    return RequestInfo(
        method=request.method,
        scheme=request.scheme,
        host=host,
        path=_wire_path(request.script_root + request.path),
        query_string=environ.get("QUERY_STRING", ""),
        headers=WSGIHeaders(environ),
        # Parsing cookies costs more than all the rest: a new visitor has none.
        cookies=request.cookies if "HTTP_COOKIE" in environ else {},
        client_addr=request.remote_addr,
        route_name=request.endpoint,
        route_template=rule.rule if rule is not None else None,
        native=request,
    )


def _wire_path(path: str) -> str:
    """The path as the browser sent it: Werkzeug's is decoded, the Spec's is not."""
    return path if _NEEDS_QUOTING.search(path) is None else quote(path, safe=_PATH_SAFE)


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
