"""The request hooks one app registers: Flask objects in, segment_core's tracker out.

- ``start_request`` (the app's first ``url_value_preprocessor``, which Flask runs
  before any ``before_request`` function): build the request's tracker, expose its
  ``Analytics`` as ``request.analytics`` (and ``g._segment``) and bind
  it for :func:`segment_core.scope.analytics`.
- ``after_request``: set the anonymous-id cookie, then the automatic page call,
  or, for a streamed response, register it to run when the response closes.
- ``teardown_request`` (the app's last): unbind. Code that runs in the request's
  context without the binding (a thread started with
  ``copy_current_request_context``) finds ``request.analytics`` through
  :func:`request_analytics`.
- ``unbind_requests_left_bound`` (a ``teardown_appcontext`` function): unbind a
  request whose ``teardown_request`` never ran (a teardown function of the app or
  of a blueprint raised before it: Flask stops there), as the request's app context
  ends, which Flask does whatever its teardown functions raised.

Flask shares one app context, and so one ``g``, between a request and a request
context of the same app opened in its view (``app.test_request_context()`` to build
a link, an ``app.test_client()`` sub-request): each hook acts only on the scope of
its own request, found with :func:`scope_of_request`.

Every step is guarded: analytics never turns a working response into an error.
"""

from __future__ import annotations

import functools
import logging
import operator
from contextvars import Token, copy_context
from typing import Any

import flask.globals
from flask import Flask, after_this_request, g, has_request_context, request
from flask.wrappers import Request, Response
from werkzeug.datastructures import Headers

from segment_core.client import Client
from segment_core.scope import Analytics, bind, bound_iteration, reset
from segment_core.signals import emit
from segment_core.testing import divert, settle_divert
from segment_core.web import (
    REDIRECT_STATUSES,
    RequestAnalytics,
    RequestTracker,
    cache_control_for_cookie,
)
from segment_flask._request import (
    NamespacesOf,
    RouteOfPath,
    login_user_id,
    namespaces_of,
    request_info,
    router_of,
    serves_a_file,
    static_endpoints,
    user_id_of,
    uses_flask_login,
)
from segment_flask._state import SegmentState
from segment_flask.signals import page_tracked

__all__ = [
    "RequestHooks",
    "RequestScope",
    "end_user_on_logout",
    "identify_on_login",
    "request_analytics",
    "scope_of_request",
    "unbind_requests_left_bound",
]

logger = logging.getLogger("segment.flask")

#: Where the request's :class:`RequestScope` is kept in ``g`` and on the request.
SCOPE_KEY = "_segment_scope"
#: Where the request's ``Analytics`` is kept in ``g`` too (``g._segment``).
ANALYTICS_KEY = "_segment"


class RequestScope:
    """One request's analytics state, kept in ``g`` until the request's
    teardown; for a streamed body, made after it, also on the request until it closes."""

    __slots__ = ("analytics", "outer", "request", "token", "tracker")

    def __init__(
        self,
        request: Request,
        tracker: RequestTracker,
        analytics: Analytics,
        token: Token[Analytics | None],
        outer: RequestScope | None,
    ) -> None:
        #: The request this scope belongs to: the only one whose hooks use it.
        self.request = request
        self.tracker = tracker
        self.analytics = analytics
        #: Undoes the binding of ``analytics`` for ``segment_core.scope.analytics()``.
        self.token = token
        #: The scope of the request whose view this one was made in, back in
        #: ``g`` once this one is torn down; None for a request of its own.
        self.outer = outer


class RequestHooks:
    """The three hooks of one app, bound to that app, its client and options.

    Flask runs an app's hooks for that app only: ``app`` is ``current_app``.
    ``divert_when_testing``: the app's own client, to divert to the outbox once
    the app is ``TESTING`` (checked before each request until it is).
    """

    __slots__ = (
        "__weakref__",  # got_request_exception holds its receiver weakly
        "app",
        "blueprint_namespaces",
        "divert_when_testing",
        "route_of_path",
        "state",
        "static_endpoints",
    )

    def __init__(
        self, app: Flask, state: SegmentState, *, divert_when_testing: Client | None = None
    ) -> None:
        self.app = app
        self.state = state
        self.divert_when_testing = divert_when_testing
        #: The app's router for the web rules.
        self.route_of_path: RouteOfPath = router_of(app)
        #: The namespaces of each blueprint's routes, for ``exclude_routes``.
        self.blueprint_namespaces: NamespacesOf = namespaces_of(app)
        #: The endpoints of Flask's static files, found at the first request (once
        #: every blueprint is registered).
        self.static_endpoints: dict[str, str | None] | None = None

    def start_request(self, endpoint: str | None = None, values: Any = None) -> None:
        """A ``url_value_preprocessor``: it runs before the others, which may take a
        route's values out (``values.pop("token")``) or abort, and before every
        ``before_request`` function."""
        client = self.divert_when_testing
        # config, not app.testing: the same key, without the descriptor's cost.
        if client is not None and self.app.config.get("TESTING"):
            self.divert_when_testing = None
            divert(client)
        static = self.static_endpoints
        if static is None:  # the first request
            static = self.static_endpoints = static_endpoints(self.app)
            settle_divert(self.state.client)
        try:
            if endpoint in static:
                # A file of the app's or a blueprint's static folder (below the
                # site's root, or at it): no page call, no cookie, no user lookup;
                # but request.analytics for the app's own hooks, as on an excluded
                # path. A path that names no file is the app's 404 handler's to
                # answer (a single-page app's index.html): a page no route serves.
                static_file = serves_a_file(static[endpoint], values)
                self._start(static_file, routed=static_file)
            else:
                self._start(False)
        except Exception:
            logger.exception("segment: could not read the request; no analytics for it")

    def start_for_error(self, sender: Flask, **_: Any) -> None:
        """A ``got_request_exception`` receiver: a request that failed before its
        url_value_preprocessors ran (its session could not be opened: a session
        store away) is started as the app's error handler runs, which finds
        ``request.analytics`` as every other handler does."""
        if has_request_context() and scope_of_request(_current_request()) is None:
            native = _current_request()
            self.start_request(native.endpoint, native.view_args)

    def _start(self, static_file: bool, *, routed: bool = True) -> None:
        native = _current_request()
        app = self.app
        state, options = self.state, self.state.options
        info = request_info(
            native, app, self.route_of_path, self.blueprint_namespaces, routed=routed
        )
        # A USER_ID hook replaces the framework's user, and health checks and
        # assets need none: no session read or user query for them. The user is
        # read when a call is made, so a login in the view counts.
        read_user = None
        if options.user_id is None and uses_flask_login(app):
            read_user = login_user_id
        tracker = RequestTracker(
            state.client, options, info, read_user=read_user, excluded=static_file
        )
        analytics = tracker.analytics
        native.analytics = analytics
        # g's own namespace: the same attribute, without _AppCtxGlobals.__setattr__.
        shared = vars(_current_g())
        outer = shared.get(SCOPE_KEY)
        shared[SCOPE_KEY] = RequestScope(native, tracker, analytics, bind(analytics), outer)
        shared[ANALYTICS_KEY] = analytics

    def after_request(self, response: Response) -> Response:
        scope = scope_of_request(_current_request())
        if scope is None:
            return response
        try:
            tracker = scope.tracker
            status = response.status_code
            # A redirect's Location: none for an http request sent on to https.
            redirect_to = response.headers.get("Location") if status in REDIRECT_STATUSES else None
            cookie = tracker.cookie_to_set(redirect_to)
            kept_out = False
            app_id = None if cookie is None else _cookie_set(response, cookie.name)
            if cookie is not None and app_id is None:
                _add_header(response, "Set-Cookie", cookie.header_value())
                _keep_out_of_shared_caches(response)
                kept_out = True
            elif app_id is not None:  # the view set it: its id is the visitor's
                tracker.id_cookie_set_by_app(app_id)
            elif tracker.new_id_left_unkept:  # none of ours: the view may set its own
                app_id = _cookie_set(response, tracker.options.cookie_name)
                if app_id is not None:
                    tracker.id_cookie_set_by_app(app_id)
            expired = tracker.user_cookie_expired  # a logout's: the browser's user too
            if expired is not None and not _sets_cookie(response, expired.name):
                _add_header(response, "Set-Cookie", expired.header_value())
                if not kept_out:
                    _keep_out_of_shared_caches(response)
                    kept_out = True
            # send_file()'s file goes out as it is: no body to wait for.
            streamed = response.is_streamed and not response.direct_passthrough
            # The page holds the visitor's ids, or a body made later may write them:
            # no shared cache may hand them to another visitor.
            if not kept_out and (
                tracker.snippet_rendered
                or (streamed and tracker.may_render_snippet(response.headers.get("Content-Type")))
            ):
                _keep_out_of_shared_caches(response)
            # The signal's sender, when someone listens.
            app = self.app if page_tracked.receivers else None
            if streamed:
                # The page view counts once the body was sent, not when it starts;
                # analytics() stays bound while the body is made.
                body: Any = bound_iteration(response.response, scope.analytics)
                response.response = body
                response.call_on_close(_StreamClose(app, scope, response))
            else:
                _finish(app, scope, response)
        except Exception:
            logger.exception("segment: could not complete the request's analytics")
        return response

    def teardown_request(self, error: BaseException | None = None) -> None:
        shared = vars(_current_g())
        native = _current_request()
        scope = _scope_in(shared, native)
        if scope is None:
            return
        # Also drops the scope of a request made in the view whose own teardown
        # raised: its binding goes with this one's.
        if scope.outer is None:
            del shared[SCOPE_KEY]
            # A streamed body, made after this, still finds g._segment (see _StreamClose).
            if vars(native).get(SCOPE_KEY) is not scope:
                shared.pop(ANALYTICS_KEY, None)
        else:
            shared[SCOPE_KEY] = scope.outer
            shared[ANALYTICS_KEY] = scope.outer.analytics
        _unbind(scope)


def unbind_requests_left_bound(error: BaseException | None = None) -> None:
    """A ``teardown_appcontext`` function: unbind the requests whose
    ``teardown_request`` did not run (usually none)."""
    shared = vars(_current_g())
    scope: RequestScope | None = shared.pop(SCOPE_KEY, None)
    if scope is not None:  # else a streamed body may still read g._segment
        shared.pop(ANALYTICS_KEY, None)
    while scope is not None:
        _unbind(scope)  # the innermost first: the reverse of the order they were bound
        scope = scope.outer


def scope_of_request(native: Request) -> RequestScope | None:
    """The scope of ``native``, the current request: None for a request context
    opened in another request's view that started none (``test_request_context()``),
    whose ``g`` holds that other request's scope."""
    return _scope_in(vars(_current_g()), native)


def _scope_in(shared: dict[str, Any], native: Request) -> RequestScope | None:
    """``native``'s scope among those in ``shared`` (``g``'s namespace)."""
    scope: RequestScope | None = shared.get(SCOPE_KEY)
    while scope is not None and scope.request is not native:
        scope = scope.outer
    return scope


def _unbind(scope: RequestScope) -> None:
    try:
        reset(scope.token)
    except (ValueError, RuntimeError):
        logger.exception("segment: could not unbind the request's analytics")


def identify_on_login(sender: Any, user: Any = None, **extra: Any) -> None:
    """Flask-Login's ``user_logged_in`` receiver: one identify for the request's visitor."""
    try:
        native = _current_request()
        scope = scope_of_request(native)
        if user is None:
            return
        if scope is not None:
            # A browser signing in: its calls from now on keep the anonymous id the
            # identify joins to the user, also while that identify waits for the id.
            scope.tracker.login_begins()
            user_id = user_id_of(user)
            if user_id is None:  # not saved yet: identified once it is, if it is
                after_this_request(functools.partial(_identify_once_saved, scope.tracker, user))
            else:
                scope.tracker.identify_login(user_id, user)
            return
        analytics = _analytics_left_on(native)
        user_id = user_id_of(user)
        if analytics is not None and user_id:
            analytics.login(user_id, user)
    except Exception:
        logger.exception("segment: the automatic identify of a login failed")


def _identify_once_saved(tracker: RequestTracker, user: Any, response: Response) -> Response:
    """The identify of a login whose user had no id yet (a signup logging its user in
    before the commit gives the row one), as the response is made: by then the view
    has saved it. Before the response's cookie is decided (Flask calls these before
    its ``after_request`` hooks)."""
    try:
        user_id = user_id_of(user)
        if user_id is not None:
            tracker.identify_login(user_id, user)
    except Exception:
        logger.exception("segment: the automatic identify of a login failed")
    return response


def end_user_on_logout(sender: Any, **extra: Any) -> None:
    """Flask-Login's ``user_logged_out`` receiver: the request's later calls name no
    user, whatever a ``user_id`` hook reading the app's own state (``g.user``) says."""
    try:
        native = _current_request()
        scope = scope_of_request(native)
        analytics = scope.tracker.analytics if scope is not None else _analytics_left_on(native)
        if analytics is not None:
            analytics.logout()
    except Exception:
        logger.exception("segment: could not end the user at a logout")


def _analytics_left_on(native: Request) -> RequestAnalytics | None:
    """``request.analytics`` in a streamed body, whose app context is another than
    the request's: the request still has it, its scope is gone."""
    found = getattr(native, "analytics", None)
    return found if isinstance(found, RequestAnalytics) else None


def request_analytics() -> Analytics | None:
    """``request.analytics``, for :func:`segment_core.scope.analytics` when nothing is
    bound: Flask pushes a copy of the request's context, not of its context
    variables, into a thread started with ``copy_current_request_context``."""
    if not has_request_context():
        return None
    found = getattr(_current_request(), "analytics", None)
    return found if isinstance(found, Analytics) else None


class _StreamClose:
    """What completes a streamed response's analytics as it closes.

    Flask tears the request down before the body is made: ``segment_snippet()`` in
    a streamed template finds the scope on the request meanwhile, and the page
    call's hooks (``page_filter``, ``page_properties``), run as the response
    closes, outside Flask's contexts, run in a copy of these, with the view's g,
    session and request.
    """

    __slots__ = ("app", "context", "native", "response", "scope", "shared")

    def __init__(self, app: Flask | None, scope: RequestScope, response: Response) -> None:
        self.app = app
        self.scope: RequestScope | None = scope
        self.response: Response | None = response
        self.native = _current_request()
        vars(self.native)[SCOPE_KEY] = scope
        #: g's namespace, whose _segment the body still finds; gone as it closes.
        self.shared = vars(_current_g())
        self.context = copy_context()

    def __call__(self) -> None:
        scope, response = self.scope, self.response
        if scope is None or response is None:
            return
        self.context.run(_finish, self.app, scope, response)
        # The response refers to this, the request to the scope: cycles, broken at
        # once, so that the request's objects go without the cycle collector.
        self.scope = self.response = None
        vars(self.native).pop(SCOPE_KEY, None)
        if self.shared.get(ANALYTICS_KEY) is scope.analytics:
            del self.shared[ANALYTICS_KEY]


def _finish(app: Flask | None, scope: RequestScope, response: Response) -> None:
    try:
        headers = response.headers
        content_type = headers.get("Content-Type")
        if scope.tracker.finish(
            response.status_code,
            response,
            content_type=content_type,
            # Read only for what would be a page view.
            response_header=functools.partial(_header, headers),
        ) and (app is not None):
            emit(page_tracked, app, message=scope.analytics.page_message)
    except Exception:
        logger.exception("segment: the automatic page call failed")


def _header(headers: Headers, name: str) -> str | None:
    """The value of the header ``name`` (lower case), looked for in C rather than in
    ``headers.get()``'s Python loop and the exception it raises for a missing one."""
    pairs = headers._list if type(headers) is Headers else list(headers.items())
    names = list(map(str.lower, map(_NAME, pairs)))
    if name not in names:
        return None
    return str(pairs[names.index(name)][1])


_NAME = operator.itemgetter(0)


# The objects behind Flask's ``request`` and ``g`` proxies, read from the context
# variables those read (a fifth of a proxy's cost; several times per request), or
# through the proxies in a Flask that keeps them otherwise.
_cv_request: Any = getattr(flask.globals, "_cv_request", None)
_cv_app: Any = getattr(flask.globals, "_cv_app", None)

if _cv_request is not None and _cv_app is not None:

    def _current_request() -> Any:
        """The request of the request context Flask runs (``request``)."""
        return _cv_request.get().request

    def _current_g() -> Any:
        """The ``g`` of the app context Flask runs."""
        return _cv_app.get().g

else:  # pragma: no cover - a Flask without them

    def _current_request() -> Any:
        """The request of the request context Flask runs (``request``)."""
        return request._get_current_object()  # type: ignore[attr-defined]

    def _current_g() -> Any:
        """The ``g`` of the app context Flask runs."""
        return g._get_current_object()


def _add_header(response: Response, name: str, value: str) -> None:
    """``response.headers.add(name, value)``, cheaper for Werkzeug's own ``Headers``.

    A value without a line break is stored as ``add()`` stores it, without the
    regular expression ``add()`` searches for one with (most of its cost).
    """
    headers = response.headers
    if type(headers) is Headers and "\n" not in value and "\r" not in value:
        headers._list.append((name, value))
    else:
        headers.add(name, value)


def _keep_out_of_shared_caches(response: Response) -> None:
    """``Cache-Control: private`` and ``Vary: Cookie`` for a response carrying the
    visitor's cookie, which no shared cache may hand to another visitor."""
    headers = response.headers
    if type(headers) is Headers:
        for key, _ in headers._list:
            if key.lower() in _CACHING_HEADERS:
                break
        else:  # most responses: two lines added, nothing to merge
            headers._list += (("Cache-Control", "private"), ("Vary", "Cookie"))
            return
    # Several lines are one list of directives: merged, then written as one line.
    values = headers.getlist("Cache-Control")
    headers["Cache-Control"] = cache_control_for_cookie(", ".join(values) if values else None)
    response.vary.add("Cookie")


#: The response's headers a cookie's Cache-Control and Vary are merged into.
_CACHING_HEADERS = frozenset(("cache-control", "vary"))


def _sets_cookie(response: Response, name: str) -> bool:
    """Whether the view (or another hook) already sets cookie ``name``."""
    return _cookie_set(response, name) is not None


def _cookie_set(response: Response, name: str) -> list[str] | None:
    """The ``Set-Cookie`` lines by which the view (or another hook) sets cookie
    ``name``; None if none."""
    prefix = name + "="
    found = None
    # One pass over the header pairs: getlist() builds a list and a generator.
    for key, value in response.headers:
        if key.lower() == "set-cookie" and value.startswith(prefix):
            found = [value] if found is None else [*found, value]
    return found
