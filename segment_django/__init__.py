"""Segment for Django: an app, a settings dict, system checks and a middleware.

::

    INSTALLED_APPS = [..., "segment_django"]
    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "segment_django.middleware.SegmentMiddleware",
    ]
    SEGMENT = {"WRITE_KEY": "...", "EXCLUDE_PATHS": [r"^/internal/"]}  # added to the defaults

Every page view (an HTML answer to a navigation; not the admin, not an API's
JSON) then gets an automatic page call, a login an identify, and every request
``request.analytics`` for explicit calls (``request.analytics.track("Signed Up")``).
``SEGMENT`` takes every option of :class:`segment_core.config.Config` and
:class:`segment_core.web.WebOptions`, upper-cased. The client is built once per
process, at start-up (``AppConfig.ready``), and is also ``segment_core``'s default
client: ``segment_core.track(...)`` works in management commands, the shell,
signal receivers and workers. Without client options in ``SEGMENT``, Django sends
through ``segment_core``'s default client itself (the module-level settings:
``segment_core.write_key``, ``segment_core.host``, ...); without a ``WRITE_KEY``,
the options ``SEGMENT`` leaves unset come from them.
``{% load segment %}{% segment_snippet %}`` in a template renders the analytics.js
loader for the request's visitor (``BROWSER_WRITE_KEY`` and the other snippet options).

PYTEST_DONT_REWRITE (pytest's assertion rewriting leaves the package alone).
"""

from __future__ import annotations

from typing import Any

from segment_core.adapters import raise_without_framework, require_framework_version

require_framework_version(adapter="segment_django", framework="django", extra="django")
try:
    from segment_core.web import Snippet
    from segment_django.conf import get_client, web_options
except ModuleNotFoundError as error:
    raise_without_framework(error, adapter="segment_django", framework="django", extra="django")

__all__ = ["get_client", "segment_snippet", "web_options"]


def segment_snippet(request: Any) -> Snippet:
    """The analytics.js snippet for ``request``, for Jinja2 templates (Django's
    ``Jinja2`` backend): ``env.globals["segment_snippet"] = segment_snippet``, then
    ``{{ segment_snippet(request) }}``. Django templates use ``{% segment_snippet %}``.
    """
    from segment_django.templatetags.segment import snippet_for

    return snippet_for(request)
