"""What the three sites share: their settings from the environment, and their pages.

Each site has the same pages: ``/`` and ``/about`` (documents with the snippet in
their head), ``/login`` (logs the visitor in as :data:`USER_ID`, or as the user
named by ``?as=``, then redirects to ``/about``) and ``/healthz``. Every page
carries a strict Content-Security-Policy: scripts only with the response's nonce,
connections only to the CDN and the collector. Some have a page of their own:
Django ``/fragment`` (the snippet in a ``{% cache %}`` fragment), Flask ``/xhtml``
(an ``application/xhtml+xml`` page), ``/cached`` (sent with a ``max-age``), ``/etag``
(answered 304 once the browser holds it) and ``/logout`` (no ``analytics.reset()``).
``navigation_site`` is a Flask site of its own, navigated by Turbo Drive or htmx.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

USER_ID = "u-42"
NODE_MODULES = Path(__file__).resolve().parents[1] / "js/node_modules"
#: What navigates the pages of ``navigation_site``, by ``SNIPPET_NAVIGATION``.
NAVIGATION_LIBRARIES = {
    "turbo": NODE_MODULES / "@hotwired/turbo/dist/turbo.es2017-umd.js",
    "htmx": NODE_MODULES / "htmx.org/dist/htmx.min.js",
}
#: Links of ``navigation_site`` whose URLs hold secrets, in the path and in the query:
#: a page, and a piece of a page (htmx's ``hx-push-url``).
INVITE = "/invite/SECRETKEY?token=SECRETTOKEN&tab=1"
FRAGMENT = "/fragment/SECRETKEY?token=SECRETTOKEN"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
{snippet}
</head><body><h1>{title}</h1>
<a id="about" href="/about">About</a> <a id="login" href="/login">Log in</a>
</body></html>"""


def segment_options() -> dict[str, Any]:
    """The Segment options every site uses, as lower-case names."""
    options: dict[str, Any] = {
        "write_key": os.environ["SEGMENT_WRITE_KEY"],
        "host": os.environ["SEGMENT_HOST"],
        "flush_at": 1,  # each server event goes at once: the test waits at the collector
        "browser_write_key": os.environ["SNIPPET_BROWSER_KEY"],
        "snippet_src": os.environ["SNIPPET_SRC"],
        "browser_cdn": os.environ["SNIPPET_CDN"],
        "browser_api_host": os.environ.get("SNIPPET_API_HOST", os.environ["SEGMENT_HOST"] + "/v1"),
    }
    for name in ("page_source", "cookie_name"):
        value = os.environ.get("SNIPPET_" + name.upper())
        if value:
            options[name] = value
    if os.environ.get("SNIPPET_SET_COOKIE") == "0":
        options["set_cookie"] = False
    return options


def connect_sources() -> list[str]:
    """Where analytics.js may connect: the CDN (settings) and the collector (events)."""
    return [os.environ["SNIPPET_CDN"], os.environ["SEGMENT_HOST"]]


def strict_csp(nonce: str) -> str:
    """The policy of every page (what django-csp and Flask-Talisman are configured to send)."""
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; "
        f"connect-src {' '.join(connect_sources())}; base-uri 'none'; object-src 'none'"
    )
