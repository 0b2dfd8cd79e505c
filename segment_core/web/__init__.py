"""Framework-neutral request logic shared by every adapter.

Adapters translate their framework's request into a :class:`RequestInfo` and
drive one :class:`RequestTracker` per request; every rule about ids, context,
filtering, cookies and privacy lives here, once::

    from segment_core.web import RequestInfo, RequestTracker, WebOptions

    options = WebOptions.from_mapping({"trusted_proxies": 1})
    tracker = RequestTracker(client, options, RequestInfo(host="example.com", path="/"))
    tracker.analytics.track("Viewed Pricing")
    tracker.finish(200)  # the automatic page call
"""

from __future__ import annotations

from segment_core.web._context import (
    REDACTED,
    anonymize_ip,
    campaign,
    client_ip,
    locale,
    page_fields,
    redact_query,
    redact_url,
    request_context,
)
from segment_core.web._guard import call_hook
from segment_core.web._identity import (
    CookieSpec,
    anonymous_id_cookie,
    new_anonymous_id,
    parse_id_cookie,
)
from segment_core.web._options import (
    DEFAULT_EXCLUDE_PATHS,
    DEFAULT_REDACT_QUERY_PARAMS,
    WebOptions,
    option_names,
    split_options,
)
from segment_core.web._page import (
    BOT_PATTERN,
    is_bot,
    is_excluded,
    page_name,
    page_properties,
    privacy_allows,
    should_track_page,
    tracking_allowed,
)
from segment_core.web._request import RequestInfo, WSGIHeaders
from segment_core.web._tracker import RequestTracker

__all__ = [
    "BOT_PATTERN",
    "DEFAULT_EXCLUDE_PATHS",
    "DEFAULT_REDACT_QUERY_PARAMS",
    "REDACTED",
    "CookieSpec",
    "RequestInfo",
    "RequestTracker",
    "WSGIHeaders",
    "WebOptions",
    "anonymize_ip",
    "anonymous_id_cookie",
    "call_hook",
    "campaign",
    "client_ip",
    "is_bot",
    "is_excluded",
    "locale",
    "new_anonymous_id",
    "option_names",
    "page_fields",
    "page_name",
    "page_properties",
    "parse_id_cookie",
    "privacy_allows",
    "redact_query",
    "redact_url",
    "request_context",
    "should_track_page",
    "split_options",
    "tracking_allowed",
]
