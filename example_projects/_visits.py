"""Scripted visits to the example apps, and what each one should send to Segment.

A visit is what a person does in a browser, over HTTP with a ``requests.Session``
(cookies kept, no proxy): browse, sign up or log in, buy or comment. It returns the
visitor's anonymous id (the ``ajs_anonymous_id`` cookie the app set) and the
events the app should have sent; :func:`check` compares those with what the
collector received.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from example_projects._servers import Server, loopback_session

__all__ = ["VISITS", "Expected", "Visit", "check", "label"]

TIMEOUT = 30.0
SHOP_USER = ("ada", "espresso-for-ada")  # created by ``manage.py seed_demo``
API_TOKEN, API_USER = "ada-secret-token", "user-ada"  # fastapi_api's USERS_BY_TOKEN
SHOP_API_TOKEN = "ada-shop-api-token-0123456789abcdef"  # django_shop's seed_demo
# The link of Django's password-reset e-mail, printed by the console e-mail backend.
RESET_LINK = re.compile(r"/accounts/reset/(?P<uid>[^/\s]+)/(?P<token>[^/\s]+)/")


@dataclass(frozen=True)
class Expected:
    """One event the visit should cause: its type, event or page name, and identity."""

    type: str
    name: str = ""  # the track's event, the page's name; "" for identify and alias
    signed_in: bool = False  # carries the user's id


@dataclass
class Visit:
    anonymous_id: str
    expected: list[Expected]
    user_id: str | None = None  # when the visit knows it; otherwise the identify's
    #: Values that must reach the collector nowhere (tokens in URLs and headers).
    secrets: list[str] = field(default_factory=list)


def label(message: dict[str, Any]) -> str:
    """The event's name (track) or the page's name, else ""."""
    return str(message.get("event") or message.get("name") or "")


def check(visit: Visit, events: list[dict[str, Any]]) -> list[str]:
    """What is wrong with ``events`` (the collector's records of one app); [] when all is well.

    Every expected event arrived exactly once, nothing else did, all are valid,
    all carry the visitor's anonymous id, and the ones after signing in (only
    those) carry the user's id.
    """
    problems = [
        f"bad {e['message'].get('type')} {label(e['message'])!r}: {'; '.join(e['reasons'])}"
        for e in events
        if e["status"] != "good"
    ]
    messages = [e["message"] for e in events if isinstance(e["message"], dict)]
    arrived = Counter(
        Expected(
            m.get("type", "?"),
            "" if m.get("type") in ("identify", "alias") else label(m),
            m.get("userId") is not None,
        )
        for m in messages
    )
    wanted = Counter(visit.expected)
    for item, count in (wanted - arrived).items():
        problems.append(f"missing: {_describe(item)}" + (f" (x{count})" if count > 1 else ""))
    for item, count in (arrived - wanted).items():
        problems.append(f"unexpected: {_describe(item)}" + (f" (x{count})" if count > 1 else ""))

    for secret in visit.secrets:
        leaks = [m for m in messages if secret in json.dumps(m)]
        if leaks:
            problems.append(f"a secret reached the collector in {len(leaks)} event(s)")

    user_ids = {m["userId"] for m in messages if m.get("type") in ("identify", "alias")}
    user_id = visit.user_id or (user_ids.pop() if len(user_ids) == 1 else None)
    for m in messages:
        what = f"{m.get('type')} {label(m)!r}"
        if m.get("type") == "alias":
            if m.get("previousId") != visit.anonymous_id:
                problems.append(f"{what}: previousId is not the visitor's anonymous id")
        elif m.get("anonymousId") != visit.anonymous_id:
            problems.append(f"{what}: anonymousId {m.get('anonymousId')!r} is not the cookie's")
        if m.get("userId") is not None and m.get("userId") != user_id:
            problems.append(f"{what}: userId {m.get('userId')!r}, expected {user_id!r}")
    return problems


def _describe(item: Expected) -> str:
    who = "signed in" if item.signed_in else "anonymous"
    return f"{item.type} {item.name!r} ({who})" if item.name else f"{item.type} ({who})"


def visit_django_shop(server: Server) -> Visit:
    """Browse, add to cart, log in, check out; use the API, the admin, a password reset.

    None of the API's JSON answers, its browsable pages or the admin's pages is a
    page view; the reset link's token (and the API token) reach the collector
    nowhere.
    """
    base_url = server.url
    with loopback_session() as http:

        def get(path: str) -> requests.Response:
            return _ok(http.get(base_url + path, timeout=TIMEOUT))

        def post(path: str, **data: str) -> requests.Response:
            # Django's CSRF check: the form field must match the csrftoken cookie.
            data["csrfmiddlewaretoken"] = http.cookies["csrftoken"]
            return _ok(http.post(base_url + path, data=data, timeout=TIMEOUT))

        get("/")
        anonymous_id = http.cookies["ajs_anonymous_id"]
        get("/products/hand-grinder/")
        post("/cart/add/p-102/", quantity="2")  # then the cart
        get("/accounts/login/?next=/cart/")
        username, password = SHOP_USER
        post("/accounts/login/?next=/cart/", username=username, password=password, next="/cart/")
        post("/checkout/")  # then the order's page
        get("/api/orders/")  # JSON, the session's user
        http.get(base_url + "/api/orders/", headers={"Accept": "text/html"}, timeout=TIMEOUT)
        token = {"Authorization": f"Token {SHOP_API_TOKEN}"}
        _ok(http.get(base_url + "/api/orders/", headers=token, timeout=TIMEOUT))
        get("/admin/login/?next=/admin/")  # the admin: tooling, not a page of the shop
        get("/accounts/password_reset/")
        post("/accounts/password_reset/", email=f"{username}@example.com")  # then "done"
        link = _reset_link(server)
        confirm = get(link)  # Django moves the token into the session, then the form
        post(
            confirm.url.removeprefix(base_url),
            new_password1=password,
            new_password2=password,
        )  # then "complete"; the session of the old password is over
    return Visit(
        anonymous_id,
        [
            Expected("page", "shop:product_list"),
            Expected("page", "shop:product_detail"),
            Expected("track", "Product Viewed"),
            Expected("track", "Product Added"),
            Expected("page", "shop:cart"),
            Expected("page", "login"),
            Expected("identify", signed_in=True),
            Expected("page", "shop:cart", signed_in=True),
            Expected("track", "Order Completed", signed_in=True),
            # From the Celery worker (or a thread), for the same visitor.
            Expected("track", "Order Confirmation Sent", signed_in=True),
            Expected("page", "shop:order_complete", signed_in=True),
            Expected("track", "Orders Listed", signed_in=True),
            Expected("track", "Orders Listed", signed_in=True),
            Expected("track", "Orders Listed", signed_in=True),
            Expected("page", "password_reset", signed_in=True),
            Expected("page", "password_reset_done", signed_in=True),
            Expected("page", "password_reset_confirm", signed_in=True),
            Expected("page", "password_reset_complete"),
        ],
        secrets=[RESET_LINK.search(link)["token"], SHOP_API_TOKEN],  # type: ignore[index]
    )


def _reset_link(server: Server, timeout: float = 10.0) -> str:
    """The newest reset link the console e-mail backend printed in the server's log."""
    deadline = time.monotonic() + timeout
    while True:
        found = list(RESET_LINK.finditer(server.log()))
        if found:
            return found[-1][0]
        if time.monotonic() > deadline:
            raise RuntimeError("no password-reset e-mail in the server's log")
        time.sleep(0.1)


def visit_flask_blog(server: Server) -> Visit:
    """Read, sign up, comment."""
    base_url = server.url
    post_path = "/posts/events-at-shutdown"
    with loopback_session() as http:
        _ok(http.get(base_url + "/", timeout=TIMEOUT))
        anonymous_id = http.cookies["ajs_anonymous_id"]
        _ok(http.get(base_url + post_path, timeout=TIMEOUT))
        signup = f"{base_url}/signup?next={post_path}"
        _ok(http.get(signup, timeout=TIMEOUT))
        name = "grace-" + secrets.token_hex(3)
        form = {"username": name, "email": f"{name}@example.com", "password": "c0mpiler!"}
        _ok(http.post(signup, data=form, timeout=TIMEOUT))  # then back to the post
        comment = {"body": "A deadline on the flush is what I was missing."}
        _ok(http.post(f"{base_url}{post_path}/comments", data=comment, timeout=TIMEOUT))
    return Visit(
        anonymous_id,
        [
            Expected("page", "posts.index"),
            Expected("page", "posts.detail"),
            Expected("page", "auth.signup"),
            Expected("alias", signed_in=True),
            Expected("identify", signed_in=True),
            Expected("track", "Signed Up", signed_in=True),
            Expected("page", "posts.detail", signed_in=True),
            Expected("track", "Comment Posted", signed_in=True),
            Expected("page", "posts.detail", signed_in=True),
        ],
    )


def visit_fastapi_api(server: Server) -> Visit:
    """Open the page, create to-dos (anonymously, then with a token), complete one."""
    base_url = server.url
    with loopback_session() as http:
        _ok(http.get(base_url + "/", timeout=TIMEOUT))
        anonymous_id = http.cookies["ajs_anonymous_id"]
        api = base_url + "/api/todos"
        _ok(http.post(api, json={"title": "Read the README"}, timeout=TIMEOUT))
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        todo = _ok(http.post(api, json={"title": "Ship it"}, headers=auth, timeout=TIMEOUT))
        _ok(http.post(f"{api}/{todo.json()['id']}/complete", headers=auth, timeout=TIMEOUT))
        _ok(http.get(api, timeout=TIMEOUT))  # no page call: /api/ is excluded
    return Visit(
        anonymous_id,
        [
            Expected("page", "home"),
            Expected("track", "Todo Created"),
            Expected("track", "Todo Created", signed_in=True),
            Expected("track", "Todo Completed", signed_in=True),
        ],
        user_id=API_USER,
    )


def _ok(response: requests.Response) -> requests.Response:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.url}: {response.status_code}\n"
            f"{response.text[:500]}"
        )
    return response


VISITS: dict[str, Callable[[Server], Visit]] = {
    "django_shop": visit_django_shop,
    "flask_blog": visit_flask_blog,
    "fastapi_api": visit_fastapi_api,
}
