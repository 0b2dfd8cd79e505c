"""A Flask site whose pages require Trusted Types for scripts (Flask-Talisman's CSP).

Its one page, ``/``, carries the strict policy of the other sites (scripts only
with the response's nonce) and ``require-trusted-types-for 'script'``; its
``trusted-types`` directive allows one policy, the loader's, as the README tells a
site to.
"""

from __future__ import annotations

from flask import Flask, render_template_string
from flask_talisman import Talisman

from segment_flask import SegmentFlask
from tests.browser.snippet_apps.common import PAGE, connect_sources, segment_options

app = Flask(__name__)
app.config.update({f"SEGMENT_{name.upper()}": value for name, value in segment_options().items()})
Talisman(
    app,
    force_https=False,
    content_security_policy={
        "default-src": "'none'",
        "connect-src": connect_sources(),
        "base-uri": "'none'",
        "object-src": "'none'",
        "script-src": [],
        "require-trusted-types-for": "'script'",
        "trusted-types": "segment-web",
    },
    content_security_policy_nonce_in=["script-src"],
)
SegmentFlask(app)
TEMPLATE = PAGE.format(title="{{ title }}", snippet="{{ segment_snippet() }}")


@app.get("/")
def home() -> str:
    return render_template_string(TEMPLATE, title="Home")


application = app
