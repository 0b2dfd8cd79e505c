"""Framework-neutral request logic shared by every adapter.

Adapters translate their framework's request into a :class:`RequestInfo` and
drive one :class:`RequestTracker` per request; every rule about ids, context,
filtering, cookies and privacy lives here, once::

    from segment_core.web import RequestInfo, RequestTracker, WebOptions

    options = WebOptions.from_mapping({"trusted_proxies": 1})
    tracker = RequestTracker(client, options, RequestInfo(host="example.com", path="/"))
    tracker.analytics.track("Viewed Pricing")
    tracker.finish(200)  # the automatic page call

:func:`render_snippet` turns a tracker into the analytics.js loader for its
visitor; the adapters' template helpers call it.
"""

from __future__ import annotations

from segment_core.config import is_async
from segment_core.web._bots import BOT_PATTERN, DEFAULT_BOT_USER_AGENTS, BotMatcher
from segment_core.web._browser_options import DEFAULT_SNIPPET_SRC
from segment_core.web._cache_control import cache_control_for_cookie
from segment_core.web._context import (
    MAX_HOST,
    MAX_PATH,
    MAX_QUERY,
    MAX_REFERRER,
    MAX_USER_AGENT,
    anonymize_ip,
    campaign,
    locale,
    page_fields,
    redact_query,
    redact_url,
    request_context,
)
from segment_core.web._forwarded import client_ip, forwarded_origin
from segment_core.web._guard import call_hook
from segment_core.web._identity import (
    CookieSpec,
    anonymous_id_cookie,
    is_plain_id,
    new_anonymous_id,
    parse_id_cookie,
)
from segment_core.web._options import (
    DEFAULT_EXCLUDE_PATHS,
    DEFAULT_EXCLUDE_ROUTES,
    DEFAULT_PAGE_CONTENT_TYPES,
    DEFAULT_PAGE_METHODS,
    DEFAULT_REDACT_QUERY_PARAMS,
    LIST_DEFAULTS,
    PROBE_PATHS,
    WebOptions,
    option_names,
    split_options,
)
from segment_core.web._page import (
    GRAPHQL_SERVER_PACKAGES,
    accepts_document,
    is_bot,
    is_excluded,
    is_excluded_request,
    is_excluded_route,
    is_page_status,
    is_probe,
    is_script_request,
    media_type,
    page_name,
    page_properties,
    privacy_allows,
    serves_graphql,
    should_track_page,
    tracking_allowed,
)
from segment_core.web._redaction import REDACTED, HostRoutes, Redactor, name_words, redact_path
from segment_core.web._request import (
    RequestInfo,
    WSGIHeaders,
    cached_for_short_text,
    checked_host,
    environ_wire_path,
    query_of_request_line,
    request_wire_path,
    wire_path,
)
from segment_core.web._snippet import (
    Snippet,
    browser_settings,
    find_csp_nonce,
    missing_browser_key,
    render_snippet,
    script_json,
)
from segment_core.web._tracker import (
    REDIRECT_STATUSES,
    USER_NOT_KNOWN,
    RequestAnalytics,
    RequestTracker,
)
from segment_core.web._validate import check_cookie_names, check_plain_hooks

__all__ = [
    "BOT_PATTERN",
    "DEFAULT_BOT_USER_AGENTS",
    "DEFAULT_EXCLUDE_PATHS",
    "DEFAULT_EXCLUDE_ROUTES",
    "DEFAULT_PAGE_CONTENT_TYPES",
    "DEFAULT_PAGE_METHODS",
    "DEFAULT_REDACT_QUERY_PARAMS",
    "DEFAULT_SNIPPET_SRC",
    "GRAPHQL_SERVER_PACKAGES",
    "LIST_DEFAULTS",
    "MAX_HOST",
    "MAX_PATH",
    "MAX_QUERY",
    "MAX_REFERRER",
    "MAX_USER_AGENT",
    "PROBE_PATHS",
    "REDACTED",
    "REDIRECT_STATUSES",
    "USER_NOT_KNOWN",
    "BotMatcher",
    "CookieSpec",
    "HostRoutes",
    "Redactor",
    "RequestAnalytics",
    "RequestInfo",
    "RequestTracker",
    "Snippet",
    "WSGIHeaders",
    "WebOptions",
    "accepts_document",
    "anonymize_ip",
    "anonymous_id_cookie",
    "browser_settings",
    "cache_control_for_cookie",
    "cached_for_short_text",
    "call_hook",
    "campaign",
    "check_cookie_names",
    "check_plain_hooks",
    "checked_host",
    "client_ip",
    "environ_wire_path",
    "find_csp_nonce",
    "forwarded_origin",
    "is_async",
    "is_bot",
    "is_excluded",
    "is_excluded_request",
    "is_excluded_route",
    "is_page_status",
    "is_plain_id",
    "is_probe",
    "is_script_request",
    "locale",
    "media_type",
    "missing_browser_key",
    "name_words",
    "new_anonymous_id",
    "option_names",
    "page_fields",
    "page_name",
    "page_properties",
    "parse_id_cookie",
    "privacy_allows",
    "query_of_request_line",
    "redact_path",
    "redact_query",
    "redact_url",
    "render_snippet",
    "request_context",
    "request_wire_path",
    "script_json",
    "serves_graphql",
    "should_track_page",
    "split_options",
    "tracking_allowed",
    "wire_path",
]
