"""The names of the ``Mount``s and ``Host``s a route is reached through, for ``exclude_routes``.

Starlette spells a route inside ``Mount("/shop", routes=..., name="shop")`` as
``"shop:cart"`` (``url_path_for``), and the admin apps built on it (sqladmin,
starlette-admin) mount theirs with ``name="admin"``. The router records only the
route it ended at, not the mounts it passed: each app's route tree is walked
once and every route's namespaces kept, found again by the route's identity.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Host, Mount

from segment_asgi._scope import match_route, starlette_routes
from segment_asgi._types import Scope

__all__ = ["MountNames", "included_routes", "namespaces_of", "routes_of"]

# A route's namespaces; None: reached through differently named mounts (the same
# routes mounted twice), so the request's own path decides.
Entry = tuple[BaseRoute, "tuple[str, ...] | None"]
Table = dict[int, Entry]

_MAX_DEPTH = 32
# Routes the walk did not find (added by hand to a scope, or after it) are
# remembered up to this many, so they do not walk the tree at each request.
_MAX_UNLISTED = 1024


def namespaces_of(mounts: Iterable[str], route_name: str | None) -> tuple[str, ...]:
    """The namespaces a route inside ``mounts`` (named, outermost first) belongs to.

    Its full name as ``url_path_for`` spells it (``"site:shop:cart"``), each
    enclosing mount's full name (``"site:shop"``, ``"site"``) and each one's own
    name (``"shop"``), as nested Django namespaces and Flask blueprints are
    matched. Nothing for a route outside named mounts: its name is its full name.
    """
    chain = tuple(mounts)
    if not chain:
        return ()
    full_name = [":".join((*chain, route_name))] if route_name else []
    enclosing = [":".join(chain[:end]) for end in range(len(chain), 0, -1)]
    return tuple(dict.fromkeys([*full_name, *enclosing, *chain]))


class MountNames:
    """Per app, the namespaces of each of its routes, worked out once."""

    __slots__ = ("_last", "_tables")

    def __init__(self) -> None:
        # By the app's id: a Router (an app's, a Mount's) cannot be hashed. The
        # weak reference drops the entry with the app.
        self._tables: dict[int, tuple[weakref.ref[Any], Table]] = {}
        # The app of the last request and its table, as one tuple (one read, whatever
        # other threads do): nearly every request goes to the same app. The
        # middleware wraps that app: keeping it keeps nothing extra alive.
        self._last: tuple[Any, Table] = (None, {})

    def of(self, app: Any, route: BaseRoute, scope: Scope, root_path: str) -> tuple[str, ...]:
        """The namespaces of ``route``, which ``app`` (a router, or an app with
        ``routes``) handed the request in ``scope`` to; ``root_path`` as it was then."""
        last_app, table = self._last
        if app is not last_app:
            table = self._table(app, walk_again=False)
        entry = table.get(id(route))
        if entry is not None and entry[0] is route and entry[1] is not None:
            return entry[1]
        return self._not_listed(app, route, scope, root_path, entry)

    def _not_listed(
        self, app: Any, route: BaseRoute, scope: Scope, root_path: str, entry: Entry | None
    ) -> tuple[str, ...]:
        if entry is None or entry[0] is not route:
            # A route added since the walk (app.mount() after the first request), or
            # one the walk cannot reach: walked again once, then remembered.
            table = self._table(app, walk_again=True)
            entry = table.get(id(route))
            if entry is None or entry[0] is not route:
                table[id(route)] = (route, ())
                return ()
        if entry[1] is not None:
            return entry[1]
        return _rematched(app, scope, root_path)

    def _table(self, app: Any, *, walk_again: bool) -> Table:
        if app is None:
            return {}
        key = id(app)
        last_app, last_table = self._last
        table = last_table if last_app is app else None
        if table is None:
            known = self._tables.get(key)
            table = known[1] if known is not None and known[0]() is app else None
        if table is None or walk_again:
            walked = _walk(app)
            # What the walk could not reach stays known (a bounded number of it).
            if table is not None and len(table) < len(walked) + _MAX_UNLISTED:
                walked = {**table, **walked}
            table = walked
            try:
                reference = weakref.ref(app, functools.partial(_forget, self._tables, key))
            except TypeError:  # an app that cannot be weakly referenced: the last one only
                pass
            else:
                self._tables[key] = (reference, table)
        self._last = (app, table)
        return table


def _forget(tables: dict[int, tuple[weakref.ref[Any], Table]], key: int, gone: Any) -> None:
    known = tables.get(key)
    if known is not None and known[0] is gone:
        tables.pop(key, None)


def _walk(app: Any) -> Table:
    """Every route below ``app``, with its namespaces."""
    table: Table = {}
    pending: list[tuple[Iterable[BaseRoute], tuple[str, ...], int]] = [(routes_of(app), (), 0)]
    while pending:
        routes, chain, depth = pending.pop()
        for route in routes:
            name = getattr(route, "name", None)
            name = name if isinstance(name, str) and name else None
            if isinstance(route, (Mount, Host)):
                inner = (*chain, name) if name else chain
                _add(table, route, namespaces_of(inner, None))
                if depth < _MAX_DEPTH:
                    pending.append((routes_of(route), inner, depth + 1))
            elif (included := included_routes(route)) is not None:
                if depth < _MAX_DEPTH:
                    pending.append((included, chain, depth + 1))
            else:
                _add(table, route, namespaces_of(chain, name))
    return table


def included_routes(route: BaseRoute) -> list[BaseRoute] | None:
    """The routes of a router included in one entry (newer FastAPI keeps an included
    router so: its routes are those of the router it includes); None for any other
    route."""
    if type(route).__name__ != "_IncludedRouter":
        return None
    return routes_of(getattr(route, "original_router", None))


def _add(table: Table, route: BaseRoute, namespaces: tuple[str, ...]) -> None:
    known = table.get(id(route))
    if known is not None and known[1] != namespaces:
        table[id(route)] = (route, None)
    elif known is None:
        table[id(route)] = (route, namespaces)


def routes_of(node: Any) -> list[BaseRoute]:
    """The routes of a router, an app, or a mounted app wrapped in middleware
    (none for an app that Starlette's router does not route)."""
    for _ in range(_MAX_DEPTH):
        if node is None:
            break
        routes = starlette_routes(node)
        if routes:
            return routes
        node = getattr(node, "app", None)
    return []


def _rematched(app: Any, scope: Scope, root_path: str) -> tuple[str, ...]:
    """The namespaces of the mounts the request's own path passes through."""
    probe = dict(scope)
    probe["root_path"] = root_path
    probe.pop("path_params", None)
    passed: list[BaseRoute] = []
    found = match_route(routes_of(app), probe, passed)
    if found is None:
        return ()
    names = [getattr(mount, "name", None) for mount in passed]
    route = found[0]
    route_name = None if isinstance(route, (Mount, Host)) else getattr(route, "name", None)
    return namespaces_of(
        (name for name in names if isinstance(name, str) and name),
        route_name if isinstance(route_name, str) and route_name else None,
    )
