"""htmx's redirects: responses htmx does not show as the page."""

from __future__ import annotations

from flask import Flask, Response, request

from tests.flask.conftest import MakeApp, Sent

HTML = "<!doctype html><title>t</title><p>ok</p>"
BOOSTED = {"Accept": "text/html", "HX-Request": "true", "HX-Boosted": "true"}


def add_views(app: Flask) -> None:
    @app.get("/htmx/<kind>")
    def htmx(kind: str) -> Response:
        # What django-htmx's HttpResponseClientRedirect, HttpResponseClientRefresh
        # and HttpResponseLocation answer: an empty page with the header htmx acts on.
        header = {"redirect": "HX-Redirect", "refresh": "HX-Refresh", "location": "HX-Location"}
        value = request.args.get("value", "/next")
        return Response("", headers={header[kind]: value}) if kind in header else Response(HTML)


def pages(sent: Sent) -> list[str]:
    return [m["context"]["page"]["path"] for m in sent() if m["type"] == "page"]


def test_htmx_redirects_answering_a_boosted_navigation_are_no_page_views(
    make_app: MakeApp, sent: Sent
) -> None:
    app = make_app()
    add_views(app)
    browser = app.test_client()
    browser.get("/htmx/redirect", headers=BOOSTED)
    browser.get("/htmx/refresh?value=true", headers=BOOSTED)
    browser.get("/htmx/location?value=%7B%22path%22%3A%22%2Fnext%22%7D", headers=BOOSTED)
    browser.get("/htmx/page", headers=BOOSTED)
    # htmx acts on HX-Refresh: true alone, and on none of them without HX-Request.
    browser.get("/htmx/refresh?value=false", headers=BOOSTED)
    browser.get("/htmx/redirect", headers={"Accept": "text/html"})
    assert pages(sent) == ["/htmx/page", "/htmx/refresh", "/htmx/redirect"]
