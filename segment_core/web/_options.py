"""Web options: one snake_case name each, validated once, shared by every adapter.

Django reads them as upper-case keys of ``settings.SEGMENT``, Flask as
``SEGMENT_<NAME>`` config keys, ASGI as keyword arguments. All of them go through
:meth:`WebOptions.from_mapping` (or :func:`split_options` for a flat dict that
also holds client options), so a bad value fails the same way everywhere: a
:class:`ValueError` that names the option.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from segment_core.config import closest_name
from segment_core.web._bots import DEFAULT_BOT_USER_AGENTS, BotMatcher
from segment_core.web._browser_options import DEFAULT_SNIPPET_SRC, CspNonce, PageSource
from segment_core.web._redaction import DEFAULT_SECRET_WORDS, Redactor
from segment_core.web._validate import (
    NORMALIZERS,
    Hook,
    IPNetwork,
    PageName,
    check_cookie_names,
    check_cookie_prefixes,
    decoded_pattern,
    has_secure_prefix,
    joined_patterns,
)

__all__ = [
    "DEFAULT_EXCLUDE_PATHS",
    "DEFAULT_EXCLUDE_ROUTES",
    "DEFAULT_PAGE_CONTENT_TYPES",
    "DEFAULT_PAGE_METHODS",
    "DEFAULT_REDACT_QUERY_PARAMS",
    "LIST_DEFAULTS",
    "ONE_YEAR",
    "PROBE_PATHS",
    "WebOptions",
    "option_names",
    "split_options",
]

ONE_YEAR = 365 * 24 * 60 * 60

#: Health checks: a path whose last segment is a probe's word, at any depth
#: (/health, /api/internal/health, /healthz/ready, /en/ping). Unlike the other
#: entries it is not applied to a browser's navigation: /topics/health or
#: /matches/42/live opened in a browser is a page (see ``is_probe``).
PROBE_PATHS = (
    r"(?:^|/)_?(?:health|healthz|healthcheck|health-check|health_check|ready|readyz|live|livez"
    r"|ping)(?:/(?:live|ready|liveness|readiness|startup))?/?$"
)

#: Paths that are never page views: assets, crawler files and health checks.
#: Each is a regular expression searched in the request path.
DEFAULT_EXCLUDE_PATHS: tuple[str, ...] = (
    r"^/static/",
    r"^/media/",
    r"^/favicon\.ico$",
    r"^/robots\.txt$",
    r"^/apple-touch-icon[^/]*\.png$",
    r"^/\.well-known/",
    PROBE_PATHS,
)

#: Words that make a parameter secret (see :mod:`segment_core.web._redaction` for
#: the rule): its value becomes ``REDACTED`` in ``url``, ``search``, ``referrer``,
#: and a route parameter's value in the path.
DEFAULT_REDACT_QUERY_PARAMS: tuple[str, ...] = DEFAULT_SECRET_WORDS

#: Response content types that make a page view (media types, parameters ignored).
DEFAULT_PAGE_CONTENT_TYPES: tuple[str, ...] = ("text/html", "application/xhtml+xml")
DEFAULT_PAGE_METHODS: tuple[str, ...] = ("GET",)

#: Route names or namespaces that are framework tooling, never page views: the
#: Django admin (any ``AdminSite``; Flask-Admin's blueprint), Django REST
#: framework's browsable API, the Django debug toolbar, and API docs (FastAPI's
#: docs, ReDoc, OpenAPI schema and OAuth2 redirect routes; APIFlask's ``openapi``;
#: Flask-RESTX's and Flask-Smorest's docs, which the Flask adapter names ``openapi``).
DEFAULT_EXCLUDE_ROUTES: tuple[str, ...] = ("admin", "rest_framework", "djdt", "openapi")

#: List options whose given entries are added to defaults; each has a
#: ``replace_default_<name>`` option that, set to True, drops the defaults.
LIST_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "page_methods": DEFAULT_PAGE_METHODS,
    "page_content_types": DEFAULT_PAGE_CONTENT_TYPES,
    "exclude_paths": DEFAULT_EXCLUDE_PATHS,
    "exclude_routes": DEFAULT_EXCLUDE_ROUTES,
    "bot_user_agents": DEFAULT_BOT_USER_AGENTS,
    "redact_query_params": DEFAULT_REDACT_QUERY_PARAMS,
}


@dataclass(frozen=True)
class WebOptions:
    """How adapters turn requests into context, identity and automatic page calls.

    Hooks receive the framework's own request object (Django ``HttpRequest``, Flask
    ``request``, Starlette ``Request``); ``page_filter`` and ``page_properties``
    also get the response. A hook may be given as a dotted path
    (``"myapp.analytics.user_id"``). A hook that raises is logged and treated as
    "no answer": no page call, no extra properties, no user id, no consent.

    >>> WebOptions.from_mapping({"PAGE_CALLS": False}).page_calls
    False
    """

    #: Send a page call for each request that is a page view.
    page_calls: bool = True
    #: HTTP methods whose requests can be page views (added to ``GET``).
    page_methods: tuple[str, ...] = ()
    #: Response media types that are documents (added to ``text/html`` and
    #: ``application/xhtml+xml``); a 304 counts when the request accepts one.
    page_content_types: tuple[str, ...] = ()
    #: Regular expressions searched in the path (as sent, and as the text its
    #: escapes spell): no page call, no cookie, no user lookup. Added to
    #: :data:`DEFAULT_EXCLUDE_PATHS`.
    exclude_paths: tuple[str | re.Pattern[str], ...] = ()
    #: Route names or namespaces that are never page views (added to
    #: :data:`DEFAULT_EXCLUDE_ROUTES`).
    exclude_routes: tuple[str, ...] = ()
    #: No page call and no cookie for crawlers, previewers and uptime monitors.
    skip_bots: bool = True
    #: Regular expressions searched in the User-Agent, ignoring case, to spot bots
    #: (added to :data:`DEFAULT_BOT_USER_AGENTS`).
    bot_user_agents: tuple[str, ...] = ()
    #: The page's name: the route's name ("route", falling back to the template),
    #: the route's pattern ("template"), the path ("path"), or ``callable(request)``.
    page_name: PageName = "route"
    #: ``callable(request, response) -> bool``: False means no page call.
    page_filter: Hook | None = None
    #: ``callable(request, response) -> dict``: merged over the page's properties.
    page_properties: Hook | None = None
    #: ``callable(request) -> str | None``: the user id, instead of the framework's
    #: user. Called when the request's calls are made (after authentication ran),
    #: and as the request starts for a visitor without the cookie (a user named
    #: only later logged in during the request); and at a login, whose identify it
    #: names (None: no identify).
    user_id: Hook | None = None
    #: ``callable(request) -> bool``: False means no automatic calls and no cookie.
    consent: Hook | None = None
    #: ``Sec-GPC: 1`` (Global Privacy Control) means no automatic calls and no
    #: cookie. On by default: GPC is a legal opt-out of "sharing" in some places.
    honor_gpc: bool = True
    #: The same for ``DNT: 1``; off by default (deprecated, sent by default by some).
    honor_dnt: bool = False
    #: Proxies in front of the app, whose ``Forwarded``/``X-Forwarded-*`` entries
    #: are believed: a hop count, or a list of networks (``["10.0.0.0/8"]``).
    trusted_proxies: int | tuple[IPNetwork, ...] = 0
    #: False sends ``context.ip = "0.0.0.0"`` (Segment then records no address).
    collect_ip: bool = True
    #: Zero the last octet of IPv4 addresses, the last 80 bits of IPv6 ones.
    anonymize_ip: bool = False
    #: Parameter names (or words of names) whose values become ``REDACTED``;
    #: added to :data:`DEFAULT_REDACT_QUERY_PARAMS`.
    redact_query_params: tuple[str, ...] = ()
    #: Drop the defaults of the list option of the same name: only the given
    #: entries count.
    replace_default_page_methods: bool = False
    replace_default_page_content_types: bool = False
    replace_default_exclude_paths: bool = False
    replace_default_exclude_routes: bool = False
    replace_default_bot_user_agents: bool = False
    replace_default_redact_query_params: bool = False
    #: Set ``ajs_anonymous_id`` for new visitors, so analytics.js shares the id.
    set_cookie: bool = True
    #: The anonymous id cookie (analytics.js's name by default).
    cookie_name: str = "ajs_anonymous_id"
    #: Believe the ``user_cookie_name`` cookie when the app knows no user. Off by
    #: default: the browser writes that cookie, so anyone can claim any user id.
    user_id_from_cookie: bool = False
    #: The cookie analytics.js keeps the user id in.
    user_cookie_name: str = "ajs_user_id"
    #: The cookie's domain, e.g. ``".example.com"`` to share it with subdomains.
    cookie_domain: str | None = None
    #: "raw" (analytics-next) or "quoted" (analytics.js classic: ``%22<id>%22``).
    cookie_format: Literal["raw", "quoted"] = "raw"
    #: The cookie's lifetime in seconds (or a ``timedelta``).
    cookie_max_age: int = ONE_YEAR
    #: Under a test runner (Django's, pytest-django; Flask's ``TESTING``), events go
    #: to ``segment_core.testing.outbox`` instead of being sent; True sends them.
    send_in_tests: bool = False
    #: Send one ``identify`` when a user logs in (Django's and Flask-Login's
    #: ``user_logged_in``), linking the visitor's anonymous id to the user; or
    #: ``callable(request, user) -> bool``, asked at each login (an impersonation
    #: tool's login is no visitor becoming that user).
    identify_on_login: bool | Hook = True
    #: ``callable(user) -> dict``: the traits of that identify (none by default).
    identify_traits: Hook | None = None
    #: The write key of the website (analytics.js) source the snippet loads; never
    #: the server's key. No key: the snippet renders nothing (and says why, once).
    browser_write_key: str | None = None
    #: Where analytics.js is loaded from; ``{write_key}`` is replaced by the browser
    #: write key. A self-hosted copy suits a strict CSP or an offline site.
    snippet_src: str = DEFAULT_SNIPPET_SRC
    #: Where analytics.js sends events: ``"events.eu1.segmentapis.com/v1"`` or an
    #: ``https://`` URL (a regional endpoint or a proxy). None: the source's setting.
    browser_api_host: str | None = None
    #: Where analytics.js fetches its source's settings (Segment's CDN, or a proxy).
    browser_cdn: str | None = None
    #: Which side sends page views: "server" (the automatic page calls) or "browser"
    #: (the snippet's ``analytics.page()``). None: "server" when ``page_calls`` is on.
    page_source: PageSource | None = None
    #: Where the request's CSP nonce is: an attribute path on the framework's
    #: request (django-csp and Flask-Talisman set ``request.csp_nonce``; Starlette
    #: apps often ``"state.csp_nonce"``), or ``callable(request) -> str | None``.
    csp_nonce: CspNonce | None = "csp_nonce"

    # Derived once, for the hot path.
    exclude_patterns: tuple[re.Pattern[str], ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    #: The patterns as one regular expression (one search per request), or None
    #: when they cannot be joined and are searched one by one.
    exclude_regex: re.Pattern[str] | None = field(
        init=False, repr=False, compare=False, default=None
    )
    #: The same, to search a path's decoded text with (``/über-uns/`` for
    #: ``/%C3%BCber-uns/``): each pattern, and the text a pattern written with
    #: percent escapes spells (``^/caf%C3%A9/`` as ``^/café/``: either case of hex
    #: digits matches).
    decoded_exclude_patterns: tuple[re.Pattern[str], ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    decoded_exclude_regex: re.Pattern[str] | None = field(
        init=False, repr=False, compare=False, default=None
    )
    #: ``PROBE_PATHS`` when among ``exclude_paths`` (the default): searched apart,
    #: for requests that are not a browser's navigation.
    probe_regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    redactor: Redactor = field(init=False, repr=False, compare=False, default_factory=Redactor)
    bots: BotMatcher = field(init=False, repr=False, compare=False, default_factory=BotMatcher)
    excluded_routes: frozenset[str] = field(
        init=False, repr=False, compare=False, default=frozenset()
    )
    content_types: frozenset[str] = field(
        init=False, repr=False, compare=False, default=frozenset()
    )
    #: Whether the cookies the server and analytics.js write are ``Secure`` on any
    #: page: browsers keep a cookie whose name has a prefix (``__Secure-``,
    #: ``__Host-``) only when it is.
    secure_cookies: bool = field(init=False, repr=False, compare=False, default=False)

    def __post_init__(self) -> None:
        for name, normalize in NORMALIZERS.items():
            value = getattr(self, name)
            if value is None and name in _DEFAULT_FOR_NONE:
                value = _DEFAULT_FOR_NONE[name]
            object.__setattr__(self, name, normalize(name, value))
        for name, defaults in LIST_DEFAULTS.items():
            given = getattr(self, name)
            if not getattr(self, f"replace_default_{name}"):
                # dict: ordered, without repeats (dataclasses.replace() passes the
                # extended list back in).
                given = tuple(dict.fromkeys((*defaults, *given)))
            object.__setattr__(self, name, given)
        patterns = tuple(re.compile(p) for p in self.exclude_paths)
        probes = [p for p in patterns if p.pattern == PROBE_PATHS]
        object.__setattr__(self, "probe_regex", probes[0] if probes else None)
        patterns = tuple(p for p in patterns if p.pattern != PROBE_PATHS)
        object.__setattr__(self, "exclude_patterns", patterns)
        object.__setattr__(self, "exclude_regex", joined_patterns(patterns))
        spelled = tuple(filter(None, map(decoded_pattern, patterns)))
        object.__setattr__(self, "decoded_exclude_patterns", (*patterns, *spelled))
        decoded_regex = joined_patterns((*patterns, *spelled)) if spelled else self.exclude_regex
        object.__setattr__(self, "decoded_exclude_regex", decoded_regex)
        redactor = Redactor(
            self.redact_query_params, defaults=not self.replace_default_redact_query_params
        )
        object.__setattr__(self, "redactor", redactor)
        object.__setattr__(self, "bots", BotMatcher(self.bot_user_agents))
        object.__setattr__(self, "excluded_routes", frozenset(self.exclude_routes))
        object.__setattr__(self, "content_types", frozenset(self.page_content_types))
        check_cookie_prefixes(self.cookie_name, self.user_cookie_name, self.cookie_domain)
        check_cookie_names(self.cookie_name, self.user_cookie_name)
        secure = has_secure_prefix(self.cookie_name) or has_secure_prefix(self.user_cookie_name)
        object.__setattr__(self, "secure_cookies", secure)
        if self.page_source == "server" and not self.page_calls:
            raise ValueError(
                "page_source is 'server' but page_calls is off: no side would send page "
                "views; turn page_calls on, or set page_source to 'browser'"
            )

    @property
    def server_page_views(self) -> bool:
        """Whether the server sends page views (else the browser's snippet does)."""
        return self.page_calls and self.page_source != "browser"

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> WebOptions:
        """Build options from a dict whose keys are option names in any case.

        An unknown key raises :class:`ValueError` with the closest valid name, and
        so does one option under two keys (see :func:`split_options`).
        """
        values: dict[str, Any] = {}
        names = option_names()
        for key, name, value in _lower_case_keys(mapping):
            if name not in names:
                raise ValueError(_unknown_message(key, names))
            values[name] = value
        return cls(**values)


#: The options for which None means their default, as for the client's yes/no
#: options (analytics-python's settings hold None for "the default"): the yes/no
#: options, and ``trusted_proxies`` (none trusted). For others None is a value of
#: its own (``cookie_domain``: the host alone; ``csp_nonce``: no nonce), or refused
#: (``cookie_max_age``: None would read as a cookie for the browser's session).
_DEFAULT_FOR_NONE: dict[str, Any] = {
    f.name: f.default
    for f in fields(WebOptions)
    if f.init and (isinstance(f.default, bool) or f.name == "trusted_proxies")
}


def option_names() -> frozenset[str]:
    """Every option :class:`WebOptions` accepts."""
    return frozenset(f.name for f in fields(WebOptions) if f.init)


def split_options(mapping: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split one flat dict into ``(client_kwargs, web_kwargs)``; keys are lower-cased.

    Client options are the names :class:`segment_core.config.Config` accepts
    (analytics-python aliases included). An unknown key raises :class:`ValueError`
    with the closest name from both sets, and so does one option under two keys
    that differ in case only (``EXCLUDE_PATHS`` and ``exclude_paths``).
    """
    from segment_core.config import ALIASES
    from segment_core.config import option_names as client_option_names

    client_names = client_option_names() | set(ALIASES)
    web_names = option_names()
    client: dict[str, Any] = {}
    web: dict[str, Any] = {}
    for key, name, value in _lower_case_keys(mapping):
        if name in web_names:
            web[name] = value
        elif name in client_names:
            client[name] = value
        else:
            raise ValueError(_unknown_message(key, web_names | client_names))
    return client, web


def _lower_case_keys(mapping: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """``(key, lower-case key, value)`` for each item; :class:`ValueError` for two keys
    that differ in case only (a settings dict merged from a base may spell one
    option twice), as the last one would silently win."""
    items: list[tuple[str, str, Any]] = []
    key_of: dict[str, str] = {}  # a lower-case name: the key that first gave it
    for key, value in mapping.items():
        spelling = str(key)
        name = spelling.lower()
        first = key_of.setdefault(name, spelling)
        if first != spelling:
            raise ValueError(f"{first!r} and {spelling!r} are the same option; pass only one")
        items.append((spelling, name, value))
    return items


def _unknown_message(key: str, names: Iterable[str]) -> str:
    upper = key.isupper()
    candidates = sorted(n.upper() if upper else n for n in names)
    close = closest_name(key, candidates)
    hint = f"; did you mean {close!r}?" if close else ""
    return f"unknown option {key!r}{hint}"
