"""htmx's redirects: responses htmx does not show as the page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segment_asgi import SegmentMiddleware
from segment_core import Client
from tests.asgi.conftest import Sent, TestClient

HTML = "<!doctype html><title>t</title><p>ok</p>"
BOOSTED = {"Accept": "text/html", "HX-Request": "true", "HX-Boosted": "true"}
HTMX_HEADERS = {"redirect": "HX-Redirect", "refresh": "HX-Refresh", "location": "HX-Location"}


async def htmx(request: Request) -> HTMLResponse:
    # What django-htmx's HttpResponseClientRedirect, HttpResponseClientRefresh and
    # HttpResponseLocation answer: an empty page with the header htmx acts on.
    kind = request.path_params["kind"]
    if kind not in HTMX_HEADERS:
        return HTMLResponse(HTML)
    return HTMLResponse("", headers={HTMX_HEADERS[kind]: request.query_params["value"]})


@pytest.fixture
def browser(client: Client) -> Iterator[TestClient]:
    app = Starlette(
        routes=[Route("/htmx/{kind}", htmx)],
        middleware=[Middleware(SegmentMiddleware, client=client)],
    )
    with TestClient(app) as test_client:
        yield test_client


def pages(sent: Sent) -> list[str]:
    return [m["context"]["page"]["path"] for m in sent() if m["type"] == "page"]


def test_htmx_redirects_answering_a_boosted_navigation_are_no_page_views(
    browser: TestClient, sent: Sent
) -> None:
    browser.get("/htmx/redirect?value=/next", headers=BOOSTED)
    browser.get("/htmx/refresh?value=true", headers=BOOSTED)
    browser.get('/htmx/location?value={"path":"/next"}', headers=BOOSTED)
    browser.get("/htmx/page", headers=BOOSTED)
    # htmx acts on HX-Refresh: true alone, and on none of them without HX-Request.
    browser.get("/htmx/refresh?value=false", headers=BOOSTED)
    browser.get("/htmx/redirect?value=/next", headers={"Accept": "text/html"})
    assert pages(sent) == ["/htmx/page", "/htmx/refresh", "/htmx/redirect"]
