"""Which requests are page views, what they are called, and what they carry.

A page view is a navigation that renders a document:

- its method is in ``page_methods`` (GET);
- the response is a success (2xx) whose content type is one of
  ``page_content_types`` (HTML), but not a ``204``/``205`` (the browser stays
  on its page) or a ``206`` (a part of a file); or a ``304 Not Modified`` to a
  request that accepts one of them (the browser shows its cached copy of the
  page), unless the 304's own content type or the path's file extension
  (``/report.pdf``) names another type;
- no script made it: not ``X-Requested-With: XMLHttpRequest``, not an htmx
  request (``HX-Request``) unless boosted (``HX-Boosted``), not a Turbo frame,
  not a ``Sec-Fetch-Mode`` other than ``navigate`` unless a boosted htmx request
  or a Turbo Drive visit (``X-Turbo-Request-Id``) made it, not a prefetch
  (``Sec-Purpose``/``Purpose``/``X-Purpose``/``X-Moz``, Turbo's
  ``X-Sec-Purpose``). A request with none of these headers is judged by its
  response alone;
- neither its path (``exclude_paths``) nor its route (``exclude_routes``: a route
  name or one of its namespaces) is excluded;
- to an htmx request, not an htmx redirect (``HX-Redirect``, ``HX-Location``,
  ``HX-Refresh: true``), of which htmx shows nothing;
- its user agent is not a known crawler or monitor, privacy allows it
  (``Sec-GPC``, ``DNT``, the ``consent`` hook) and ``page_filter`` agrees.

Redirects are not page views: the page they lead to is.
"""

from __future__ import annotations

import functools
import mimetypes
import types
from collections.abc import Callable, Iterable, KeysView, Mapping
from typing import Any

from segment_core.errors import is_interruption
from segment_core.jsonvalues import lone_surrogate_problem
from segment_core.web._bots import BOT_PATTERN, BotMatcher
from segment_core.web._guard import call_hook, logger
from segment_core.web._options import WebOptions
from segment_core.web._request import (
    RequestInfo,
    WSGIHeaders,
    cached_for_short_text,
    decoded_path,
)
from segment_core.web._validate import Hook

__all__ = [
    "BOT_PATTERN",
    "GRAPHQL_SERVER_PACKAGES",
    "accepts_document",
    "allowed_as_request_starts",
    "consent_given",
    "has_page_method",
    "is_bot",
    "is_excluded",
    "is_excluded_route",
    "is_page_prefetch",
    "is_page_status",
    "is_probe",
    "is_script_request",
    "media_type",
    "page_name",
    "page_properties",
    "privacy_allows",
    "serves_graphql",
    "should_track_page",
    "tracking_allowed",
]

#: ``response_header(name)``: the value of one of the response's headers, or None.
ResponseHeader = Callable[[str], str | None]

_DEFAULT_BOTS = BotMatcher()


#: What an early ``consent`` ask answers when the hook raised (it is asked again).
_RAISED = object()


def should_track_page(
    request: RequestInfo,
    status: int,
    options: WebOptions,
    response: Any = None,
    *,
    content_type: str | None = None,
    response_header: ResponseHeader | None = None,
) -> bool:
    """Whether ``request``, answered with ``status``, gets an automatic page call."""
    return tracking_allowed(request, options) and page_wanted(
        request,
        status,
        options,
        response,
        content_type=content_type,
        response_header=response_header,
    )


def tracking_allowed(request: RequestInfo, options: WebOptions) -> bool:
    """Whether automatic calls and the id cookie may happen at all for this visitor."""
    allowed = allowed_as_request_starts(request, options)
    # The consent hook raised, unlogged: asked once more, a failure logged then.
    return consent_given(request, options.consent) if allowed is None else allowed


def allowed_as_request_starts(
    request: RequestInfo, options: WebOptions, *, excluded: bool = False
) -> bool | None:
    """:func:`tracking_allowed` as a request starts; None when the ``consent`` hook raised.

    The hook may need what a middleware inside the adapter's has yet to set up (a
    session): its failure is not logged here, and the caller asks again with
    :func:`consent_given` once the app has run. An ``excluded`` request (an asset,
    a health check) makes no automatic call: None too, the hook asked only if a
    call needs it (a login's identify), not for every asset (a hook reading the
    session would make each one vary on the cookie).
    """
    get = request.headers.get
    if options.skip_bots and options.bots.matches(get("user-agent")):
        return False
    # privacy_allows(), inline: once per request.
    if options.honor_gpc and _signal_on(get("sec-gpc")):
        return False
    if options.honor_dnt and _signal_on(get("dnt")):
        return False
    if options.consent is not None:
        if excluded:
            return None
        answer = call_hook(
            "consent", options.consent, request.hook_target, default=_RAISED, early=True
        )
        return None if answer is _RAISED else _checked_consent(answer)
    return True


def consent_given(request: RequestInfo, consent: Hook | None) -> bool:
    """The ``consent`` hook's answer: True alone is consent (no hook: True).

    Anything else is logged and counts as no consent: a consent cookie's text
    (``"false"``) is truthy, and privacy must not hang on that. A hook that raises
    is logged and counts as no consent.
    """
    if consent is None:
        return True
    return _checked_consent(call_hook("consent", consent, request.hook_target, default=False))


def _checked_consent(answer: object) -> bool:
    if answer is True or answer is False:
        return answer
    logger.error(
        "segment: consent returned %s, not True or False; taken as no consent",
        type(answer).__name__,
    )
    return False


def _signal_on(value: str | None) -> bool:
    """Whether a privacy header (``Sec-GPC``, ``DNT``) says ``1``; sent twice, its
    lines come joined (``1, 1``)."""
    if not value:
        return False
    return value.strip() == "1" or ("," in value and "1" in (v.strip() for v in value.split(",")))


def has_page_method(request: RequestInfo, options: WebOptions) -> bool:
    """Whether the request's method is one of ``page_methods`` (whichever side counts
    the page view)."""
    method = request.method
    return method in options.page_methods or method.upper() in options.page_methods


def page_wanted(
    request: RequestInfo,
    status: int,
    options: WebOptions,
    response: Any,
    *,
    content_type: str | None = None,
    excluded: bool | None = None,
    response_header: ResponseHeader | None = None,
) -> bool:
    """The per-response half of :func:`should_track_page` (privacy aside).

    ``content_type`` is the response's ``Content-Type`` header; ``excluded`` is
    :func:`is_excluded` when the caller already knows it. ``response_header(name)``
    reads one of the response's headers (None when absent): without it, an htmx
    redirect cannot be told from a page.
    """
    # options.server_page_views, without the property call.
    if not options.page_calls or options.page_source == "browser" or not request.host:
        return False
    method = request.method  # (has_page_method, inlined: every request asks)
    if method not in options.page_methods and method.upper() not in options.page_methods:
        return False
    if status == 304:
        if not _shows_cached_document(request, content_type, options):
            return False
    elif (status != 200 and status not in _DOCUMENT_STATUSES) or (
        media_type(content_type) not in options.content_types
    ):
        return False
    made_by = _made_by(request)
    if made_by is _SCRIPT:
        return False
    if is_excluded_request(request, options) if excluded is None else excluded:
        return False
    if is_excluded_route(request, options):
        return False
    if response_header is not None:
        # Headers read only for htmx's navigations: other requests pay nothing for it.
        if made_by is _BOOSTED_HTMX and _htmx_goes_elsewhere(response_header):
            return False
        if _is_download(response_header("content-disposition")):
            return False
    if options.page_filter is not None:
        target = request.hook_target
        return call_hook(
            "page_filter", _filter_truth, options.page_filter, target, response, default=False
        )
    return True


def _filter_truth(page_filter: Callable[..., Any], request: Any, response: Any) -> bool:
    """``page_filter``'s answer read as a condition (``re.match(...)`` or None, as
    ``if`` reads it), in the hook's guard: an answer with no truth (a numpy array's)
    is the hook's failure."""
    return bool(page_filter(request, response))


def _is_download(disposition: str | None) -> bool:
    """Whether a ``Content-Disposition`` has the browser save the response, staying on
    its page: ``attachment``, and any type but ``inline`` (RFC 6266, section 4.2)."""
    if not disposition:
        return False
    kind = disposition.partition(";")[0].strip()
    return bool(kind) and "=" not in kind and kind.lower() != "inline"


def _htmx_goes_elsewhere(response_header: ResponseHeader) -> bool:
    """Whether htmx, given this response, shows nothing of it and loads another page
    (a full load for ``HX-Redirect`` and ``HX-Refresh``: that one is the page view)."""
    if response_header("hx-redirect") is not None or response_header("hx-location") is not None:
        return True
    refresh = response_header("hx-refresh")
    return refresh is not None and refresh.strip() == "true"  # as htmx compares it


#: The 2xx statuses of a response the browser may show as a page (200 aside, told
#: first): not 204 and 205 (the browser stays on its page), nor 206 (a range).
_DOCUMENT_STATUSES = frozenset(range(201, 300)) - {204, 205, 206}


def is_page_status(status: int) -> bool:
    """A 2xx the browser may show as a page, or 304 (it shows its cached copy)."""
    return status == 200 or status in _DOCUMENT_STATUSES or status == 304


def _shows_cached_document(
    request: RequestInfo, content_type: str | None, options: WebOptions
) -> bool:
    """Whether a ``304`` has the browser show a cached page, not a file or data.

    The request must accept a page, as a browser's navigation does, even to a PDF.
    What the 304 revalidates it seldom says (Django's and Starlette's carry no
    ``Content-Type``; one a view makes may carry its framework's default, HTML):
    its ``Content-Type`` and the path's file extension can only tell that it is
    no page.
    """
    if content_type and media_type(content_type) not in options.content_types:
        return False
    if not accepts_document(request.header("accept"), options):
        return False
    named = _file_type(request.path)
    return named is None or named in options.content_types


@cached_for_short_text(maxsize=256)
def _file_type(path: str) -> str | None:
    """The media type the extension of the path's last segment names (a document's,
    data's, an image's, an archive's: ``.pdf``, ``.csv``, ``.json``, ``.png``), unless
    it is a program's source: slugs end so (``/package/chart.js``, ``/tags/node.js``,
    ``/blob/main/setup.py``), and a browser that navigates there most often gets a
    page."""
    name = path.rpartition("/")[2]
    if "." not in name:
        return None
    named = _standard_media_types().guess_type(name)[0]
    if named is None or named.startswith("text/x-") or "javascript" in named:
        return None
    return named


@functools.cache
def _standard_media_types() -> mimetypes.MimeTypes:
    """The standard library's own table of types, not the system's (``/etc/mime.types``):
    the same answer on every machine. Made at the first 304 that needs it."""
    return mimetypes.MimeTypes()


@functools.lru_cache(maxsize=256)
def media_type(content_type: str | None) -> str:
    """The lower-case media type of a ``Content-Type`` value, parameters dropped.

    >>> media_type("Text/HTML; charset=utf-8")
    'text/html'
    """
    if not content_type:
        return ""
    return content_type.partition(";")[0].strip().lower()


def accepts_document(accept: str | None, options: WebOptions) -> bool:
    """Whether an ``Accept`` header asks for a document (a page content type, q > 0).

    ``*/*`` alone does not: scripts and API clients send it.
    """
    if not accept:
        return False
    return _accepts(accept, options.content_types)


@cached_for_short_text(maxsize=256)
def _accepts(accept: str, types: frozenset[str]) -> bool:
    for item in accept.split(","):
        kind, _, params = item.partition(";")
        if kind.strip().lower() not in types:
            continue
        quality = params.replace(" ", "").lower()
        if "q=0" in quality and not any(f"q=0.{d}" in quality for d in "123456789"):
            continue  # q=0, q=0.0, q=0.00: "not acceptable"
        return True
    return False


def is_script_request(request: RequestInfo) -> bool:
    """Whether a script (XHR, fetch, htmx, Turbo) or a prefetch made the request."""
    return _made_by(request) is _SCRIPT


#: What :func:`_made_by` answers: a script or a prefetch, or a boosted htmx navigation.
_SCRIPT = "script"
_BOOSTED_HTMX = "boosted htmx"


def _made_by(request: RequestInfo) -> str | None:
    """:data:`_SCRIPT`, :data:`_BOOSTED_HTMX`, or None for what the browser itself
    asked for (as far as the headers tell)."""
    headers = request.headers
    # Most requests have none of these headers, a browser's navigation only
    # Sec-Fetch-Mode: one set operation tells either.
    keys: KeysView[str] | None = None
    if type(headers) is WSGIHeaders:
        keys, names = headers._environ.keys(), _SCRIPT_ENVIRON_KEYS
    elif type(headers) is dict:
        keys, names = headers.keys(), _SCRIPT_HEADERS
    if keys is not None:
        if keys.isdisjoint(names):
            return None
        present = keys & names
        if len(present) == 1 and present.pop() in _FETCH_MODE_KEYS:
            mode = headers.get("sec-fetch-mode")
            return _SCRIPT if mode is not None and _is_script_fetch_mode(mode) else None
    get = headers.get  # no method lookup per header
    requested_with = get("x-requested-with")
    if requested_with and requested_with.strip().lower() == "xmlhttprequest":
        return _SCRIPT
    # A boosted htmx navigation is a page view, though made by a script: its
    # fetch is in "cors" mode, which alone would say otherwise.
    boosted = False
    if get("hx-request") is not None:
        if not _is_boosted(get("hx-boosted")):
            return _SCRIPT
        boosted = True
    if get("turbo-frame") is not None:
        return _SCRIPT
    mode = get("sec-fetch-mode")
    if (
        mode is not None
        and not boosted
        and _is_script_fetch_mode(mode)
        # A Turbo Drive visit (outside a frame) renders a whole document, as a
        # boosted htmx navigation does; its prefetches are told below.
        and get("x-turbo-request-id") is None
    ):
        return _SCRIPT
    for name in _PREFETCH_HEADERS:
        value = get(name)
        if value is not None and _is_prefetch(value):
            return _SCRIPT
    return _BOOSTED_HTMX if boosted else None


# X-Sec-Purpose: Turbo's hover prefetch, as fetch() may not send Sec-Purpose.
_PREFETCH_HEADERS = ("sec-purpose", "purpose", "x-purpose", "x-moz", "x-sec-purpose")
_SCRIPT_HEADERS = frozenset(
    (
        "x-requested-with",
        "hx-request",
        "turbo-frame",
        "x-turbo-request-id",
        "sec-fetch-mode",
        *_PREFETCH_HEADERS,
    )
)
_SCRIPT_ENVIRON_KEYS = frozenset(
    "HTTP_" + name.upper().replace("-", "_") for name in _SCRIPT_HEADERS
)
# Sec-Fetch-Mode, as each of the kinds of headers above names it.
_FETCH_MODE_KEYS = frozenset(("sec-fetch-mode", "HTTP_SEC_FETCH_MODE"))


@cached_for_short_text(maxsize=64)  # header values: a visitor's, of any length
def _is_script_fetch_mode(mode: str) -> bool:
    # Browsers send "navigate" for a page and "cors", "no-cors", "same-origin" for fetch().
    return mode.strip().lower() != "navigate"


@cached_for_short_text(maxsize=64)  # header values: a visitor's, of any length
def _is_prefetch(value: str) -> bool:
    # "prefetch", "prefetch;prerender" (Chrome), "preview" (Safari's X-Purpose).
    words = value.lower().replace(",", ";").split(";")
    return any(word.strip() in ("prefetch", "prerender", "preview") for word in words)


def is_page_prefetch(request: RequestInfo) -> bool:
    """Whether the browser prefetched or prerendered a page it may show later.

    Speculation rules, ``<link rel=prefetch>`` and a browser's own preloading ask
    with ``Sec-Purpose: prefetch`` (``prefetch;prerender``), ``Purpose`` or
    ``X-Moz``; a navigation then shows the response without asking again. True
    when that is the only reason the request is no page view: no script made it
    (a ``fetch()`` cannot send ``Sec-Purpose``, and has a ``cors`` or
    ``same-origin`` mode). Safari's ``X-Purpose: preview`` is not one: it renders
    the page for a preview, which is not showing it. Turbo's hover prefetch is a
    ``fetch()`` that says so itself (``X-Sec-Purpose``, with its ``X-Turbo-Request-Id``):
    a click shows it as a Turbo Drive visit, unless a frame asked for it.
    """
    get = request.headers.get
    if get("x-turbo-request-id") is not None:
        purpose = get("x-sec-purpose")
        return purpose is not None and _is_speculation(purpose) and get("turbo-frame") is None
    for name in _SPECULATION_HEADERS:
        value = get(name)
        if value is not None and _is_speculation(value):
            break
    else:
        return False
    requested_with = get("x-requested-with")
    if requested_with and requested_with.strip().lower() == "xmlhttprequest":
        return False
    if get("hx-request") is not None or get("turbo-frame") is not None:
        return False
    # "navigate" from speculation rules, "no-cors" from <link rel=prefetch>.
    mode = get("sec-fetch-mode")
    return mode is None or mode.strip().lower() in ("navigate", "no-cors")


_SPECULATION_HEADERS = ("sec-purpose", "purpose", "x-moz")


@cached_for_short_text(maxsize=64)  # header values: a visitor's, of any length
def _is_speculation(value: str) -> bool:
    words = value.lower().replace(",", ";").split(";")
    return any(word.strip() in ("prefetch", "prerender") for word in words)


def is_excluded_route(request: RequestInfo, options: WebOptions) -> bool:
    """Whether the route's name, or one of its namespaces, is in ``exclude_routes``."""
    excluded = options.excluded_routes
    if not excluded:
        return False
    name = request.route_name
    if name is not None and name in excluded:
        return True
    return not excluded.isdisjoint(request.route_namespaces)


#: The packages of GraphQL servers (their top-level modules). What their views and
#: apps answer a browser's GET with is an IDE (GraphiQL, Apollo Sandbox, GraphQL
#: Playground, ariadne's explorer): tooling, as API docs are.
GRAPHQL_SERVER_PACKAGES = frozenset(
    {
        "strawberry",
        "graphene_django",
        "ariadne",
        "ariadne_django",
        "graphql_server",  # graphql-server's views for Flask, Sanic, aiohttp, webob
        "flask_graphql",
        "starlette_graphene3",
    }
)
_FUNCTION_TYPES = (types.FunctionType, types.MethodType, types.BuiltinFunctionType)


def serves_graphql(endpoint: object) -> bool:
    """Whether ``endpoint`` is a GraphQL server's: a view function, a view class (or
    what ``as_view()`` made of it), an ASGI app or an instance of one, defined in one
    of :data:`GRAPHQL_SERVER_PACKAGES` or derived from a class of theirs (an app's
    own ``GraphQLView`` subclass).

    Told by module names alone: nothing is imported. Adapters ask it once per
    route, never per request.
    """
    try:
        view = getattr(endpoint, "view_class", endpoint)  # Django's and Flask's as_view()
        if isinstance(view, functools.partial):
            view = view.func
        if isinstance(view, _FUNCTION_TYPES):
            modules: Iterable[object] = (view.__module__,)
        else:
            classes = view.__mro__ if isinstance(view, type) else type(view).__mro__
            modules = (getattr(cls, "__module__", None) for cls in classes)
        return any(
            isinstance(module, str) and module.partition(".")[0] in GRAPHQL_SERVER_PACKAGES
            for module in modules
        )
    except Exception:  # an object with odd attributes: no GraphQL server's
        return False


def is_excluded(path: str, options: WebOptions) -> bool:
    """Whether one of ``exclude_paths`` is found in ``path`` (percent-encoded), or in
    the text it spells when it holds escapes (``/über-uns/`` for ``/%C3%BCber-uns/``).

    Not health checks' ``PROBE_PATHS``, which depend on who asks: see :func:`is_probe`
    (and :func:`is_excluded_request`, which asks both)."""
    regex = options.exclude_regex
    if regex is not None:
        if regex.search(path) is not None:
            return True
    elif any(pattern.search(path) for pattern in options.exclude_patterns):
        return True
    return "%" in path and _is_excluded_decoded(decoded_path(path), options)


def _is_excluded_decoded(path: str, options: WebOptions) -> bool:
    """:func:`is_excluded` for the decoded text of a path (see ``decoded_exclude_regex``)."""
    if options.decoded_exclude_regex is not None:
        return options.decoded_exclude_regex.search(path) is not None
    return any(pattern.search(path) for pattern in options.decoded_exclude_patterns)


def is_excluded_request(request: RequestInfo, options: WebOptions) -> bool:
    """Whether one of ``exclude_paths`` is found in the request's path, or in its
    path below the app's mount point (``/shop/static/app.css`` as ``/static/app.css``)."""
    path, mount = request.path, request.mount
    if is_excluded(path, options):
        return True
    if mount and path.startswith(mount + "/") and is_excluded(path[len(mount) :], options):
        return True
    return options.probe_regex is not None and is_probe(request, options)


def _is_boosted(value: str | None) -> bool:
    """Whether ``HX-Boosted`` says a boosted htmx navigation: ``true``, as htmx
    writes it (and as django-htmx reads it)."""
    return value is not None and value.strip().lower() == "true"


def is_probe(request: RequestInfo, options: WebOptions) -> bool:
    """Whether the request is a health check's: its path is a probe's
    (``PROBE_PATHS``), and it is no browser's navigation (a load balancer, a
    Kubernetes probe, ``curl -f`` or a monitor asks for it; a person opening
    /topics/health in a browser asks for a page)."""
    regex = options.probe_regex
    if regex is None or regex.search(request.path) is None:
        return False
    get = request.header
    # A Turbo Drive visit or a boosted htmx navigation renders a page, by a fetch.
    if _is_boosted(get("hx-boosted")) or (
        get("x-turbo-request-id") is not None and get("turbo-frame") is None
    ):
        return False
    destination = get("sec-fetch-dest")
    if destination is not None:
        return destination.lower() not in ("document", "iframe", "frame")
    return "text/html" not in (get("accept") or "").lower()  # media types ignore case


def is_bot(user_agent: str | None, options: WebOptions | None = None) -> bool:
    """Whether ``user_agent`` names a crawler, previewer or monitor (``bot_user_agents``).

    An empty user agent is not a bot: test clients and some proxies send none.
    """
    return (options.bots if options is not None else _DEFAULT_BOTS).matches(user_agent)


def privacy_allows(request: RequestInfo, options: WebOptions) -> bool:
    """``Sec-GPC: 1`` (``honor_gpc``), ``DNT: 1`` (``honor_dnt``), then ``consent``."""
    if options.honor_gpc and _signal_on(request.header("sec-gpc")):
        return False
    if options.honor_dnt and _signal_on(request.header("dnt")):
        return False
    return consent_given(request, options.consent)


def page_name(request: RequestInfo, options: WebOptions, path: str | None = None) -> str | None:
    """The page's name: the route's name, its template, the path, or the hook's answer.

    ``"route"`` falls back to the template when the route has no name, and both to
    the path when no route is known (a page a middleware serves: Django's
    flatpages). ``path`` is the path as sent (secrets redacted); a name equal to the
    request's raw path is replaced by it.
    """
    path = request.path if path is None else path
    mode = options.page_name
    if mode == "route":
        name = request.route_name or request.route_template
        return path if name == request.path or name is None else name
    if mode == "template":
        template = request.route_template
        return path if template == request.path or template is None else template
    if mode == "path":
        return path
    default = request.route_name or request.route_template
    name = call_hook("page_name", mode, request.hook_target, default=default)
    if isinstance(name, str) and (problem := lone_surrogate_problem(name)) is not None:
        logger.error(
            "segment: page_name returned text that cannot be sent (%s); using %r", problem, default
        )
        return default
    if name is None or isinstance(name, str):
        if name == request.path:
            return path
        # Cut as a path is (a hook's name is often one: the path as the framework
        # decoded it), so that no name makes the page call too large to send.
        return name if name is None or len(name) <= MAX_PAGE_NAME else name[:MAX_PAGE_NAME]
    logger.error(
        "segment: page_name returned %s, not a string; using %r", type(name).__name__, default
    )
    return default


#: The longest name the ``page_name`` hook may give, as a path's longest.
MAX_PAGE_NAME = 2048


def page_properties(
    request: RequestInfo,
    options: WebOptions,
    fields: Mapping[str, str],
    name: str | None,
    response: Any = None,
) -> dict[str, Any]:
    """The page call's properties: the Spec's page fields, ``name``, then the hook's."""
    properties: dict[str, Any] = dict(fields)
    if name is not None:
        properties["name"] = name
    if options.page_properties is not None:
        hook, target = options.page_properties, request.hook_target
        extra = call_hook("page_properties", hook, target, response, default=None)
        if isinstance(extra, Mapping):
            try:
                properties.update(extra)
            except Exception as error:  # a mapping that fails to be read: no answer
                if is_interruption(error):
                    raise
                logger.exception(
                    "segment: page_properties returned a mapping that could not be read; ignored"
                )
                properties = dict(fields) if name is None else {**fields, "name": name}
        elif extra is not None:
            logger.error(
                "segment: page_properties returned %s, not a dict; ignored", type(extra).__name__
            )
    return properties
