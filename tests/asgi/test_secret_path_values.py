"""A secret ``{name:path}`` route value is redacted however the browser wrote its
slashes: some as ``/``, some escaped as ``%2F``."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from segment_asgi import SegmentMiddleware
from segment_core import Client
from segment_core.scope import analytics
from tests.asgi.conftest import Sent, TestClient

SECRET = "s3cr3tK3y"


def download_app(client: Client) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SegmentMiddleware, client=client, page_name="path")

    @app.get("/dl/{signed_token:path}", response_class=HTMLResponse)
    def download(signed_token: str) -> str:
        analytics().track("Download Started")
        return "<p>download</p>"

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        return "<p>home</p>"

    return app


@pytest.mark.parametrize(
    "written",
    [
        f"v1/q8Zr%2B{SECRET}%2Fk3Jx9w%3D%3D",  # a version, then a quoted base64 token
        f"q8Zr%2B{SECRET}%2Fk3Jx9w%3D%3D/file.pdf",  # a quoted token, then a file name
    ],
)
def test_a_secret_path_value_with_escaped_and_literal_slashes_is_redacted(
    client: Client, sent: Sent, written: str
) -> None:
    with TestClient(download_app(client)) as browser:
        browser.get(f"/dl/{written}")
        browser.get("/", headers={"referer": f"http://testserver/dl/{written}?a=1"})
    track, download_page, home = sent()
    for message in (track, download_page):
        assert message["context"]["page"]["path"] == "/dl/REDACTED"
        assert message["context"]["page"]["url"] == "http://testserver/dl/REDACTED"
    assert download_page["name"] == "/dl/REDACTED"
    assert home["properties"]["referrer"] == "http://testserver/dl/REDACTED?a=1"
    assert SECRET not in json.dumps([track, download_page, home])
