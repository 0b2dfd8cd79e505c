"""An OAuth callback's ``state`` holding a query string, and a referrer holding one,
lose their secrets in a FastAPI app's page call."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from segment_asgi import SegmentMiddleware
from segment_core import Client
from tests.asgi.conftest import Sent, TestClient


def callback_app(client: Client) -> FastAPI:
    app = FastAPI()

    @app.get("/callback", response_class=HTMLResponse)
    def callback() -> str:
        return "<p>signed in</p>"

    app.add_middleware(SegmentMiddleware, client=client)
    return app


def test_a_state_and_a_referrer_holding_a_query_lose_its_secrets(
    client: Client, sent: Sent
) -> None:
    with TestClient(callback_app(client)) as browser:
        browser.get(
            "/callback?code=C0DE&state=return%3D%252Fcart%26token%3DABC",
            headers={
                "accept": "text/html",
                "referer": "https://idp.example/authorize?state=return%3D%252Fcart%26token%3DABC",
            },
        )
    [page] = sent(type="page")
    search = "?code=REDACTED&state=return%3D%252Fcart%26token%3DREDACTED"
    assert page["properties"]["search"] == search
    assert page["properties"]["url"] == f"http://testserver/callback{search}"
    assert page["properties"]["referrer"] == (
        "https://idp.example/authorize?state=return%3D%252Fcart%26token%3DREDACTED"
    )
    assert "ABC" not in json.dumps(page)
