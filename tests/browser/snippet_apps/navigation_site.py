"""A Flask site whose pages Turbo Drive or htmx (``hx-boost``) navigate between.

``SNIPPET_NAVIGATION`` names the library (``turbo`` or ``htmx``), served from the
browser tests' npm packages. Pages: ``/`` and ``/about``; ``/invite/<key>`` (a
route parameter with a secret name, visited with a secret in the query too);
``/login`` (logs the visitor in as :data:`USER_ID`, then redirects to ``/about``);
``/logout`` (logs the visitor out, then redirects to ``/``);
``/fragment/<key>``, a piece of a page for htmx's ``hx-push-url``, without the snippet;
``/private``, a page the server does not track (an excluded path: its snippet is
the inert stub); ``/prefetching``, the one page with Turbo's hover prefetch on;
``/inserting``, whose button inserts the invite page's markup as jQuery's
``load()`` does (each script added, run and removed at once); every page's Turbo
Frame (``#frame``), which ``/framing`` navigates to the invite page and promotes
to a visit (``data-turbo-action="advance"``), or to ``/about`` alone. ``/other/``: a
second app, whose snippet has another ``browser_write_key``. ``/in-body/``,
``/in-body/about`` and ``/in-body/private`` (excluded): the same pages with the
snippet at the end of their ``<body>``, linked to each other.

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
from flask_login import LoginManager, UserMixin, login_user, logout_user
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from segment_flask import SegmentFlask
from tests.browser.snippet_apps.common import (
    FRAGMENT,
    INVITE,
    NAVIGATION_LIBRARIES,
    USER_ID,
    segment_options,
)

LIBRARY = os.environ["SNIPPET_NAVIGATION"]
OTHER_BROWSER_KEY = os.environ["SNIPPET_BROWSER_KEY"] + "-other"
WITH_CSP = os.environ.get("SNIPPET_CSP") == "1"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
{% if not prefetch %}<meta name="turbo-prefetch" content="false">{% endif %}
<link rel="icon" href="data:,">
{% if nonce %}<meta name="csp-nonce" content="{{ nonce }}">{% endif %}
<script{% if nonce %} nonce="{{ nonce }}"{% endif %} src="/js/{{ library }}.js"></script>
{% if not in_body %}{{ segment_snippet() }}{% endif %}
</head><body{% if library == "htmx" %} hx-boost="true"{% endif %}>
<h1 id="title">{{ title }}</h1>
<a id="home" href="{{ base }}/">Home</a> <a id="about" href="{{ base }}/about">About</a>
<a id="invite" href="{{ invite }}">Invite</a> <a id="login" href="/login">Log in</a>
<a id="logout" href="/logout">Log out</a>
<a id="private" href="{{ base }}/private">Private</a> <a id="other" href="/other/">Other</a>
<turbo-frame id="frame"><p id="framed">{{ title }}</p>{{ extra|safe }}</turbo-frame>
<button id="fragment" hx-get="{{ fragment }}" hx-target="#title" hx-swap="outerHTML"
  hx-push-url="true">Fragment</button>
{% if in_body %}{{ segment_snippet() }}{% endif %}
</body></html>"""


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


app = Flask(__name__)
app.config["SECRET_KEY"] = "navigation-tests"
app.config.update({f"SEGMENT_{name.upper()}": value for name, value in segment_options().items()})
app.config["SEGMENT_EXCLUDE_PATHS"] = ["^/private$", "^/in-body/private$"]
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


# As jQuery's load() runs the scripts of the markup it inserts: each one is added to
# the head, run, and removed by the inserting script itself.
INSERTING = """<button id="insert">Insert</button><div id="inserted"></div>
<script>
document.getElementById("insert").addEventListener("click", function () {
  fetch("__INVITE__").then(function (response) { return response.text(); }).then(function (html) {
    var markup = new DOMParser().parseFromString(html, "text/html");
    document.getElementById("inserted").innerHTML = markup.body.innerHTML;
    markup.querySelectorAll("script:not([src])").forEach(function (found) {
      var script = document.createElement("script");
      script.text = found.text;
      document.head.appendChild(script).parentNode.removeChild(script);
    });
    window.inserted = true;
  });
});
</script>""".replace("__INVITE__", INVITE)
ADVANCE = f'<a id="advance" href="{INVITE}" data-turbo-action="advance">Advance</a>'
IN_FRAME = '<a id="in-frame" href="/about">In the frame</a>'


def page(title: str, *, prefetch: bool = False, extra: str = "", in_body: bool = False) -> str:
    return render_template_string(
        PAGE,
        title=title,
        base="/in-body" if in_body else "",
        in_body=in_body,
        library=LIBRARY,
        invite=INVITE,
        fragment=FRAGMENT,
        nonce=getattr(request, "csp_nonce", None),
        prefetch=prefetch,
        extra=extra,
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


@app.get("/prefetching")
def prefetching() -> str:
    return page("Prefetching", prefetch=True)


@app.get("/inserting")
def inserting() -> str:
    return page("Inserting", extra=INSERTING)


@app.get("/framing")
def framing() -> str:
    return page("Framing", extra=ADVANCE + IN_FRAME)


@app.get("/in-body/")
def home_in_body() -> str:
    return page("Home", in_body=True)


@app.get("/in-body/about")
def about_in_body() -> str:
    return page("About", in_body=True)


@app.get("/in-body/private")
def private_in_body() -> str:
    return page("Private", in_body=True)


@app.get("/fragment/<key>")
def fragment(key: str) -> str:
    return '<h1 id="title">Fragment</h1>'


@app.get("/login")
def login() -> ResponseReturnValue:
    login_user(User(USER_ID))
    return redirect("/about")


@app.get("/logout")
def logout() -> ResponseReturnValue:
    logout_user()
    return redirect("/")


@app.get("/js/<name>.js")
def library(name: str) -> ResponseReturnValue:
    return send_file(NAVIGATION_LIBRARIES[name], mimetype="text/javascript")


other_app = Flask("other")
other_options = {**segment_options(), "browser_write_key": OTHER_BROWSER_KEY}
other_app.config.update({f"SEGMENT_{name.upper()}": value for name, value in other_options.items()})
SegmentFlask(other_app)


@other_app.get("/")
def other() -> str:
    return page("Other")


application = DispatcherMiddleware(app, {"/other": other_app})
