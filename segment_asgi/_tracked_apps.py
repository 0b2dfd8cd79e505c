"""Mounted apps that track their own requests: Flask and Django apps under a ``Mount``.

An outer ``SegmentMiddleware`` marks the ASGI scope of each request it tracks, and
an inner one stands aside. A Flask app mounted through a WSGI adapter
(``app.mount("/legacy", WSGIMiddleware(flask_app))``, as FastAPI's guide to WSGI
apps shows) never sees that scope, and Django's handler does not read the mark:
with ``SegmentFlask`` or ``segment_django``'s middleware each tracks its requests
itself, and knows what the middleware cannot (its routes, whose secrets it
redacts, and its user). So the middleware stands aside for the requests routed to
such a mount. The mounts are found once per app, at its first request; for an app
without one, a request costs an identity check.

Behind a router this cannot look into (Channels' ``ProtocolTypeRouter``), Django's
handler is found by the mark ``segment_django``'s middleware leaves instead
(:data:`TRACKED_BY_DJANGO`), seen as the response starts.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Host, Mount

from segment_asgi._mounts import included_routes, routes_of
from segment_asgi._scope import match_route
from segment_asgi._types import Scope
from segment_core.lifespan import TRACKED_BELOW

__all__ = ["TRACKED_BY_DJANGO", "SelfTrackingMounts", "tracks_itself"]

logger = logging.getLogger("segment.asgi")

#: Set by ``segment_django``'s middleware in ``scope["state"]`` of each request it
#: tracks: the one mark of segment_core's.
TRACKED_BY_DJANGO = TRACKED_BELOW

_MAX_DEPTH = 32
# Where the app wrapped by a WSGI adapter, or by ASGI middleware, is kept:
# starlette's and a2wsgi's WSGIMiddleware, ASGI middleware (``app``), asgiref's
# WsgiToAsgi (``wsgi_application``), a bound ``wsgi_app`` method (``__self__``).
_WRAPPED_APP_ATTRIBUTES = ("app", "wsgi_application", "__self__")


class SelfTrackingMounts:
    """Per app, the ``Mount``s (and ``Host``s) of apps that track their own requests."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        #: The app of the last request and its mounts, as one tuple (one read,
        #: whatever other threads do): where that app is the request's and has
        #: none, :meth:`routes_to_one` need not be asked. A middleware's requests
        #: all go to one app, the app it wraps: keeping it keeps nothing extra alive.
        self.last: tuple[Any, tuple[BaseRoute, ...]] = (None, ())

    def routes_to_one(self, app: Any, scope: Scope) -> bool:
        """Whether ``app`` (a router, or an app with routes) routes the request
        in ``scope`` to a mounted app that tracks its own requests. Never raises."""
        last_app, mounts = self.last
        if app is not last_app:
            mounts = self._find(app)
        if not mounts:
            return False
        try:
            return _routed_into(app, scope, mounts)
        except Exception:
            logger.exception("segment: could not match the request's path to a route")
            return False

    def _find(self, app: Any) -> tuple[BaseRoute, ...]:
        try:
            mounts = _self_tracking_mounts(routes_of(app))
        except Exception:
            logger.exception("segment: could not look for mounted apps that track themselves")
            mounts = ()
        self.last = (app, mounts)
        return mounts


def tracks_itself(app: Any) -> bool:
    """Whether ``app``, or the app it wraps, is a Flask app set up with
    ``SegmentFlask`` or a Django handler whose ``MIDDLEWARE`` has ``segment_django``'s."""
    node, seen = app, set[int]()
    # Bounded, and each object once: a Router's ``app`` is its own bound method.
    while node is not None and id(node) not in seen and len(seen) < _MAX_DEPTH:
        if _flask_tracks(node) or _django_tracks(node):
            return True
        seen.add(id(node))
        node = next(
            (
                wrapped
                for name in _WRAPPED_APP_ATTRIBUTES
                if (wrapped := getattr(node, name, None)) is not None
            ),
            None,
        )
    return False


def _flask_tracks(app: Any) -> bool:
    # Only a process that imported segment_flask has an app set up with it.
    segment_flask = sys.modules.get("segment_flask")
    if segment_flask is None:
        return False
    extensions = getattr(app, "extensions", None)
    return isinstance(extensions, dict) and isinstance(
        extensions.get("segment"), segment_flask.SegmentState
    )


def _django_tracks(app: Any) -> bool:
    # Django's handler has imported the middleware it lists by the time it exists.
    handlers = sys.modules.get("django.core.handlers.base")
    ours = sys.modules.get("segment_django.middleware")
    if handlers is None or ours is None or not isinstance(app, handlers.BaseHandler):
        return False
    from django.conf import settings
    from django.utils.module_loading import import_string

    for path in getattr(settings, "MIDDLEWARE", None) or ():
        try:
            listed = import_string(str(path))
        except Exception:  # a broken entry is Django's to report
            continue
        if isinstance(listed, type) and issubclass(listed, ours.SegmentMiddleware):
            return True
    return False


def _self_tracking_mounts(routes: Iterable[BaseRoute]) -> tuple[BaseRoute, ...]:
    """The ``Mount``s and ``Host``s among ``routes``, and below them, of apps that
    track themselves."""
    found: list[BaseRoute] = []
    pending: list[tuple[Iterable[BaseRoute], int]] = [(routes, 0)]
    while pending:
        routes, depth = pending.pop()
        for route in routes:
            if isinstance(route, (Mount, Host)) and tracks_itself(route.app):
                found.append(route)
            elif isinstance(route, (Mount, Host)) and depth < _MAX_DEPTH:
                pending.append((routes_of(route), depth + 1))
            elif (included := included_routes(route)) is not None and depth < _MAX_DEPTH:
                pending.append((included, depth + 1))
    return tuple(found)


def _routed_into(app: Any, scope: Scope, mounts: tuple[BaseRoute, ...]) -> bool:
    """Whether the router of ``app`` hands the request in ``scope`` to one of ``mounts``."""
    probe = dict(scope)
    probe.pop("path_params", None)
    passed: list[BaseRoute] = []
    if match_route(routes_of(app), probe, passed) is None:
        return False
    # By the app mounted: FastAPI matches an included router's routes as copies.
    mounted = {id(mount.app) for mount in mounts if isinstance(mount, (Mount, Host))}
    return any(id(getattr(route, "app", None)) in mounted for route in passed)
