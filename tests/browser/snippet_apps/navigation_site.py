"""A Flask site whose pages Turbo Drive or htmx (``hx-boost``) navigate between.

``SNIPPET_NAVIGATION`` names the library (``turbo`` or ``htmx``), served from the
browser tests' npm packages. Pages: ``/`` and ``/about``; ``/invite/<key>`` (a
route parameter with a secret name, visited with a secret in the query too);
``/login`` (logs the visitor in as :data:`USER_ID`, then redirects to ``/about``);
``/fragment/<key>``, a piece of a page for htmx's ``hx-push-url``, without the snippet;
``/private``, a page the server does not track (an excluded path: its snippet is
the inert stub).

With ``SNIPPET_CSP=1`` every page has a Content-Security-Policy that allows scripts
with the response's nonce only, and names it in ``<meta name="csp-nonce">`` for
Turbo: the document keeps the first page's policy, so Turbo cannot run a later
page's inline snippet.
"""

from __future__ import annotations

import os
import secrets

from flask import Flask, Response, redirect, render_template_string, request, send_file
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, UserMixin, login_user

from segment_flask import SegmentFlask
from tests.browser.snippet_apps.common import (
    FRAGMENT,
    INVITE,
    NAVIGATION_LIBRARIES,
    USER_ID,
    segment_options,
)

LIBRARY = os.environ["SNIPPET_NAVIGATION"]
WITH_CSP = os.environ.get("SNIPPET_CSP") == "1"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="turbo-prefetch" content="false"><link rel="icon" href="data:,">
{% if nonce %}<meta name="csp-nonce" content="{{ nonce }}">{% endif %}
<script{% if nonce %} nonce="{{ nonce }}"{% endif %} src="/js/{{ library }}.js"></script>
{{ segment_snippet() }}
</head><body{% if library == "htmx" %} hx-boost="true"{% endif %}>
<h1 id="title">{{ title }}</h1>
<a id="home" href="/">Home</a> <a id="about" href="/about">About</a>
<a id="invite" href="{{ invite }}">Invite</a> <a id="login" href="/login">Log in</a>
<a id="private" href="/private">Private</a>
<button id="fragment" hx-get="{{ fragment }}" hx-target="#title" hx-swap="outerHTML"
  hx-push-url="true">Fragment</button>
</body></html>"""


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


app = Flask(__name__)
app.config["SECRET_KEY"] = "navigation-tests"
app.config.update({f"SEGMENT_{name.upper()}": value for name, value in segment_options().items()})
app.config["SEGMENT_EXCLUDE_PATHS"] = ["^/private$"]
login_manager = LoginManager(app)
login_manager.user_loader(User)
SegmentFlask(app)


@app.before_request
def make_nonce() -> None:
    if WITH_CSP:
        request.csp_nonce = secrets.token_urlsafe(16)  # where the snippet looks for it


@app.after_request
def add_policy(response: Response) -> Response:
    nonce = getattr(request, "csp_nonce", None)
    if nonce:
        response.headers["Content-Security-Policy"] = f"script-src 'nonce-{nonce}'"
    return response


def page(title: str) -> str:
    return render_template_string(
        PAGE,
        title=title,
        library=LIBRARY,
        invite=INVITE,
        fragment=FRAGMENT,
        nonce=getattr(request, "csp_nonce", None),
    )


@app.get("/")
def home() -> str:
    return page("Home")


@app.get("/about")
def about() -> str:
    return page("About")


@app.get("/invite/<key>")
def invite(key: str) -> str:
    return page("Invite")


@app.get("/private")
def private() -> str:
    return page("Private")


@app.get("/fragment/<key>")
def fragment(key: str) -> str:
    return '<h1 id="title">Fragment</h1>'


@app.get("/login")
def login() -> ResponseReturnValue:
    login_user(User(USER_ID))
    return redirect("/about")


@app.get("/js/<name>.js")
def library(name: str) -> ResponseReturnValue:
    return send_file(NAVIGATION_LIBRARIES[name], mimetype="text/javascript")


application = app
