"""Which requests are page views, what they are called, and what they carry.

A request is a page view when its method is in ``page_methods`` (GET), its
response is a success (2xx) or ``304 Not Modified``, its path is not excluded,
its user agent is not a known crawler or monitor, privacy allows it
(``Sec-GPC``, ``DNT``, the ``consent`` hook) and ``page_filter`` agrees.
Redirects are not page views: the page they lead to is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from segment_core.web._guard import call_hook, logger
from segment_core.web._options import WebOptions
from segment_core.web._request import RequestInfo

__all__ = [
    "BOT_PATTERN",
    "is_bot",
    "is_excluded",
    "is_page_status",
    "page_name",
    "page_properties",
    "privacy_allows",
    "should_track_page",
    "tracking_allowed",
]

#: Crawlers, link previewers, uptime monitors and audit tools, matched in the
#: lower-cased user agent (plus any word ending in "bot": see :func:`is_bot`).
#: Generic HTTP libraries (curl, requests, headless browsers) are not listed:
#: they are how tests and scripts drive apps. Add them with a ``page_filter``.
BOT_PATTERN = re.compile(
    r"crawl|spider|slurp|archiver|scraper|scrapy|mediapartners|feedfetcher"
    r"|facebookexternalhit|facebookcatalog|embedly|quora link preview|pinterest|vkshare"
    r"|whatsapp|preview|prerender|validator|lighthouse|pagespeed|gtmetrix"
    r"|pingdom|uptimerobot|statuscake|site24x7|newrelicpinger|datadog|monitor"
    r"|google-inspectiontool|chatgpt-user|anthropic-ai"
)
# "Googlebot/2.1", "bingbot", "Slackbot-LinkExpanding", but not the "CUBOT" phone.
_BOT_WORD = re.compile(r"(?<!cu)bot\b")


def should_track_page(
    request: RequestInfo, status: int, options: WebOptions, response: Any = None
) -> bool:
    """Whether ``request``, answered with ``status``, gets an automatic page call."""
    return tracking_allowed(request, options) and page_wanted(request, status, options, response)


def tracking_allowed(request: RequestInfo, options: WebOptions) -> bool:
    """Whether automatic calls and the id cookie may happen at all for this visitor."""
    if options.skip_bots and is_bot(request.header("user-agent")):
        return False
    return privacy_allows(request, options)


def page_wanted(
    request: RequestInfo,
    status: int,
    options: WebOptions,
    response: Any,
    *,
    excluded: bool | None = None,
) -> bool:
    """The per-response half of :func:`should_track_page` (privacy aside).

    ``excluded`` is :func:`is_excluded` when the caller already knows it.
    """
    if not options.page_calls or not request.host:
        return False
    if request.method.upper() not in options.page_methods or not is_page_status(status):
        return False
    if is_excluded(request.path, options) if excluded is None else excluded:
        return False
    if options.page_filter is not None:
        target = request.hook_target
        return bool(call_hook("page_filter", options.page_filter, target, response, default=False))
    return True


def is_page_status(status: int) -> bool:
    """2xx, or 304 (the browser shows its cached copy of the page)."""
    return 200 <= status < 300 or status == 304


def is_excluded(path: str, options: WebOptions) -> bool:
    """Whether one of ``exclude_paths`` is found in ``path``."""
    if options.exclude_regex is not None:
        return options.exclude_regex.search(path) is not None
    return any(pattern.search(path) for pattern in options.exclude_patterns)


def is_bot(user_agent: str | None) -> bool:
    """Whether ``user_agent`` names a crawler, previewer or monitor.

    An empty user agent is not a bot: test clients and some proxies send none.
    """
    if not user_agent:
        return False
    if len(user_agent) > _MAX_CACHED_USER_AGENT:
        return _names_a_bot(user_agent)
    return _cached_names_a_bot(user_agent)


# A browser's user agent takes several microseconds to match and a site sees few
# distinct ones: each is matched once. Bounded in count and in the length cached.
_MAX_CACHED_USER_AGENT = 512


def _names_a_bot(user_agent: str) -> bool:
    # One lower() and plain alternatives, where a case-insensitive pattern with a
    # look-behind took ten times as long.
    text = user_agent.lower()
    if "bot" in text and _BOT_WORD.search(text) is not None:
        return True
    return BOT_PATTERN.search(text) is not None


_cached_names_a_bot = functools.lru_cache(maxsize=1024)(_names_a_bot)


def privacy_allows(request: RequestInfo, options: WebOptions) -> bool:
    """``Sec-GPC: 1`` (``honor_gpc``), ``DNT: 1`` (``honor_dnt``), then ``consent``."""
    if options.honor_gpc and (request.header("sec-gpc") or "").strip() == "1":
        return False
    if options.honor_dnt and (request.header("dnt") or "").strip() == "1":
        return False
    if options.consent is not None:
        return bool(call_hook("consent", options.consent, request.hook_target, default=False))
    return True


def page_name(request: RequestInfo, options: WebOptions) -> str | None:
    """The page's name: the route's name, its template, the path, or the hook's answer.

    ``"route"`` falls back to the template when the route has no name.
    """
    mode = options.page_name
    if mode == "route":
        return request.route_name or request.route_template
    if mode == "template":
        return request.route_template
    if mode == "path":
        return request.path
    default = request.route_name or request.route_template
    name = call_hook("page_name", mode, request.hook_target, default=default)
    if name is None or isinstance(name, str):
        return name
    logger.error("segment: page_name returned %r, not a string; using %r", name, default)
    return default


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
            properties.update(extra)
        elif extra is not None:
            logger.error("segment: page_properties returned %r, not a dict; ignored", extra)
    return properties
