"""HTTP caches: what a shared cache may keep, and what a 304 counts as."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from segment_asgi import SegmentMiddleware
from segment_core import Client
from tests.asgi.conftest import Sent, TestClient

NAVIGATE = {
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
}


def shared_page(request: Request) -> Response:
    """A page the app lets shared caches keep, its Cache-Control from the query."""
    response = HTMLResponse("<p>the same for everyone</p>")
    for value in request.query_params.getlist("cache"):
        response.headers.append("cache-control", value)
    return response


def app_of(client: Client, files: Path | None = None) -> Any:
    routes: list[Any] = [Route("/", shared_page)]
    if files is not None:
        routes.append(Mount("/files", StaticFiles(directory=files), name="files"))
    return SegmentMiddleware(Starlette(routes=routes), client=client)


@pytest.mark.parametrize(
    ("app_values", "expected"),
    [
        ([], "private"),
        (["public, max-age=60, s-maxage=600"], "private, max-age=60, s-maxage=600"),
        (["public", "max-age=60"], "private, max-age=60"),
        (["no-store"], "private, no-store"),
        (["private, max-age=60"], "private, max-age=60"),
    ],
)
def test_the_response_that_sets_the_cookie_is_kept_out_of_shared_caches(
    client: Client, app_values: list[str], expected: str
) -> None:
    query = "&".join(f"cache={value}" for value in app_values)
    with TestClient(app_of(client)) as browser:
        first = browser.get(f"/?{query}")
        assert first.headers["set-cookie"].startswith("ajs_anonymous_id=")
        assert first.headers.get_list("cache-control") == [expected]
        assert first.headers["vary"] == "Cookie"
        # A returning visitor's page is the app's to cache: nothing is added.
        again = browser.get(f"/?{query}")
    assert "set-cookie" not in again.headers
    assert again.headers.get_list("cache-control") == app_values
    assert "vary" not in again.headers


def test_a_304_of_a_file_is_no_page_view(client: Client, sent: Sent, tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 report")
    (tmp_path / "page.html").write_bytes(b"<p>a page</p>")
    visitor = {**NAVIGATE, "cookie": "ajs_anonymous_id=visitor-1"}
    with TestClient(app_of(client, tmp_path)) as browser:
        for name in ("report.pdf", "page.html"):
            etag = browser.get(f"/files/{name}", headers=visitor).headers["etag"]
            reload = browser.get(f"/files/{name}", headers={**visitor, "if-none-match": etag})
            assert reload.status_code == 304
    # The PDF neither time; the page both times.
    assert [p["properties"]["path"] for p in sent(type="page")] == [
        "/files/page.html",
        "/files/page.html",
    ]
