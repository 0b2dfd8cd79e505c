"""``segment_snippet(request)``: the analytics.js loader, for Jinja2 templates.

Register it once as a global of Starlette's (or FastAPI's) ``Jinja2Templates``::

    templates = Jinja2Templates(directory="templates")
    templates.env.globals["segment_snippet"] = segment_asgi.segment_snippet

and put ``{{ segment_snippet(request) }}`` in the page's ``<head>`` (``TemplateResponse``
puts the request in every template's context). Without Jinja2, insert
``str(segment_snippet(request))`` into the HTML yourself.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from segment_asgi.middleware import TRACKER_KEY
from segment_core.web import RequestTracker, Snippet, find_csp_nonce, render_snippet

__all__ = ["segment_snippet"]


def segment_snippet(request: HTTPConnection) -> Snippet:
    """The ``<script>`` that loads analytics.js as the visitor of ``request``.

    For visitors the server does not track and on excluded paths, an inert
    ``analytics`` that loads nothing (the page's own calls do not fail); empty
    without a ``browser_write_key``, and when :class:`~segment_asgi.SegmentMiddleware` did not
    see the request (that is logged). The CSP nonce comes from where the
    ``csp_nonce`` option says (e.g. ``csp_nonce="state.csp_nonce"``).
    """
    state = request.scope.get("state")
    tracker = state.get(TRACKER_KEY) if isinstance(state, dict) else None
    if not isinstance(tracker, RequestTracker):
        return render_snippet(None)
    return render_snippet(tracker, nonce=find_csp_nonce(request, tracker.options))
