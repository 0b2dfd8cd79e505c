"""``SegmentMiddleware``: request context, ``request.analytics`` and page calls.

Put it after ``AuthenticationMiddleware``. It works in both of Django's modes with
no thread hop in async mode (the user comes from ``await request.auser()``; Django
4.2 has no ``auser()``, there the lazy user is loaded in a worker thread). A
view that raises gets no page call and its exception is left to Django; nothing
analytics does turns a working response into an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase
from django.utils.encoding import escape_uri_path
from django.utils.functional import LazyObject, empty

from segment_core.scope import bind, reset
from segment_core.web import CookieSpec, RequestInfo, RequestTracker, WSGIHeaders, is_excluded
from segment_django import conf

__all__ = ["SegmentMiddleware"]

logger = logging.getLogger("segment_django")


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

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        info = _request_info(request)
        if self._wants_user(info):
            info.user_id = _user_id(request)
        tracker = self._start(request, info)
        token = bind(tracker.analytics)
        try:
            response = self.get_response(request)
        finally:
            reset(token)
        return self._finish(tracker, request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        info = _request_info(request)
        if self._wants_user(info):
            info.user_id = await _auser_id(request)
        tracker = self._start(request, info)
        token = bind(tracker.analytics)
        try:
            response: HttpResponseBase = await self.get_response(request)
        finally:
            reset(token)
        return self._finish(tracker, request, response)

    # -- shared by both modes -------------------------------------------------

    @staticmethod
    def _wants_user(info: RequestInfo) -> bool:
        # Health checks and assets: no session or user lookup for them.
        return not is_excluded(info.path, conf.web_options())

    @staticmethod
    def _start(request: HttpRequest, info: RequestInfo) -> RequestTracker:
        tracker = RequestTracker(conf.get_client(), conf.web_options(), info)
        cast(Any, request).analytics = tracker.analytics
        cast(Any, request)._segment_tracker = tracker  # for {% segment_snippet %}
        return tracker

    @staticmethod
    def _finish(
        tracker: RequestTracker, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        try:
            cookie = tracker.cookie_to_set()
            if cookie is not None and cookie.name not in response.cookies:
                _set_cookie(response, cookie)
            route_name, route_template = _route(request)

            def finish() -> None:
                tracker.finish(
                    response.status_code,
                    response,
                    route_name=route_name,
                    route_template=route_template,
                )

            if response.streaming:
                _call_after_close(response, finish)
            else:
                finish()
        except Exception:
            logger.exception("segment: could not complete the request's analytics")
        return response


def _set_cookie(response: HttpResponseBase, cookie: CookieSpec) -> None:
    """``response.set_cookie`` without its ``expires`` date, which costs the most.

    ``Max-Age`` alone sets the lifetime in every browser analytics.js supports.
    """
    response.cookies[cookie.name] = cookie.value
    morsel = response.cookies[cookie.name]
    morsel["path"] = cookie.path
    morsel["max-age"] = cookie.max_age
    morsel["samesite"] = cookie.samesite
    if cookie.domain:
        morsel["domain"] = cookie.domain
    if cookie.secure:
        morsel["secure"] = True
    if cookie.httponly:
        morsel["httponly"] = True


def _request_info(request: HttpRequest) -> RequestInfo:
    try:
        host = request.get_host()
    except DisallowedHost:
        host = ""  # Django answers 400 itself; never a page view
    return RequestInfo(
        method=request.method or "GET",
        scheme=request.scheme or "http",
        host=host,
        path=escape_uri_path(request.path),
        query_string=request.META.get("QUERY_STRING", ""),
        # META holds the headers as a WSGI environ does, under WSGI and ASGI alike.
        headers=WSGIHeaders(request.META),
        # Parsing cookies costs more than the rest: a new visitor has none.
        cookies=request.COOKIES if "HTTP_COOKIE" in request.META else {},
        client_addr=request.META.get("REMOTE_ADDR"),
        native=request,
    )


def _route(request: HttpRequest) -> tuple[str | None, str | None]:
    """The URL pattern's name (namespaced) and its route, from ``resolver_match``."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None, None
    name = match.view_name if match.url_name else None
    route = match.route
    if route is None:
        return name, None
    # re_path() routes are regexes: drop the anchors, keep the readable rest.
    return name, "/" + route.removeprefix("^").removesuffix("$")


def _call_after_close(response: HttpResponseBase, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the server closes a streaming response."""
    close = response.close

    def close_then_callback() -> None:
        try:
            close()
        finally:
            callback()

    cast(Any, response).close = close_then_callback


def _id_of(user: Any) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    return None if pk is None else str(pk)


def _user_id(request: HttpRequest) -> str | None:
    try:
        return _id_of(getattr(request, "user", None))
    except Exception:
        logger.exception("segment: could not read request.user; no user id for this request")
        return None


async def _auser_id(request: HttpRequest) -> str | None:
    try:
        auser = getattr(request, "auser", None)
        if auser is None:
            # Django < 5.0 has no request.auser(). Evaluating the lazy user here would
            # query the database in the event loop: load it in a worker thread (as
            # Django's async ORM does); later reads of request.user do no I/O.
            user = getattr(request, "user", None)
            if isinstance(user, LazyObject) and user._wrapped is empty:
                return await sync_to_async(_id_of)(user)
            return _id_of(user)
        user = await auser()
        if conf.web_options().user_id is not None and not hasattr(request, "_cached_user"):
            # The USER_ID hook runs in the event loop and may read request.user:
            # hand Django's lazy user the one already loaded, so it does no I/O.
            cast(Any, request)._cached_user = user
        return _id_of(user)
    except Exception:
        logger.exception("segment: could not load the user; no user id for this request")
        return None
