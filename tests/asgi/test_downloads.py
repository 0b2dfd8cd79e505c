"""A download (``Content-Disposition: attachment``) leaves the browser on its page:
no page view, whichever response sends it."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse
from starlette.routing import Route

from segment_asgi import SegmentMiddleware
from segment_core import Client
from tests.asgi.conftest import Sent, TestClient

NAVIGATE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
REPORT = "<html><body>report</body></html>"


def test_a_download_is_no_page_view(client: Client, sent: Sent, tmp_path: Path) -> None:
    document = tmp_path / "report.html"
    document.write_text(REPORT)

    async def export(request: Request) -> FileResponse:
        return FileResponse(document, media_type="text/html", filename="report.html")

    async def rendered_export(request: Request) -> HTMLResponse:
        return HTMLResponse(REPORT, headers={"Content-Disposition": "ATTACHMENT"})

    async def shown(request: Request) -> FileResponse:
        disposition = "inline"
        return FileResponse(
            document,
            media_type="text/html",
            filename="report.html",
            content_disposition_type=disposition,
        )

    app = Starlette(
        routes=[
            Route("/export", export),
            Route("/export.html", rendered_export),
            Route("/shown", shown),
        ],
        middleware=[Middleware(SegmentMiddleware, client=client)],
    )
    with TestClient(app) as browser:
        for url in ("/export", "/export.html", "/shown"):
            assert browser.get(url, headers=NAVIGATE).status_code == 200, url
    assert [page["properties"]["path"] for page in sent(type="page")] == ["/shown"]
