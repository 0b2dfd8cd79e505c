"""``{% load segment %}`` then ``{% segment_snippet %}``: the analytics.js loader.

The tag needs the request in the template's context, as ``{% csrf_token %}`` does:
render with ``render(request, ...)`` (or a ``RequestContext``) and keep
``django.template.context_processors.request`` in ``TEMPLATES``. It renders
Segment's loader from ``settings.SEGMENT`` for the request's visitor, with
django-csp's nonce (``request.csp_nonce``) when the request has one. In a
response Django's cache may store, it names no visitor and is the same for
all: analytics.js takes the anonymous id from the cookie, and the loader starts it
only for a visitor the server tracks (one it gave that cookie) whose browser's
privacy signals allow it.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django import template

from segment_core.web import RequestTracker, Snippet, find_csp_nonce, render_snippet

__all__ = ["segment_snippet", "snippet_for"]

logger = logging.getLogger("segment.django")

register = template.Library()


@register.simple_tag(takes_context=True)
def segment_snippet(context: template.Context) -> Snippet:
    """The ``<script>`` that loads analytics.js as this request's visitor.

    For visitors the server does not track (bots, GPC/DNT/consent as configured;
    in a page Django's cache may store, the loader decides) and on excluded paths,
    an inert ``analytics`` that loads nothing, so the page's own calls do not fail;
    nothing at all without ``BROWSER_WRITE_KEY``.
    """
    request: Any = context.get("request")
    if request is None:
        _warn_no_request()
        return Snippet()
    return snippet_for(request)


@functools.cache
def _warn_no_request() -> None:
    # Once: a base template of every e-mail would warn at each one.
    logger.warning(
        "segment: {% segment_snippet %} in a template rendered without the request "
        "in its context renders nothing; render it with render(request, ...) and keep "
        "'django.template.context_processors.request' in TEMPLATES (a template rendered "
        "outside a request, such as an e-mail, renders nothing too, on purpose)"
    )


def snippet_for(request: Any) -> Snippet:
    """The snippet for ``request``: also a global for Django's Jinja2 backend
    (``env.globals["segment_snippet"] = segment_django.segment_snippet``)."""
    tracker = getattr(request, "_segment_tracker", None)
    if not isinstance(tracker, RequestTracker):
        return render_snippet(None)
    # Django's cache (cache_page, the per-site cache) flags a response it may store,
    # maybe before the middleware makes it vary on Cookie: then the page may reach
    # other visitors, and names none.
    shared = bool(getattr(request, "_cache_update_cache", False))
    return render_snippet(tracker, nonce=find_csp_nonce(request, tracker.options), shared=shared)
