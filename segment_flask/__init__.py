"""Segment for Flask: ``SegmentFlask(app)``.

::

    from flask import Flask, request
    from segment_flask import SegmentFlask

    app = Flask(__name__)
    app.config["SEGMENT_WRITE_KEY"] = "YOUR_WRITE_KEY"
    SegmentFlask(app)

    @app.post("/checkout")
    def checkout():
        request.analytics.track("Order Completed", {"revenue": 42.5})
        return "thanks"

A page view (by default a GET answered with a 2xx HTML document; not JSON, a
script's request, an excluded path or route, or a bot) gets an automatic ``page`` call
named after its endpoint, with the Spec's page fields and the request's context;
the visitor keeps one ``ajs_anonymous_id`` cookie shared with analytics.js; the
user is the ``USER_ID`` hook's answer, else Flask-Login's ``current_user``, else,
only with ``SEGMENT_USER_ID_FROM_COOKIE = True``, the ``ajs_user_id`` cookie
(which any visitor can write). Options are ``SEGMENT_<NAME>`` config keys for every
option of :class:`segment_core.config.Config` and
:class:`segment_core.web.WebOptions`. Events accepted are delivered as the
worker exits (``atexit``; for gunicorn, ``from segment_core.lifecycle import
worker_exit`` in ``gunicorn.conf.py``). ``flask segment status`` shows the setup.

PYTEST_DONT_REWRITE (pytest's assertion rewriting leaves the package alone).
"""

from __future__ import annotations

from segment_core.adapters import raise_without_framework, require_framework_version

require_framework_version(adapter="segment_flask", framework="flask", extra="flask")
try:
    from segment_flask._extension import SegmentFlask, get_state
    from segment_flask._snippet import segment_snippet
    from segment_flask._state import SegmentState
    from segment_flask.signals import page_tracked
except ModuleNotFoundError as error:
    raise_without_framework(error, adapter="segment_flask", framework="flask", extra="flask")

__all__ = ["SegmentFlask", "SegmentState", "get_state", "page_tracked", "segment_snippet"]
