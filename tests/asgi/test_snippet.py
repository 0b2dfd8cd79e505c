"""``segment_asgi.segment_snippet(request)`` as a global of Starlette's Jinja2Templates."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.templating import Jinja2Templates

import segment_asgi
from segment_core import Client
from tests.asgi.conftest import Sent, TestClient
from tests.web.snippets import has_snippet, script_tags, snippet_settings

KEY = "website-key"
PAGE = "<html><head>{{ segment_snippet(request) }}</head><body>hi</body></html>"


class FakeUser:
    is_authenticated = True
    identity = "user-9"


def make_app(client: Client, tmp_path: Path, *, user: bool = False, **options: Any) -> Starlette:
    (tmp_path / "page.html").write_text(PAGE)
    templates = Jinja2Templates(directory=str(tmp_path))
    templates.env.globals["segment_snippet"] = segment_asgi.segment_snippet

    async def page(request: Request) -> Response:
        return templates.TemplateResponse(request, "page.html")

    async def nonce(request: Request) -> Response:
        request.state.csp_nonce = "state-nonce"
        return templates.TemplateResponse(request, "page.html")

    async def by_hand(request: Request) -> Response:
        return HTMLResponse(f"<head>{segment_asgi.segment_snippet(request)}</head>")

    async def streamed(request: Request) -> Response:
        # The template renders as the server sends the body, after the headers are out.
        body = templates.get_template("page.html").generate(request=request)
        return StreamingResponse(body, media_type="text/html; charset=utf-8")

    async def streamed_csv(request: Request) -> Response:
        return StreamingResponse(iter(["a,b\n"]), media_type="text/csv")

    async def plain(request: Request) -> Response:
        return HTMLResponse("<p>no snippet</p>")

    async def with_user(scope: Any, receive: Any, send: Any) -> None:
        if user and scope["type"] == "http":
            scope["user"] = FakeUser()
        await app(scope, receive, send)

    app = Starlette(
        routes=[
            Route("/", page, methods=["GET", "POST"]),
            Route("/nonce", nonce),
            Route("/by-hand", by_hand),
            Route("/healthz", page),
            Route("/streamed", streamed),
            Route("/export.csv", streamed_csv),
            Route("/plain", plain),
        ],
        middleware=[
            Middleware(segment_asgi.SegmentMiddleware, client=client, **options),  # type: ignore[arg-type]
        ],
    )
    return with_user  # type: ignore[return-value]


def test_the_snippet_carries_the_servers_visitor(
    client: Client, sent: Sent, tmp_path: Path
) -> None:
    with TestClient(make_app(client, tmp_path, browser_write_key=KEY)) as http:
        response = http.get("/")
    settings = snippet_settings(response.text)
    assert settings["anonymousId"] == response.cookies["ajs_anonymous_id"]
    assert (settings["writeKey"], settings["page"], settings["userId"]) == (KEY, False, None)
    [server_page] = sent(type="page")
    assert server_page["anonymousId"] == settings["anonymousId"]


def test_the_user_from_scope(client: Client, tmp_path: Path) -> None:
    with TestClient(make_app(client, tmp_path, user=True, browser_write_key=KEY)) as http:
        assert snippet_settings(http.get("/").text)["userId"] == "user-9"


def test_without_jinja(client: Client, tmp_path: Path) -> None:
    with TestClient(make_app(client, tmp_path, browser_write_key=KEY)) as http:
        assert has_snippet(http.get("/by-hand").text)


def test_page_source_browser(client: Client, sent: Sent, tmp_path: Path) -> None:
    app = make_app(client, tmp_path, browser_write_key=KEY, page_source="browser")
    with TestClient(app) as http:
        assert snippet_settings(http.get("/").text)["page"] is True
    assert sent(type="page") == []


def test_nonce_from_request_state(client: Client, tmp_path: Path) -> None:
    app = make_app(client, tmp_path, browser_write_key=KEY, csp_nonce="state.csp_nonce")
    with TestClient(app) as http:
        assert script_tags(http.get("/nonce").text) == ['<script nonce="state-nonce">\n']
        assert script_tags(http.get("/").text) == ["<script>\n"]


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({"Sec-GPC": "1"}, "/"),
        ({"User-Agent": "UptimeRobot/2.0"}, "/"),
        ({}, "/healthz"),
        ({"Sec-GPC": "1"}, "/streamed"),  # its headers go before its body
    ],
)
def test_nothing_for_visitors_the_server_does_not_track(
    client: Client, tmp_path: Path, headers: dict[str, str], path: str
) -> None:
    with TestClient(make_app(client, tmp_path, browser_write_key=KEY)) as http:
        response = http.get(path, headers=headers)
    assert response.status_code == 200
    assert not has_snippet(response.text)
    # A page without analytics.js for this visitor alone: no shared cache hands it
    # to the next (a health check's is the same for all).
    assert ("private" in response.headers.get("cache-control", "")) is (path != "/healthz")


def test_without_the_middleware(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def by_hand(request: Request) -> Response:
        return HTMLResponse(f"<head>{segment_asgi.segment_snippet(request)}</head>")

    with (
        caplog.at_level(logging.WARNING, logger="segment.core.web"),
        TestClient(Starlette(routes=[Route("/", by_hand)])) as http,
    ):
        assert http.get("/").text == "<head></head>"
    assert "middleware" in caplog.text


def test_bad_options_fail_at_start(client: Client) -> None:
    with pytest.raises(ValueError, match="page_source"):
        segment_asgi.SegmentMiddleware(Starlette(), client=client, page_source="all")
    with pytest.raises(ValueError, match="csp_nonce"):
        segment_asgi.SegmentMiddleware(Starlette(), client=client, csp_nonce=3)  # type: ignore[arg-type]

    async def async_nonce(request: Any) -> str:
        return "n"

    with pytest.raises(ValueError, match="csp_nonce must be a plain function"):
        segment_asgi.SegmentMiddleware(Starlette(), client=client, csp_nonce=async_nonce)


def test_a_page_with_the_snippet_varies_on_cookie(client: Client, tmp_path: Path) -> None:
    with TestClient(make_app(client, tmp_path, browser_write_key=KEY)) as http:
        http.cookies.set("ajs_anonymous_id", "visitor-A-1111")
        page = http.get("/")
        health = http.get("/healthz")  # excluded: no snippet
    assert snippet_settings(page.text)["anonymousId"] == "visitor-A-1111"
    assert page.headers["vary"] == "Cookie"
    assert page.headers["cache-control"] == "private"
    assert "vary" not in health.headers


def test_a_page_naming_a_visitor_without_the_cookie_is_kept_out_of_shared_caches(
    client: Client, tmp_path: Path
) -> None:
    # With set_cookie off, each new visitor gets an id of its own in the page and no
    # cookie: Vary alone would let a shared cache hand it to every other new visitor.
    with TestClient(make_app(client, tmp_path, browser_write_key=KEY, set_cookie=False)) as http:
        page = http.get("/")
    assert snippet_settings(page.text)["anonymousId"]
    assert "set-cookie" not in page.headers
    assert page.headers["cache-control"] == "private"
    assert page.headers["vary"] == "Cookie"


def test_a_streamed_page_that_renders_the_snippet_varies_on_cookie(
    client: Client, tmp_path: Path
) -> None:
    with TestClient(make_app(client, tmp_path, browser_write_key=KEY)) as http:
        http.cookies.set("ajs_anonymous_id", "visitor-A-1111")
        response = http.get("/streamed")
    assert snippet_settings(response.text)["anonymousId"] == "visitor-A-1111"
    assert response.headers["vary"] == "Cookie"


@pytest.mark.parametrize("browser_key", [KEY, None])
def test_a_body_without_a_snippet_to_come_does_not_vary(
    client: Client, tmp_path: Path, browser_key: str | None
) -> None:
    with TestClient(make_app(client, tmp_path, browser_write_key=browser_key)) as http:
        http.cookies.set("ajs_anonymous_id", "visitor-A-1111")
        assert "vary" not in http.get("/export.csv").headers  # no page: no snippet
        assert "vary" not in http.get("/plain").headers  # made before its headers, without one
        response = http.get("/streamed")
    assert has_snippet(response.text) == (browser_key is not None)
    assert ("vary" in response.headers) == (browser_key is not None)


def test_an_excluded_route_gets_no_snippet(client: Client, sent: Sent, tmp_path: Path) -> None:
    app = make_app(
        client,
        tmp_path,
        browser_write_key=KEY,
        page_source="browser",
        exclude_routes=["nonce"],
    )
    with TestClient(app) as http:
        assert not has_snippet(http.get("/nonce").text)
        assert has_snippet(http.get("/").text)
    assert sent(type="page") == []


def test_a_user_id_with_a_lone_surrogate_is_no_user_and_the_page_renders(
    client: Client, tmp_path: Path
) -> None:
    app = make_app(client, tmp_path, browser_write_key=KEY, user_id=lambda request: "user-\ud83d")
    with TestClient(app) as http:
        response = http.get("/")
    assert response.status_code == 200
    assert snippet_settings(response.text)["userId"] is None  # as in its calls


def test_vary_headers_already_there_are_joined_never_repeated(client: Client) -> None:
    async def page(request: Request) -> Response:
        body = _parts(str(segment_asgi.segment_snippet(request)))
        response = StreamingResponse(body, media_type="text/html")
        for value in request.query_params.getlist("vary"):
            response.raw_headers.append((b"vary", value.encode()))
        return response

    app = segment_asgi.SegmentMiddleware(
        Starlette(routes=[Route("/", page)]), client=client, browser_write_key=KEY
    )
    with TestClient(app) as http:
        once = http.get("/", params={"vary": "Accept-Encoding"})
        twice = http.get("/", params=[("vary", "Accept-Encoding"), ("vary", "Cookie")])
    assert once.headers.get_list("vary") == ["Accept-Encoding, Cookie"]
    assert twice.headers.get_list("vary") == ["Accept-Encoding", "Cookie"]  # not added again


async def _parts(snippet: str) -> Any:
    yield b"<html><head>"
    yield snippet.encode()
    yield b"</head></html>"


def test_a_form_another_site_posts_back_keeps_the_browser_s_visitor(
    client: Client, tmp_path: Path
) -> None:
    app = make_app(client, tmp_path, browser_write_key=KEY)
    headers = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}
    with TestClient(app) as http:
        response = http.post("/", headers=headers)
    assert "ajs_anonymous_id" not in response.cookies
    assert snippet_settings(response.text)["anonymousId"] is None
