"""``segment_snippet()``: the analytics.js loader, a Jinja global of every app set up.

``{{ segment_snippet() }}`` in a template's ``<head>`` renders Segment's loader from
the app's own settings for the current visitor (see :mod:`segment_core.web`).
"""

from __future__ import annotations

from flask import Flask, current_app, has_request_context, request

from segment_core.web import Snippet, find_csp_nonce, render_snippet
from segment_flask._hooks import SCOPE_KEY, RequestScope, scope_of_request

__all__ = ["segment_snippet"]


def segment_snippet() -> Snippet:
    """The ``<script>`` that loads analytics.js as the current request's visitor.

    For visitors the app does not track and on excluded paths, an inert
    ``analytics`` that loads nothing (the page's own calls do not fail); empty
    without a ``SEGMENT_BROWSER_WRITE_KEY``, outside a request, and in a request
    context the app never served (``app.test_request_context()`` for an e-mail, in a
    view, in an app context of its own or in a CLI command); empty with a warning in
    an app without ``SegmentFlask``. The CSP nonce is read where
    ``SEGMENT_CSP_NONCE`` says: ``request.csp_nonce`` by default (Flask-Talisman).
    """
    if not has_request_context():
        return Snippet()  # an email or a CLI render: no visitor, nothing to load
    native = request._get_current_object()  # type: ignore[attr-defined]
    # A streamed template renders after the request's teardown, which empties g
    # (Flask 3.1) or leaves a new one (before): the scope is on the request then.
    scope = vars(native).get(SCOPE_KEY) or scope_of_request(native)
    if not isinstance(scope, RequestScope):
        if _is_set_up(current_app):
            # Segment sees every request the app serves: this context is one the app
            # never served (app.test_request_context() for an e-mail, maybe in an app
            # context of the view's own), not a visitor's page.
            return Snippet()
        return render_snippet(None)  # logged: the app serves requests Segment never sees
    tracker = scope.tracker
    return render_snippet(tracker, nonce=find_csp_nonce(native, tracker.options))


def _is_set_up(app: Flask) -> bool:
    """Whether ``SegmentFlask`` is set up on ``app`` (its hooks see every request)."""
    from segment_flask._extension import EXTENSION_NAME  # which imports this module

    return EXTENSION_NAME in app.extensions
