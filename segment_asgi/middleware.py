"""``SegmentMiddleware``: a pure ASGI middleware for Starlette, FastAPI and any ASGI app.

Per HTTP request it binds an :class:`~segment_core.scope.Analytics` object
(``request.state.analytics``, ``segment_core.scope.analytics()``), adds the
anonymous-id cookie to the response's start and sends the automatic page call
once the last body chunk has been handed to the server (or as the app returns,
for a response cut short). Bodies are never buffered or delayed. On lifespan
shutdown it flushes the client.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import operator
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Literal

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request

import segment_core
from segment_asgi._apps import DOCS_NAMESPACE, AppFacts
from segment_asgi._awaited_hooks import (
    AWAITED_HOOKS,
    EARLY_CONSENT,
    LOOP_THREAD,
    AwaitedHook,
    Raised,
)
from segment_asgi._mounts import MountNames
from segment_asgi._options import (
    allowed_hosts_of,
    check_names,
    divert_in_tests,
    make_client,
    make_web_options,
    warn_if_server_key_in_browser,
)
from segment_asgi._scope import (
    own_root_path,
    path_texts,
    request_info,
    route_lookup,
    route_of,
    user_id_of,
    with_own_root_path,
    wrapped_router,
)
from segment_asgi._tracked_apps import TRACKED_BY_DJANGO, SelfTrackingMounts
from segment_asgi._types import ASGIApp, Message, Receive, Scope, Send
from segment_core._clock import monotonic
from segment_core.adapters import default_client, delivers, keep_loggers_on
from segment_core.client import Client
from segment_core.config import (
    Backoff,
    BeforeSend,
    Clock,
    ErrorHandler,
    FailureHook,
    IdGenerator,
    MessageHook,
    read_flag,
)
from segment_core.config import option_names as client_option_names
from segment_core.lifecycle import live_clients, shutdown_wait
from segment_core.lifespan import (
    FLUSHED_AT_SHUTDOWN,
    Flushable,
    ShutdownFlush,
    flush_with_joined,
    run_lifespan,
    stops_through_atexit,
)
from segment_core.scope import bind, reset, run_counted
from segment_core.web import (
    REDIRECT_STATUSES,
    CookieSpec,
    RequestInfo,
    RequestTracker,
    cache_control_for_cookie,
    is_async,
    is_excluded_request,
    is_page_status,
    media_type,
    split_options,
)
from segment_core.web import option_names as web_option_names

__all__ = ["SCOPE_MARK", "UNTRACKED_WEBSOCKET", "ResponseInfo", "SegmentMiddleware"]

logger = logging.getLogger("segment.asgi")
# Where the web layer logs failing hooks: the async user_id hook's failures go there too.
hook_logger = logging.getLogger("segment.core.web")

#: The request's tracker, in ``scope["state"]``: what ``segment_snippet`` renders from.
TRACKER_KEY = "segment_tracker"

#: Set in the scope by the outermost middleware: an inner one passes through,
#: so an app wrapped twice still sends one page call per request.
SCOPE_MARK = "segment_asgi.tracked"

#: Set in a WebSocket's scope the middleware passes on untracked (``websockets``
#: off), so that ``segment_asgi.analytics`` can say which option binds one.
UNTRACKED_WEBSOCKET = "segment_asgi.untracked_websocket"
#: Scope key: how the async ``user_id`` hook failed as the request started.
_EARLY_USER_ERROR = "segment_asgi.early_user_error"

Hook = Callable[..., Any]

_OPTION_NAMES = client_option_names() | web_option_names()


@dataclass(frozen=True)
class ResponseInfo:
    """What ``page_filter`` and ``page_properties`` hooks get as the response.

    ASGI has no response object: these are the status and headers of the
    ``http.response.start`` message.
    """

    status_code: int
    headers: Headers


class SegmentMiddleware:
    """Segment analytics for every request of an ASGI app.

    ::

        app = SegmentMiddleware(app, write_key="...")                  # any ASGI app
        app = Starlette(routes=..., middleware=[Middleware(SegmentMiddleware, write_key="...")])
        app.add_middleware(SegmentMiddleware, write_key="...")         # FastAPI

    The keywords are the options of :class:`segment_core.Client` (``write_key``,
    ``host``, ``flush_at`` ...) and of :class:`segment_core.web.WebOptions`
    (``exclude_paths``, ``trusted_proxies`` ...), with the same meaning and
    defaults; ``None`` (or leaving one out) means the option's default. A bad
    value raises :class:`ValueError` naming the option, an unknown keyword a
    :class:`TypeError` naming the closest one.

    - ``client``: use this client instead of building one; with neither a client
      nor client options, the default client (``segment_core.get_client()``).
    - ``websockets``: bind an ``Analytics`` object to WebSocket connections too
      (no page call, no cookie).
    - ``allowed_hosts``: the hosts a forwarded host may name, as the
      ``allowed_hosts`` of Starlette's ``TrustedHostMiddleware`` (``"*"``,
      ``"*.example.com"``). Without it, those of a ``TrustedHostMiddleware`` in
      the app's middleware or inside this one count; one wrapping the app from
      outside, or one of a mounted app, cannot be seen.

    ``browser_write_key``, ``snippet_src``, ``browser_api_host``, ``browser_cdn``,
    ``page_source`` and ``csp_nonce`` configure the analytics.js snippet that
    :func:`segment_asgi.segment_snippet` renders for a request.

    The ``user_id`` hook may be a coroutine function: it is awaited as the
    request starts (for the view's calls) and again as the response starts (for
    the cookie and the page call, once the app has run). A user put in
    ``scope["user"]`` by an authentication middleware (Starlette's
    ``AuthenticationMiddleware``) is read at each call, so it is seen wherever
    that middleware runs. A ``consent`` or ``user_id`` hook that raises as the
    request starts (reading ``request.session`` before a ``SessionMiddleware``
    inside this one ran) is asked again, unlogged until then, once the app has run.
    ASGI has no standard login: after logging a user in,
    call ``request.state.analytics.login(user_id, user)`` to join the visitor to
    the user (what Django's and Flask-Login's logins do, by ``identify_on_login``
    and ``identify_traits``).

    What it translates for :mod:`segment_core.web`: the response's content type,
    the matched route (Starlette's, or the template Litestar leaves in the scope)
    and its ``path_params``, FastAPI's docs, ReDoc, OpenAPI and OAuth2-redirect
    routes (the app's own URLs, and a route hidden from the schema at ``/docs``,
    ``/redoc`` or ``/docs/oauth2-redirect`` when the app turned that one off) as
    the namespace ``openapi``, the names of the ``Mount``s passed on the way to
    the route as its namespaces (``"shop"`` and ``"shop:cart"``), and the
    ``allowed_hosts`` of a ``TrustedHostMiddleware`` for forwarded hosts.

    A mounted Flask app with ``SegmentFlask``, or a Django project with
    ``segment_django``'s middleware, tracks its own requests: this one stands
    aside for them (for Django's handler behind any router, such as Channels',
    as the response starts: that middleware marks the requests it tracks).

    On a mounted app, which Starlette passes no lifespan, the client is flushed
    at shutdown only by :func:`segment_asgi.flushing_at_shutdown` (or
    ``segment_django.asgi``'s wrapper) around the app the server runs; without
    it, the first request logs a WARNING saying so. Once it got lifespan, what
    below it gets none (``segment_django``'s middleware) joins its flush.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> SegmentMiddleware:
        # Before Python binds the keywords, so a typo gets the closest name. Older
        # Starlette (0.37) builds middleware as cls(app=app, **options): not an option.
        check_names(name for name in kwargs if name != "app")
        return super().__new__(cls)

    def __init__(
        self,
        app: ASGIApp,
        *,
        client: Client | None = None,
        websockets: bool | None = False,
        allowed_hosts: Iterable[str] | None = None,
        # Client options (segment_core.config.Config).
        write_key: str | None = None,
        host: str | None = None,
        flush_at: int | None = None,
        flush_interval: float | None = None,
        max_queue_size: int | None = None,
        gzip: bool | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        retry_after: float | None = None,
        max_total_backoff_duration: float | None = None,
        max_rate_limit_duration: float | None = None,
        retry_backoff_min: float | None = None,
        retry_backoff_max: float | None = None,
        on_error: ErrorHandler | str | None = None,
        send: bool | None = None,
        sync_mode: bool | None = None,
        default_context: Mapping[str, Any] | None = None,
        default_integrations: Mapping[str, Any] | None = None,
        shutdown_timeout: float | None = None,
        debug: bool | None = None,
        before_send: BeforeSend | str | None = None,
        max_in_flight: int | None = None,
        proxies: Mapping[str, str] | None = None,
        log_handler: logging.Handler | None = None,
        max_batch_size: int | None = None,
        on_success: MessageHook | str | None = None,
        on_failure: FailureHook | str | None = None,
        backoff: Backoff | str | None = None,
        now: Clock | str | None = None,
        uid: IdGenerator | str | None = None,
        oauth_client_id: str | None = None,
        oauth_client_key: str | bytes | None = None,
        oauth_key_id: str | None = None,
        oauth_auth_server: str | None = None,
        oauth_scope: str | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int | None = None,
        spool_fsync: Literal["never", "interval", "always"] | None = None,
        # Web options (segment_core.web.WebOptions); hooks may be dotted paths.
        page_calls: bool | None = None,
        page_methods: Iterable[str] | None = None,
        page_content_types: Iterable[str] | None = None,
        exclude_paths: Iterable[str | re.Pattern[str]] | re.Pattern[str] | None = None,
        exclude_routes: Iterable[str] | None = None,
        skip_bots: bool | None = None,
        bot_user_agents: Iterable[str] | None = None,
        page_name: str | Hook | None = None,
        page_filter: Hook | str | None = None,
        page_properties: Hook | str | None = None,
        user_id: Hook | str | None = None,
        consent: Hook | str | None = None,
        honor_gpc: bool | None = None,
        honor_dnt: bool | None = None,
        trusted_proxies: int | str | Iterable[str] | None = None,
        collect_ip: bool | None = None,
        anonymize_ip: bool | None = None,
        redact_query_params: Iterable[str] | None = None,
        replace_default_page_methods: bool | None = None,
        replace_default_page_content_types: bool | None = None,
        replace_default_exclude_paths: bool | None = None,
        replace_default_exclude_routes: bool | None = None,
        replace_default_bot_user_agents: bool | None = None,
        replace_default_redact_query_params: bool | None = None,
        set_cookie: bool | None = None,
        cookie_name: str | None = None,
        user_id_from_cookie: bool | None = None,
        user_cookie_name: str | None = None,
        cookie_domain: str | None = None,
        cookie_format: Literal["raw", "quoted"] | None = None,
        cookie_max_age: float | dt.timedelta | None = None,
        send_in_tests: bool | None = None,
        identify_on_login: bool | Hook | str | None = None,
        identify_traits: Hook | str | None = None,
        # The analytics.js snippet (segment_asgi.segment_snippet).
        browser_write_key: str | None = None,
        snippet_src: str | None = None,
        browser_api_host: str | None = None,
        browser_cdn: str | None = None,
        page_source: Literal["server", "browser"] | None = None,
        csp_nonce: str | Hook | None = None,
    ) -> None:
        # Every option left at None takes its default from Config / WebOptions.
        given = {
            name: value
            for name, value in locals().items()
            if value is not None and name in _OPTION_NAMES
        }
        client_options, web_kwargs = split_options(given)
        web_options = make_web_options(web_kwargs)
        # A yes/no option as the others: 0 and 1 too, None for its default.
        websockets = False if websockets is None else read_flag("websockets", websockets)
        self._apps = AppFacts(None if allowed_hosts is None else allowed_hosts_of(allowed_hosts))
        self.app = app
        self.websockets = websockets
        self.options = web_options
        # An async user_id hook is awaited here; the web layer gets its answer.
        self._async_user_id = web_options.user_id if is_async(web_options.user_id) else None
        # The other async hooks: the web layer calls a stand-in, which awaits them.
        stand_ins: dict[str, Any] = {
            name: AwaitedHook(name, getattr(web_options, name))
            for name in AWAITED_HOOKS
            if callable(getattr(web_options, name)) and is_async(getattr(web_options, name))
        }
        self._awaited_hooks = bool(stand_ins)
        self._async_consent = web_options.consent if "consent" in stand_ins else None
        #: Whether a request starts with no hook to await (the common case: one check).
        self._plain_start = not (self._async_user_id or stand_ins)
        if self._async_user_id:
            stand_ins["user_id"] = None
        self._tracker_options = replace(web_options, **stand_ins) if stand_ins else web_options
        # Hooks get the framework's request; without hooks nothing needs one.
        self._hooks = any(
            getattr(web_options, name) is not None
            for name in ("page_filter", "page_properties", "user_id", "consent")
        ) or callable(web_options.page_name)
        #: Whether a page may render the snippet (in a body streamed after its headers).
        self._browser_key_given = web_options.browser_write_key is not None
        self._response_hooks = (
            web_options.page_filter is not None or web_options.page_properties is not None
        )
        self._client = make_client(client, client_options, send_in_tests=web_options.send_in_tests)
        warn_if_server_key_in_browser(web_options, self._client)
        #: Without a client or client options: the default client it sends with, as
        #: last seen, diverted under pytest unless ``send_in_tests``.
        self._send_in_tests = web_options.send_in_tests is True
        self._default_seen: Client | None = None
        if self._client is None:
            # A SEGMENT_WRITE_KEY or SEGMENT_HOST the default client cannot use (a key
            # read from a file, with its line break) is refused as the app starts.
            default_client()
            self._see_the_default_client()
        #: Whether the page call runs the app's hooks (``page_filter``,
        #: ``page_properties``, a ``page_name`` function): then, for a response that
        #: may be a page view, it is made in a worker thread of its own pool before
        #: the last chunk, so that a plain hook that waits (a database query) holds up
        #: no other request, and an async one is awaited in the event loop meanwhile.
        self._finish_in_thread = self._response_hooks or callable(web_options.page_name)
        #: Whether the page call may be made on the event loop: not by a sync_mode
        #: client, which sends it on the calling thread, nor by one with a before_send
        #: hook, which may wait (unknown yet for the default client, which may
        #: change), nor where it runs the app's hooks.
        self._finish_on_loop = (
            self._client is not None
            and not self._client.config.sync_mode
            and self._client.config.before_send is None
            and not self._finish_in_thread
        )
        self._mounts = MountNames()
        #: Whether it said once that the async user_id hook failed as requests start.
        self._early_user_error_told = False
        self._self_tracking = SelfTrackingMounts()
        # The app this middleware wraps, or the first one inside the middleware it
        # wraps (SegmentMiddleware(GZipMiddleware(app))), when Starlette's router
        # routes it (a Starlette or FastAPI app, a Router); otherwise each request's
        # scope["app"], the app whose middleware this is.
        self._router = wrapped_router(app)
        # A FastAPI app it wraps, which sets its own root_path in the scope as it
        # runs (FastAPI(root_path="/api")): set before the request is read.
        self._sets_root_path = own_root_path(self._router)
        #: Whether it said once that an outer instance tracks its requests.
        self._stood_aside = False
        #: Whether it got lifespan, or its first request has been checked for it.
        self._lifespan_checked = False
        #: What got no lifespan below it and joined its flush (Django's middleware).
        self._joined: weakref.WeakSet[Flushable] = weakref.WeakSet()
        #: Once it got lifespan: ``_joined``, put in each request's scope as
        #: ``ShutdownFlush`` does, for what is below it to join.
        self._shutdown_mark: weakref.WeakSet[Flushable] | None = None
        #: The requests whose response started and whose page call is yet to be made
        #: (or its thread to start): the flush at shutdown waits for them.
        self._open: set[RequestTracker] = set()

    @property
    def client(self) -> Client:
        """The client events go to."""
        return self._client if self._client is not None else segment_core.get_client()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" or SCOPE_MARK in scope:
            if kind == "lifespan":
                self._lifespan_checked = True
                keep_loggers_on()  # after a dictConfig the app made since it was imported
                self._shutdown_mark = self._joined
                if self._client is None:
                    self._see_the_default_client()
                await run_lifespan(self.app, scope, receive, send, self._flush)
            elif kind == "websocket" and SCOPE_MARK not in scope:
                if self._shutdown_mark is not None:
                    scope[FLUSHED_AT_SHUTDOWN] = self._shutdown_mark
                if self.websockets:
                    await self._websocket(scope, receive, send)
                else:
                    scope[UNTRACKED_WEBSOCKET] = True
                    await self.app(scope, receive, send)
            else:
                if SCOPE_MARK in scope and not self._stood_aside:
                    self._stood_aside = True
                    logger.warning(
                        "segment: another SegmentMiddleware, outside this one, tracks the "
                        "requests this one sees (a mounted app's?); this one's options and "
                        "client do not apply to them: configure the outer one"
                    )
                await self.app(scope, receive, send)
            return

        if self._sets_root_path is not None:
            with_own_root_path(scope, self._sets_root_path)
        shutdown_mark = self._shutdown_mark
        if shutdown_mark is not None:
            scope[FLUSHED_AT_SHUTDOWN] = shutdown_mark
        elif not self._lifespan_checked:
            self._check_lifespan(scope)
        # This app's router, read now: scope["app"] changes as mounted apps run.
        app_router = self._router or scope.get("app")
        # Where mounted apps are looked for: that router, else the app this wraps
        # (through other middleware, before any app has put itself in the scope).
        mount_owner = self.app if app_router is None else app_router
        known_app, self_tracking = self._self_tracking.last
        if (mount_owner is not known_app or self_tracking) and self._self_tracking.routes_to_one(
            mount_owner, scope
        ):
            # A mounted Flask or Django app tracks it: its routes' secrets, its user.
            await self.app(scope, receive, send)
            return
        root_path = str(scope.get("root_path") or "")
        had_router = "router" in scope
        read_route = functools.partial(self._read_route, scope, root_path, had_router, app_router)
        native = Request(scope) if self._hooks else None
        if self._plain_start:
            tracker = self._start(scope, native, app_router, read_route)
        else:
            tracker = await self._start_awaiting_hooks(scope, native, app_router, read_route)
        # Shared by the copies of the scope that routers pass on (Channels' URLRouter).
        state = scope["state"]
        start: Message | None = None

        async def send_with_analytics(message: Message) -> None:
            nonlocal start
            kind = message["type"]
            if kind == "http.response.start":
                if TRACKED_BY_DJANGO in state:
                    # segment_django's middleware tracked it: Django's handler behind a
                    # router not looked into (Channels'). Its page call and cookie are
                    # the visitor's; the work started here is let go of, unsent.
                    tracker.allowed = False
                    tracker.finish(0)
                    await send(message)
                    return
                headers = message.get("headers")
                if headers is not None and type(headers) is not list:
                    # Any iterable, says ASGI: read once here, for all who look.
                    message = {**message, "headers": list(headers)}
                start = message
                self._open.add(tracker)
                if not self._plain_start and not tracker.excluded:
                    await self._ask_again(scope, tracker)
                cookie = tracker.cookie_to_set(
                    _location(message) if message["status"] in REDIRECT_STATUSES else None
                )
                if cookie is None and tracker.new_id_left_unkept:
                    # None of ours (set_cookie off...): the app may set its own.
                    app_id = _cookie_lines(message, tracker.options.cookie_name)
                    if app_id is not None:
                        tracker.id_cookie_set_by_app(app_id)
                # A logout's: the browser's user too.
                expired = tracker.user_cookie_expired
                if (
                    cookie is not None
                    or expired is not None
                    or tracker.snippet_rendered
                    or self._browser_key_given
                ):
                    try:
                        if cookie is not None:
                            message, app_id = _with_cookie(message, cookie)
                            if app_id is not None:  # the app set it: its id is the visitor's
                                tracker.id_cookie_set_by_app(app_id)
                        if expired is not None:
                            message = _with_cookie(message, expired)[0]
                        # The page holds the visitor's ids, or a body made later may
                        # write them: no shared cache may hand them to another visitor
                        # (one without the cookie sends the same Cookie header as all).
                        if tracker.snippet_rendered or (
                            self._browser_key_given and _may_render_snippet_later(tracker, message)
                        ):
                            message = _private(message)
                    except Exception:  # analytics never breaks a response
                        logger.exception("segment: could not add the anonymous id cookie or Vary")
                await send(message)
                return
            if not (
                (kind == "http.response.body" and not message.get("more_body", False))
                or kind == "http.response.pathsend"
            ):
                await send(message)
                return
            # The last chunk: the page call is made as it goes, and so is in a test's
            # outbox once the client has the whole response (a server in the test's
            # process); one that runs the app's hooks, in a worker thread, before it.
            # A sync_mode client's waits for Segment, in a worker thread: after it.
            if self._finish_on_loop or not (
                self._finish_in_thread
                or self.client.config.sync_mode
                or self.client.config.before_send is not None  # a plain hook may wait
            ):
                ending, start = start, None  # finished: not again as the app returns
                self._finish(tracker, ending)
                await send(message)
            elif not self.client.config.sync_mode:
                ending, start = start, None
                await self._finish_off_loop(tracker, ending)
                await send(message)
            else:
                await send(message)
                await self._finish_off_loop(tracker, start)
                # Not before: Django's handler cancels the request's task as the
                # client disconnects after the last chunk, at times before the
                # page call's thread started; the app's return then makes the call.
                start = None

        token = bind(tracker.analytics)
        try:
            await self.app(scope, receive, send_with_analytics)
        finally:
            # Always: a test client may run the app in the caller's own task, where a
            # binding left behind would name this visitor in calls made after it.
            reset(token)
            if start is not None:
                # A response started but never finished: the visitor left during a
                # stream (Starlette cancels it, or the server's send failed), the
                # server cut it short as it stopped (then its flush at lifespan
                # shutdown waits for this call: see _wait_for_open_responses), or the
                # app failed in its body. The page was shown: Django and Flask count
                # it too, as the response closes.
                if self._finish_on_loop:
                    self._finish(tracker, start)
                else:
                    await self._finish_off_loop(tracker, start)
            # Its page call's thread never started, if the task was cancelled first.
            self._open.discard(tracker)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._sets_root_path is not None:
            with_own_root_path(scope, self._sets_root_path)
        if not self._lifespan_checked:
            self._check_lifespan(scope)
        native = HTTPConnection(scope) if self._hooks else None
        # The route, for the secrets its parameters hold in the path.
        app_router = self._router or scope.get("app")
        read_route = functools.partial(
            self._read_route,
            scope,
            str(scope.get("root_path") or ""),
            "router" in scope,
            app_router,
        )
        if self._plain_start:
            tracker = self._start(scope, native, app_router, read_route)
        else:
            tracker = await self._start_awaiting_hooks(scope, native, app_router, read_route)
        token = bind(tracker.analytics)
        try:
            await self.app(scope, receive, send)
        finally:
            reset(token)

    def _start(
        self,
        scope: Scope,
        native: Any,
        app_router: Any,
        read_route: Callable[[RequestInfo, bool], bool] | None = None,
    ) -> RequestTracker:
        """Mark the scope, read it, and bind the request's ``Analytics`` in its state.

        scope["user"] is read at each call: an authentication middleware inside
        this one sets it later.
        """
        info = self._read_scope(scope, native, app_router)
        return self._track(scope, info, functools.partial(user_id_of, scope), read_route)

    async def _start_awaiting_hooks(
        self,
        scope: Scope,
        native: Any,
        app_router: Any,
        read_route: Callable[[RequestInfo, bool], bool] | None = None,
    ) -> RequestTracker:
        """:meth:`_start` with async hooks: ``consent`` and ``user_id`` awaited here
        (not for health checks and assets); for the others, the thread of the event
        loop noted, where their stand-ins cannot wait for them."""
        if self._awaited_hooks:
            scope[LOOP_THREAD] = threading.get_ident()
        info = self._read_scope(scope, native, app_router)
        excluded = is_excluded_request(info, self.options)
        if self._async_consent is not None and not excluded:
            await self._ask_consent(scope, info)
        if self._async_user_id is None:
            return self._track(scope, info, functools.partial(user_id_of, scope), read_route)
        if not excluded:
            try:
                info.user_id = await self._async_user_id(info.hook_target)
            except Exception as error:
                # It may need what a middleware inside this one has yet to set up (a
                # session): not logged now; asked again as the response starts.
                hook_logger.debug(
                    "segment: the user_id hook raised as the request started; "
                    "asked again as the response starts",
                    exc_info=True,
                )
                scope[_EARLY_USER_ERROR] = f"{type(error).__name__}: {error}"
        return self._track(scope, info, None, read_route)

    async def _ask_again(self, scope: Scope, tracker: RequestTracker) -> None:
        """As the response starts, now that the app has run (a session or login
        middleware inside this one, a login or logout in the view): the async
        ``user_id`` hook asked again, and an async ``consent`` that raised as the
        request started (where the web layer asks a plain one again)."""
        if self._async_user_id is not None:
            found = await self._await_user_id(tracker.request)
            if _EARLY_USER_ERROR in scope:
                self._tell_early_user_error(scope, found)
            tracker.user_answered(found)
        if self._async_consent is not None and tracker.allowed is None:
            await self._ask_consent(scope, tracker.request)

    async def _ask_consent(self, scope: Scope, info: RequestInfo) -> None:
        """Await the async ``consent`` hook: its answer (or what it raised, logged as
        the web layer takes it up) is what its stand-in gives in the event loop."""
        assert self._async_consent is not None
        try:
            scope[EARLY_CONSENT] = await self._async_consent(info.hook_target)
        except Exception as error:
            scope[EARLY_CONSENT] = Raised(error)

    def _tell_early_user_error(self, scope: Scope, found: object) -> None:
        """Once per middleware: the async ``user_id`` hook raised as the request
        started but names a user as the response starts, so the request's own calls
        went without the user."""
        if self._early_user_error_told or found is None:
            return
        self._early_user_error_told = True
        hook_logger.warning(
            "segment: the async user_id hook raised as the request started (%s) but "
            "named a user as the response started: the calls the request made before "
            "then carried no user. Whatever it reads (a session, request.user) is set "
            "up by a middleware inside SegmentMiddleware: put SegmentMiddleware inside "
            "it (add_middleware(SegmentMiddleware, ...) before the other), or make the "
            "hook plain (def), which is asked at each call",
            scope[_EARLY_USER_ERROR],
        )

    def _read_scope(self, scope: Scope, native: Any, app_router: Any) -> RequestInfo:
        scope[SCOPE_MARK] = True
        try:
            info = request_info(scope, native)
        except Exception:
            logger.exception("segment: could not read the ASGI scope; no automatic calls for it")
            info = RequestInfo(native=native)
        if self.options.trusted_proxies:
            # scope["app"] is set by Starlette itself: not yet when this middleware
            # wraps the app from outside (SegmentMiddleware(app)).
            info.host_trusted = self._apps.host_check(scope, self.app)
        # The app's router, for a same-app Referer and calls made before it routed;
        # on the request's Host (a Host route matches it; a same-app Referer came
        # through the same host).
        info.route_of_path = route_lookup(
            app_router,
            info.mount,
            info.headers.get("host") or "",
            self._tracker_options.redactor,
        )
        return info

    def _track(
        self,
        scope: Scope,
        info: RequestInfo,
        read_user: Callable[[], Any] | None,
        read_route: Callable[[RequestInfo, bool], bool] | None,
    ) -> RequestTracker:
        if self._client is None:
            self._see_the_default_client()
        tracker = RequestTracker(
            self._client, self._tracker_options, info, read_user=read_user, read_route=read_route
        )
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["analytics"] = tracker.analytics
        state[TRACKER_KEY] = tracker  # for segment_snippet(request)
        return tracker

    async def _await_user_id(self, info: RequestInfo) -> Any:
        """The async ``user_id`` hook's answer (checked by the web layer); None if it
        raised (logged)."""
        hook = self._async_user_id
        assert hook is not None
        try:
            return await hook(info.hook_target)
        except Exception:
            hook_logger.exception("segment: the user_id hook raised; going on with None")
            return None

    def _read_route(
        self,
        scope: Scope,
        root_path: str,
        had_router: bool,
        app_router: Any,
        info: RequestInfo,
        final: bool = False,
    ) -> bool:
        """The route, once the app has routed (False before, unless ``final``).

        An app that does not route (a plain ASGI app) has its path as the template.
        The names of the ``Mount``s passed on the way are the route's namespaces.
        Litestar routes without Starlette: its ``path_template`` says it has routed.
        """
        if not final and "path_template" not in scope:
            if "endpoint" not in scope and "route" not in scope:
                return False
            if _routes_on(scope):  # a Mount's (a Host's): its app's router matches next
                return False
        # The router that routed the request from the top; an outer app's (there
        # before this one ran) names routes that are not this app's.
        top = app_router if had_router else scope.get("router", app_router)
        # The routes matched again when the router did not record its route: this
        # app's own, below an outer app's router.
        match_in = self._router if had_router else scope.get("router")
        name, template, route = route_of(scope, root_path, info.path, router=top, match_in=match_in)
        info.route_name, info.route_template = name, template
        params = scope.get("path_params")
        # A dict (Starlette's) without the ABC's isinstance check.
        if type(params) is not dict and not isinstance(params, Mapping):
            params = None
        elif params:
            # A secret value a convertor made another object of: the path's own text.
            path = str(scope.get("path") or "")
            redactor = self._tracker_options.redactor
            if redactor.needs_path_texts(params, path):
                # Matched again from the top: each Mount's own part, and the Hosts'.
                texts = path_texts(top, scope, root_path)
                params = redactor.with_path_texts(params, path, texts)
        info.path_params = params
        namespaces: tuple[str, ...] = ()
        if route is not None:
            namespaces = self._mounts.of(top, route, scope, root_path)
        if self._apps.is_docs_route(scope, root_path, template, route):
            namespaces = (*namespaces, DOCS_NAMESPACE)
        info.route_namespaces = namespaces
        return True

    def _finish(self, tracker: RequestTracker, start: Message | None) -> None:
        """The automatic page call; never raises."""
        try:
            if start is None:
                tracker.finish(0, None, content_type=None)
                return
            status = int(start["status"])
            raw_headers = start.get("headers") or ()
            response = None
            if self._response_hooks:
                response = ResponseInfo(status, Headers(raw=list(raw_headers)))
            tracker.finish(
                status,
                response,
                content_type=_content_type(raw_headers),
                # Read only for what would be a page view; names in any case.
                response_header=functools.partial(_header, raw_headers),
            )
        except Exception:
            logger.exception("segment: could not complete the request's analytics")

    def _finish_counted(self, tracker: RequestTracker, start: Message | None) -> None:
        """:meth:`_finish` in a page call's thread, counted by now as a call the app's
        shutdown waits for: no longer an open response its flush waits for."""
        self._open.discard(tracker)
        self._finish(tracker, start)

    async def _finish_off_loop(self, tracker: RequestTracker, start: Message | None) -> None:
        """:meth:`_finish` in a worker thread for a ``sync_mode`` client, which sends
        the page call on the calling thread (the event loop, every other request of
        the worker, must not wait for Segment's answer), and where the page call
        runs the app's hooks (a plain one may wait; an async one is awaited in the
        event loop, where nothing may wait for it); else (a response that is no page
        view, whose page call runs no hook) here. A client's ``before_send`` is such a
        hook."""
        config = self.client.config
        if config.sync_mode or (
            (self._finish_in_thread or config.before_send is not None)
            and self._may_run_page_hooks(tracker, start)
        ):
            await self._finish_in_page_thread(tracker, start)
        else:
            self._finish(tracker, start)

    def _may_run_page_hooks(self, tracker: RequestTracker, start: Message | None) -> bool:
        """Whether the page call may get as far as the page hooks: not for a response
        that cannot be a page view (an API's JSON, a redirect, an error, an excluded
        path), which then waits for no thread."""
        if start is None or tracker.excluded or tracker.allowed is False:
            return False
        status = int(start["status"])
        if not is_page_status(status):
            return False
        return status == 304 or (
            media_type(_content_type(start.get("headers") or ())) in self.options.content_types
        )

    async def _finish_in_page_thread(self, tracker: RequestTracker, start: Message | None) -> None:
        """:meth:`_finish` in a worker thread of the page calls' own pool (not
        Starlette's: a hook that runs some of its work there, run_in_threadpool,
        finds one free), counted as a ``with_binding`` call: the app's shutdown waits
        for it (bounded by ``shutdown_timeout``) should the server stop waiting here.
        Shielded: a StreamingResponse cancels its task group once its last chunk is
        sent, and the page call must not be cancelled before its thread starts."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                run_counted, self._finish_counted, tracker, start, limiter=page_call_threads()
            )

    def _check_lifespan(self, scope: Scope) -> None:
        """At the first request without lifespan: join the app around this one that
        flushes at shutdown (``segment_asgi.flushing_at_shutdown``'s,
        ``segment_django.asgi``'s); without one, say that nothing flushes the client
        at shutdown."""
        self._lifespan_checked = True
        keep_loggers_on()  # after a dictConfig the app made since it was imported
        if (
            not ShutdownFlush.join(scope, self)
            and not stops_through_atexit()
            and self._client_delivers()
        ):
            logger.warning(
                "segment: SegmentMiddleware got a request but no lifespan startup: it "
                "is in a mounted app (Starlette passes lifespan to no mounted app), or "
                "the server runs without lifespan. Servers such as uvicorn end their "
                "workers without atexit, so the events its client holds when the "
                "server stops are delivered only if the app the server runs flushes "
                "them: wrap that app, app = segment_asgi.flushing_at_shutdown(app), "
                "and keep the server's lifespan on"
            )

    def _client_delivers(self) -> bool:
        """Whether the client sends what it holds: not one diverted to the test outbox
        (``TestClient(app)`` without ``with`` has no lifespan), nor one that does not send."""
        return delivers(self._client_at_shutdown())

    def _see_the_default_client(self) -> None:
        """Under pytest, the default client this middleware sends with, made from the
        module-level settings (made now if they have a key), puts its events in the
        test outbox unless ``send_in_tests``, as Django's does: the latest middleware
        to see it decides, as for a client built from options. One the app built and
        made the default is its own: never diverted."""
        client = segment_core.get_client()
        if client is not self._default_seen:
            self._default_seen = client
            if client in segment_core._made_from_settings:
                divert_in_tests(client, send_in_tests=self._send_in_tests)

    def _client_at_shutdown(self) -> Client | None:
        """The client to flush at shutdown: its own, else the default one if built."""
        return self._client if self._client is not None else segment_core.default_client

    async def shutting_down(self) -> Client | None:
        """Its client, for the app above it that flushes at shutdown (it joined that
        one), once the page calls of the responses still open are made."""
        await self._wait_for_open_responses()
        return self._client_at_shutdown()

    async def _wait_for_open_responses(self) -> None:
        """Before the flush at shutdown: the page calls of the responses still open,
        made (or their threads started, which the flush waits for), within half of
        what is left of the shutdown's ``shutdown_timeout`` (the flush has the rest).

        A server that stops cancels the requests still streaming (uvicorn once
        ``--timeout-graceful-shutdown`` is up) and sends lifespan shutdown at once:
        their page calls are made as their tasks unwind, after this flush began.
        """
        if not self._open:
            return
        timeout, wait = shutdown_wait(self.client)
        began = _shutdown_began.get()
        began = monotonic() if began is None else began
        # Half of what is left at most: the flush keeps the rest.
        timeout = max(0.0, (began + timeout - monotonic()) / 2)
        if not await anyio.to_thread.run_sync(_none_left_open, self._open, timeout):
            logger.warning(
                "segment: %d response(s) still open after %s at shutdown: their page "
                "calls, made once they end, are lost",
                len(self._open),
                wait,
            )

    async def _flush(self) -> None:
        """Deliver what the client holds before the server hears shutdown is complete,
        with the clients of what joined this flush (segment_django's middleware) and
        the process's other live clients (the app's own, the module-level one): under
        servers that end their workers without ``atexit``, they get no other chance.

        A mounted Flask or Django app that tracks itself sends with a client of its
        own, which this middleware cannot name: once one was seen, every live client
        is waited for as its own is.
        """
        began = _shutdown_began.get()
        # This task's: another app's shutdown has its own.
        token = _shutdown_began.set(monotonic()) if began is None else None
        try:
            await self._wait_for_open_responses()
            own = self._client_at_shutdown()
            mounted = live_clients() if self._self_tracking.last[1] else []
            await flush_with_joined((own, *mounted), self._joined, began=_shutdown_began.get())
        finally:
            if token is not None:
                _shutdown_began.reset(token)


#: When the flush at lifespan shutdown under way in this task began: the waits of the
#: middlewares it joins, and its own, all end within one ``shutdown_timeout`` of it.
_shutdown_began: ContextVar[float | None] = ContextVar("segment_shutdown_began", default=None)


#: The worker threads of the page calls that run the app's hooks, at most this many
#: at once per event loop (Starlette's own pool has as many).
PAGE_CALL_THREADS = 40

_page_call_threads: RunVar[anyio.CapacityLimiter] = RunVar("segment_asgi.page_call_threads")


def page_call_threads() -> anyio.CapacityLimiter:
    """The current event loop's limiter of the page calls' threads."""
    try:
        return _page_call_threads.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(PAGE_CALL_THREADS)
        _page_call_threads.set(limiter)
        return limiter


def _none_left_open(trackers: set[RequestTracker], timeout: float) -> bool:
    """Wait until ``trackers`` (a middleware's open responses) is empty, at most
    ``timeout`` seconds; True when it is. Looked at every few milliseconds: the
    requests add and discard theirs with no lock (one step each for the GIL)."""
    deadline = monotonic() + timeout
    while trackers:
        left = deadline - monotonic()
        if left <= 0:
            return False
        threading.Event().wait(min(left, _OPEN_RESPONSES_POLL))
    return True


#: How often the flush at shutdown looks whether the open responses ended (seconds).
_OPEN_RESPONSES_POLL = 0.01


def _content_type(headers: Iterable[Any]) -> str | None:
    for name, value in headers:
        if name.lower() == b"content-type":
            return bytes(value).decode("latin-1")
    return None


def _header(headers: Iterable[Any], name: str) -> str | None:
    """The value of the header ``name`` (lower case) of a response start's headers,
    looked for in C: the names in any case."""
    pairs = headers if type(headers) is list else list(headers)
    names = list(map(_LOWER, map(_NAME, pairs)))
    wanted = name.encode("latin-1")
    if wanted not in names:
        return None
    return bytes(pairs[names.index(wanted)][1]).decode("latin-1")


_NAME = operator.itemgetter(0)
_LOWER = operator.methodcaller("lower")


def _location(message: Message) -> str | None:
    """The ``Location`` of a response start, if it has one."""
    return _header(message.get("headers") or [], "location")


def _may_render_snippet_later(tracker: RequestTracker, message: Message) -> bool:
    """Whether a response's body, made after its start (``message``) is sent, may
    render the snippet: one without a ``Content-Length`` (a body made before its
    start, Starlette's ``HTMLResponse`` or a file, has one) whose page would get one."""
    content_type = None
    for name, value in message.get("headers") or ():
        lowered = name.lower()
        if lowered == b"content-length":
            return False
        if lowered == b"content-type":
            content_type = bytes(value).decode("latin-1")
    return tracker.may_render_snippet(content_type)


def _varying_on_cookie(message: Message) -> Message:
    """``message`` (a response start) with ``Cookie`` in its ``Vary`` header."""
    headers = list(message.get("headers") or ())
    first = None  # the first Vary header: Cookie joins it; every one is read
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            names = {part.strip().lower() for part in bytes(value).split(b",")}
            if b"cookie" in names or b"*" in names:
                return message
            if first is None:
                first = index
    if first is None:
        return {**message, "headers": [*headers, (b"vary", b"Cookie")]}
    name, value = headers[first]
    headers[first] = (name, bytes(value) + b", Cookie")
    return {**message, "headers": headers}


def _routes_on(scope: Scope) -> bool:
    """Whether the route matched so far is a ``Mount`` or a ``Host`` whose app routes
    itself (a mounted Starlette or FastAPI app): its own router matches next, and
    the route's values are not all known yet."""
    route = scope.get("route")
    found = getattr(route, "routes", None) if route is not None else None
    if found is None and route is None:  # an older Starlette sets no route in the scope
        found = getattr(scope.get("endpoint"), "routes", None)
    try:
        return bool(found)
    except Exception:  # an object of the app's own that has no truth
        return False


def _cookie_lines(message: Message, name: str) -> list[str] | None:
    """The ``Set-Cookie`` lines of a response start that set cookie ``name``; None if
    none."""
    prefix = f"{name}=".encode("latin-1")
    found: list[str] | None = None
    for key, value in message.get("headers") or ():
        if key.lower() == b"set-cookie" and value.lstrip().startswith(prefix):
            line = bytes(value).strip().decode("latin-1")
            found = [line] if found is None else [*found, line]
    return found


def _with_cookie(message: Message, cookie: CookieSpec) -> tuple[Message, list[str] | None]:
    """``message`` (a response start) with the cookie, unless the app set that cookie
    (then as it is, and the app's Set-Cookie lines for it), and kept out of shared caches
    (``Cache-Control: private``, ``Vary: Cookie``), which would hand that visitor's id
    to others."""
    headers = message.get("headers") or ()
    if type(headers) is not list and not isinstance(headers, tuple):  # any iterable: kept
        headers = list(headers)
        message = {**message, "headers": headers}
    prefix = f"{cookie.name}=".encode("latin-1")
    caching = False  # the app's own Cache-Control or Vary, to merge with
    set_by_app: list[str] | None = None  # the app's own lines for the cookie
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"set-cookie" and value.lstrip().startswith(prefix):
            line = bytes(value).strip().decode("latin-1")
            set_by_app = [line] if set_by_app is None else [*set_by_app, line]
        elif lowered == b"cache-control" or lowered == b"vary":
            caching = True
    if set_by_app is not None:
        return message, set_by_app
    set_cookie = (b"set-cookie", cookie.header_value().encode("latin-1"))
    if not caching:  # most responses: three lines added, nothing to merge
        added = [(b"cache-control", b"private"), (b"vary", b"Cookie"), set_cookie]
        return {**message, "headers": [*headers, *added]}, None
    kept = []
    cache_control: list[bytes] = []  # several lines are one list of directives
    for name, value in headers:
        if name.lower() == b"cache-control":
            cache_control.append(bytes(value))
        else:
            kept.append((name, value))
    app_value = b", ".join(cache_control).decode("latin-1") if cache_control else None
    kept.append((b"cache-control", cache_control_for_cookie(app_value).encode("latin-1")))
    kept.append(set_cookie)
    return _varying_on_cookie({**message, "headers": kept}), None


def _private(message: Message) -> Message:
    """``message`` (a response start) kept out of shared caches: ``Cache-Control:
    private`` merged into the app's, and ``Vary: Cookie``."""
    headers = message.get("headers") or ()
    cache_control = [bytes(v) for n, v in headers if n.lower() == b"cache-control"]
    kept = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
    app_value = b", ".join(cache_control).decode("latin-1") if cache_control else None
    kept.append((b"cache-control", cache_control_for_cookie(app_value).encode("latin-1")))
    return _varying_on_cookie({**message, "headers": kept})
