"""``SegmentMiddleware``: request context, ``request.analytics`` and page calls.

Put it after ``AuthenticationMiddleware``. It works in both of Django's modes with
no thread hop in async mode (the user comes from ``await request.auser()``; Django
4.2 has no ``auser()``, there the lazy user is loaded in a worker thread). The
user is read again at each call, so a view that authenticates itself (Django
REST framework) has its user on its events and its page call. A view that
raises gets no page call and its exception is left to Django; nothing analytics
does turns a working response into an error.

What it translates for :mod:`segment_core.web`: the response's content type and
headers, the route (``resolver_match``: its view name, route, namespaces and app
names, and the captured keyword arguments; for a page answered before Django
routed it, a per-site cache's hit, what the router makes of its path; the values
a Wagtail page's own route captured, ``routable_resolver_match``),
``ALLOWED_HOSTS`` for forwarded hosts, a response rendered by Django REST
framework's browsable API (in the namespace ``rest_framework``, tooling like the
admin), the admin's docs (admindocs' and grappelli's, in ``admin``), django-ninja's
docs and the views of GraphQL servers (in ``openapi``). The user is Django's, else a user
an API's authentication put in ``request.auth`` (django-ninja's). A request Wagtail
makes for a preview (``is_dummy``) gets no automatic call or cookie.

Put it before the cache's ``FetchFromCacheMiddleware``, else the pages the cache
answers never reach it. Listed twice, the inner one stands aside.

Under ASGI it marks each request it tracks (:data:`TRACKED_IN_STATE`), so that
``segment_asgi``'s middleware around Django's handler stands aside, and joins the
flush at lifespan shutdown of the app around the handler
(:mod:`segment_django.asgi`); without one, its first request logs a WARNING.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import sys
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from http.cookies import Morsel, SimpleCookie, _quote
from types import CodeType, ModuleType
from typing import Any, NamedTuple, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.apps import apps
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import DisallowedHost, ImproperlyConfigured, SynchronousOnlyOperation
from django.core.handlers.wsgi import WSGIRequest
from django.http import FileResponse, HttpRequest, HttpResponseBase
from django.http.request import validate_host
from django.http.response import ResponseHeaders
from django.urls import LocalePrefixPattern, Resolver404, ResolverMatch, resolve
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.functional import LazyObject, SimpleLazyObject, empty

from segment_core._frames import runs_in
from segment_core.adapters import delivers
from segment_core.client import Client
from segment_core.lifespan import TRACKED_BELOW, ShutdownFlush, stops_through_atexit
from segment_core.scope import (
    Analytics,
    bind,
    bound,
    bound_async_iteration,
    bound_iteration,
    reset,
)
from segment_core.web import (
    REDIRECT_STATUSES,
    USER_NOT_KNOWN,
    CookieSpec,
    RequestInfo,
    RequestTracker,
    WebOptions,
    WSGIHeaders,
    cache_control_for_cookie,
    cached_for_short_text,
    call_hook,
    environ_wire_path,
    find_csp_nonce,
    is_excluded_request,
    is_plain_id,
    query_of_request_line,
    request_wire_path,
    serves_graphql,
)
from segment_django import conf
from segment_django.apps import connect_receivers

__all__ = ["TRACKED_IN_STATE", "SegmentMiddleware"]

logger = logging.getLogger("segment.django")

#: Set in ``scope["state"]`` of each request it tracks under ASGI: an ASGI middleware
#: around Django's handler (``segment_asgi``'s, around a Channels router) stands aside.
TRACKED_IN_STATE = TRACKED_BELOW


class SegmentMiddleware:
    """Segment for every request; see :mod:`segment_django` for the settings."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        # Fail at start-up, not at the first request, on invalid settings.
        conf.validate()
        if not apps.is_installed("segment_django"):
            _work_without_the_app()
        #: Until its first request, which settles the client's test mode and says what
        #: flushes the client at shutdown.
        self._before_first_request = True

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        if self._before_first_request:
            self._first_request(request)
        if hasattr(request, "_segment_tracker"):
            # Listed twice in MIDDLEWARE: the outer one tracks this request.
            return self.get_response(request)
        info = _request_info(request)
        tracker = self._start(request, info)
        token = bind(tracker.analytics)
        try:
            response = self.get_response(request)
            # Bound still: what the page call runs (a hook, an authentication
            # backend loading the user) may make calls of the request's.
            return self._finish(tracker, request, response)
        finally:
            reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if self._before_first_request:
            self._first_request(request)
        if hasattr(request, "_segment_tracker"):
            # Listed twice in MIDDLEWARE: the outer one tracks this request.
            passed: HttpResponseBase = await self.get_response(request)
            return passed
        info = _request_info(request)
        options = conf.web_options()
        if _has_sync_hooks(options):
            return await self._acall_with_hooks(request, info, options)
        if self._wants_user(info):
            info.user_id = await _auser_id(request)
        tracker = self._start(request, info, _loaded_user_id)
        token = bind(tracker.analytics)
        try:
            response: HttpResponseBase = await self.get_response(request)
            if conf.get_client().config.sync_mode:
                # It sends the page call on the calling thread: not the event loop,
                # which every other request of the worker waits for. In the
                # request's own thread, as the hooks run (reading the session is I/O).
                finished: HttpResponseBase = await sync_to_async(self._finish)(
                    tracker, request, response
                )
                return finished
            return self._finish(tracker, request, response)
        finally:
            reset(token)

    async def _acall_with_hooks(
        self, request: HttpRequest, info: RequestInfo, options: WebOptions
    ) -> HttpResponseBase:
        """``__acall__`` for an app with hooks, which may use the ORM (refused in the
        event loop): they run in a thread. The ``user_id`` hook is asked as the
        request starts, at each call made outside the event loop (a sync view, which
        Django runs in a thread: the user Django REST framework authenticates there
        is seen, as in sync mode), and as the response is made (for the cookie and
        the page call); calls made in the event loop carry the answer known so far."""
        hook = options.user_id
        if self._wants_user(info):
            if hook is None:
                info.user_id = await _auser_id(request)
            else:
                info.user_id = await sync_to_async(_ask_user_id)(hook, info)
        if hook is None:
            tracker = await sync_to_async(self._start)(request, info, _loaded_user_id)
        else:
            tracker = await sync_to_async(self._start)(
                request, info, None, _off_loop_user_hook(options)
            )
        token = bind(tracker.analytics)
        try:
            response: HttpResponseBase = await self.get_response(request)
            # In a thread: deciding the cookie asks the user_id hook a last time.
            finished: HttpResponseBase = await sync_to_async(self._finish)(
                tracker, request, response
            )
            return finished
        finally:
            reset(token)

    # -- shared by both modes -------------------------------------------------

    def _first_request(self, request: HttpRequest) -> None:
        self._before_first_request = False
        conf.first_request()
        self._check_shutdown_flush(request)

    def _check_shutdown_flush(self, request: HttpRequest) -> None:
        """At the first request, under ASGI: join the flush at lifespan shutdown of
        the app around Django's handler; without one, say once per process that
        what the client holds when the server ends a worker is lost.

        ASGI servers end their worker processes without ``atexit`` (uvicorn with
        ``--reload`` or ``--workers``), and Django's own handler gets no lifespan.
        WSGI servers, tests and Daphne (which stops through Twisted's reactor) let
        the process run ``atexit``.
        """
        global _unflushed_warned
        scope = getattr(request, "scope", None)  # ASGIRequest
        if (
            not isinstance(scope, dict)
            or ShutdownFlush.join(scope, self)
            or _unflushed_warned
            or conf.running_tests()
            or stops_through_atexit()
            or not delivers(conf.get_client())  # nothing held to lose (SEND False)
        ):
            return
        _unflushed_warned = True
        logger.warning(
            "segment: Django got a request under ASGI but no lifespan startup: asgi.py "
            "serves Django's own get_asgi_application() (or a Channels router as it "
            "is), or the server runs without lifespan. ASGI servers end their worker "
            "processes without atexit (uvicorn with --reload or --workers, gunicorn's "
            "uvicorn workers), so the events the client holds then are lost: in "
            "asgi.py, use segment_django.asgi.get_asgi_application() (with Channels, "
            "application = segment_django.asgi.flushing_at_shutdown(ProtocolTypeRouter"
            "(...))), and keep the server's lifespan on"
        )

    async def shutting_down(self) -> Client:
        """At lifespan shutdown, for the app around Django's handler that flushes
        then (this joined it at its first request): the page calls of the streamed
        responses the server cut short, then the client to flush.

        A server that shuts down cancels the requests still streaming, and Django's
        ASGI handler closes no response then: its page call would never be made.
        """
        if _streams_being_sent:
            await _off_the_loop_if_needed(_finish_cut_streams)
        return conf.get_client()

    @staticmethod
    def _wants_user(info: RequestInfo) -> bool:
        # Health checks and assets: no session or user lookup for them.
        return not is_excluded_request(info, conf.web_options())

    @staticmethod
    def _start(
        request: HttpRequest,
        info: RequestInfo,
        user_reader: Callable[[HttpRequest], Any] | None = None,
        options: WebOptions | None = None,
    ) -> RequestTracker:
        if options is None:  # given in async mode, with its own user_id hook
            options = conf.web_options()
            if options.user_id is not None:
                options = _loop_safe_user_hook(options)
        tracker = RequestTracker(
            conf.get_client(),
            options,
            info,
            # Not called for excluded paths (health checks, assets).
            read_user=functools.partial(user_reader or _user_id, request),
            read_route=_read_route,  # the request is info.native
        )
        native: Any = request  # typed so, not cast(): this runs on every request
        native.analytics = tracker.analytics
        native._segment_tracker = tracker  # for {% segment_snippet %}
        if "is_dummy" in native.__dict__ and native.is_dummy:
            # A page rendered for an editor's preview (Wagtail marks its request so):
            # no visitor sees it. The page's own code still finds request.analytics.
            tracker.allowed = False
        return tracker

    @staticmethod
    def _finish(
        tracker: RequestTracker, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        try:
            # A redirect's Location: none for an http request sent on to https.
            redirect_to = (
                response.get("Location") if response.status_code in REDIRECT_STATUSES else None
            )
            info = tracker.request
            if (
                request.resolver_match is None
                and response.status_code < 400
                and tracker.allowed
                and not tracker.excluded
            ):
                # Answered before Django routed it (a per-site cache's hit): the route
                # of its path, for its page name, exclude_routes and secret segments.
                # (Not for an error: a 404's path would fail to resolve again.)
                _read_route_of_path(info, request)
            tracker.refresh_route(final=True)
            renderer = getattr(response, "accepted_renderer", None)
            if (
                # A cache's copy has no renderer (DRF does not pickle it): the
                # answer it had then is kept on the response.
                getattr(response, _BROWSABLE_API, False)
                if renderer is None
                else _is_browsable_api(response, renderer)
            ):
                # Django REST framework's browsable API: tooling, not a page of the app
                # (no page call, and no cookie for a new visitor).
                info.route_namespaces = (*info.route_namespaces, "rest_framework")
            cookie = tracker.cookie_to_set(redirect_to)
            if cookie is not None and cookie.name in response.cookies:
                # The view set it: its id is the visitor's.
                tracker.id_cookie_set_by_app([response.cookies[cookie.name].OutputString()])
            elif cookie is not None:
                _set_cookie(response, cookie)
                # A cookie of this visitor's: no shared cache may hand it to another
                # visitor. Vary is not enough: visitors may send one Cookie header
                # (a consent banner's), and Django's per-site cache before 5.2 then
                # stores the response; it never stores a private one.
                _private_varying_on_cookie(response)
            elif tracker.snippet_rendered:  # the page holds the visitor's ids
                _private_varying_on_cookie(response)
            if cookie is None and tracker.new_id_left_unkept:
                _adopt_the_app_s_id_cookie(tracker, response)
            expired = tracker.user_cookie_expired  # a logout's: the browser's user too
            if expired is not None and expired.name not in response.cookies:
                _set_cookie_slowly(response.cookies, expired)
                _private_varying_on_cookie(response)
            headers = response.headers
            content_type = headers.get("Content-Type")
            # A file goes out as it is: its page call at once, as for any other body.
            if response.streaming and not isinstance(response, FileResponse):
                # Its body, made after the headers are sent, may write the ids.
                if tracker.may_render_snippet(content_type):
                    _private_varying_on_cookie(response)
                    # Made now, while a CSP middleware outside this one (django-csp)
                    # can still name it in its header; the snippet reads it later.
                    find_csp_nonce(request, tracker.options)
                finish = _finish_once_sent(tracker, request, response, content_type)
                _bind_while_streaming(response, tracker.analytics, finish)
            else:
                tracker.finish(
                    response.status_code,
                    response,
                    content_type=content_type,
                    response_header=headers.get,
                )
        except Exception:
            logger.exception("segment: could not complete the request's analytics")
        return response


def _is_browsable_api(response: HttpResponseBase, renderer: Any) -> bool:
    """Whether ``renderer``, Django REST framework's for ``response``, is the browsable API's.

    The answer is also kept on the response, in an attribute pickling keeps: the
    copy a cache stores (before it is sent) has lost its renderer.
    """
    if getattr(renderer, "format", None) != "api":
        return False
    setattr(response, _BROWSABLE_API, True)
    return True


#: The attribute of a response that says the browsable API rendered it.
_BROWSABLE_API = "_segment_browsable_api"


def _private_varying_on_cookie(response: HttpResponseBase) -> None:
    """``Cache-Control: private`` merged into the response's, and ``Vary: Cookie``;
    cheaper when it has neither (Django's headers are kept as ``(name, value)``
    under the lower-case name)."""
    headers: Any = response.headers
    store = getattr(headers, "_store", None)
    if (
        type(headers) is ResponseHeaders
        and type(store) is dict
        and "cache-control" not in store
        and "vary" not in store
    ):
        store["cache-control"] = ("Cache-Control", "private")
        store["vary"] = ("Vary", "Cookie")
        return
    headers["Cache-Control"] = cache_control_for_cookie(headers.get("Cache-Control"))
    _vary_on_cookie(response)


def _vary_on_cookie(response: HttpResponseBase) -> None:
    """``patch_vary_headers(response, ("Cookie",))``, cheaper when nothing varies yet.

    Django's own headers keep each as ``(name, value)`` under the lower-case name;
    this one needs none of the checks ``headers["Vary"] = ...`` makes of a value.
    """
    headers: Any = response.headers
    store = getattr(headers, "_store", None)
    if type(headers) is ResponseHeaders and type(store) is dict and "vary" not in store:
        store["vary"] = ("Vary", "Cookie")
    else:
        patch_vary_headers(response, _VARY_ON_COOKIE)


def _loop_safe_user_hook(options: WebOptions) -> WebOptions:
    """``options`` whose ``USER_ID`` hook, asked where Django refuses the ORM (an
    async view served in sync mode), answers "not known now" instead of failing."""
    return _with_user_hook_wrapped(options, _loop_safe, _loop_safe_of)


def _loop_safe(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def user_id(request: Any) -> Any:
        try:
            return hook(request)
        except SynchronousOnlyOperation:
            return USER_NOT_KNOWN

    return user_id


def _with_user_hook_wrapped(
    options: WebOptions,
    wrap: Callable[[Callable[[Any], Any]], Callable[[Any], Any]],
    kept: list[tuple[WebOptions, WebOptions] | None],
) -> WebOptions:
    """``options`` with its ``USER_ID`` hook wrapped by ``wrap``; the last settings'
    answer is kept in ``kept`` (one read: another thread may replace it)."""
    hook = options.user_id
    if hook is None:
        return options
    pair = kept[0]
    if pair is None or pair[0] is not options:
        pair = kept[0] = (options, dataclasses.replace(options, user_id=wrap(hook)))
    return pair[1]


# The last settings' options and the same with the loop-safe USER_ID hook.
_loop_safe_of: list[tuple[WebOptions, WebOptions] | None] = [None]


def _has_sync_hooks(options: WebOptions) -> bool:
    """Whether the settings name hooks the middleware calls (each may use the ORM)."""
    return (
        options.user_id is not None
        or options.consent is not None
        or options.page_filter is not None
        or options.page_properties is not None
        or callable(options.page_name)
    )


def _ask_user_id(hook: Callable[..., Any], info: RequestInfo) -> Any:
    # As the request starts: a failure is logged (with its traceback) once the
    # tracker asks again.
    return call_hook("user_id", hook, info.hook_target, default=None, early=True)


def _off_loop_user_hook(options: WebOptions) -> WebOptions:
    """``options`` whose ``USER_ID`` hook, in async mode, is asked only outside the
    event loop (where it may use the ORM); in it, it answers "not known now"."""
    return _with_user_hook_wrapped(options, _off_loop, _off_loop_of)


def _off_loop(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def user_id(request: Any) -> Any:
        if _running_loop() is not None:
            return USER_NOT_KNOWN
        return hook(request)

    return user_id


# The last settings' options and the same with the off-loop USER_ID hook.
_off_loop_of: list[tuple[WebOptions, WebOptions] | None] = [None]


async def _off_the_loop_if_needed(fn: Callable[[], None]) -> None:
    """``fn()`` (making page calls) in a thread when the settings name hooks, which
    may use the ORM, refused in the event loop, or when the client sends on the
    calling thread (``sync_mode``), as in ``__acall__``; else in the event loop."""
    if _has_sync_hooks(conf.web_options()) or conf.get_client().config.sync_mode:
        await sync_to_async(fn)()
    else:
        fn()


def _bind_while_streaming(response: Any, analytics: Analytics, finish: Callable[[], None]) -> None:
    """Keep ``analytics()`` bound while the server pulls each chunk of the body, and
    make the page call (``finish``) as the body fails: Django's ASGI handler closes
    no response whose body raised."""
    content = response.streaming_content
    if response.is_async:
        response.streaming_content = _async_body(content, analytics, finish)
    else:
        response.streaming_content = _sync_body(content, analytics, finish)
        # The body's own cleanup (a generator's finally when the visitor leaves)
        # runs from the closers the server's close() calls: bound too.
        closers = getattr(response, "_resource_closers", None)
        if type(closers) is list:
            closers[:] = [_bound_closer(close, analytics) for close in closers]


def _sync_body(
    content: Iterable[Any], analytics: Analytics, finish: Callable[[], None]
) -> Iterator[Any]:
    # Its end is no sign of the body sent: Django's ASGI handler reads a sync body
    # whole before sending it. The page call comes as the server closes it.
    try:
        yield from bound_iteration(content, analytics)
    except Exception:
        finish()
        raise


async def _async_body(
    content: AsyncIterable[Any], analytics: Analytics, finish: Callable[[], None]
) -> AsyncIterator[Any]:
    # Pulled as the server sends: once the last chunk went out, the page call (a
    # test client may then close the response in the event loop, where no hook
    # that uses the ORM could run).
    body = bound_async_iteration(content, analytics)
    try:
        async for chunk in body:
            yield chunk
    except Exception:
        await _off_the_loop_if_needed(finish)
        raise
    finally:
        await body.aclose()
    await _off_the_loop_if_needed(finish)


def _bound_closer(close: Callable[[], object], analytics: Analytics) -> Callable[[], None]:
    def close_bound() -> None:
        with bound(analytics):
            close()

    return close_bound


def _set_cookie(response: HttpResponseBase, cookie: CookieSpec) -> None:
    """``response.set_cookie`` without its ``expires`` date, which costs the most.

    ``Max-Age`` alone sets the lifetime in every browser analytics.js supports.
    The ``Morsel`` is the one ``response.cookies[name] = value`` and its attributes
    make, built from a copy of one made that way for the same attributes, and it
    writes its ``Set-Cookie`` line from that one's (while nothing has changed it).
    """
    jar = response.cookies
    if type(jar) is not SimpleCookie:
        _set_cookie_slowly(jar, cookie)
        return
    key = (
        cookie.name,
        cookie.path,
        cookie.max_age,
        cookie.samesite,
        cookie.domain,
        cookie.secure,
        cookie.httponly,
    )
    try:
        template = _cookie_templates[key]
    except KeyError:
        if len(_cookie_templates) >= 64:
            _cookie_templates.clear()
        template = _cookie_templates[key] = _cookie_template(cookie)
    if template is None:
        _set_cookie_slowly(jar, cookie)
        return
    attributes, suffix = template
    value = str(cookie.value)  # as SimpleCookie.value_encode() encodes it
    # _quote() leaves the ids this library makes as they are: told apart without
    # its regular expression (most of its cost).
    coded = value if is_plain_id(value) else _quote(value)
    morsel = _PresetMorsel.__new__(_PresetMorsel)
    dict.update(morsel, attributes)
    state = morsel.__dict__
    state["_key"] = cookie.name
    state["_value"] = value
    state["_coded_value"] = coded
    state["_preset"] = (attributes, cookie.name, coded, f"{cookie.name}={coded}{suffix}")
    # What jar[cookie.name] = morsel does with a Morsel, without its call.
    dict.__setitem__(jar, cookie.name, morsel)


def _set_cookie_slowly(jar: Any, cookie: CookieSpec) -> None:
    jar[cookie.name] = cookie.value
    morsel = jar[cookie.name]
    morsel["path"] = cookie.path
    morsel["max-age"] = cookie.max_age
    morsel["samesite"] = cookie.samesite
    if cookie.domain:
        morsel["domain"] = cookie.domain
    if cookie.secure:
        morsel["secure"] = True
    if cookie.httponly:
        morsel["httponly"] = True


class _PresetMorsel(Morsel):  # type: ignore[type-arg]
    """A ``Morsel`` that knows its ``Set-Cookie`` line while it is as it was made."""

    def OutputString(self, attrs: Any = None) -> str:
        state = self.__dict__
        preset = state.get("_preset")  # not after a copy or pickling
        if (
            attrs is None
            and preset is not None
            and state["_key"] == preset[1]
            and state["_coded_value"] == preset[2]
            and dict.__eq__(self, preset[0])
        ):
            line: str = preset[3]
            return line
        return super().OutputString(attrs)


def _cookie_template(cookie: CookieSpec) -> tuple[dict[str, Any], str] | None:
    """The attributes of the Morsel for ``cookie``, and its line after ``name=value``."""
    jar: SimpleCookie = SimpleCookie()
    _set_cookie_slowly(jar, dataclasses.replace(cookie, value="v"))
    morsel = jar[cookie.name]
    line = morsel.OutputString()
    start = f"{morsel.key}={morsel.coded_value}"
    if not line.startswith(start):
        return None  # not the Morsel this was written for: set it as usual
    return dict(morsel), line[len(start) :]


_VARY_ON_COOKIE = ("Cookie",)
_PresetMorsel.__name__ = "Morsel"  # its repr() is a Morsel's
_cookie_templates: dict[tuple[Any, ...], tuple[dict[str, Any], str] | None] = {}


def _request_info(request: HttpRequest) -> RequestInfo:
    meta = request.META
    scope = getattr(request, "scope", None)  # ASGIRequest
    query = meta.get("QUERY_STRING", "")
    if scope is not None and isinstance(scope, Mapping):
        raw_path = scope.get("raw_path")
        if not isinstance(raw_path, bytes):
            raw_path = None
        path = request_wire_path(request.path, raw_path, str(scope.get("root_path") or ""))
        if query:
            if not query.isascii():  # decoded as UTF-8 here: its bytes, as any server gives them
                query = query.encode("utf-8", "surrogatepass").decode("latin-1")
            query = query_of_request_line(query, raw_path)
        state = scope.get("state")
        if type(state) is dict:
            # Read by an ASGI middleware around Django's handler, which stands aside.
            state[TRACKED_IN_STATE] = True
    else:
        # META is the environ, but with PATH_INFO decoded: request.path re-escapes
        # the bytes that are not UTF-8 ("%E9"), a literal "%" is lost with it.
        path = environ_wire_path(meta, request.path)
        if query:
            query = query_of_request_line(query, meta.get("RAW_URI") or meta.get("REQUEST_URI"))
    urlconf = getattr(request, "urlconf", None)
    script_name = meta.get("SCRIPT_NAME")
    mount = str(script_name).rstrip("/") if script_name else ""
    if urlconf is None and not mount:
        route_of_path = _route_of_root_path  # the common case: no partial to make
    else:
        route_of_path = functools.partial(_params_of_path, urlconf, mount)
    # RequestInfo(...) as two calls: CPython 3.11 makes a dict of the keywords of
    # a call to a class (half of its cost here), not of a call to a function.
    info: RequestInfo = object.__new__(RequestInfo)
    RequestInfo.__init__(
        info,
        method=request.method or "GET",
        scheme=_scheme(request),
        host=_host(request),
        path=path,
        query_string=query,
        # META holds the headers as a WSGI environ does, under WSGI and ASGI alike.
        headers=WSGIHeaders(meta),
        # Parsing cookies costs more than the rest: a new visitor has none.
        cookies=request.COOKIES if "HTTP_COOKIE" in meta else {},
        client_addr=meta.get("REMOTE_ADDR"),
        host_trusted=_allowed_host,
        route_of_path=route_of_path,
        mount=mount,
        native=request,
    )
    return info


def _scheme(request: HttpRequest) -> str:
    """``request.scheme``: read from the environ for Django's own WSGI request.

    ``SECURE_PROXY_SSL_HEADER`` unset (from LazySettings' own cache of it, as in
    :func:`_host`) and no class overriding how Django finds the scheme: what the
    property answers, without its three calls.
    """
    native: Any = request
    cls: Any = type(request)
    if (
        cls._get_scheme is _wsgi_get_scheme
        and cls.scheme is _scheme_property
        and _settings_read.get("SECURE_PROXY_SSL_HEADER", True) is None
    ):
        return native.environ.get("wsgi.url_scheme") or "http"  # as _get_scheme() reads it
    return request.scheme or "http"


_wsgi_get_scheme = cast(Any, WSGIRequest)._get_scheme
_scheme_property = HttpRequest.__dict__["scheme"]


def _host(request: HttpRequest) -> str:
    """``request.get_host()``, or "" for a host ``ALLOWED_HOSTS`` refuses.

    Its answer depends only on the host header (``X-Forwarded-Host`` if
    ``USE_X_FORWARDED_HOST``), ``ALLOWED_HOSTS`` and ``DEBUG``: it is kept for
    those, for a request class that does not override how Django finds the host.
    """
    cls: Any = type(request)
    if cls.get_host is not _get_host or cls._get_raw_host is not _get_raw_host:
        return _checked_host(request)
    try:
        # What settings.NAME answers, from LazySettings' own cache of it (which
        # override_settings and assignments clear), without its __getattribute__.
        forwarded = _settings_read["USE_X_FORWARDED_HOST"]
        allowed = _settings_read["ALLOWED_HOSTS"]
        debug = _settings_read["DEBUG"]
    except KeyError:
        forwarded = settings.USE_X_FORWARDED_HOST
        allowed = settings.ALLOWED_HOSTS
        debug = settings.DEBUG
    meta = request.META
    # As request._get_raw_host() finds it.
    if forwarded and "HTTP_X_FORWARDED_HOST" in meta:
        raw = meta["HTTP_X_FORWARDED_HOST"]
    else:
        raw = meta.get("HTTP_HOST")
        if raw is None:
            return _checked_host(request)  # from SERVER_NAME and the port: not kept
    if len(raw) > 300:
        return _checked_host(request)  # no host name is that long: not worth keeping
    try:
        key = (raw, tuple(allowed), debug)
        host = _hosts.get(key)
    except TypeError:  # something unhashable in ALLOWED_HOSTS
        return _checked_host(request)
    if host is None:
        host = _checked_host(request)
        if len(_hosts) >= 256:
            _hosts.clear()
        _hosts[key] = host
    return host


_get_host = HttpRequest.get_host
_get_raw_host = cast(Any, HttpRequest)._get_raw_host
_hosts: dict[tuple[Any, ...], str] = {}  # get_host()'s answers, by what they depend on
_settings_read: dict[str, Any] = object.__getattribute__(settings, "__dict__")


def _adopt_the_app_s_id_cookie(tracker: RequestTracker, response: HttpResponseBase) -> None:
    """No cookie of ours (``set_cookie`` off...) for a new visitor, whose id the
    response may set itself: then the request's later calls carry it."""
    name = tracker.options.cookie_name
    if name in response.cookies:
        tracker.id_cookie_set_by_app([response.cookies[name].OutputString()])


def _checked_host(request: HttpRequest) -> str:
    try:
        return request.get_host()
    except DisallowedHost:
        return ""  # Django answers 400 itself; never a page view


def _allowed_host(host: str) -> bool:
    """Whether ``ALLOWED_HOSTS`` accepts ``host``, as ``request.get_host()`` decides."""
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return bool(validate_host(domain.lower(), allowed))


def _read_route(info: RequestInfo, final: bool = False, match: ResolverMatch | None = None) -> bool:
    """Copy ``resolver_match`` (or ``match``) into ``info``; False while Django has
    not resolved yet."""
    if match is None:
        match = getattr(info.native, "resolver_match", None)
        if match is None:
            return False
    info.route_name = match.view_name if match.url_name else None
    info.route_template = _route_templates.get(match.route) or _first_match(match)
    info.route_namespaces = (*match.namespaces, *match.app_names)
    if match.func in _tooling_views:  # judged at the route's first match
        info.route_namespaces = (*info.route_namespaces, _tooling_views[match.func])
    params = match.kwargs
    info.path_params = _path_params(match, info.native.path_info) if params else params
    # A middleware inside this one may have given the request its own URLconf (a
    # tenant's): the same-app paths of the referrer and the query are its routes.
    urlconf = info.native.__dict__.get("urlconf")
    if urlconf is not None and not _routes_with(info.route_of_path, urlconf):
        info.route_of_path = functools.partial(_params_of_path, urlconf, info.mount)
    # Looked for in the request's own attributes, where Wagtail sets it: the
    # cheapest test, on every request.
    if "routable_resolver_match" in info.native.__dict__:
        # The route a page matched below its own URL (Wagtail's RoutablePageMixin,
        # in its serve view): its values are the path's too.
        native = info.native
        info.path_params = _with_sub_route_params(
            info.path_params, native.routable_resolver_match, native.path_info
        )
    return True


#: django-ninja's names of its docs' routes, in the app ``ninja`` of every NinjaAPI.
_NINJA_DOCS_ROUTES = frozenset(("openapi-view", "openapi-json"))
#: The names of the admin's docs that no namespace of the admin's holds:
#: ``django.contrib.admindocs``'s (``django-admindocs-docroot``, ...) and
#: django-grappelli's (``grp_doc``, ``grp_doc_tables``, ...).
_ADMIN_DOCS_PREFIXES = ("django-admindocs-", "grp_doc_")
_GRAPPELLI_DOCS = "grp_doc"
#: The namespaces of tooling in ``exclude_routes``'s defaults.
_DOCS_NAMESPACE = "openapi"
_ADMIN_NAMESPACE = "admin"
#: The views of tooling that their route's namespaces do not tell, and the
#: namespace each one counts in (see _tooling_namespace); bounded by the views
#: of a site's URLconfs.
_tooling_views: dict[Callable[..., Any], str] = {}


def _first_match(match: ResolverMatch) -> str | None:
    """The template of a route not seen yet (see _route_template), whose view is
    judged on the way: if it is tooling, the requests it answers are told by a
    dictionary lookup."""
    namespace = _tooling_namespace(match)
    if namespace is not None:
        _tooling_views[match.func] = namespace
    return _route_template(match)


def _tooling_namespace(match: ResolverMatch) -> str | None:
    """The namespace of ``exclude_routes`` the view of ``match`` counts in as
    tooling, or None: ``openapi`` for django-ninja's docs and schema (in any
    NinjaAPI's namespace) and for the views of GraphQL servers (whose answer to a
    browser is an IDE: graphene-django's, Strawberry's, ariadne's), ``admin`` for
    the admin's docs and Wagtail's admin."""
    name = match.url_name or ""
    if "ninja" in match.app_names and name in _NINJA_DOCS_ROUTES:
        return _DOCS_NAMESPACE
    if name.startswith(_ADMIN_DOCS_PREFIXES) or name == _GRAPPELLI_DOCS:
        return _ADMIN_NAMESPACE
    if _is_wagtail_admin(match, name):
        return _ADMIN_NAMESPACE
    return _DOCS_NAMESPACE if serves_graphql(match.func) else None


def _is_wagtail_admin(match: ResolverMatch, name: str) -> bool:
    """Whether ``match`` is a view of Wagtail's admin, wherever it is mounted: its
    routes are named ``wagtailadmin_*`` or sit in Wagtail's namespaced apps
    (``wagtailadmin_pages``, ``wagtailusers_users``, ``wagtailimages``, ...), and
    its catch-all lives in ``wagtail.admin``. The site's pages (``wagtail_serve``),
    its document and image downloads (no namespace) and its public API
    (``wagtailapi``) are not."""
    if name.startswith("wagtailadmin_"):
        return True
    if any(
        app.startswith("wagtail") and not app.startswith("wagtailapi") for app in match.app_names
    ):
        return True  # (wagtailapi: the public API's router, as Wagtail's docs name it)
    module = getattr(match.func, "__module__", None)
    return isinstance(module, str) and module.startswith("wagtail.admin.")


def _with_sub_route_params(
    params: Mapping[str, Any], sub_route: Any, path: str
) -> Mapping[str, Any]:
    """``params`` and the values ``sub_route`` (a ``ResolverMatch`` of the part of
    ``path`` below a page's URL) captured, as texts of ``path`` where they are secret."""
    captured = getattr(sub_route, "kwargs", None)
    if not captured or not isinstance(captured, Mapping):
        return params
    below = _path_params(sub_route, path, _sub_route_texts)
    return {**params, **below} if params else below


def _sub_route_texts(match: Any, path: str) -> dict[str, str] | None:
    """:func:`_path_texts` of a route matched below a page's URL: read from the
    shortest end of ``path`` it matches whole (the page's own URL comes before)."""
    if not path.endswith("/"):
        path += "/"  # as Wagtail writes the part below the page
    start = path.rfind("/", 0, len(path) - 1)
    while start >= 0:
        texts = _path_texts(match, path[start:])
        if texts is not None:
            return texts
        start = path.rfind("/", 0, start)
    return None


def _path_params(
    match: ResolverMatch,
    path: str,
    read_texts: Callable[[Any, str], dict[str, str] | None] | None = None,
) -> Mapping[str, Any]:
    """The values ``match`` captured from ``path`` (decoded, as Django resolved it).

    Not the view's own keyword arguments (``path(..., {"form_class": ...})``),
    which the path does not hold. A secret value a converter made another object
    of (a signed token decoded to its payload) is the text the path holds, as
    ``read_texts(match, path)`` reads them (:func:`_path_texts` by default).
    """
    params = match.kwargs
    extra = getattr(match, "extra_kwargs", None)  # Django 4.1 on (not in the type stubs)
    if extra:
        params = {name: value for name, value in params.items() if name not in extra}
    if params:
        redactor = conf.web_options().redactor
        if redactor.needs_path_texts(params, path):
            texts = (read_texts or _path_texts)(match, path)
            params = redactor.with_path_texts(params, path, texts)
    return params


def _path_texts(match: ResolverMatch, path: str) -> dict[str, str] | None:
    """The text of ``path`` each parameter of ``match`` was made of, by name.

    Read again with the regexes of the patterns ``match`` went through (what
    Django matched before its converters' ``to_python``), in the language the path
    resolved in (see :func:`_resolve`): a translated route's regex is that
    language's. None when they cannot be read or do not match.
    """
    tried = getattr(match, "tried", None)
    chain = tried[-1] if tried else None  # the patterns that matched
    if not chain or not path.startswith("/"):
        return None
    texts = _texts_along(chain, path)
    if texts is None:  # resolved in the path's own language, not the active one
        language = _path_language(path)
        if language != translation.get_language():
            try:
                with translation.override(language):
                    texts = _texts_along(chain, path)
            except LookupError:  # a LANGUAGE_CODE Django has no catalogue for
                return None
    return texts


def _texts_along(chain: list[Any], path: str) -> dict[str, str] | None:
    """:func:`_path_texts` in the active language."""
    rest = path[1:]  # after the root URLconf's own "^/"
    texts: dict[str, str] = {}
    try:
        for entry in chain:
            pattern = entry.pattern
            if isinstance(pattern, LocalePrefixPattern):
                # "<language>/", or nothing for an unprefixed default language: read
                # from the path, in whatever language it was resolved.
                language, slash, after = rest.partition("/")
                if slash and language.lower() in _language_codes():
                    rest = after
                continue
            found = pattern.regex.search(rest)
            if found is None:
                return None
            groups = found.groupdict().items()
            texts.update((name, text) for name, text in groups if text is not None)
            rest = rest[found.end() :]
    except (AttributeError, TypeError, IndexError):
        return None
    return texts


def _route_template(match: ResolverMatch) -> str | None:
    """``match.route`` as a page's template, kept for the next match of that route.

    A ``re_path()`` route is a regex: its anchors go, the readable rest stays.
    Under ``i18n_patterns`` the route starts with the language's prefix (``fr/``):
    it goes too, so that a page has one template in every language. Whether a
    route came through ``i18n_patterns`` is decided once per route text, from the
    patterns it matched (``i18n_patterns`` is only allowed at the top of a root
    URLconf, anywhere in its list): a request then pays one dictionary lookup.
    A route written in translated text (``path(_("about/"), ...)``) is the default
    language's in every language, for the same reason.
    """
    route = match.route
    if route is None:
        return None
    written = _untranslated_route(match) or route
    template = "/" + _without_language_prefix(written, match).removeprefix("^").removesuffix("$")
    if len(_route_templates) >= 4096:  # a few per route and language: never this many
        _route_templates.clear()
    _route_templates[route] = template
    return template


def _untranslated_route(match: ResolverMatch) -> str | None:
    """``match.route`` as written in ``LANGUAGE_CODE`` when a pattern it went through
    is translated text (``gettext_lazy``), joined as Django joins it; None when none
    is, or when that language cannot be activated."""
    from django.utils.functional import Promise

    tried = match.tried
    chain = tried[-1] if tried else None  # the patterns that matched
    if not chain or not any(
        isinstance(getattr(entry.pattern, "_route", None), Promise)
        or isinstance(getattr(entry.pattern, "_regex", None), Promise)
        for entry in chain
    ):
        return None
    route = ""
    try:
        with translation.override(str(settings.LANGUAGE_CODE)):
            for entry in chain:
                part = str(entry.pattern)
                route += part.removeprefix("^") if route else part
    except LookupError:  # a LANGUAGE_CODE Django has no catalogue for
        return None
    return route


def _without_language_prefix(route: str, match: ResolverMatch) -> str:
    """``route`` without the prefix ``i18n_patterns`` put in it, if it did."""
    tried = match.tried
    outermost = tried[-1][0] if tried and tried[-1] else None  # the matched chain's top
    locale = getattr(outermost, "pattern", None)
    if not isinstance(locale, LocalePrefixPattern):
        return route
    # Its prefix was "<language>/", or "" for the default language when that one
    # is not prefixed (and then the route starts with no language).
    language, slash, rest = route.partition("/")
    if slash and (locale.prefix_default_language or language.lower() in _language_codes()):
        return rest
    return route


def _language_codes() -> set[str]:
    """The codes of the languages ``i18n_patterns`` may put in a route, lower-cased."""
    return {str(code).lower() for code, _ in settings.LANGUAGES} | {
        str(settings.LANGUAGE_CODE).lower()
    }


# Each route's template, by the route's text (see _route_template).
_route_templates: dict[str | None, str] = {}


def _read_route_of_path(info: RequestInfo, request: HttpRequest) -> None:
    """Fill ``info`` with the route Django's router finds for the request's path."""
    urlconf = getattr(request, "urlconf", None) or settings.ROOT_URLCONF
    match = _resolve(request.path_info, urlconf, translation.get_language())
    if match is not None:
        # The page_name, page_properties and page_filter hooks read it, as after routing.
        request.resolver_match = match
        _read_route(info, True, match)


def _routes_with(route_of_path: Any, urlconf: Any) -> bool:
    """Whether ``route_of_path`` (see _request_info) matches paths with ``urlconf``."""
    return isinstance(route_of_path, functools.partial) and route_of_path.args[0] == urlconf


def _params_of_path(urlconf: str | None, script_name: str, path: str) -> Mapping[str, Any] | None:
    """The keyword arguments Django's router captures from ``path`` (for the referrer)."""
    if script_name:
        if not path.startswith(script_name + "/"):
            return None
        path = path[len(script_name) :]
    return _resolve_kwargs(path, urlconf or settings.ROOT_URLCONF)


def _route_of_root_path(path: str) -> Mapping[str, Any] | None:
    """``_params_of_path`` for the app's ``ROOT_URLCONF``, mounted at the root."""
    # settings.ROOT_URLCONF, from LazySettings' own cache of it when it has one.
    urlconf = _settings_read.get("ROOT_URLCONF") or settings.ROOT_URLCONF
    return _resolve_kwargs(path, urlconf)


def _resolve_kwargs(path: str, urlconf: str) -> Mapping[str, Any] | None:
    from urllib.parse import unquote

    decoded = unquote(path)
    match = _resolve(decoded, urlconf, translation.get_language())
    return None if match is None else _path_params(match, decoded)


@cached_for_short_text(maxsize=1024)
def _resolve(path: str, urlconf: str, active: str | None = None) -> ResolverMatch | None:
    """What Django's router makes of ``path`` (decoded) while language ``active`` is
    active, or None when nothing matches.

    Kept by the language too: a route written in translated text matches in its
    own language only.
    """
    try:
        return resolve(path, urlconf)
    except (Resolver404, ValueError, TypeError):
        pass
    # Under i18n_patterns a path resolves in its own language (/fr/invite/...), and
    # one without a language prefix in the default language (which i18n_patterns may
    # leave unprefixed), not only in the one active for the request that links to it.
    try:
        language = _path_language(path)
        if language == active:
            return None
        with translation.override(language):
            return resolve(path, urlconf)
    except (Resolver404, ValueError, TypeError, LookupError):
        return None


def _path_language(path: str) -> str:
    """The language a path resolves in when not in the active one: its prefix's,
    else the default one."""
    return translation.get_language_from_path(path) or str(settings.LANGUAGE_CODE)


#: The page calls of the streamed responses not closed yet (weakly: each lives as
#: long as its response). See :meth:`SegmentMiddleware.shutting_down`.
_streams_being_sent: weakref.WeakSet[Callable[[], None]] = weakref.WeakSet()

#: Whether the WARNING about no flush at shutdown was logged (once per process).
_unflushed_warned = False


def _finish_cut_streams() -> None:
    """Make the page calls of the streamed responses not closed yet, each once."""
    while _streams_being_sent:
        try:
            finish = _streams_being_sent.pop()
        except KeyError:  # another thread took the last one
            return
        finish()


def _finish_once_sent(
    tracker: RequestTracker,
    request: HttpRequest,
    response: HttpResponseBase,
    content_type: str | None,
) -> Callable[[], None]:
    """Make a streamed response's page call once its body was sent: as the server
    closes it, or the response it sent in its place (the 304 an outer
    ``ConditionalGetMiddleware`` makes of it, never closing this one), or at the
    lifespan shutdown that cuts it short. The request's tracker makes it once.

    Returns the function that makes it, for the body to call as it ends.
    """
    headers = response.headers

    def finish() -> None:
        _streams_being_sent.discard(finish)
        tracker.finish(
            response.status_code,
            response,
            content_type=content_type,
            response_header=headers.get,
        )

    _streams_being_sent.add(finish)
    _call_after_close(response, finish)
    # Django's handler has the response it sends, whichever it is, close the request.
    _call_after_close(request, finish)
    return finish


def _call_after_close(
    closable: HttpRequest | HttpResponseBase, callback: Callable[[], None]
) -> None:
    """Run ``callback`` once ``closable.close()`` has run."""
    close = closable.close

    def close_then_callback() -> None:
        if vars(closable).get("close") is close_then_callback:
            del vars(closable)["close"]  # the method again: no cycle left through it
        try:
            close()
        finally:
            callback()

    cast(Any, closable).close = close_then_callback


def _id_of(user: Any) -> Any:
    """The user's id as text; None for a visitor not logged in.

    ``USER_NOT_KNOWN`` for a logged-in user without a pk: Django's ``delete()``
    clears it, and the view's next call ("Account Deleted") still acts for that user.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    return USER_NOT_KNOWN if pk is None else str(pk)


def _arrival_id_of(user: Any) -> str | None:
    """:func:`_id_of` as the request starts: no user id is known yet to keep."""
    found = _id_of(user)
    return None if found is USER_NOT_KNOWN else found


def _user_id(request: HttpRequest) -> Any:
    try:
        user = getattr(request, "user", None)
        if (
            type(user) is SimpleLazyObject
            and _running_loop() is not None
            and object.__getattribute__(user, "__dict__").get("_wrapped") is empty
        ):
            # An async view served in sync mode: loading the user (or its session)
            # here is the ORM in an event loop, which Django refuses. The user known
            # so far stays; the view's await request.auser() loads it for later calls.
            state = vars(request)  # where request.user and await request.auser() keep it
            loaded = state.get("_cached_user") or state.get("_acached_user")
            found = USER_NOT_KNOWN if loaded is None else _id_of(loaded)
        elif _anonymous_visitor(request, user):
            found = None
        elif _loading_lazy_user(user):
            # A call made while Django loads the user (by an authentication backend's
            # get_user: a "last seen" event): loading it here would run it once more.
            return USER_NOT_KNOWN
        else:
            found = _id_of(user)
            if found is USER_NOT_KNOWN:
                return _deleted_user_id(request, user)
            if found is not None:
                return found
        # No user from Django's auth: an API's authentication may have named one.
        return (_auth_user_id(request) or found) if hasattr(request, "auth") else found
    except Exception:
        logger.exception("segment: could not read request.user; no user id for this request")
        return None


def _work_without_the_app() -> None:
    """The middleware in MIDDLEWARE, ``segment_django`` not in INSTALLED_APPS: what
    the app's ``ready()`` connects (a login's identify, a logout's end of the user)
    is connected here, and the app is asked for once, for its system checks."""
    global _without_the_app_told
    connect_receivers()
    if _without_the_app_told:
        return
    _without_the_app_told = True
    logger.warning(
        "segment: SegmentMiddleware is in MIDDLEWARE but 'segment_django' is not in "
        "INSTALLED_APPS: add it, for the system checks of the SEGMENT setting (manage.py "
        "check) and for the client of management commands and signal receivers"
    )


_without_the_app_told = False


def _loading_lazy_user(user: Any) -> bool:
    """Whether ``user`` is a lazy user not loaded yet while ``django.contrib.auth``'s
    ``get_user`` runs on this thread, below this call."""
    if type(user) is not SimpleLazyObject:
        return False
    if object.__getattribute__(user, "__dict__").get("_wrapped") is not empty:
        return False
    auth = sys.modules.get("django.contrib.auth")
    return runs_in(getattr(getattr(auth, "get_user", None), "__code__", None), sys._getframe(2))


def _auth_user_id(request: HttpRequest) -> str | None:
    """The id of the user an API's authentication put in ``request.auth``, leaving
    ``request.user`` anonymous (django-ninja's auth classes); None for anything
    else there (a token, an API key's object)."""
    auth = getattr(request, "auth", None)
    if auth is None:
        return None
    user_model = _user_model()
    if user_model is None or not isinstance(auth, user_model):
        return None
    found = _id_of(auth)
    return None if found is USER_NOT_KNOWN else found


def _user_model() -> type | None:
    """The project's user model; None without ``django.contrib.auth`` (an API-only
    project whose authentication names keys, not users)."""
    from django.apps import apps

    if not apps.is_installed("django.contrib.auth"):
        return None
    from django.contrib.auth import get_user_model

    try:
        return get_user_model()
    except ImproperlyConfigured:  # AUTH_USER_MODEL names a model not installed
        return None


def _deleted_user_id(request: HttpRequest, user: Any) -> Any:
    """The id of the logged-in user a view deleted (``delete()`` clears its pk): the
    session's, when Django's auth loaded the user from it; else the id known so far
    (in the event loop, where the user was read as the request started)."""
    parts = _django_auth()
    loaded = user._wrapped if isinstance(user, LazyObject) else user
    session = vars(request).get("session")
    if (
        parts is None
        or session is None
        or vars(request).get("_cached_user") is not loaded
        or _running_loop() is not None  # reading the session may be I/O, refused there
    ):
        return USER_NOT_KNOWN
    user_id = session.get(parts.session_key)
    return USER_NOT_KNOWN if user_id is None else str(user_id)


class _DjangoAuth(NamedTuple):
    """The parts of ``django.contrib.auth`` that Django's lazy ``request.user`` calls."""

    lazy_user_code: CodeType  # AuthenticationMiddleware's ``lambda: get_user(request)``
    middleware: ModuleType  # django.contrib.auth.middleware
    middleware_get_user: Callable[[HttpRequest], Any]
    auth: ModuleType  # django.contrib.auth
    auth_get_user: Callable[[HttpRequest], Any]
    models: ModuleType  # django.contrib.auth.models
    session_key: str  # the session key of the logged-in user's id


def _django_auth() -> _DjangoAuth | None:
    """Django's own lazy user as this Django builds it; None if it is not recognised.

    Found once per process; not while ``get_user`` is replaced (a test's patch): then
    the lazy user is loaded as usual, and looked at again at the next request.
    """
    if _auth_found:
        return _auth_found[0]
    middleware = sys.modules.get("django.contrib.auth.middleware")
    if middleware is None:
        return None  # no AuthenticationMiddleware has run: no lazy user of Django's
    from django.contrib import auth
    from django.contrib.auth import models

    process_request = getattr(middleware.AuthenticationMiddleware, "process_request", None)
    codes = getattr(process_request, "__code__", None)
    lazy_user_code = next(
        (
            code
            for code in (codes.co_consts if codes is not None else ())
            if isinstance(code, CodeType)
            and code.co_name == "<lambda>"
            and code.co_freevars == ("request",)
            and code.co_names == ("get_user",)
        ),
        None,
    )
    if lazy_user_code is None or not isinstance(getattr(auth, "SESSION_KEY", None), str):
        _auth_found.append(None)  # a Django that builds its lazy user differently
        return None
    middleware_get_user = getattr(middleware, "get_user", None)
    auth_get_user = getattr(auth, "get_user", None)
    if not (_defined_in(middleware_get_user, middleware) and _defined_in(auth_get_user, auth)):
        return None
    parts = _DjangoAuth(
        lazy_user_code,
        middleware,
        cast(Any, middleware_get_user),
        auth,
        cast(Any, auth_get_user),
        models,
        auth.SESSION_KEY,
    )
    _auth_found.append(parts)
    return parts


_auth_found: list[_DjangoAuth | None] = []  # empty until found (or found missing)


def _defined_in(function: Any, module: ModuleType) -> bool:
    """Whether ``function`` is a plain function of ``module``'s source (not a patch)."""
    code = getattr(function, "__code__", None)
    return (
        code is not None
        and getattr(function, "__module__", None) == module.__name__
        and code.co_filename == getattr(module, "__file__", None)
    )


def _anonymous_visitor(request: HttpRequest, user: Any) -> bool:
    """Whether ``user`` is Django's lazy user of a visitor not logged in.

    For a lazy user that ``AuthenticationMiddleware`` set and nothing has loaded
    yet: when the session holds no logged-in user, loading it would only make an
    ``AnonymousUser``, after looking up the user model.

    - A request without a session (no session cookie, nothing stored in this
      request) is left as it is: the lazy user unloaded, the session not
      accessed, so the response gets no ``Vary: Cookie`` for the analytics' sake,
      and no ``AnonymousUser`` is made.
    - Otherwise the session is read as Django does (marking it accessed, loading
      it if it has a key), and the same ``AnonymousUser`` is stored where loading
      the user would (``request._cached_user`` and the lazy object).

    False in every other case, where the user is then read as usual: a user a view
    logged in or Django REST framework set (not the lazy one), a lazy user of
    another middleware or already loaded, a session with a user, a patched
    ``get_user``.
    """
    parts = _unloaded_django_user(request, user)
    if parts is None:
        return False
    if _without_session(request):
        return True
    native: Any = request
    try:
        native.session[parts.session_key]  # what auth.get_user() reads
    except KeyError:
        pass
    else:
        return False  # a logged-in user: load it as usual
    anonymous = parts.models.AnonymousUser()
    native._cached_user = anonymous
    # As LazyObject.__setattr__ stores it.
    object.__getattribute__(user, "__dict__")["_wrapped"] = anonymous
    return True


def _unloaded_django_user(request: HttpRequest, user: Any) -> _DjangoAuth | None:
    """Django's auth parts if ``user`` is the lazy user ``AuthenticationMiddleware``
    set for ``request`` and nothing has loaded it yet (with no patched ``get_user``)."""
    if type(user) is not SimpleLazyObject:
        return None
    parts = _django_auth()
    if parts is None:
        return None
    state = object.__getattribute__(user, "__dict__")
    setup = state.get("_setupfunc")
    if (
        state.get("_wrapped") is not empty
        or getattr(setup, "__code__", None) is not parts.lazy_user_code
        or setup.__closure__[0].cell_contents is not request
        or hasattr(request, "_cached_user")
        or parts.middleware.get_user is not parts.middleware_get_user
        or parts.auth.get_user is not parts.auth_get_user
    ):
        return None
    return parts


def _without_session(request: HttpRequest) -> bool:
    """No session cookie and nothing stored in the session yet: it is empty, and unread."""
    session = vars(request).get("session")
    if not isinstance(session, SessionBase):
        return False
    session_class: Any = type(session)
    return (
        session_class._get_session is _get_session  # its data in _session_cache
        and "_session_cache" not in vars(session)  # not read or written in this request
        and session.session_key is None  # no (valid) session cookie
    )


_get_session = cast(Any, SessionBase)._get_session
_running_loop = asyncio._get_running_loop  # None outside an event loop, and cheap


def _loaded_user_id(request: HttpRequest) -> Any:
    """``request.user``'s id in async mode, without loading a user not loaded yet.

    The user a view (or Django REST framework) set is always seen; Django's lazy
    user only once it was loaded (reading it would query the database in the
    event loop).
    """
    user = getattr(request, "user", None)
    if (
        isinstance(user, LazyObject)
        and user._wrapped is empty
        and not hasattr(request, "_cached_user")
    ):
        # Not loaded yet: the user known so far stays, unless the view's API
        # authentication named one (request.auth, loaded already).
        found = _auth_user_id(request) if hasattr(request, "auth") else None
        return USER_NOT_KNOWN if found is None else found
    return _user_id(request)


async def _auser_id(request: HttpRequest) -> str | None:
    try:
        user = getattr(request, "user", None)
        if _without_session(request) and _unloaded_django_user(request, user) is not None:
            return None  # Django's lazy user of a visitor without a session: no I/O
        auser = getattr(request, "auser", None)
        if auser is None:
            # Django < 5.0 has no request.auser(). Evaluating the lazy user here would
            # query the database in the event loop: load it in a worker thread (as
            # Django's async ORM does); later reads of request.user do no I/O.
            user = getattr(request, "user", None)
            if isinstance(user, LazyObject) and user._wrapped is empty:
                return await sync_to_async(_arrival_id_of)(user)
            return _arrival_id_of(user)
        user = await auser()
        if not hasattr(request, "_cached_user"):
            # request.user is read again at each call, in the event loop (and so may
            # a USER_ID hook): hand Django's lazy user the one loaded, so it does no I/O.
            cast(Any, request)._cached_user = user
        return _arrival_id_of(user)
    except Exception:
        logger.exception("segment: could not load the user; no user id for this request")
        return None
