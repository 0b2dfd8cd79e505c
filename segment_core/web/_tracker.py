"""The per-request driver every adapter calls, so no adapter repeats a rule.

An adapter, for each request::

    tracker = RequestTracker(client, options, request_info, read_user=..., read_route=...)
    token = bind(tracker.analytics)          # and request.analytics = tracker.analytics
    ... run the view ...
    cookie = tracker.cookie_to_set()         # put it on the response, if not None
    tracker.finish(status, response, content_type=...)  # the automatic page call
    reset(token)

The user and the route are read when they are known best: ``read_user()`` is
asked at each call (after the framework, or Django REST framework inside the
view, authenticated), ``read_route(request_info, final)`` until it has found the
route (``final``: the response is complete) and filled it into ``request_info``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from segment_core.batching import MAX_MESSAGE_BYTES
from segment_core.errors import InvalidMessage, MessageTooLarge, is_interruption
from segment_core.normalize import WHOLE_MESSAGE, CheckedContext, new_message_id, stringify_id
from segment_core.scope import Analytics, Result, as_refused
from segment_core.web._context import encoded_size, fit_context, page_fields, request_context
from segment_core.web._forwarded import forwarded_origin
from segment_core.web._guard import call_hook, hook_raised, logger
from segment_core.web._identity import (
    ANALYTICS_JS_COOKIE,
    MAX_USER_ID_LENGTH,
    CookieSpec,
    anonymous_id_cookie,
    cookie_domain_for,
    cookie_held_back,
    id_cookie,
    kept_cookie_value,
    new_anonymous_id,
    parse_id_cookie,
    user_id_problem,
)
from segment_core.web._options import WebOptions
from segment_core.web._page import (
    ResponseHeader,
    allowed_as_request_starts,
    consent_given,
    is_excluded,
    is_excluded_request,
    is_excluded_route,
    is_probe,
    media_type,
    page_name,
    page_properties,
    page_wanted,
)
from segment_core.web._request import RequestInfo, checked_host, without_default_port
from segment_core.web._snippet import snippet_renders, stub_is_this_visitors

if TYPE_CHECKING:
    from segment_core.client import Client

__all__ = ["REDIRECT_STATUSES", "USER_NOT_KNOWN", "RequestAnalytics", "RequestTracker"]

#: Methods whose answers never carry the cookie: no browser keeps a visitor from them.
NO_COOKIE_METHODS = frozenset({"HEAD", "OPTIONS"})

#: The statuses whose ``Location`` the browser follows: what
#: :meth:`RequestTracker.cookie_to_set` takes as ``redirect_to``.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


# The storage of Analytics.user_id, under the property that reads the user late.
_USER_SLOT: Any = Analytics.__dict__["user_id"]
_LOGIN_TOO_LATE = (
    "segment: a login after the response of its request started sends no identify; "
    "log the user in before the response"
)
# The storage of Analytics.context, under the property that notes who has seen it.
_CONTEXT_SLOT: Any = Analytics.__dict__["context"]


class RequestAnalytics(Analytics):
    """``request.analytics``: an :class:`Analytics` whose user is read when used.

    ``user_id`` (and every call) takes up the user the framework authenticated
    since the request started: Django REST framework authenticates in the view.
    """

    __slots__ = ("_tracker",)

    def __init__(
        self, client: Client | None = None, *, tracker: RequestTracker | None = None, **kw: Any
    ) -> None:
        self._tracker = tracker
        super().__init__(client, **kw)

    @property
    def user_id(self) -> str | None:
        tracker = self._tracker
        if tracker is not None and not tracker._cookie_decided:
            tracker.refresh_user()
            if tracker._leaving is not None:  # a logout's receiver reads (its snapshot)
                leaving = tracker.leaving_user()
                if leaving is not None:
                    return leaving
        value: str | None = _USER_SLOT.__get__(self)
        return value

    @user_id.setter
    def user_id(self, value: str | None) -> None:
        _USER_SLOT.__set__(self, value)

    @property
    def context(self) -> dict[str, Any]:
        """The context of the request's calls; a view may change it (it is checked then).

        Read after the app routed, its page fields hide the route's secret values, as
        the calls' do: a snapshot or a thread carries them so."""
        tracker = self._tracker
        if tracker is not None:
            if tracker._read_route is not None:
                tracker.refresh_route(reads_on=True)
            if tracker._context_private:
                tracker._share_context()
        value: dict[str, Any] = _CONTEXT_SLOT.__get__(self)
        return value

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        tracker = self._tracker
        if tracker is not None:  # another context: checked at each call
            tracker._context_private = False
            tracker._context_built = None
        _CONTEXT_SLOT.__set__(self, value)

    def page(
        self, name: str | None = None, properties: Mapping[str, Any] | None = None, **kw: Any
    ) -> Result:
        """As :meth:`Analytics.page`, in place of the request's automatic page call; its
        properties start from the request's page fields (``path``, ``url``,
        ``referrer``, ``search``, redacted) and its ``name`` and ``category``, as the
        automatic call's and analytics.js's ``page()`` do, and the view's own take
        their place."""
        tracker = self._tracker
        if tracker is not None and tracker._read_route is not None:
            tracker.refresh_route()  # the fields with the route's secrets hidden
        context = _CONTEXT_SLOT.__get__(self)
        fields = context.get("page") if isinstance(context, Mapping) else None
        own: dict[str, Any] | None = None  # the view's own properties, when merged
        if (
            fields
            and isinstance(fields, Mapping)
            and (properties is None or isinstance(properties, Mapping))
        ):
            try:
                # What a mapping says it holds (a QueryDict's last values), as a call reads it.
                own = {} if properties is None else dict(properties.items())
                named = {"name": name} if isinstance(name, str) and name else {}
                category = kw.get("category")
                if isinstance(category, str) and category:
                    named["category"] = category
                merged = {**fields, **named, **own}
                properties = merged
            except Exception as error:  # a mapping that fails to be read: told as a call tells it
                if is_interruption(error):
                    raise
                own = None
        if own is None:
            return self._page(name, properties, kw)
        try:
            return self._page(name, properties, kw.copy(), give_way=False)
        except MessageTooLarge as error:
            # Too big with the page fields the context repeats (the visitor's): the
            # view's call goes without them, as the automatic call does (and then
            # the visitor's part of the context gives way), as the same message.
            lean = {k: v for k, v in merged.items() if k in own or k not in _REPEATED}
            kw = as_refused(kw, error)
        return self._page(name, lean, kw)

    page.alters_data = True  # type: ignore[attr-defined]  # as Analytics.page

    def _given_way(self, context: dict[str, Any], error: MessageTooLarge) -> dict[str, Any]:
        """The call's ``context`` with the fields the visitor sent (the referrer, the
        query, the User-Agent, the campaign, the path, in that order, as the request
        gave them: none the view or the call wrote) cut as far as the message ``error``
        refused needs; ``error`` raised when they cannot make it fit any closer."""
        tracker = self._tracker
        if tracker is None:
            raise error
        cuttable = tracker.visitor_fields_in(context)
        if not cuttable:
            raise error
        had = set(cuttable)
        before = encoded_size(cuttable)
        fit_context(cuttable, before - (error.size - MAX_MESSAGE_BYTES))
        if encoded_size(cuttable) >= before:
            raise error
        smaller = dict(context)
        page = smaller.get("page")
        if "page" in cuttable and isinstance(page, Mapping):
            smaller["page"] = {**page, **cuttable["page"]}
        for field in had - {"page"}:  # the User-Agent cut, the campaign left out
            if field in cuttable:
                smaller[field] = cuttable[field]
            else:
                del smaller[field]
        return smaller

    def _carried_ids(self) -> tuple[str | None, str | None]:
        # A new visitor whose user is known sends userId alone (no cookie keeps the
        # anonymous id): so do its tasks and threads, unless a call used it.
        user_id, anonymous_id = self.user_id, self.anonymous_id
        tracker = self._tracker
        if (
            tracker is not None
            and tracker._new_visitor
            and not tracker._anonymous_used
            and user_id is not None
        ):
            anonymous_id = None
        return user_id, anonymous_id

    def identify(
        self, user_id: object = None, traits: Mapping[str, Any] | None = None, **kw: Any
    ) -> Result:
        """As :meth:`Analytics.identify`; for a visitor who came without a user, a
        login: it joins the visitor's anonymous id to the user, as the automatic
        identify of a login does (the cookie then keeps the id)."""
        tracker = self._tracker
        if (
            user_id is not None
            and tracker is not None
            and getattr(tracker, "_arrived_anonymous", False)
            and "anonymous_id" not in kw
        ):
            kw["anonymous_id"] = self.anonymous_id
        return super().identify(user_id, traits, **kw)

    identify.alters_data = True  # type: ignore[attr-defined]  # as Analytics.identify

    def logout(self) -> None:
        """The user logged out: the request's later calls, its automatic page call
        and its snippet name no user, whatever the framework's user (Starlette's
        ``scope["user"]`` stays set until the request ends) or the ``user_id``
        hook still says. The anonymous id stays, as the browser keeps it.

        Django's and Flask-Login's logouts call it; elsewhere (FastAPI), call it
        after ending the user's session: ``request.state.analytics.logout()``.
        """
        tracker = self._tracker
        if tracker is not None:
            tracker.user_logged_out()
        _USER_SLOT.__set__(self, None)

    logout.alters_data = True  # type: ignore[attr-defined]  # no call from a Django template

    def login(self, user_id: object, user: Any = None) -> bool:
        """The visitor logged in as ``user_id``: what Django's and Flask-Login's logins
        do themselves, for a framework without a login of its own (FastAPI,
        Starlette): ``request.state.analytics.login(user.id, user)``.

        The automatic ``identify`` of a login joins the visitor's anonymous id to the
        user, as the options say: none with ``identify_on_login`` off (or its
        ``(request, user)`` hook's no), for a bot, or for a visitor whose privacy
        signal or consent says no; traits from ``identify_traits(user)``; with a
        ``user_id`` hook, the user it names, or ``user_id`` where it names none yet
        (it reads what the login has still to store: a session, ``request.state``).
        The request's later calls carry the user all the same. True if the identify
        was sent; none is once the response started (a background task): the
        request is gone (logged).
        """
        checked = stringify_id("user_id", user_id)
        if not checked:
            raise InvalidMessage("user_id: a login needs the id of the user who logged in")
        problem = user_id_problem(checked)
        if problem is not None:
            raise InvalidMessage(f"user_id: {problem}")
        tracker = self._tracker
        if tracker is None:  # the request is over (a background task)
            logger.warning(_LOGIN_TOO_LATE)
            self.user_id = checked
            return False
        if tracker.identify_login(checked, user, named=True):
            return True
        kept = tracker.user_of_login(checked)
        if kept is not None:
            self.user_id = kept
        return False

    login.alters_data = True  # type: ignore[attr-defined]  # no call from a Django template

    @property
    def stored_user_id(self) -> str | None:
        """``user_id`` as it is, without reading the framework's user again."""
        value: str | None = _USER_SLOT.__get__(self)
        return value

    def _visitor(
        self, kind: str, kw: dict[str, Any], *, last: bool = False
    ) -> tuple[Any, Any, dict[str, Any]]:
        # last: the automatic page call, after which no call is expected to be made.
        tracker = self._tracker
        if tracker is None:
            return super()._visitor(kind, kw)
        if tracker._read_route is not None or not tracker._cookie_decided:
            tracker.before_send(kw)
        elif tracker._new_visitor:
            if kw:
                tracker._anonymous_rule(kw)
            elif not tracker._anonymous_used:  # _anonymous_rule() for a call without options
                if _USER_SLOT.__get__(self) is None:
                    tracker._anonymous_used = True
                else:
                    kw["anonymous_id"] = None
        if not kw:  # most calls: the bound ids and context as they are
            user_id = _USER_SLOT.__get__(self)
            anonymous_id = self.anonymous_id
            if user_id is not None or anonymous_id is not None:
                context = _CONTEXT_SLOT.__get__(self)
                if tracker._context_private:
                    if not last:  # the message gets objects of its own: still private
                        return user_id, anonymous_id, _copy_of(context, CheckedContext)
                    # The message holds the context's page and campaign objects,
                    # which the caller may change through it.
                    tracker._share_context(copy=False)
                    return user_id, anonymous_id, CheckedContext(context)
                if context == tracker._context_built:  # as built: no need to check it again
                    return user_id, anonymous_id, CheckedContext(context)
                # Not copied: the client copies a call's context into its message.
                return user_id, anonymous_id, context
        if "user_id" not in kw:  # read once: the base class would ask the property again
            kw["user_id"] = _USER_SLOT.__get__(self)
        return super()._visitor(kind, kw)


def _request_analytics(
    client: Client | None,
    tracker: RequestTracker,
    user_id: str | None,
    anonymous_id: str,
    context: dict[str, Any],
) -> RequestAnalytics:
    # RequestAnalytics(client, tracker=..., ...) for ids already checked and a
    # context built for it alone: nothing to convert or copy.
    analytics: RequestAnalytics = object.__new__(RequestAnalytics)
    analytics._tracker = tracker
    analytics._client = client
    _USER_SLOT.__set__(analytics, user_id)
    analytics.anonymous_id = anonymous_id
    _CONTEXT_SLOT.__set__(analytics, context)
    analytics._page_message = None
    return analytics


class RequestTracker:
    """Identity, context and the automatic page call for one request.

    Construction never raises: a hook that fails is logged and skipped, and a
    request whose context cannot be derived still gets a working ``analytics``.

    - ``analytics``: the :class:`RequestAnalytics` bound to the visitor.
    - ``excluded``: the path is one of ``exclude_paths``, or the adapter said the
      request is for an asset the framework serves (no page call, no cookie).
    - ``allowed``: not a bot, and privacy signals and ``consent`` allow automatic
      calls and the cookie; None while a ``consent`` hook that raised as the
      request started waits to be asked again (:meth:`allowed_now`).
    - ``scheme`` / ``host``: what the visitor used (from trusted proxies if any).
    """

    __slots__ = (
        "_anonymous_used",
        "_arrived_anonymous",
        "_context_built",
        "_context_private",
        "_cookie",
        "_cookie_decided",
        "_finished",
        "_leaving",
        "_named_by_login",
        "_new_visitor",
        "_read_route",
        "_read_user",
        "_reading_user",
        "_resolved_user",
        "_route_guessed",
        "_user_found",
        "_user_hook_failed",
        "_wrong_id_logged",
        "allowed",
        "analytics",
        "excluded",
        "host",
        "options",
        "request",
        "scheme",
        "snippet_rendered",
        "user_cookie_expired",
    )

    def __init__(
        self,
        client: Client | None,
        options: WebOptions,
        request: RequestInfo,
        *,
        read_user: Callable[[], object] | None = None,
        read_route: Callable[[RequestInfo, bool], bool] | None = None,
        excluded: bool = False,
    ) -> None:
        self.options = options
        self.request = request
        self._read_user: Callable[[], object] | None = None
        self._read_route = read_route
        self._route_guessed = False
        self._finished = False
        #: The user a logout ended, and whether its announcement still runs.
        self._leaving: tuple[str, Callable[[], bool]] | None = None
        self._cookie: CookieSpec | None = None
        self._cookie_decided = False
        self._anonymous_used = False
        self._new_visitor = False
        # _arrived_anonymous: set by _arrival_user() alone, _user_hook_failed by
        # _user_hook_raised() alone, _wrong_id_logged by _checked_id() alone, and
        # _named_by_login by a view's login(); all read with a default (no store for
        # every other request).
        self._resolved_user: str | None = None
        #: The user is being read: a call made meanwhile (by a user loader, a
        #: backend's get_user, the hook) takes the user known before.
        self._reading_user = False
        #: The framework's (or the hook's) answer when last asked.
        self._user_found: str | None = None
        #: The context is as built (it passes the Spec's context rules by
        #: construction) and nothing outside the tracker has seen it yet.
        self._context_private = False
        #: Once it was seen, a copy of it as built: calls whose context still
        #: equals it skip the Spec's context check.
        self._context_built: dict[str, Any] | None = None
        self.excluded = False
        #: The analytics.js snippet was rendered for this visitor alone (with its
        #: ids, or as the inert stub of a visitor the server does not track): the
        #: response is private and varies on the cookies (see :meth:`handed_to_browser`).
        self.snippet_rendered = False
        #: After a logout in the request, the user cookie analytics.js keeps, expired,
        #: for the response to set: the page a logout redirects to names no user in
        #: the browser either (the snippet's loader then drops the id analytics.js
        #: kept elsewhere).
        self.user_cookie_expired: CookieSpec | None = None
        self.scheme, self.host = request.scheme, request.host
        try:
            if request.host:
                # A Host no URL can hold (ASGI servers pass it on unchecked), or a
                # request line that names no path ("*", "x/y"): unknown, so never a
                # page view, as where the framework refuses it itself. Else the host
                # as browsers write it, in lower case.
                request.host = self.host = checked_host(request.host) if request.path else ""
            self.excluded = (
                excluded
                or is_excluded(request.path, options)
                or (request.mount != "" and is_excluded_request(request, options))
                or (
                    options.probe_regex is not None
                    and options.probe_regex.search(request.path) is not None
                    and is_probe(request, options)
                )
            )
            # Health checks and assets: no user lookup as they start or end (no
            # session read, user query or user_id hook); a call a view makes there
            # (an API under exclude_paths) asks for the user then, as anywhere.
            self._read_user = read_user
            self.allowed: bool | None = allowed_as_request_starts(
                request, options, excluded=self.excluded
            )
            if options.trusted_proxies:
                self.scheme, self.host = forwarded_origin(request, options.trusted_proxies)
            if ":" in self.host:  # shop.example:443 is the page https://shop.example/
                self.host = without_default_port(self.scheme, self.host)
            user_id = request.user_id
            if user_id is not None or options.user_id_from_cookie:
                user_id = self._user_id_given()
            cookies = request.cookies
            anonymous_id = (
                parse_id_cookie(
                    id_cookie(
                        cookies, request.header("cookie"), cookie_name := options.cookie_name
                    ),
                    cookie_name == ANALYTICS_JS_COOKIE,
                )
                if cookies
                else None
            )
            if anonymous_id is None:
                anonymous_id = new_message_id()  # new_anonymous_id(), one call less
                self._new_visitor = True
                if options.user_id is not None and user_id is None and not self.excluded:
                    user_id = self._arrival_user()
            self._resolved_user = self._user_found = user_id
            context = request_context(
                request,
                options,
                scheme=self.scheme,
                host=self.host,
                secret_values=(
                    options.redactor.secret_values(request.path_params)
                    if request.path_params
                    else ()
                ),
            )
            self.analytics = _request_analytics(client, self, user_id, anonymous_id, context)
            self._context_private = True
        except Exception:
            logger.exception("segment: could not read the request; no automatic calls for it")
            self.allowed = False
            self._new_visitor = False
            self.analytics = RequestAnalytics(client, anonymous_id=new_anonymous_id())

    # -- the user -----------------------------------------------------------------

    def _user_id_given(self) -> str | None:
        """The user known as the request starts: the adapter's, or the opt-in cookie."""
        return self._user_id_of(self.request.user_id)

    def _arrival_user(self) -> str | None:
        """The ``user_id`` hook's answer for a new visitor, as the request starts.

        Asked later only, a login in the view and an API client known from the
        start would look the same: both named by the hook at the first call, neither
        with the cookie. The API client's calls carry its user id alone; the visitor
        who logged in is joined to the user by the ``identify`` that follows.
        """
        user_id = self._current_user_id(early=True)
        #: The visitor came without a user: a user it identifies logged in.
        self._arrived_anonymous = user_id is None
        return user_id

    def _current_user_id(self, early: bool = False) -> str | None:
        """The ``user_id`` hook's answer, else the framework's user, as of now; then
        the opt-in user cookie.

        ``early``: asked before the app has routed the request, where the hook may
        need what a middleware inside the adapter's has yet to set up (a session):
        if it raises, that is logged at DEBUG alone, and it is asked again at the
        next call and as the response starts.
        """
        if self._reading_user:  # asked again by what reads the user: not once more
            return self._user_found
        options = self.options
        found: object = None
        self._reading_user = True
        try:
            if options.user_id is not None:
                found = self._user_hook_answer(options.user_id, early)
            elif self._read_user is not None:
                try:
                    found = self._read_user()
                except Exception:
                    logger.exception("segment: could not read the user; no user id from it")
                    return self._user_found
        finally:
            self._reading_user = False
        if found is _FAILED or found is USER_NOT_KNOWN:  # no news of the user, not a logout
            return self._user_found
        return self._user_id_of(found) if found is not None or options.user_id_from_cookie else None

    def _user_hook_answer(self, hook: Callable[..., Any], early: bool = False) -> object:
        """The ``user_id`` hook's answer for the request, or ``_FAILED`` if it raised.

        It is asked at each call, so a hook that fails for a moment (a database
        away) is taken up again; the traceback of its failure is logged once per
        request (``early``: at DEBUG, see :meth:`_current_user_id`), each later
        failure in one DEBUG line.
        """
        try:
            return hook(self.request.hook_target)
        except Exception:
            self._user_hook_raised(early)
            return _FAILED

    def _user_hook_raised(self, early: bool) -> None:
        """Log the ``user_id`` hook's failure, from the ``except`` block that caught it."""
        if early:
            hook_raised("user_id", _FAILED, early=True)
            return
        hook_raised("user_id", _FAILED, again=getattr(self, "_user_hook_failed", False))
        self._user_hook_failed = True

    def _checked_id(self, value: object) -> str | None:
        """A user id as every call's ids are (text, an integer or a UUID, as text);
        None for none, an empty one, or one that is no id or that no call could send
        (too long, a lone surrogate: a user name from a request's header), logged at
        ERROR once per request, as a hook that raises is."""
        if value is None:
            return None
        if type(value) is str and len(value) <= MAX_USER_ID_LENGTH and value.isascii():
            return value or None
        try:
            # Its type first: what an object's == gives may be no bool (a query's
            # column, where the hook meant a row's value).
            text = stringify_id("user_id", value)
            if not text:
                return None
            problem = user_id_problem(text)
            if problem is None:
                return text
            raise InvalidMessage(f"user_id: {problem}")
        except Exception as error:  # InvalidMessage, or what an odd object raised
            if is_interruption(error):  # a job's time limit: for the job to stop
                raise
            again = getattr(self, "_wrong_id_logged", False)
            self._wrong_id_logged = True
            logger.log(logging.DEBUG if again else logging.ERROR, "segment: %s; ignored", error)
            return None

    def _user_id_of(self, found: object) -> str | None:
        """The user id of what the framework or the hook answered; else the opt-in cookie."""
        user_id = None if found is None else self._checked_id(found)
        if user_id is None and self.options.user_id_from_cookie:
            request = self.request
            user_id = parse_id_cookie(
                id_cookie(request.cookies, request.header("cookie"), self.options.user_cookie_name)
            )
        return user_id

    def refresh_user(self, early: bool = False) -> None:
        """Take up the user authenticated since the last look (DRF, a login or a
        logout in the view).

        A user id the view set itself (``identify``, ``alias``) is left alone; so
        is everything once the response started (the cookie was decided).
        ``early``: for a call made before the app routed the request (see
        :meth:`_current_user_id`).
        """
        if self._cookie_decided or (self.options.user_id is None and self._read_user is None):
            return
        current = _USER_SLOT.__get__(self.analytics)  # analytics.stored_user_id
        if current == self._resolved_user:
            self._take_user(current, self._current_user_id(early))

    def user_answered(self, found: object) -> None:
        """What an async ``user_id`` hook answered now, awaited by the adapter: taken
        up as :meth:`refresh_user` takes up the framework's user."""
        current = _USER_SLOT.__get__(self.analytics)
        if (
            not self._cookie_decided
            and current == self._resolved_user
            and not getattr(self, "_named_by_login", False)  # the view's login() decides
        ):
            self._take_user(current, self._user_id_of(found))

    def _take_user(self, current: str | None, found: str | None) -> None:
        previous, self._user_found = self._user_found, found
        # A user logged in, or the one found before logged out: the framework's user
        # (or the hook's answer) changed since the last look. One that did not
        # change leaves the user a view's login() named alone, whether the framework
        # shows none yet or still shows the user signed in before.
        if found != current and found != previous:
            self.analytics.user_id = found
            self._resolved_user = found

    def logout_announced(self, announcing: Callable[[], bool]) -> None:
        """A logout the framework announces while the user is still logged in
        (Django's ``user_logged_out``): the user ends now, as :meth:`user_logged_out`,
        but the calls made while ``announcing()`` says the announcement runs (its
        receivers', whichever order they were connected in) still carry them."""
        self.refresh_user()  # who is leaving, if no call asked yet
        leaving = _USER_SLOT.__get__(self.analytics)
        self.analytics.logout()
        if leaving is not None:
            self._leaving = (leaving, announcing)

    def _user_still_leaving(self, kw: dict[str, Any]) -> None:
        """A call of a logout's announcement (see :meth:`logout_announced`) carries the
        user who is logging out."""
        if "user_id" not in kw:
            leaving = self.leaving_user()
            if leaving is not None:
                kw["user_id"] = leaving

    def leaving_user(self) -> str | None:
        """The user a logout ended, while its announcement runs (see
        :meth:`logout_announced`): what ``user_id`` reads there; else None."""
        leaving = self._leaving
        if leaving is None:
            return None
        try:
            announcing = leaving[1]()
        except Exception:  # the framework's objects failed: the logout is over
            logger.exception("segment: could not tell whether a logout is announced")
            announcing = False
        return leaving[0] if announcing else None

    def user_logged_out(self) -> None:
        """No user for the rest of the request (see :meth:`RequestAnalytics.logout`)."""
        self._leaving = None
        # A marker no user id equals: refresh_user() and user_answered() leave the
        # user alone from now on, as they leave one a view identified. A login
        # later in the request (identify_login) follows the framework's user again.
        self._resolved_user = _LOGGED_OUT
        self._user_found = None
        try:
            self.user_cookie_expired = self._expired_user_cookie()
        except Exception:  # the logout goes on; the browser keeps its cookie
            logger.exception("segment: could not expire the user cookie at a logout")

    @property
    def page_called(self) -> bool:
        """A page call was made for the request (the view's own, or the automatic one)."""
        return self.analytics._page_message is not None

    @property
    def logged_out(self) -> bool:
        """The user logged out during the request (and no login came after)."""
        return self._resolved_user is _LOGGED_OUT

    def refresh_route(self, final: bool = False, *, reads_on: bool = False) -> None:
        """Ask the adapter for the route until it knows it; then hide secret path values.

        ``final``: the response is complete, what the adapter knows now is all there is.
        ``reads_on``: for a read of the context (a snapshot, a page's fields) rather
        than a call: the secrets known now are hidden, and the route is read again
        later all the same, since the app may not have routed all the way yet (a
        mounted app's own router, a Wagtail page's sub-route, matched after a
        middleware that reads).
        """
        read = self._read_route
        if read is None:
            return
        request = self.request
        # The app's router as the request started: one a middleware chose since
        # (Django's request.urlconf) reads the referrer's and the query's paths anew.
        router = request.route_of_path
        try:
            if not read(request, final) and not final:
                if not self._route_guessed:
                    self._guess_route()
                return
        except Exception:
            logger.exception("segment: could not read the request's route")
            if reads_on:
                return
        if not reads_on:
            self._read_route = None
        params = request.path_params
        if params or request.route_of_path is not router:
            self._redact_path(params, anew=request.route_of_path is not router)

    def _guess_route(self) -> None:
        """A call before the framework routed (from a middleware): the secrets the
        app's router will capture from the path are hidden from it already."""
        self._route_guessed = True
        lookup = self.request.route_of_path
        if lookup is None:
            return
        try:
            params = lookup(self.request.path)
        except Exception:
            logger.exception("segment: could not match the request's path to a route")
            return
        self._redact_path(params)

    def _redact_path(self, params: Mapping[str, Any] | None, *, anew: bool = False) -> None:
        """Hide the values of the secret ones of ``params`` from the context's page
        fields; ``anew``: make them again all the same (the app's router changed)."""
        values = self.options.redactor.secret_values(params) if params else ()
        if values or anew:
            context = _CONTEXT_SLOT.__get__(self.analytics)
            as_built = self._context_private or context == self._context_built
            page = context.get("page")
            fields = page_fields(
                self.request,
                self.options.redactor,
                scheme=self.scheme,
                host=self.host,
                secret_values=values,
            )
            context["page"] = {**page, **fields} if isinstance(page, Mapping) else fields
            fit_context(context)  # the fields anew, as long as the request has them
            # Redacted strings in place of strings: still as good as built.
            if not self._context_private:
                self._context_built = _copy_of(context) if as_built else None

    def visitor_fields_in(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """Of a call's ``context``, the fields that hold what the visitor sent, as the
        request gives them (``page``'s ``referrer``, ``search``, ``url`` and ``path``,
        ``userAgent``, ``campaign``): not one the view or the call wrote. A copy, in
        the shape :func:`fit_context` cuts."""
        request = self.request
        params = request.path_params
        visitor = request_context(
            request,
            self.options,
            scheme=self.scheme,
            host=self.host,
            secret_values=self.options.redactor.secret_values(params) if params else (),
        )
        found: dict[str, Any] = {}
        page, sent_page = context.get("page"), visitor.get("page")
        if isinstance(page, Mapping) and isinstance(sent_page, Mapping):
            same = {
                field: page[field]
                for field in ("referrer", "search", "url", "path")
                if type(page.get(field)) is str and page[field] == sent_page.get(field)
            }
            if same:
                found["page"] = same
        for field in ("userAgent", "campaign"):
            value = context.get(field)
            if value is not None and value == visitor.get(field):
                found[field] = dict(value) if isinstance(value, Mapping) else value
        return found

    def page_fields(self) -> Mapping[str, Any]:
        """The page fields the request's calls carry: secrets redacted, values cut
        (and what a view added to them)."""
        if self._read_route is not None:
            self.refresh_route(reads_on=True)
        fields = _CONTEXT_SLOT.__get__(self.analytics).get("page")
        if isinstance(fields, Mapping):
            return fields
        # A view replaced the context: the fields as the request gives them.
        request, redactor = self.request, self.options.redactor
        params = request.path_params
        return page_fields(
            request,
            redactor,
            scheme=self.scheme,
            host=self.host,
            secret_values=redactor.secret_values(params) if params else (),
        )

    def before_send(self, kw: dict[str, Any]) -> None:
        """Called by ``analytics`` before each call: the latest user, the route's secrets.

        A new visitor whose user is known gets calls with ``userId`` only: an API
        client is not a browser, its throwaway anonymous id would be noise.
        """
        if self._read_route is not None:
            self.refresh_route()
        if not self._cookie_decided:
            # Before the app routed (a middleware's call), the user_id hook may fail
            # for want of what a middleware inside sets up: asked again later.
            self.refresh_user(self._read_route is not None)
        if self._leaving is not None:
            self._user_still_leaving(kw)
        if self._new_visitor:
            self._anonymous_rule(kw)

    def _anonymous_rule(self, kw: dict[str, Any]) -> None:
        # A new visitor's call: its anonymous id is used, or left out for a known user.
        if "anonymous_id" in kw:
            if kw["anonymous_id"] == self.analytics.anonymous_id:
                self._anonymous_used = True
        elif self._anonymous_used or _USER_SLOT.__get__(self.analytics) is None:
            self._anonymous_used = True
        elif "user_id" not in kw or kw["user_id"] is not None:
            kw["anonymous_id"] = None

    @property
    def holds_a_new_id(self) -> bool:
        """Whether the visitor's id was made up for this request: it came without the
        cookie (or with one that is no id)."""
        return self._new_visitor

    @property
    def new_id_left_unkept(self) -> bool:
        """Whether the id made up for this request went without the cookie that would
        keep it: its response's headers left before the snippet rendered (a streamed
        page) and had none (a known user's, or no cookie set)."""
        return self._new_visitor and self._cookie_decided and self._cookie is None

    def handed_to_browser(self) -> None:
        """The snippet gave analytics.js this visitor's ids.

        The anonymous id is in use: it is kept in the cookie (for a known user too,
        whose browser would otherwise get a new one on every page), and the response,
        which holds the ids, varies on the cookies that name them (``Vary: Cookie``),
        so that a cache never hands it to another visitor.
        """
        self.snippet_rendered = True
        self._anonymous_used = True

    def may_render_snippet(self, content_type: str | None) -> bool:
        """Whether a streamed response's body, made after its headers are sent, may
        render the snippet: a page (``page_content_types``) for which the snippet
        renders something of this visitor's own (its ids, or the inert stub of a
        visitor not tracked). Such a response is private, and varies on ``Cookie``,
        from the start.
        """
        options = self.options
        return (
            options.browser_write_key is not None
            and media_type(content_type) in options.page_content_types
            and (snippet_renders(self) or stub_is_this_visitors(self))
        )

    def allowed_now(self) -> bool:
        """:attr:`allowed`, decided now if the ``consent`` hook raised as the request
        started: asked again, now that the app has run (a session middleware inside
        the adapter's has set the session up); if it raises again, that is logged
        and counts as no consent."""
        allowed = self.allowed
        if allowed is None:
            allowed = self.allowed = consent_given(self.request, self.options.consent)
        return allowed

    # -- login --------------------------------------------------------------------

    def login_begins(self) -> None:
        """A login is under way (its signal is being sent): the visitor is a browser
        signing in, not an API client known from the start. When its ``identify``
        will join the anonymous id to the user (``identify_on_login`` is True and
        the visitor's consent known), the calls made before it (by the signal's
        other receivers) keep that id, as the calls after it do."""
        if (
            self._new_visitor
            and not self._cookie_decided
            and self.options.identify_on_login is True
            and self.allowed is True
        ):
            self._anonymous_used = True

    def identify_login(self, user_id: object, user: Any = None, *, named: bool = False) -> bool:
        """The automatic ``identify`` of a login: the visitor's anonymous id joins the user.

        ``identify_on_login`` decides whether there is one: True, False, or its
        ``(request, user)`` hook's answer for this login. Traits come from the
        ``identify_traits(user)`` hook (none without one). With a ``user_id`` hook,
        its answer is the user id, as for every other call: a login it names no
        user for sends none, but for one the view ``named`` itself (its ``login()``),
        where the hook cannot know the user yet. Never raises; True if it sent.

        None once the response started (in a streamed body, a background task): the
        request, and what decides on its identify, is gone (logged). The later calls
        carry the user then, and the anonymous id the response's cookie gave.
        """
        self._leaving = None  # a login (in a logout's receiver too): the new user's calls
        if self._cookie_decided:
            logger.warning(_LOGIN_TOO_LATE)
            if self._new_visitor and self._cookie is not None:
                self._anonymous_used = True  # the browser keeps it: the user's calls too
            checked = self._checked_id(user_id)
            if checked is not None and self.options.user_id is None:
                self.analytics.user_id = checked
            return False
        if self._resolved_user is _LOGGED_OUT:  # a logout earlier in the request
            self._resolved_user = _USER_SLOT.__get__(self.analytics)
            self.user_cookie_expired = None
        options = self.options
        if (
            options.identify_on_login is False
            or not (self.allowed or self.allowed_now())
            or self._checked_id(user_id) is None
            or not self._login_identified(user)
        ):
            return False
        if options.user_id is not None:
            user_id = self._login_user_id(options.user_id, user_id, named)
            if user_id is None:
                return False
        traits: Any = None
        if options.identify_traits is not None:
            traits = call_hook("identify_traits", options.identify_traits, user, default=None)
            if traits is not None and not isinstance(traits, Mapping):
                logger.error(
                    "segment: identify_traits returned %s, not a dict; ignored",
                    type(traits).__name__,
                )
                traits = None
        analytics = self.analytics
        try:
            try:
                analytics.identify(user_id, traits, anonymous_id=analytics.anonymous_id)
            except InvalidMessage as error:
                if traits is None:
                    raise
                # The hook's failure (a model object, a NaN, too big): the login's
                # identify, which joins the visitor to the user, goes without them.
                analytics.identify(user_id, None, anonymous_id=analytics.anonymous_id)
                logger.error(
                    "segment: the automatic identify of a login was sent without what "
                    "identify_traits returned, which cannot be sent: %s",
                    error,
                )
        except Exception:
            logger.exception("segment: the automatic identify of a login failed")
            return False
        self._resolved_user = analytics.stored_user_id
        if named:
            self._named_by_login = True
        return True

    def _login_identified(self, user: Any) -> bool:
        """Whether ``identify_on_login`` wants this login identified: True alone is
        yes; a hook that raises, or answers anything else, is logged and means no."""
        decide = self.options.identify_on_login
        if isinstance(decide, bool):
            return decide
        answer = call_hook(
            "identify_on_login", decide, self.request.hook_target, user, default=False
        )
        if answer is True or answer is False:
            return answer
        logger.error(
            "segment: identify_on_login returned %s, not True or False; no identify",
            type(answer).__name__,
        )
        return False

    def _login_user_id(
        self, hook: Callable[..., Any], framework_id: object, named: bool = False
    ) -> str | None:
        """The ``user_id`` hook's answer for the user just logged in; None (no
        identify) when it names none or raises. The framework's id only when the
        hook cannot tell where the login runs (it answers ``USER_NOT_KNOWN``), or
        when it names no user for a login the view ``named`` itself."""
        found = self._user_hook_answer(hook)
        if found is USER_NOT_KNOWN or (found is None and named):
            return self._checked_id(framework_id)
        return None if found is None or found is _FAILED else self._checked_id(found)

    def user_of_login(self, user_id: str) -> str | None:
        """The user the request's later calls carry after a view's ``login(user_id)``
        sent no identify: ``user_id``, or the ``user_id`` hook's answer where it names
        one (None: it raised, and names the user of each call as it answers)."""
        self._named_by_login = True
        hook = self.options.user_id
        if hook is None:
            return user_id
        return self._login_user_id(hook, user_id, named=True)

    # -- the response ---------------------------------------------------------------

    def cookie_to_set(self, redirect_to: str | None = None) -> CookieSpec | None:
        """The ``ajs_anonymous_id`` cookie to add to the response, if one is needed.

        Only for a new visitor (no valid cookie), with ``set_cookie`` on, on a path
        that is not excluded (but for a login there, whose identify used the id), for
        a visitor that is not a bot and whose privacy allows it; never on HEAD or
        OPTIONS, and not for a request whose user is known unless its anonymous id
        was used (a login links it), nor when the browser held its cookie back
        (:func:`cookie_held_back`).

        ``redirect_to``: the ``Location`` of a redirect (a status in
        :data:`REDIRECT_STATUSES`). A plain-http request redirected to https gets
        no cookie: set over http it could not be ``Secure``, and the https page,
        seeing it, would never set the ``Secure`` one. That page sets it.
        """
        if self._cookie_decided:
            return self._cookie
        if self.excluded and not self._anonymous_used:  # no cookie: no user to look up
            self._cookie_decided = True
            return None
        try:
            self.refresh_user()
        finally:
            self._cookie_decided = True
        if (
            self._new_visitor
            and self.options.set_cookie
            and self.request.method.upper() not in NO_COOKIE_METHODS
            and (self._anonymous_used or _USER_SLOT.__get__(self.analytics) is None)
            and (redirect_to is None or not _upgrades_to_https(self.scheme, redirect_to))
            and (self.allowed or self.allowed_now())
            # A cookie the browser held back is still there: a new one would replace it.
            and not cookie_held_back(self.request)
            # An excluded path or route (the admin's login) sets one for a login alone:
            # its identify joined the user to the id the cookie keeps.
            and (
                not (self.excluded or self._on_excluded_route())
                or (self._anonymous_used and _USER_SLOT.__get__(self.analytics) is not None)
            )
        ):
            self._cookie = anonymous_id_cookie(
                self.analytics.anonymous_id or "",
                self.options,
                secure=self.scheme == "https",
                host=self.host,
            )
        return self._cookie

    def id_cookie_set_by_app(self, lines: Iterable[str]) -> None:
        """The response sets the anonymous-id cookie itself, with ``Set-Cookie`` lines
        ``lines`` (the app's own id, one it kept from before): the cookie it was to set
        is left out, and the request's later calls, its page call among them, carry
        the id the browser keeps for the site. A deletion, a line for another path,
        or a value that is no id, changes nothing."""
        options = self.options
        value = kept_cookie_value(lines)
        found = parse_id_cookie(value, options.cookie_name == ANALYTICS_JS_COOKIE)
        if found is None or found == self.analytics.anonymous_id:
            return
        self.analytics.anonymous_id = found
        self._new_visitor = False  # no throwaway id: the browser keeps this one

    def _expired_user_cookie(self) -> CookieSpec | None:
        """The user cookie analytics.js keeps (``user_cookie_name``), expired, if the
        request carried it, as analytics.js writes it under the snippet's load options:
        on the server's cookie domain, or the host alone. None with ``set_cookie`` off."""
        options = self.options
        name = options.user_cookie_name
        cookies = self.request.cookies
        if not options.set_cookie or not cookies or cookies.get(name) is None:
            return None
        domain = options.cookie_domain and cookie_domain_for(options.cookie_domain, self.host)
        secure = self.scheme == "https" or options.secure_cookies
        return CookieSpec(name, "", 0, "/", domain, secure)

    def _on_excluded_route(self) -> bool:
        """Whether the request's route is excluded (``exclude_routes``: the admin, API
        docs): no page call, no snippet, and a new visitor gets no cookie there."""
        if self._read_route is not None:
            self.refresh_route()
        return is_excluded_route(self.request, self.options)

    def finish(
        self,
        status: int,
        response: Any = None,
        *,
        content_type: str | None = None,
        route_name: str | None = None,
        route_template: str | None = None,
        response_header: ResponseHeader | None = None,
    ) -> bool:
        """Emit the automatic page call if the request deserves one; True if it did.

        ``content_type`` is the response's ``Content-Type``. ``route_name`` /
        ``route_template`` are for adapters that learn the route only after the
        view ran. ``response_header(name)`` reads a header of the response (None
        when absent), asked only when htmx made the request (its redirects are no
        page views). Runs once per request; never raises. Afterwards the tracker
        lets go of the framework's request (see :meth:`_release`).
        """
        try:
            return self._page_call(
                status, response, content_type, route_name, route_template, response_header
            )
        finally:
            self._release()

    def _page_call(
        self,
        status: int,
        response: Any,
        content_type: str | None,
        route_name: str | None,
        route_template: str | None,
        response_header: ResponseHeader | None,
    ) -> bool:
        if self._finished or self.analytics._page_message is not None:
            return False
        self._finished = True
        request = self.request
        if route_name is not None:
            request.route_name = route_name
        if route_template is not None:
            request.route_template = route_template
        options = self.options
        try:
            if not self.allowed and self.allowed is not None:
                return False
            if self._read_route is not None:
                self.refresh_route(final=True)
            wanted = page_wanted(
                request,
                status,
                options,
                response,
                content_type=content_type,
                excluded=self.excluded,
                response_header=response_header,
            )
            # A consent hook that raised as the request started: asked again for a
            # page alone (a redirect made before a session middleware ran is none).
            if not wanted or not (self.allowed or self.allowed_now()):
                return False
            # The page fields were derived (and redacted) with the context; a view
            # may have added to them (a title), which the properties then carry too.
            analytics = self.analytics
            fields = _CONTEXT_SLOT.__get__(analytics).get("page")
            if type(fields) is not dict and not isinstance(fields, Mapping):
                fields = self.page_fields()  # a view replaced the context: secrets redacted
            name = page_name(request, options, fields.get("path"))
            if options.page_properties is not None or not (name is None or type(name) is str):
                # A hook made the properties, or a name that is not a plain string:
                # checked as a view's call is.
                properties = page_properties(request, options, fields, name, response)
                try:
                    Analytics._page(analytics, name, properties, {}, give_way=False)
                except InvalidMessage as error:
                    if options.page_properties is not None:
                        return self._page_without_hook_properties(name, fields, error)
                    return self._page_without_repeats(name, properties, error)
                return True
            properties = dict(fields)  # page_properties() without a hook
            if name is not None:
                properties["name"] = name
            try:
                # The ids and context analytics.page() would use: with the context (and
                # so its page fields) as built, nothing of the view's is left to check.
                user_id, anonymous_id, context = analytics._visitor("page", {}, last=True)
                if type(context) is CheckedContext:
                    client = analytics.client
                    factory = client._factory
                    message = factory.request_page(user_id, anonymous_id, name, properties, context)
                    # Without default context or integrations, every value is a string
                    # of the tracker's or the factory's: nothing for the encoder to check.
                    unchecked = None if factory._no_defaults else WHOLE_MESSAGE
                    # Kept lean: page_message completes it if it is ever read.
                    analytics._page_message = client._accept(message, unchecked, lean=True)[1]
                else:  # the view changed the context
                    Analytics._page(analytics, name, properties, {}, give_way=False)
            except InvalidMessage as error:  # too big (a view's additions, a default context)
                return self._page_without_repeats(name, properties, error)
        except Exception:
            logger.exception("segment: the automatic page call for %s failed", self._logged_path())
            return False
        return True

    def _page_without_hook_properties(
        self, name: Any, fields: Mapping[str, Any], error: InvalidMessage
    ) -> bool:
        """The automatic page call refused with what ``page_properties`` added: the
        hook's failure, so sent once more without them, as when the hook raises."""
        properties = dict(fields) if name is None else {**fields, "name": name}
        try:
            Analytics._page(self.analytics, name, properties, {}, give_way=False)
        except InvalidMessage as second:
            return self._page_without_repeats(name, properties, second)
        logger.error(
            "segment: the automatic page call for %s was sent without what page_properties "
            "returned, which cannot be sent: %s",
            self._logged_path(),
            error,
        )
        return True

    def _page_without_repeats(
        self, name: Any, properties: Mapping[str, Any], error: InvalidMessage
    ) -> bool:
        """The automatic page call the client refused, sent once more without the
        properties that ``context.page`` holds too (the long ones: ``search``,
        ``referrer``, ``url``); one line logged either way, no traceback."""
        path = self._logged_path()
        repeated = [key for key in _REPEATED_PAGE_FIELDS if key in properties]
        if repeated:
            fewer = {key: value for key, value in properties.items() if key not in repeated}
            try:
                Analytics.page(self.analytics, name, fewer)
            except InvalidMessage as second:
                error = second
            else:
                logger.warning(
                    "segment: the automatic page call for %s was sent without its %s "
                    "properties (%s)",
                    path,
                    ", ".join(repeated),
                    error,
                )
                return True
        logger.error("segment: the automatic page call for %s failed: %s", path, error)
        return False

    def _logged_path(self) -> str:
        """The request's path for a log line: as its events carry it (a secret
        route value redacted), cut to 200 characters."""
        try:
            path = self.page_fields().get("path")
        except Exception:  # a view replaced the context with something that is no dict
            path = None
        return path[:200] if isinstance(path, str) else "this request"

    def _share_context(self, *, copy: bool = True) -> None:
        """The context as built is about to be seen: keep a copy to tell a change by.

        ``copy=False``: none is kept, and calls from now on check the context.
        """
        self._context_private = False
        if copy:
            self._context_built = _copy_of(_CONTEXT_SLOT.__get__(self.analytics))

    def _release(self) -> None:
        """The response is complete: break the cycles through the framework's request.

        The request refers to ``analytics`` (``request.analytics``, the ASGI scope),
        ``analytics`` to this tracker, and the adapter's readers to the request.
        Left as they are, every request and all it holds would wait for the cycle
        collector; broken, they go as soon as the framework lets go of them.
        """
        if self._read_route is not None:  # not read yet (no page call: a bot, GPC)
            self.refresh_route(final=True)  # the calls after the response hide its secrets
        self._read_user = self._read_route = None  # no more reads after the response
        analytics = self.analytics
        if type(analytics) is RequestAnalytics and (not self._new_visitor or self._anonymous_used):
            # Its calls from now on need nothing of this tracker: no user or route
            # to read, and no anonymous-id rule left that could change a call.
            analytics._tracker = None


#: Page properties that ``context.page`` holds too, the long ones first.
_REPEATED_PAGE_FIELDS = ("search", "referrer", "url")
_REPEATED = frozenset(_REPEATED_PAGE_FIELDS)


class _Marker:
    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text


#: What a hook that raised answers.
_FAILED: Any = _Marker("the user known before")

#: In place of the user last taken from the framework, once the user logged out:
#: no user the framework (or the ``user_id`` hook) names counts for the rest of
#: the request.
_LOGGED_OUT: Any = _Marker("logged out")

#: What a user reader or a ``user_id`` hook answers when it cannot tell now (a
#: framework's user that cannot be loaded where the call is made): no news of the
#: user, the one known before stays.
USER_NOT_KNOWN: Any = _Marker("USER_NOT_KNOWN")


def _copy_of(
    context: dict[str, Any], kind: Callable[[dict[str, Any]], dict[str, Any]] = dict
) -> dict[str, Any]:
    """A copy (a ``kind``) of a request's context that a change to its objects leaves alone.

    The objects of a context :func:`request_context` built: ``page``, ``campaign``.
    """
    copy = kind(context)
    copy["page"] = dict(context["page"])
    if "campaign" in context:
        copy["campaign"] = dict(context["campaign"])
    return copy


def _upgrades_to_https(scheme: str, location: str) -> bool:
    """Whether a redirect's ``location`` takes a plain-http request to https."""
    return scheme == "http" and location[:8].lower() == "https://"
