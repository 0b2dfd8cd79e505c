"""A request context of the app opened in a view (a link built for another host, an
internal request through the test client) shares the view's ``g``: the view's request
keeps its visitor, its cookie and its page call, and the inner one has its own."""

from __future__ import annotations

from flask import Flask, g, render_template_string, request, url_for

from segment_core.scope import analytics, current
from tests.flask.conftest import MakeApp, Sent
from tests.web.snippets import has_snippet, snippet_settings

COOKIE = "ajs_anonymous_id"
PAGE = "<html><head>{{ segment_snippet() }}</head><body>{{ body }}</body></html>"


def test_a_link_built_in_a_request_context_of_its_own(app: Flask, sent: Sent) -> None:
    still_bound: list[bool] = []

    @app.get("/signup")
    def signup() -> str:
        analytics().track("Link Requested")
        with app.test_request_context("/", base_url="https://mail.example"):
            link = url_for("home", _external=True)
        still_bound.append(current() is request.analytics)  # type: ignore[attr-defined]
        analytics().track("Link Sent")
        return f'<a href="{link}">confirm</a>'

    client = app.test_client()
    response = client.get("/signup")
    assert response.get_data(as_text=True) == '<a href="https://mail.example/">confirm</a>'
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    requested, link_sent, page = sent()
    assert (requested["event"], link_sent["event"]) == ("Link Requested", "Link Sent")
    assert page["type"] == "page" and page["context"]["page"]["path"] == "/signup"
    assert {requested["anonymousId"], link_sent["anonymousId"], page["anonymousId"]} == {
        cookie.value
    }
    assert still_bound == [True]
    assert current() is None


def test_a_request_made_in_a_view_has_a_visitor_of_its_own(app: Flask, sent: Sent) -> None:
    still_bound: list[bool] = []

    @app.get("/orders-page")
    def orders_page() -> str:
        analytics().track("Orders Opened")
        # /api/orders tracks "Listed Orders" for the visitor of its own request.
        orders = app.test_client().get("/api/orders").get_json()
        still_bound.append(current() is request.analytics)  # type: ignore[attr-defined]
        still_bound.append(g._segment is request.analytics)  # type: ignore[attr-defined]
        analytics().track("Orders Shown", {"count": len(orders["orders"])})
        return "<ul></ul>"

    client = app.test_client()
    client.get("/orders-page")
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    events = {m.get("event", m["type"]): m for m in sent()}
    assert sorted(events) == ["Listed Orders", "Orders Opened", "Orders Shown", "page"]
    outer = {events[name]["anonymousId"] for name in ("Orders Opened", "Orders Shown", "page")}
    assert outer == {cookie.value}
    assert events["page"]["context"]["page"]["path"] == "/orders-page"
    inner = events["Listed Orders"]
    assert inner["anonymousId"] != cookie.value
    assert inner["context"]["page"]["path"] == "/api/orders"
    assert still_bound == [True, True]
    assert current() is None


def test_a_page_requested_in_a_view_gets_its_own_page_call(app: Flask, sent: Sent) -> None:
    @app.get("/preview")
    def preview() -> str:
        inner = app.test_client().get("/products/7")
        return f"<iframe>{inner.get_data(as_text=True)}</iframe>"

    client = app.test_client()
    client.get("/preview")
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    pages = {m["context"]["page"]["path"]: m for m in sent(type="page")}
    assert sorted(pages) == ["/preview", "/products/7"]
    assert pages["/preview"]["anonymousId"] == cookie.value
    assert pages["/products/7"]["anonymousId"] != cookie.value
    assert current() is None


def test_a_template_rendered_in_a_request_context_of_its_own_has_no_snippet(
    make_app: MakeApp,
) -> None:
    app = make_app(SEGMENT_BROWSER_WRITE_KEY="website-key")
    emails: list[str] = []

    @app.get("/send-invite")
    def send_invite() -> str:
        with app.test_request_context("/", base_url="https://mail.example"):
            emails.append(render_template_string(PAGE, body="join us"))
        return render_template_string(PAGE, body="invitation sent")

    client = app.test_client()
    page = client.get("/send-invite").get_data(as_text=True)
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    assert snippet_settings(page)["anonymousId"] == cookie.value
    assert emails == ["<html><head></head><body>join us</body></html>"]
    assert not has_snippet(emails[0])
