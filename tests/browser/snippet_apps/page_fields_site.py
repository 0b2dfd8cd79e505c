"""A Flask site whose pages carry secrets in their URL and name a canonical URL of
their own (``<link rel="canonical">``), which analytics.js reports in place of the
address bar's.

- ``/confirm?token=...&utm_source=...``: a confirmation link from an email; its
  canonical link keeps the query's ``token`` and drops the ``utm_*`` parameters.
- ``/invite/<key>``: a route parameter with a secret name; its canonical link adds
  ``?page=1``.
- ``/join/<key>``: the same; its canonical link is relative, with a trailing slash.
- ``/about``: no secret; its canonical link names ``/about-us``.
- ``/``: no canonical link (a campaign's landing page).

``SNIPPET_COLLECT_IP=0`` and ``SNIPPET_ANONYMIZE_IP=1`` set the server's options of
those names.
"""

from __future__ import annotations

import os

from flask import Flask, render_template_string, request

from segment_flask import SegmentFlask
from tests.browser.snippet_apps.common import segment_options

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="icon" href="data:,">
{% if canonical %}<link rel="canonical" href="{{ canonical }}">{% endif %}
{{ segment_snippet() }}
</head><body><h1>{{ title }}</h1></body></html>"""

app = Flask(__name__)
app.config.update({f"SEGMENT_{name.upper()}": value for name, value in segment_options().items()})
app.config["SEGMENT_COLLECT_IP"] = os.environ.get("SNIPPET_COLLECT_IP") != "0"
app.config["SEGMENT_ANONYMIZE_IP"] = os.environ.get("SNIPPET_ANONYMIZE_IP") == "1"
SegmentFlask(app)


def page(title: str, canonical: str | None = None) -> str:
    return render_template_string(PAGE, title=title, canonical=canonical)


@app.get("/")
def home() -> str:
    return page("Home")


@app.get("/confirm")
def confirm() -> str:
    token = request.args.get("token", "")
    return page("Confirm", f"{request.host_url}confirm?token={token}")


@app.get("/invite/<key>")
def invite(key: str) -> str:
    return page("Invite", f"{request.host_url}invite/{key}?page=1")


@app.get("/join/<key>")
def join(key: str) -> str:
    return page("Join", f"/join/{key}/")


@app.get("/about")
def about() -> str:
    return page("About", f"{request.host_url}about-us")


application = app
