"""The Flask site: Flask-Login for the user, Flask-Talisman for the CSP nonce."""

from __future__ import annotations

from flask import Flask, make_response, redirect, render_template_string, request
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, UserMixin, login_user, logout_user
from flask_talisman import Talisman

from segment_flask import SegmentFlask
from tests.browser.snippet_apps.common import PAGE, USER_ID, connect_sources, segment_options


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


app = Flask(__name__)
app.config["SECRET_KEY"] = "snippet-tests"
app.config.update({f"SEGMENT_{name.upper()}": value for name, value in segment_options().items()})
login_manager = LoginManager(app)
login_manager.user_loader(User)
talisman = Talisman(
    app,
    force_https=False,
    content_security_policy={
        "default-src": "'none'",
        "connect-src": connect_sources(),
        "base-uri": "'none'",
        "object-src": "'none'",
        "script-src": [],
    },
    content_security_policy_nonce_in=["script-src"],
)
SegmentFlask(app)
TEMPLATE = PAGE.format(title="{{ title }}", snippet="{{ segment_snippet() }}").replace(
    "</body>", '<a id="cached" href="/cached">Cached</a> <a id="etag" href="/etag">ETag</a></body>'
)


@app.get("/")
def home() -> str:
    return render_template_string(TEMPLATE, title="Home")


@app.get("/about")
def about() -> str:
    return render_template_string(TEMPLATE, title="About")


@app.get("/open")
@talisman(content_security_policy=None)
def open_page() -> str:  # a site without a policy: analytics.js may load its chunks
    return render_template_string(TEMPLATE, title="Open")


XHTML = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>XHTML</title>
{{ segment_snippet() }}
</head><body><h1 id="title">XHTML</h1></body></html>"""


@app.get("/xhtml")
def xhtml() -> ResponseReturnValue:
    return render_template_string(XHTML), {"Content-Type": "application/xhtml+xml; charset=utf-8"}


@app.get("/login")
def login() -> ResponseReturnValue:
    user_id = request.args.get("as", USER_ID)
    login_user(User(user_id))
    return redirect("/about")


@app.get("/cached")
def cached() -> ResponseReturnValue:
    # A page the browser may show again from its own cache, asking nobody.
    page = render_template_string(TEMPLATE, title="Cached")
    return page, {"Cache-Control": "max-age=600"}


@app.get("/etag")
@talisman(content_security_policy=False)
def etag() -> ResponseReturnValue:
    # A page the browser asks about each time, shown from its copy on a 304 (with no
    # policy: a 304's new nonce would refuse the copy's scripts).
    response = make_response(render_template_string(TEMPLATE, title="ETag"))
    response.set_etag("v1")
    response.headers["Cache-Control"] = "no-cache"
    return response.make_conditional(request)


@app.get("/logout")
def logout() -> ResponseReturnValue:
    # A logout whose page calls no analytics.reset() (one on another subdomain did).
    logout_user()
    return redirect("/about")


PAYMENT_PAGE = """<!doctype html><html><head><title>Payment</title></head><body>
<form id="back" method="post" action="{{ to }}"></form>
<script nonce="{{ csp_nonce() }}">document.getElementById("back").submit();</script>
</body></html>"""


@app.get("/payment")
def payment() -> str:
    # Another site's page (a payment's 3-D Secure step, an identity provider) that
    # posts its answer back to the shop: served on another name of the host.
    return render_template_string(PAYMENT_PAGE, to=request.args["to"])


@app.post("/payment-return")
def payment_return() -> str:
    login_user(User(USER_ID))  # as a SAML or "Sign in with Apple" callback does
    return render_template_string(TEMPLATE, title="Thank you")


SIGNED_OUT_PAGE = TEMPLATE.replace(
    "</body>", '<script nonce="{{ csp_nonce() }}">analytics.reset();</script></body>'
)


@app.get("/signed-out")
def signed_out() -> str:
    # The page a logout leads to calls analytics.reset(), as the README asks.
    logout_user()
    return render_template_string(SIGNED_OUT_PAGE, title="Signed out")


@app.get("/healthz")
def healthz() -> str:
    return "ok"


application = app
