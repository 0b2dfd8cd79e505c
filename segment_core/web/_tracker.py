"""The per-request driver every adapter calls, so no adapter repeats a rule.

An adapter, for each request::

    tracker = RequestTracker(client, options, request_info)
    token = bind(tracker.analytics)          # and request.analytics = tracker.analytics
    ... run the view ...
    cookie = tracker.cookie_to_set()         # put it on the response, if not None
    tracker.finish(status, response)         # the automatic page call (never raises)
    reset(token)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from segment_core.scope import Analytics
from segment_core.web._context import page_fields, request_context
from segment_core.web._guard import call_hook, logger
from segment_core.web._identity import (
    CookieSpec,
    anonymous_id_cookie,
    new_anonymous_id,
    parse_id_cookie,
)
from segment_core.web._options import WebOptions
from segment_core.web._page import (
    is_excluded,
    page_name,
    page_properties,
    page_wanted,
    tracking_allowed,
)
from segment_core.web._request import RequestInfo

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = ["RequestTracker"]


class RequestTracker:
    """Identity, context and the automatic page call for one request.

    Construction never raises: a hook that fails is logged and skipped, and a
    request whose context cannot be derived still gets a working ``analytics``.

    - ``analytics``: the :class:`~segment_core.scope.Analytics` bound to the visitor.
    - ``excluded``: the path is one of ``exclude_paths`` (no page call, no cookie).
    - ``allowed``: not a bot, and privacy signals and ``consent`` allow automatic
      calls and the cookie.
    """

    __slots__ = ("_cookie", "_finished", "allowed", "analytics", "excluded", "options", "request")

    def __init__(self, client: Client | None, options: WebOptions, request: RequestInfo) -> None:
        self.options = options
        self.request = request
        self._finished = False
        self._cookie: CookieSpec | None = None
        self.excluded = False
        try:
            self.excluded = is_excluded(request.path, options)
            self.allowed = tracking_allowed(request, options)
            anonymous_id = parse_id_cookie(request.cookies.get(options.cookie_name))
            if anonymous_id is None:
                anonymous_id = new_anonymous_id()
                if options.set_cookie and self.allowed and not self.excluded:
                    secure = request.scheme == "https"
                    self._cookie = anonymous_id_cookie(anonymous_id, options, secure=secure)
            self.analytics = Analytics(
                client,
                user_id=self._user_id(),
                anonymous_id=anonymous_id,
                context=request_context(request, options),
            )
        except Exception:
            logger.exception("segment: could not read the request; no automatic calls for it")
            self.allowed = False
            self._cookie = None
            self.analytics = Analytics(client, anonymous_id=new_anonymous_id())

    def _user_id(self) -> str | None:
        """The hook's answer, else the framework's user, else the ``ajs_user_id`` cookie."""
        request, options = self.request, self.options
        user_id: object = request.user_id
        if options.user_id is not None:
            user_id = call_hook("user_id", options.user_id, request.hook_target, default=None)
        if isinstance(user_id, bool) or not isinstance(user_id, (str, int, type(None))):
            logger.error("segment: user_id returned %r, not a string; ignored", user_id)
            user_id = None
        if user_id is None or user_id == "":
            return parse_id_cookie(request.cookies.get(options.user_cookie_name))
        return str(user_id)

    def cookie_to_set(self) -> CookieSpec | None:
        """The ``ajs_anonymous_id`` cookie to add to the response, if one is needed.

        Only for a new visitor, with ``set_cookie`` on, on a path that is not
        excluded, for a visitor that is not a bot and whose privacy allows it.
        """
        return self._cookie

    def finish(
        self,
        status: int,
        response: Any = None,
        *,
        route_name: str | None = None,
        route_template: str | None = None,
    ) -> bool:
        """Emit the automatic page call if the request deserves one; True if it did.

        ``route_name``/``route_template`` are for adapters that learn the route only
        after the view ran. Runs once per request; never raises.
        """
        if self._finished or self.analytics.page_message is not None:
            return False
        self._finished = True
        request = self.request
        if route_name is not None:
            request.route_name = route_name
        if route_template is not None:
            request.route_template = route_template
        options = self.options
        try:
            if not self.allowed:
                return False
            if not page_wanted(request, status, options, response, excluded=self.excluded):
                return False
            name = page_name(request, options)
            # The page fields were derived (and redacted) with the context; a view
            # may have added to them (a title), which the properties then carry too.
            fields = self.analytics.context.get("page")
            if not isinstance(fields, Mapping):
                fields = page_fields(request, options.redacted_names)
            properties = page_properties(request, options, fields, name, response)
            self.analytics.page(name, properties)
        except Exception:
            logger.exception("segment: the automatic page call for %s failed", request.path)
            return False
        return True
